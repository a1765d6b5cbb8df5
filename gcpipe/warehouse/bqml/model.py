"""Linear and logistic regression the way BigQuery ML prepares, splits, fits, evaluates and reports them.

Preprocessing (BigQuery ML's automatic preprocessing): numeric columns (INT64, FLOAT64, NUMERIC) are
standardised with the mean and standard deviation of the input, NULL becoming the mean; other columns
(STRING, BOOL, DATE, DATETIME, TIME, BYTES) are one-hot encoded, NULL being a category of its own and a
category unseen in training weighing 0; a STRUCT column is expanded into ``<struct>_<field>`` features.

Split (``data_split_method``): AUTO_SPLIT keeps every row for training under 500 rows, holds out 20 %
up to 50,000 rows and 10,000 rows above; RANDOM holds out ``data_split_eval_fraction``; CUSTOM holds out
the rows whose BOOL ``data_split_col`` is TRUE or NULL; SEQ holds out the rows with the largest
``data_split_col`` (and NULLs). Random splits are deterministic: rows are ranked by a hash of their
content, as BigQuery ranks them by FARM_FINGERPRINT.

Fit: the model minimises, over the training rows,

    sum_i c_i * loss_i  +  l1_reg * |w|_1  +  l2_reg / 2 * |w|^2

where ``loss_i`` is the log loss (logistic, softmax for more than two classes) or half the squared error
(linear), ``c_i`` the class weight (``auto_class_weights``: ``rows / (classes * rows_of_class)``), and
``w`` the weights without the intercept. That is scikit-learn's objective with ``C = 1 / l2_reg`` (or
``1 / l1_reg``), so the two can be compared. Each iteration is a (proximal) Newton step with a
backtracking line search, coordinate descent handling ``l1_reg``; training stops after
``max_iterations`` or, with ``early_stop``, at the first iteration that improves the objective by less
than ``min_rel_progress``. BigQuery itself takes gradient-descent steps; both reach the same optimum,
Newton in a handful of iterations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gcpipe.core.errors import GcpipeError
from gcpipe.warehouse.bqml.options import ModelOptions

MAX_DESIGN_COLUMNS = 2_000  # one-hot columns in all; the local fit holds the design matrix in memory
AUTO_SPLIT_MIN_ROWS, AUTO_SPLIT_LARGE_ROWS, AUTO_SPLIT_LARGE_EVAL_ROWS = 500, 50_000, 10_000


class ModelError(GcpipeError):
    """Training data or a model the local BigQuery ML cannot use, worded for the user."""


# -- features ------------------------------------------------------------------------------------


def bigquery_type(arrow_type: pa.DataType) -> str:
    """The BigQuery type name of an Arrow column type, as the BigQuery client hands columns back."""
    checks = (
        (pa.types.is_boolean, "BOOL"),
        (pa.types.is_integer, "INT64"),
        (pa.types.is_floating, "FLOAT64"),
        (pa.types.is_decimal, "NUMERIC"),
        (pa.types.is_string, "STRING"),
        (pa.types.is_large_string, "STRING"),
        (pa.types.is_binary, "BYTES"),
        (pa.types.is_date, "DATE"),
        (pa.types.is_time, "TIME"),
        (pa.types.is_struct, "STRUCT"),
        (pa.types.is_list, "ARRAY"),
    )
    for check, name in checks:
        if check(arrow_type):
            return name
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP" if arrow_type.tz else "DATETIME"
    return str(arrow_type).upper()


NUMERIC_TYPES = {"INT64", "FLOAT64", "NUMERIC"}
CATEGORICAL_TYPES = {"STRING", "BOOL", "BYTES", "DATE", "DATETIME", "TIME"}


def _as_strings(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Category values as BigQuery's CAST(x AS STRING) writes them ('true', '2017-05-01', ...)."""
    if pa.types.is_boolean(values.type):
        return pc.if_else(values, "true", "false")
    if pa.types.is_timestamp(values.type):  # DATETIME
        return pc.strftime(values, "%Y-%m-%d %H:%M:%S")
    return pc.cast(values, pa.string())


@dataclass
class Feature:
    """One input column as the model sees it, with the statistics of the input (ML.FEATURE_INFO)."""

    name: str  # as ML.WEIGHTS and ML.FEATURE_INFO name it (struct fields: struct_field)
    column: str  # how SQL reaches it in the input (struct fields: struct.field)
    type: str  # its BigQuery type
    null_count: int
    mean: float | None = None
    stddev: float | None = None
    min: float | None = None
    max: float | None = None
    median: float | None = None
    categories: list[str] = field(default_factory=list)  # sorted; NULL is not among them
    null_category: bool = False  # NULL was seen, so it has a category (and a weight) of its own
    dropped: str | None = None  # DUMMY_ENCODING: the category folded into the intercept

    @property
    def numerical(self) -> bool:
        return self.type in NUMERIC_TYPES

    @property
    def encoded(self) -> list[str | None]:
        """The categories that have a column in the design matrix (None: the NULL category)."""
        kept = [c for c in self.categories if c != self.dropped]
        return [*kept, None] if self.null_category else kept

    @property
    def width(self) -> int:
        return 1 if self.numerical else len(self.encoded)

    @classmethod
    def describe(cls, name: str, column: str, values: pa.ChunkedArray, dummy: bool) -> Feature:
        kind = bigquery_type(values.type)
        nulls = values.null_count
        if kind in NUMERIC_TYPES:
            numbers = values.drop_null().to_numpy(zero_copy_only=False).astype(np.float64)
            if not len(numbers):
                raise ModelError(f"feature {name} is NULL in every row.")
            spread = float(np.std(numbers, ddof=1)) if len(numbers) > 1 else 0.0
            return cls(
                name,
                column,
                kind,
                nulls,
                float(np.mean(numbers)),
                spread,
                float(np.min(numbers)),
                float(np.max(numbers)),
                float(np.median(numbers)),
            )
        if kind in CATEGORICAL_TYPES:
            categories = sorted(pc.unique(_as_strings(values).drop_null()).to_pylist())
            dropped = categories[0] if dummy and categories else None
            return cls(
                name, column, kind, nulls, categories=categories, null_category=nulls > 0, dropped=dropped
            )
        raise ModelError(
            f"feature {name} is {kind}, which local BigQuery ML does not encode yet; cast it to a number or "
            "a STRING in the query."
        )

    def design(self, values: pa.ChunkedArray) -> np.ndarray:
        """This feature's columns of the design matrix for ``values`` (rows x width)."""
        if self.numerical:
            numbers = values.to_numpy(zero_copy_only=False).astype(np.float64)
            numbers = np.where(np.isnan(numbers), self.mean, numbers)
            scale = self.stddev or 1.0  # a constant column standardises to 0 everywhere
            return ((numbers - self.mean) / scale).reshape(-1, 1)
        encoded = self.encoded
        lookup = pa.array([c for c in encoded if c is not None], pa.string())
        index = pc.index_in(_as_strings(values), value_set=lookup).to_numpy(zero_copy_only=False)
        out = np.zeros((len(values), len(encoded)))
        known = ~np.isnan(index.astype(np.float64))
        rows = np.flatnonzero(known)
        out[rows, index[known].astype(np.int64)] = 1.0
        if self.null_category:
            out[values.is_null().to_numpy(zero_copy_only=False), len(encoded) - 1] = 1.0
        return out

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def _columns(table: pa.Table) -> list[tuple[str, str, pa.ChunkedArray]]:
    """(feature name, SQL path, values) of each column, STRUCT columns expanded one level."""
    out = []
    for name in table.column_names:
        values = table[name]
        if pa.types.is_struct(values.type):
            for index, child in enumerate(values.type):
                children = pa.chunked_array([chunk.field(index) for chunk in values.chunks], child.type)
                nulls = values.is_null()
                children = pc.if_else(nulls, pa.scalar(None, child.type), children)
                out.append((f"{name}_{child.name}", f"{name}.{child.name}", children))
        else:
            out.append((name, name, values))
    return out


# -- the model -----------------------------------------------------------------------------------


@dataclass
class TrainingIteration:
    iteration: int
    loss: float
    eval_loss: float | None
    learning_rate: float
    duration_ms: int


@dataclass
class GlmModel:
    """A fitted linear or logistic regression with everything ML.* functions report about it."""

    options: ModelOptions
    label_type: str
    classes: list[Any]  # logistic: label values in ascending order (binary: classes[1] is positive)
    features: list[Feature]
    coefficients: list[list[float]]  # per output (1, or one per class), per design column, standardised
    intercepts: list[float]
    training: list[TrainingIteration]
    evaluation: dict[str, float]  # ML.EVALUATE without input: on the held-out rows (training if none)
    split: dict[str, Any]
    roc: list[tuple] = field(default_factory=list)  # ML.ROC_CURVE without input (binary models), same rows

    # -- fitting ---------------------------------------------------------------------------------

    @classmethod
    def fit(cls, table: pa.Table, options: ModelOptions) -> GlmModel:
        label = options.label
        if label not in table.column_names:
            raise ModelError(
                f"the training query has no label column {label!r}; name it in input_label_cols or alias it."
            )
        if table.num_rows == 0:
            raise ModelError("the training query returned no rows.")
        labels = table[label]
        if labels.null_count:
            raise ModelError(
                f"the label column {label} is NULL in {labels.null_count} rows; filter them out."
            )
        inputs = table.drop_columns([c for c in (label, options.data_split_col) if c in table.column_names])
        if not inputs.num_columns:
            raise ModelError("the training query has no feature columns besides the label.")
        dummy = options.category_encoding_method == "DUMMY_ENCODING"
        features = [Feature.describe(name, path, values, dummy) for name, path, values in _columns(inputs)]
        eval_mask = _split(table, options)
        width = sum(f.width for f in features)
        if width > MAX_DESIGN_COLUMNS:
            widest = max(features, key=lambda f: f.width)
            raise ModelError(
                f"the features expand to {width:,} columns (feature {widest.name} alone has {widest.width:,} "
                f"categories); local BigQuery ML fits up to {MAX_DESIGN_COLUMNS:,}: drop or bucket it."
            )
        label_type = bigquery_type(labels.type)
        if options.is_classifier:
            if label_type not in ("INT64", "BOOL", "STRING"):
                raise ModelError(
                    f"logistic_reg needs an INT64, BOOL or STRING label; {label} is {label_type}."
                )
            classes = sorted(pc.unique(labels).to_pylist())
            if len(classes) < 2:
                raise ModelError(
                    f"the label column {label} has a single value ({classes[0]!r}); need two or more."
                )
            if len(classes) > 50:
                raise ModelError(
                    f"the label column {label} has {len(classes)} values; logistic_reg takes up to 50."
                )
            target = pc.index_in(labels, value_set=pa.array(classes, labels.type)).to_numpy(
                zero_copy_only=False
            )
        else:
            if label_type not in NUMERIC_TYPES:
                raise ModelError(f"linear_reg needs a numeric label; {label} is {label_type}.")
            classes, target = [], labels.to_numpy(zero_copy_only=False).astype(np.float64)
        model = cls(options, label_type, classes, features, [], [], [], {}, {})
        X = model.design(inputs)
        train, held = ~eval_mask, eval_mask
        if not train.any():
            raise ModelError("the data split leaves no rows for training; lower data_split_eval_fraction.")
        model.split = {
            "method": options.data_split_method,
            "training_rows": int(train.sum()),
            "evaluation_rows": int(held.sum()),
        }
        weights = model._class_weights(target[train])
        _fit(model, X[train], target[train], weights, (X[held], target[held]) if held.any() else None)
        scored = held if held.any() else train
        predicted = model.predict_design(X[scored])
        model.evaluation = model.metrics(target[scored], predicted)
        if model.kind == "binary":
            model.roc = roc_curve(target[scored] == 1, predicted)
        return model

    def _class_weights(self, target: np.ndarray) -> np.ndarray:
        options = self.options
        if options.auto_class_weights:
            counts = np.bincount(target.astype(np.int64), minlength=len(self.classes))
            per_class = len(target) / (len(self.classes) * np.maximum(counts, 1))
            return per_class[target.astype(np.int64)]
        if options.class_weights:
            missing = [str_label(c) for c in self.classes if str_label(c) not in options.class_weights]
            if missing:
                raise ModelError(f"class_weights has no weight for label {missing[0]!r}.")
            per_class = np.array([options.class_weights[str_label(c)] for c in self.classes])
            return per_class[target.astype(np.int64)]
        return np.ones(len(target))

    # -- using it --------------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        if not self.options.is_classifier:
            return "linear"
        return "binary" if len(self.classes) == 2 else "multiclass"

    def design(self, inputs: pa.Table) -> np.ndarray:
        """The standardised, one-hot design matrix of ``inputs`` (rows x columns, no intercept column)."""
        columns = {path: values for _, path, values in _columns(inputs)}
        missing = [f.column for f in self.features if f.column not in columns]
        if missing:
            raise ModelError(f"the input has no column {missing[0]!r}, which the model was trained on.")
        parts = [f.design(columns[f.column]) for f in self.features]
        return np.hstack(parts) if parts else np.zeros((inputs.num_rows, 0))

    def predict_design(self, X: np.ndarray) -> np.ndarray:
        """Linear: predicted values; binary: P(positive class); multiclass: probabilities (rows x classes)."""
        return self.from_scores(X @ np.asarray(self.coefficients).T + np.asarray(self.intercepts))

    def from_scores(self, scores: np.ndarray) -> np.ndarray:
        """Predictions from the linear scores (rows x outputs), as :meth:`predict_design` returns them."""
        if self.kind == "linear":
            return scores[:, 0]
        if self.kind == "binary":
            return _sigmoid(scores[:, 0])
        return _softmax(scores)

    def predict(self, inputs: pa.Table) -> np.ndarray:
        return self.predict_design(self.design(inputs))

    def metrics(self, target: np.ndarray, predicted: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
        """ML.EVALUATE's metrics. ``target``: class indexes (classifiers) or values; ``predicted`` as above."""
        if self.kind == "linear":
            return regression_metrics(target, predicted)
        return classification_metrics(target.astype(np.int64), predicted, len(self.classes), threshold)

    def denormalised(self) -> tuple[list[list[float]], list[float]]:
        """Weights and intercepts on the scale of the input columns (what ML.WEIGHTS shows by default).

        A numeric weight ``w`` on ``(x - mean) / stddev`` is ``w / stddev`` on ``x``; the rest of it,
        ``- w * mean / stddev``, moves into the intercept.
        """
        coefficients, intercepts = [], []
        for row, intercept in zip(self.coefficients, self.intercepts, strict=True):
            row = list(row)
            offset = 0
            for feature in self.features:
                if feature.numerical:
                    scale = feature.stddev or 1.0
                    weight = row[offset] / scale if feature.stddev else 0.0
                    intercept -= weight * feature.mean
                    row[offset] = weight
                offset += feature.width
            coefficients.append(row)
            intercepts.append(intercept)
        return coefficients, intercepts

    # -- artefact --------------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {
            "format": 1,
            "options": self.options.to_json(),
            "label_type": self.label_type,
            "classes": self.classes,
            "features": [f.to_json() for f in self.features],
            "coefficients": self.coefficients,
            "intercepts": self.intercepts,
            "training": [t.__dict__ for t in self.training],
            "evaluation": self.evaluation,
            "split": self.split,
            "roc": self.roc,
        }

    @classmethod
    def from_json(cls, raw: dict) -> GlmModel:
        return cls(
            options=ModelOptions.from_json(raw["options"]),
            label_type=raw["label_type"],
            classes=raw["classes"],
            features=[Feature(**f) for f in raw["features"]],
            coefficients=raw["coefficients"],
            intercepts=raw["intercepts"],
            training=[TrainingIteration(**t) for t in raw["training"]],
            evaluation=raw["evaluation"],
            split=raw["split"],
            roc=[tuple(row) for row in raw.get("roc", [])],
        )


def str_label(value: Any) -> str:
    """A label value as BigQuery's CAST(label AS STRING) writes it (class_weights keys)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- the split -----------------------------------------------------------------------------------


def _split(table: pa.Table, options: ModelOptions) -> np.ndarray:
    """A boolean mask of the rows held out for evaluation."""
    n, method = table.num_rows, options.data_split_method
    if method in ("CUSTOM", "SEQ"):
        column = options.data_split_col
        if column not in table.column_names:
            raise ModelError(f"data_split_col {column!r} is not a column of the training query.")
        values = table[column]
        if method == "CUSTOM":
            if not pa.types.is_boolean(values.type):
                raise ModelError(f"data_split_col {column} must be BOOL for data_split_method CUSTOM.")
            return pc.fill_null(values, True).to_numpy(zero_copy_only=False)
        held = values.is_null().to_numpy(zero_copy_only=False).copy()
        order = np.argsort(
            pc.rank(values, sort_keys="ascending", tiebreaker="first").to_numpy(), kind="stable"
        )
        order = order[~held[order]]
        count = round(len(order) * options.data_split_eval_fraction)
        held[order[len(order) - count :]] = True
        return held
    if method == "NO_SPLIT" or (method == "AUTO_SPLIT" and n < AUTO_SPLIT_MIN_ROWS):
        return np.zeros(n, dtype=bool)
    if method == "AUTO_SPLIT":
        count = AUTO_SPLIT_LARGE_EVAL_ROWS if n > AUTO_SPLIT_LARGE_ROWS else round(n * 0.2)
    else:
        count = round(n * options.data_split_eval_fraction)
    held = np.zeros(n, dtype=bool)
    held[np.argsort(_row_hashes(table), kind="stable")[:count]] = True
    return held


def _row_hashes(table: pa.Table) -> np.ndarray:
    """A 64-bit hash of each row's content (columns in order), so a random split is the same every run."""
    import pandas as pd

    return pd.util.hash_pandas_object(table.flatten().to_pandas(), index=False).to_numpy()


# -- fitting -------------------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class _Objective:
    """The penalised training objective of one model kind, its mean loss, gradient and Hessian.

    Parameters are flattened: per output (1, or one per class), the design columns then the intercept.
    """

    def __init__(
        self,
        kind: str,
        X: np.ndarray,
        target: np.ndarray,
        weights: np.ndarray,
        outputs: int,
        options: ModelOptions,
    ):
        self.kind, self.outputs, self.options = kind, outputs, options
        self.X = self.augment(X)
        self.target, self.weights = target, weights
        self.columns = self.X.shape[1]
        penalised = np.ones(self.columns, dtype=bool)
        if options.fit_intercept:
            penalised[-1] = False
        self.penalised = np.tile(penalised, outputs)
        if kind == "multiclass":
            self.onehot = np.eye(outputs)[target.astype(np.int64)]

    def augment(self, X: np.ndarray) -> np.ndarray:
        """``X`` with the intercept's column of ones, if the model fits an intercept."""
        return np.hstack([X, np.ones((len(X), 1))]) if self.options.fit_intercept else X

    def scores(self, theta: np.ndarray, X: np.ndarray | None = None) -> np.ndarray:
        X = self.X if X is None else X
        return X @ theta.reshape(self.outputs, self.columns).T

    def losses(self, theta: np.ndarray, X: np.ndarray | None = None, target: np.ndarray | None = None):
        """Per-row loss: log loss (classifiers) or half the squared error (linear)."""
        z = self.scores(theta, X)
        target = self.target if target is None else target
        if self.kind == "linear":
            return 0.5 * (z[:, 0] - target) ** 2
        if self.kind == "binary":
            return np.logaddexp(0.0, z[:, 0]) - target * z[:, 0]
        z = z - z.max(axis=1, keepdims=True)
        return np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), target.astype(np.int64)]

    def value(self, theta: np.ndarray) -> float:
        w = theta[self.penalised]
        smooth = float(self.weights @ self.losses(theta)) + 0.5 * self.options.l2_reg * float(w @ w)
        return smooth + self.options.l1_reg * float(np.abs(w).sum())

    def mean_loss(self, theta: np.ndarray, X: np.ndarray, target: np.ndarray) -> float:
        """What ML.TRAINING_INFO reports: mean log loss, or mean squared error for linear regression."""
        losses = self.losses(theta, X, target)
        return float(np.mean(losses) * (2.0 if self.kind == "linear" else 1.0))

    def gradient_hessian(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X, s, l2 = self.X, self.weights, self.options.l2_reg
        z = self.scores(theta)
        if self.kind == "multiclass":
            p = _softmax(z)
            g = ((s[:, None] * (p - self.onehot)).T @ X).ravel()
            k, c = self.outputs, self.columns
            H = np.zeros((k * c, k * c))
            for a in range(k):
                for b in range(a, k):
                    curvature = s * p[:, a] * ((a == b) - p[:, b])
                    block = (X * curvature[:, None]).T @ X
                    H[a * c : (a + 1) * c, b * c : (b + 1) * c] = block
                    H[b * c : (b + 1) * c, a * c : (a + 1) * c] = block.T
        else:
            if self.kind == "binary":
                p = _sigmoid(z[:, 0])
                residual, curvature = p - self.target, p * (1 - p)
            else:
                residual, curvature = z[:, 0] - self.target, np.ones(len(z))
            g = X.T @ (s * residual)
            H = (X * (s * curvature)[:, None]).T @ X
        g = g + l2 * np.where(self.penalised, theta, 0.0)
        H[np.diag_indices_from(H)] += l2 * self.penalised
        return g, H


def _newton_direction(objective: _Objective, theta: np.ndarray, g: np.ndarray, H: np.ndarray) -> np.ndarray:
    """The step minimising the local quadratic model (plus the L1 penalty, by coordinate descent)."""
    # One-hot columns plus the intercept are collinear; a tiny ridge picks the smallest such step, which
    # leaves every prediction unchanged.
    ridge = 1e-10 * max(float(np.trace(H)) / len(H), 1e-12)
    l1 = objective.options.l1_reg
    if not l1:
        try:
            return -np.linalg.solve(H + ridge * np.eye(len(H)), g)
        except np.linalg.LinAlgError:
            return -np.linalg.lstsq(H, g, rcond=None)[0]
    penalised = objective.penalised
    u = theta.copy()
    r = g.copy()  # gradient of the quadratic model at u
    diagonal = np.diag(H) + ridge
    for _ in range(500):
        largest = 0.0
        for j in range(len(u)):
            z = u[j] - r[j] / diagonal[j]
            if penalised[j]:
                z = np.sign(z) * max(abs(z) - l1 / diagonal[j], 0.0)
            change = z - u[j]
            if change:
                u[j] = z
                r += H[:, j] * change
                largest = max(largest, abs(change))
        if largest < 1e-10:
            break
    return u - theta


def _fit(model: GlmModel, X: np.ndarray, target: np.ndarray, weights: np.ndarray, held) -> None:
    options = model.options
    kind = model.kind
    outputs = len(model.classes) if kind == "multiclass" else 1
    objective = _Objective(kind, X, target, weights, outputs, options)
    held_X = objective.augment(held[0]) if held else None
    theta = np.zeros(outputs * objective.columns)
    current = objective.value(theta)
    penalised, l1 = objective.penalised, options.l1_reg
    for iteration in range(options.max_iterations):
        started = time.perf_counter()
        g, H = objective.gradient_hessian(theta)
        step = _newton_direction(objective, theta, g, H)
        # Backtracking (Armijo) on the penalised objective; the rate taken is what TRAINING_INFO reports.
        expected = float(g @ step) + l1 * float(
            np.abs((theta + step)[penalised]).sum() - np.abs(theta[penalised]).sum()
        )
        rate = 1.0
        while True:
            candidate = theta + rate * step
            value = objective.value(candidate)
            if value <= current + 1e-4 * rate * expected or rate < 1e-8:
                break
            rate /= 2
        improvement = (current - value) / max(abs(current), 1e-300)
        if value <= current:
            theta, current = candidate, value
        model.training.append(
            TrainingIteration(
                iteration=iteration,
                loss=objective.mean_loss(theta, objective.X, target),
                eval_loss=objective.mean_loss(theta, held_X, held[1]) if held else None,
                learning_rate=rate,
                duration_ms=round((time.perf_counter() - started) * 1000),
            )
        )
        if improvement < (options.min_rel_progress if options.early_stop else 1e-12):
            break
    shaped = theta.reshape(outputs, objective.columns)
    if options.fit_intercept:
        model.coefficients, model.intercepts = shaped[:, :-1].tolist(), shaped[:, -1].tolist()
    else:
        model.coefficients, model.intercepts = shaped.tolist(), [0.0] * outputs


# -- metrics (ML.EVALUATE) -----------------------------------------------------------------------


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: the chance a random positive outscores a random negative (ties half)."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    ranks = _ranks(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(positive: np.ndarray, probability: np.ndarray, thresholds=None) -> list[tuple]:
    """ML.ROC_CURVE's rows, highest threshold first: (threshold, recall, false_positive_rate, true_positives,
    false_positives, true_negatives, false_negatives). A row is predicted positive when its probability
    exceeds the threshold, as ML.PREDICT decides. Default thresholds: the probabilities' percentiles."""
    if thresholds is None:
        thresholds = np.unique(np.quantile(probability, np.linspace(0, 1, 101))) if len(probability) else []
    thresholds = np.sort(np.asarray(thresholds, dtype=np.float64))[::-1]
    positives, negatives = np.sort(probability[positive]), np.sort(probability[~positive])
    tp = len(positives) - np.searchsorted(positives, thresholds, side="right")
    fp = len(negatives) - np.searchsorted(negatives, thresholds, side="right")
    fn, tn = len(positives) - tp, len(negatives) - fp
    with np.errstate(invalid="ignore", divide="ignore"):
        recall, fpr = tp / len(positives), fp / len(negatives)
    return [
        (float(t), float(r), float(f), int(a), int(b), int(c), int(d))
        for t, r, f, a, b, c, d in zip(thresholds, recall, fpr, tp, fp, tn, fn, strict=True)
    ]


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (scipy's rankdata, without importing scipy)."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.concatenate([[0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1])
    ends = np.concatenate([starts[1:], [len(values)]])
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2, ends - starts)
    return ranks


def classification_metrics(target: np.ndarray, predicted: np.ndarray, classes: int, threshold: float = 0.5):
    """precision, recall, accuracy, f1_score, log_loss, roc_auc: the positive class's for binary models,
    macro-averaged over classes for multiclass ones (accuracy is always over all rows)."""
    eps = 1e-15
    if classes == 2:
        chosen = (predicted > threshold).astype(np.int64)
        probs = np.clip(predicted, eps, 1 - eps)
        log_loss = float(-np.mean(np.where(target == 1, np.log(probs), np.log(1 - probs))))
        per_class = [1]
        aucs = [roc_auc(target == 1, predicted)]
    else:
        chosen = predicted.argmax(axis=1)
        log_loss = float(-np.mean(np.log(np.clip(predicted[np.arange(len(target)), target], eps, 1))))
        per_class = list(range(classes))
        aucs = [roc_auc(target == k, predicted[:, k]) for k in per_class]
    precisions, recalls, f1s = [], [], []
    for k in per_class:
        tp = int(np.sum((chosen == k) & (target == k)))
        fp = int(np.sum((chosen == k) & (target != k)))
        fn = int(np.sum((chosen != k) & (target == k)))
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn) if tp + fn else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if tp else 0.0)
    return {
        "precision": float(np.mean(precisions)),
        "recall": float(np.mean(recalls)),
        "accuracy": float(np.mean(chosen == target)),
        "f1_score": float(np.mean(f1s)),
        "log_loss": log_loss,
        "roc_auc": float(np.nanmean(aucs)) if not np.all(np.isnan(aucs)) else float("nan"),
    }


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    errors = predicted - actual
    with np.errstate(invalid="ignore"):
        log_errors = np.log1p(np.maximum(predicted, -1 + 1e-15)) - np.log1p(np.maximum(actual, -1 + 1e-15))
    variance = float(np.var(actual))
    return {
        "mean_absolute_error": float(np.mean(np.abs(errors))),
        "mean_squared_error": float(np.mean(errors**2)),
        "mean_squared_log_error": float(np.mean(log_errors**2)),
        "median_absolute_error": float(np.median(np.abs(errors))),
        "r2_score": 1 - float(np.mean(errors**2)) / variance if variance else float("nan"),
        "explained_variance": 1 - float(np.var(errors)) / variance if variance else float("nan"),
    }
