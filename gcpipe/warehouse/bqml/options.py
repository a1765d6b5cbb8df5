"""``CREATE MODEL ... OPTIONS(...)`` for linear and logistic regression: BigQuery ML's names and defaults.

Defaults and rules follow BigQuery ML's reference for generalized linear models: ``max_iterations`` 20,
``early_stop`` TRUE with ``min_rel_progress`` 0.01, ``l1_reg`` and ``l2_reg`` 0, ``data_split_method``
``AUTO_SPLIT``, ``data_split_eval_fraction`` 0.2, ``fit_intercept`` TRUE, one-hot encoding, labels in
``input_label_cols`` (default ``label``). ``learn_rate_strategy``, ``learn_rate``, ``ls_init_learn_rate``
and ``optimize_strategy`` are checked as BigQuery checks them; the local fit reaches the same optimum
with Newton steps whatever they say (see :mod:`gcpipe.warehouse.bqml.model`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from gcpipe.core.errors import GcpipeError

MODEL_TYPES = ("logistic_reg", "linear_reg")
SPLIT_METHODS = ("AUTO_SPLIT", "RANDOM", "CUSTOM", "SEQ", "NO_SPLIT")
# Accepted so that BigQuery's SQL runs unchanged; they change what BigQuery computes besides the model
# (explanations, p-values), not the model, and the local target does not compute those extras.
_NO_LOCAL_EFFECT = {
    "enable_global_explain",
    "calculate_p_values",
    "kms_key_name",
    "model_registry",
    "vertex_ai_model_id",
    "vertex_ai_model_version_aliases",
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
    fit_intercept: bool = True
    category_encoding_method: str = "ONE_HOT_ENCODING"
    optimize_strategy: str = "AUTO_STRATEGY"
    learn_rate_strategy: str = "LINE_SEARCH"
    learn_rate: float = 0.1
    ls_init_learn_rate: float = 0.1
    ignored: tuple[str, ...] = field(default=())  # options accepted that do nothing locally

    @property
    def label(self) -> str:
        return self.input_label_cols[0]

    @property
    def is_classifier(self) -> bool:
        return self.model_type == "logistic_reg"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> ModelOptions:
        raw = dict(raw)
        raw["input_label_cols"] = tuple(raw["input_label_cols"])
        raw["ignored"] = tuple(raw.get("ignored", ()))
        return cls(**raw)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> ModelOptions:
        """Options as written in SQL (names any case, values already Python values) -> ModelOptions."""
        given = {name.lower(): value for name, value in raw.items()}
        if "labels" in given and "input_label_cols" not in given:  # the older spelling, still accepted
            given["input_label_cols"] = given.pop("labels")
        known = {f.name for f in dataclasses.fields(cls)} - {"ignored"}
        unknown = sorted(set(given) - known - _NO_LOCAL_EFFECT)
        if unknown:
            raise ModelOptionsError(
                f"option {unknown[0]} is not supported for linear and logistic regression by local BigQuery "
                f"ML; supported: {', '.join(sorted(known | _NO_LOCAL_EFFECT))}."
            )
        if "warm_start" in given:
            raise ModelOptionsError("warm_start is not supported by local BigQuery ML; retrain the model.")
        model_type = str(given.get("model_type", "")).lower()
        if model_type not in MODEL_TYPES:
            raise ModelOptionsError(
                f"model_type {given.get('model_type')!r} is not supported locally; use one of: "
                f"{', '.join(repr(t) for t in MODEL_TYPES)}."
            )
        values: dict[str, Any] = {"model_type": model_type}
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

        if len(self.input_label_cols) != 1:
            fail("input_label_cols takes exactly one column for linear and logistic regression.")
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
        if not self.is_classifier and (self.auto_class_weights or self.class_weights):
            fail("auto_class_weights and class_weights apply to logistic regression only.")
        if self.auto_class_weights and self.class_weights:
            fail("class_weights cannot be given when auto_class_weights is TRUE.")
        if self.learn_rate_strategy not in ("LINE_SEARCH", "CONSTANT"):
            fail("learn_rate_strategy must be 'LINE_SEARCH' or 'CONSTANT'.")
        if "learn_rate" in given and self.learn_rate_strategy == "LINE_SEARCH":
            fail(
                "learn_rate needs learn_rate_strategy = 'CONSTANT'; with LINE_SEARCH use ls_init_learn_rate."
            )
        if self.optimize_strategy not in ("AUTO_STRATEGY", "BATCH_GRADIENT_DESCENT", "NORMAL_EQUATION"):
            fail("optimize_strategy must be 'AUTO_STRATEGY', 'BATCH_GRADIENT_DESCENT' or 'NORMAL_EQUATION'.")
        if self.optimize_strategy == "NORMAL_EQUATION" and (self.is_classifier or self.l1_reg):
            fail("optimize_strategy NORMAL_EQUATION applies to linear regression without l1_reg.")


def _coerce(name: str, value: Any, default: Any) -> Any:
    """A SQL option value as the Python type of the option's default, or a one-sentence error."""
    try:
        if name == "input_label_cols":
            values = value if isinstance(value, list | tuple) else [value]
            return tuple(str(v) for v in values)
        if name == "class_weights":
            return {str(label): float(weight) for label, weight in value}
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(default, int):
            if isinstance(value, bool) or int(value) != value:
                raise TypeError
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if not isinstance(value, str):
            raise TypeError
        return value if name == "data_split_col" else value.upper()
    except (TypeError, ValueError):
        raise ModelOptionsError(f"option {name} has a value of the wrong type: {value!r}.") from None
