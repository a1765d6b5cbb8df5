"""``CREATE MODEL ... OPTIONS(...)``: BigQuery ML's option names, defaults and checks, per model type.

One flat :class:`ModelOptions` holds every option of every model type; ``OPTIONS_OF`` says which ones a
model type takes (another is rejected, as BigQuery rejects it) and ``DEFAULTS_OF`` where a type's default
differs. Defaults and rules follow BigQuery ML's ``CREATE MODEL`` references (generalized linear models,
k-means, boosted trees, matrix factorization, ARIMA_PLUS). ``learn_rate_strategy``, ``ls_init_learn_rate``
and ``optimize_strategy`` are checked as BigQuery checks them; the local linear fit reaches the same
optimum with Newton steps whatever they say (see :mod:`gcpipe.warehouse.bqml.models.glm`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gcpipe.core.errors import GcpipeError

SPLIT_METHODS = ("AUTO_SPLIT", "RANDOM", "CUSTOM", "SEQ", "NO_SPLIT")
FREQUENCIES = ("AUTO_FREQUENCY", "PER_MINUTE", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "YEARLY")
# Accepted so that BigQuery's SQL runs unchanged; they change what BigQuery computes besides the model
# (explanations, p-values, where it is registered), not the model.
_NO_LOCAL_EFFECT = {
    "enable_global_explain",
    "calculate_p_values",
    "kms_key_name",
    "model_registry",
    "vertex_ai_model_id",
    "vertex_ai_model_version_aliases",
    "tree_method",
}

_SPLIT = {"data_split_method", "data_split_eval_fraction", "data_split_col"}
_SUPERVISED = {"input_label_cols", "max_iterations", "early_stop", "min_rel_progress", "l1_reg", "l2_reg"}
_CLASS_WEIGHTS = {"auto_class_weights", "class_weights"}
OPTIONS_OF: dict[str, set[str]] = {
    "linear_reg": _SUPERVISED
    | _SPLIT
    | {
        "fit_intercept",
        "category_encoding_method",
        "optimize_strategy",
        "learn_rate_strategy",
        "learn_rate",
        "ls_init_learn_rate",
    },
    "kmeans": {
        "num_clusters",
        "kmeans_init_method",
        "kmeans_init_col",
        "distance_type",
        "standardize_features",
        "max_iterations",
        "early_stop",
        "min_rel_progress",
    },
    "boosted_tree_regressor": _SUPERVISED
    | _SPLIT
    | {
        "learn_rate",
        "max_tree_depth",
        "subsample",
        "min_split_loss",
        "min_tree_child_weight",
        "colsample_bytree",
        "colsample_bylevel",
        "colsample_bynode",
        "num_parallel_tree",
        "booster_type",
    },
    "matrix_factorization": {
        "user_col",
        "item_col",
        "rating_col",
        "feedback_type",
        "num_factors",
        "l2_reg",
        "max_iterations",
        "early_stop",
        "min_rel_progress",
        "wals_alpha",
    },
    "arima_plus": {
        "time_series_timestamp_col",
        "time_series_data_col",
        "time_series_id_col",
        "horizon",
        "auto_arima",
        "auto_arima_max_order",
        "non_seasonal_order",
        "data_frequency",
        "decompose_time_series",
        "clean_spikes_and_dips",
        "include_drift",
    },
}
OPTIONS_OF["logistic_reg"] = OPTIONS_OF["linear_reg"] | _CLASS_WEIGHTS
OPTIONS_OF["boosted_tree_classifier"] = OPTIONS_OF["boosted_tree_regressor"] | _CLASS_WEIGHTS
MODEL_TYPES = tuple(OPTIONS_OF)
DEFAULTS_OF: dict[str, dict[str, Any]] = {
    "boosted_tree_regressor": {"l2_reg": 1.0, "learn_rate": 0.3},
    "boosted_tree_classifier": {"l2_reg": 1.0, "learn_rate": 0.3},
    "matrix_factorization": {"l2_reg": 1.0},
}
# Options that BigQuery has and local BigQuery ML does not, with what to do instead.
_CLOUD_ONLY = {
    "warm_start": "retrain the model",
    "holiday_region": "holiday effects are not modelled locally; leave the option out",
    "num_trials": "hyperparameter tuning runs on BigQuery only; give the values",
    "hparam_tuning_algorithm": "hyperparameter tuning runs on BigQuery only; give the values",
}
# The Python type of the options whose default is None (the others take their default's type).
_TYPES = {
    "num_clusters": int,
    "num_factors": int,
    "kmeans_init_col": str,
    "data_split_col": str,
    "user_col": str,
    "item_col": str,
    "time_series_timestamp_col": str,
    "time_series_data_col": str,
}
_KEEP_CASE = {
    "data_split_col",
    "kmeans_init_col",
    "user_col",
    "item_col",
    "rating_col",
    "time_series_timestamp_col",
    "time_series_data_col",
}


class ModelOptionsError(GcpipeError):
    """An OPTIONS list BigQuery ML (or its local stand-in) would not accept."""


@dataclass(frozen=True)
class ModelOptions:
    model_type: str
    input_label_cols: tuple[str, ...] = ("label",)
    l1_reg: float = 0.0
    l2_reg: float = 0.0
    max_iterations: int = 20
    early_stop: bool = True
    min_rel_progress: float = 0.01
    data_split_method: str = "AUTO_SPLIT"
    data_split_eval_fraction: float = 0.2
    data_split_col: str | None = None
    auto_class_weights: bool = False
    class_weights: dict[str, float] | None = None
    # linear and logistic regression
    fit_intercept: bool = True
    category_encoding_method: str = "ONE_HOT_ENCODING"
    optimize_strategy: str = "AUTO_STRATEGY"
    learn_rate_strategy: str = "LINE_SEARCH"
    learn_rate: float = 0.1
    ls_init_learn_rate: float = 0.1
    # k-means
    num_clusters: int | None = None
    kmeans_init_method: str = "RANDOM"
    kmeans_init_col: str | None = None
    distance_type: str = "EUCLIDEAN"
    standardize_features: bool = True
    # boosted trees
    max_tree_depth: int = 6
    subsample: float = 1.0
    min_split_loss: float = 0.0
    min_tree_child_weight: int = 1
    colsample_bytree: float = 1.0
    colsample_bylevel: float = 1.0
    colsample_bynode: float = 1.0
    num_parallel_tree: int = 1
    booster_type: str = "GBTREE"
    # matrix factorization
    user_col: str | None = None
    item_col: str | None = None
    rating_col: str = "rating"
    feedback_type: str = "EXPLICIT"
    num_factors: int | None = None
    wals_alpha: float = 40.0
    # ARIMA_PLUS
    time_series_timestamp_col: str | None = None
    time_series_data_col: str | None = None
    time_series_id_col: tuple[str, ...] = ()
    horizon: int = 1000
    auto_arima: bool = True
    auto_arima_max_order: int = 5
    non_seasonal_order: tuple[int, ...] = ()
    data_frequency: str = "AUTO_FREQUENCY"
    decompose_time_series: bool = True
    clean_spikes_and_dips: bool = True
    include_drift: bool = False
    ignored: tuple[str, ...] = field(default=())  # options accepted that do nothing locally

    @property
    def label(self) -> str:
        return self.input_label_cols[0]

    @property
    def is_classifier(self) -> bool:
        return self.model_type in ("logistic_reg", "boosted_tree_classifier")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> ModelOptions:
        raw = dict(raw)
        for name in ("input_label_cols", "ignored", "time_series_id_col", "non_seasonal_order"):
            if name in raw:
                raw[name] = tuple(raw[name])
        return cls(**raw)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> ModelOptions:
        """Options as written in SQL (names any case, values already Python values) -> ModelOptions."""
        given = {name.lower(): value for name, value in raw.items()}
        if "labels" in given and "input_label_cols" not in given:  # the older spelling, still accepted
            given["input_label_cols"] = given.pop("labels")
        model_type = str(given.get("model_type", "")).lower()
        if model_type not in MODEL_TYPES:
            raise ModelOptionsError(
                f"model_type {given.get('model_type')!r} is not supported locally; use one of: "
                f"{', '.join(repr(t) for t in MODEL_TYPES)}."
            )
        for name, instead in _CLOUD_ONLY.items():
            if name in given:
                raise ModelOptionsError(f"option {name} is not supported by local BigQuery ML: {instead}.")
        allowed = OPTIONS_OF[model_type] | {"model_type"}
        unknown = sorted(set(given) - allowed - _NO_LOCAL_EFFECT)
        if unknown:
            raise ModelOptionsError(
                f"option {unknown[0]} does not apply to model_type {model_type} (BigQuery rejects it too); "
                f"its options: {', '.join(sorted(allowed))}."
            )
        values: dict[str, Any] = {"model_type": model_type, **DEFAULTS_OF.get(model_type, {})}
        for f in dataclasses.fields(cls):
            if f.name in given and f.name != "model_type":
                values[f.name] = _coerce(f.name, given[f.name], f.default)
        values["ignored"] = tuple(sorted(set(given) & _NO_LOCAL_EFFECT))
        options = cls(**values)
        options._check(given)
        return options

    def _check(self, given: dict) -> None:
        def fail(message: str) -> None:
            raise ModelOptionsError(message)

        kind = self.model_type
        if len(self.input_label_cols) != 1:
            fail("input_label_cols takes exactly one column.")
        if self.l1_reg < 0 or self.l2_reg < 0:
            fail("l1_reg and l2_reg must not be negative.")
        if self.max_iterations < 1:
            fail("max_iterations must be at least 1.")
        if self.data_split_method not in SPLIT_METHODS:
            fail(f"data_split_method must be one of {', '.join(SPLIT_METHODS)}.")
        if self.data_split_method in ("CUSTOM", "SEQ") and not self.data_split_col:
            fail(f"data_split_method {self.data_split_method} needs data_split_col.")
        if not 0 <= self.data_split_eval_fraction < 1:
            fail("data_split_eval_fraction must be at least 0 and less than 1.")
        if self.category_encoding_method not in ("ONE_HOT_ENCODING", "DUMMY_ENCODING"):
            fail("category_encoding_method must be 'ONE_HOT_ENCODING' or 'DUMMY_ENCODING'.")
        if self.auto_class_weights and self.class_weights:
            fail("class_weights cannot be given when auto_class_weights is TRUE.")
        if self.learn_rate_strategy not in ("LINE_SEARCH", "CONSTANT"):
            fail("learn_rate_strategy must be 'LINE_SEARCH' or 'CONSTANT'.")
        glm = kind in ("linear_reg", "logistic_reg")
        if glm and "learn_rate" in given and self.learn_rate_strategy == "LINE_SEARCH":
            fail(
                "learn_rate needs learn_rate_strategy = 'CONSTANT'; with LINE_SEARCH use ls_init_learn_rate."
            )
        if self.optimize_strategy not in ("AUTO_STRATEGY", "BATCH_GRADIENT_DESCENT", "NORMAL_EQUATION"):
            fail("optimize_strategy must be 'AUTO_STRATEGY', 'BATCH_GRADIENT_DESCENT' or 'NORMAL_EQUATION'.")
        if self.optimize_strategy == "NORMAL_EQUATION" and (self.is_classifier or self.l1_reg):
            fail("optimize_strategy NORMAL_EQUATION applies to linear regression without l1_reg.")
        if kind == "kmeans":
            self._check_kmeans(fail)
        if kind.startswith("boosted_tree"):
            self._check_trees(fail)
        if kind == "matrix_factorization":
            self._check_matrix_factorization(fail)
        if kind == "arima_plus":
            self._check_arima(fail)

    def _check_kmeans(self, fail) -> None:
        if self.num_clusters is not None and not 2 <= self.num_clusters <= 100:
            fail(
                f"num_clusters must be between 2 and 100 (got {self.num_clusters}): k-means needs two clusters or more."
            )
        if self.kmeans_init_method not in ("RANDOM", "KMEANS++", "CUSTOM"):
            fail("kmeans_init_method must be 'RANDOM', 'KMEANS++' or 'CUSTOM'.")
        if (self.kmeans_init_method == "CUSTOM") != (self.kmeans_init_col is not None):
            fail("kmeans_init_col goes with kmeans_init_method = 'CUSTOM', and CUSTOM needs kmeans_init_col.")
        if self.distance_type not in ("EUCLIDEAN", "COSINE"):
            fail("distance_type must be 'EUCLIDEAN' or 'COSINE'.")

    def _check_trees(self, fail) -> None:
        if not 0 < self.learn_rate <= 1:
            fail("learn_rate must be greater than 0 and at most 1 for boosted trees.")
        if not 1 <= self.max_tree_depth <= 20:
            fail("max_tree_depth must be between 1 and 20.")
        for name in ("subsample", "colsample_bytree", "colsample_bylevel", "colsample_bynode"):
            if not 0 < getattr(self, name) <= 1:
                fail(f"{name} must be greater than 0 and at most 1.")
        if self.min_split_loss < 0 or self.min_tree_child_weight < 0:
            fail("min_split_loss and min_tree_child_weight must not be negative.")
        if self.num_parallel_tree < 1:
            fail("num_parallel_tree must be at least 1.")
        if self.booster_type != "GBTREE":
            fail("booster_type DART is not supported by local BigQuery ML; use 'GBTREE'.")

    def _check_matrix_factorization(self, fail) -> None:
        if not self.user_col or not self.item_col:
            fail("a matrix_factorization model needs user_col and item_col.")
        if self.feedback_type not in ("EXPLICIT", "IMPLICIT"):
            fail("feedback_type must be 'EXPLICIT' or 'IMPLICIT'.")
        if self.num_factors is not None and self.num_factors < 1:
            fail("num_factors must be at least 1.")
        if self.wals_alpha < 0:
            fail("wals_alpha must not be negative.")

    def _check_arima(self, fail) -> None:
        if not self.time_series_timestamp_col or not self.time_series_data_col:
            fail("an arima_plus model needs time_series_timestamp_col and time_series_data_col.")
        if not 1 <= self.horizon <= 10_000:
            fail("horizon must be between 1 and 10,000.")
        if not 1 <= self.auto_arima_max_order <= 5:
            fail("auto_arima_max_order must be between 1 and 5.")
        if self.non_seasonal_order and (
            len(self.non_seasonal_order) != 3 or not all(0 <= v <= 5 for v in self.non_seasonal_order)
        ):
            fail("non_seasonal_order is (p, d, q), each between 0 and 5 (d up to 2).")
        if self.non_seasonal_order and self.auto_arima:
            fail("non_seasonal_order needs auto_arima = FALSE.")
        if not self.auto_arima and not self.non_seasonal_order:
            fail("auto_arima = FALSE needs non_seasonal_order.")
        if self.data_frequency not in FREQUENCIES:
            fail(f"data_frequency must be one of {', '.join(FREQUENCIES)}.")


def _coerce(name: str, value: Any, default: Any) -> Any:
    """A SQL option value as the Python type of the option's default, or a one-sentence error."""
    try:
        if name in ("input_label_cols", "time_series_id_col"):
            values = value if isinstance(value, list | tuple) else [value]
            return tuple(str(v) for v in values)
        if name == "non_seasonal_order":
            values = tuple(value)
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise TypeError
            return values
        if name == "class_weights":
            return {str(label): float(weight) for label, weight in value}
        kind = _TYPES.get(name, type(default))
        if kind is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind is int:
            if isinstance(value, bool) or int(value) != value:
                raise TypeError
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if not isinstance(value, str):
            raise TypeError
        return value if name in _KEEP_CASE else value.upper()
    except (TypeError, ValueError):
        raise ModelOptionsError(f"option {name} has a value of the wrong type: {value!r}.") from None
