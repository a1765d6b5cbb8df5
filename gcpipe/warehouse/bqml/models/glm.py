"""Linear and logistic regression the way BigQuery ML prepares, splits, fits, evaluates and reports them.

Features are BigQuery ML's automatic preprocessing (:mod:`gcpipe.warehouse.bqml.features`). The model
minimises, over the training rows,

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

import numpy as np
import pyarrow as pa

from gcpipe.warehouse.bqml.features import (
    MAX_DESIGN_COLUMNS,
    Feature,
    ModelError,
    feature_info_sql,
    input_columns,
    str_label,
)
from gcpipe.warehouse.bqml.functions import Call
from gcpipe.warehouse.bqml.models.base import TrainingIteration
from gcpipe.warehouse.bqml.models.explain import Explained, chosen_classes, explain_sql
from gcpipe.warehouse.bqml.models.supervised import Labelled, Supervised
from gcpipe.warehouse.bqml.options import ModelOptions
from gcpipe.warehouse.bqml.sql import column, quote, rows_sql, sql_literal

_P = "_gcpipe_"  # prefix of the helper columns and aliases the rewritten SQL introduces
_EXP_LIMIT = 500  # |score| beyond which EXP would overflow; the probability is 0 or 1 there anyway


def describe_features(inputs: pa.Table, dummy: bool = False, transform=None) -> list[Feature]:
    """The features of the input columns, within what a design matrix in memory can hold; a TRANSFORM's
    one-hot encoder with ``drop = 'most_frequent'`` leaves its dropped category without a column."""
    features = [Feature.describe(name, path, values, dummy) for name, path, values in input_columns(inputs)]
    dropped = transform.dropped if transform is not None else {}
    for feature in features:
        if feature.name in dropped:
            feature.dropped = dropped[feature.name]
    width = sum(f.width for f in features)
    if width > MAX_DESIGN_COLUMNS:
        widest = max(features, key=lambda f: f.width)
        raise ModelError(
            f"the features expand to {width:,} columns (feature {widest.name} alone has {widest.width:,} "
            f"categories); local BigQuery ML fits up to {MAX_DESIGN_COLUMNS:,}: drop or bucket it."
        )
    return features


def design_matrix(features: list[Feature], inputs: pa.Table) -> np.ndarray:
    """The standardised, one-hot design matrix of ``inputs`` (rows x columns, no intercept column)."""
    columns = {path: values for _, path, values in input_columns(inputs)}
    missing = [f.column for f in features if f.column not in columns]
    if missing:
        raise ModelError(f"the input has no column {missing[0]!r}, which the model was trained on.")
    parts = [f.design(columns[f.column]) for f in features]
    return np.hstack(parts) if parts else np.zeros((inputs.num_rows, 0))


@dataclass
class GlmModel(Supervised):
    """A fitted linear or logistic regression with everything ML.* functions report about it."""

    TYPES = ("linear_reg", "logistic_reg")
    coefficients: list[list[float]] = field(
        default_factory=list
    )  # per output, per design column, standardised
    intercepts: list[float] = field(default_factory=list)

    # -- fitting ---------------------------------------------------------------------------------

    @classmethod
    def fit(cls, table: pa.Table, options: ModelOptions, transform=None) -> GlmModel:
        data = Labelled.prepare(table, options)
        dummy = options.category_encoding_method == "DUMMY_ENCODING"
        features = describe_features(data.inputs, dummy, transform)
        model = cls(options, data.label_type, data.classes, features)
        X, target, held = model.design(data.inputs), data.target, data.held
        train = ~held
        model.split = {"method": options.data_split_method, **data.split}
        weights = data.class_weights(options, target[train])
        _fit(model, X[train], target[train], weights, (X[held], target[held]) if held.any() else None)
        scored = held if held.any() else train
        model.record_evaluation(target[scored], model.predict_design(X[scored]))
        return model

    def summary(self) -> str:
        scores = ", ".join(f"{name} {value:.4g}" for name, value in list(self.evaluation.items())[-2:])
        held = self.split["evaluation_rows"]
        rows = f"{held:,} evaluation rows" if held else "the training rows"
        return f"{self.split['training_rows']:,} training rows, {len(self.training)} iterations; {scores} on {rows}"

    # -- using it --------------------------------------------------------------------------------

    def design(self, inputs: pa.Table) -> np.ndarray:
        return design_matrix(self.features, inputs)

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

    def predict(self, inputs: pa.Table | Call) -> np.ndarray | str:
        """ML.PREDICT (given a Call: the model as SQL, run in the warehouse); or predictions of Arrow rows."""
        if isinstance(inputs, Call):
            threshold = self.check_threshold(inputs)
            return inputs.pass_through(self, lambda model, source: predict_sql(model, source, threshold))
        return self.predict_design(self.design(inputs))

    def labelled(self, call: Call) -> tuple[np.ndarray, np.ndarray]:
        """Score the input in the warehouse and fetch only the labels and scores."""
        table = call.fetch(scores_sql(self, call.input_sql))
        scores = np.column_stack([table[f"{_P}s{i}"].to_numpy() for i in range(len(self.intercepts))])
        scores = scores.reshape(len(table), len(self.intercepts))  # (0, k) when the input is empty
        return self.label_indexes(table[f"{_P}label"]), self.from_scores(scores)

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

    # -- the functions ---------------------------------------------------------------------------

    def weights(self, call: Call) -> str:
        return weights_sql(self, bool(call.setting("standardize", False)))

    def feature_info(self, call: Call) -> str:
        return feature_info_sql(self.features)

    def explain_predict(self, call: Call) -> str:
        """ML.EXPLAIN_PREDICT: each feature's share of the predicted class's score (the weight times the
        standardised value; a category: its weight), so the attributions add up to the score exactly
        (approximation_error 0) from the baseline, the intercept: numbers at their mean, no category."""
        threshold = self.check_threshold(call)

        def explain(table: pa.Table) -> Explained:
            X = self.design(table)
            predicted = self.predict_design(X)
            chosen = chosen_classes(self.kind, predicted, threshold)
            W, b = np.asarray(self.coefficients), np.asarray(self.intercepts)
            k = chosen if self.kind == "multiclass" else np.zeros(len(X), dtype=np.int64)
            sign = np.where(chosen == 1, 1.0, -1.0) if self.kind == "binary" else np.ones(len(X))
            parts = X * W[k] * sign[:, None]
            per_feature, offset = np.zeros((len(X), len(self.features))), 0
            for index, feature in enumerate(self.features):
                per_feature[:, index] = parts[:, offset : offset + feature.width].sum(axis=1)
                offset += feature.width
            return Explained(predicted, chosen, per_feature, b[k] * sign)

        return explain_sql(self, call, explain)

    # -- artefact --------------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {
            "format": 2,
            **self.supervised_json(),
            "coefficients": self.coefficients,
            "intercepts": self.intercepts,
        }

    @classmethod
    def from_json(cls, raw: dict) -> GlmModel:
        return cls(
            **cls.supervised_fields(raw), coefficients=raw["coefficients"], intercepts=raw["intercepts"]
        )


# -- the model as SQL ----------------------------------------------------------------------------


def _score_sql(model: GlmModel, output: int, alias: str) -> str:
    """The linear score of one output as SQL over the input's columns (weights on the input's scale)."""
    coefficients, intercepts = model.denormalised()
    weights = coefficients[output]
    terms = [sql_literal(intercepts[output], "FLOAT64")]
    offset = 0
    for feature in model.features:
        ref = column(feature.column, alias)
        if feature.numerical:
            if weights[offset]:
                mean = sql_literal(feature.mean, "FLOAT64")
                terms.append(
                    f"{sql_literal(weights[offset], 'FLOAT64')} * COALESCE(CAST({ref} AS FLOAT64), {mean})"
                )
        else:
            # The simple CASE form casts once; the emulator translates it far faster than WHEN x = ... chains.
            by_category = dict(zip(feature.encoded, weights[offset : offset + feature.width], strict=True))
            null_weight = by_category.pop(None, 0.0)
            whens = " ".join(
                f"WHEN {sql_literal(c, 'STRING')} THEN {sql_literal(w, 'FLOAT64')}"
                for c, w in by_category.items()
                if w
            )
            otherwise = f"IF({ref} IS NULL, {sql_literal(null_weight, 'FLOAT64')}, 0)" if null_weight else "0"
            if whens:
                terms.append(f"(CASE CAST({ref} AS STRING) {whens} ELSE {otherwise} END)")
            elif null_weight:
                terms.append(otherwise)
        offset += feature.width
    return "\n    + ".join(terms)


def _bounded(score: str) -> str:
    return f"LEAST(GREATEST({score}, -{_EXP_LIMIT}), {_EXP_LIMIT})"


def predict_sql(model: GlmModel, input_sql: str, threshold: float = 0.5) -> str:
    """ML.PREDICT as a query: ``predicted_<label>`` (and ``_probs`` for classifiers), then the input columns."""
    label = model.options.label
    predicted = quote(f"predicted_{label}")
    probs = quote(f"predicted_{label}_probs")
    source = f"({input_sql}) AS {_P}input"
    if model.kind == "linear":
        return f"SELECT {_score_sql(model, 0, _P + 'input')} AS {predicted}, {_P}input.* FROM {source}"
    labels = [sql_literal(c, model.label_type) for c in model.classes]
    if model.kind == "binary":
        negative, positive = labels
        p = f"{_P}p"
        score = _bounded(_score_sql(model, 0, _P + "input"))
        scored = f"SELECT {_P}input.*, 1 / (1 + EXP(-{score})) AS {p} FROM {source}"
        return (
            f"SELECT IF({p} > {sql_literal(threshold, 'FLOAT64')}, {positive}, {negative}) AS {predicted},\n"
            f"  [STRUCT({positive} AS label, {p} AS prob), STRUCT({negative} AS label, 1 - {p} AS prob)] AS {probs},\n"
            f"  * EXCEPT ({p})\nFROM ({scored}) AS {_P}scored"
        )
    k = len(model.classes)
    scores = ", ".join(f"{_score_sql(model, i, _P + 'input')} AS {_P}s{i}" for i in range(k))
    greatest = "GREATEST(" + ", ".join(f"{_P}s{i}" for i in range(k)) + ")"
    exps = [f"EXP({_P}s{i} - {_P}m)" for i in range(k)]
    total = " + ".join(exps)
    helpers = [f"{_P}s{i}" for i in range(k)] + [f"{_P}m"]
    choose = " ".join(f"WHEN {_P}s{i} = {_P}m THEN {labels[i]}" for i in range(k))
    array = ", ".join(
        f"STRUCT({labels[i]} AS label, {exps[i]} / ({total}) AS prob)" for i in reversed(range(k))
    )  # descending labels, as the binary case
    return (
        f"SELECT CASE {choose} END AS {predicted},\n  [{array}] AS {probs},\n  * EXCEPT ({', '.join(helpers)})\n"
        f"FROM (SELECT *, {greatest} AS {_P}m FROM (SELECT {_P}input.*, {scores} FROM {source}))"
    )


def scores_sql(model: GlmModel, input_sql: str) -> str:
    """The label and each output's score of every input row, for ML.EVALUATE to fetch and compare."""
    source = f"({input_sql}) AS {_P}input"
    outputs = len(model.intercepts)
    scores = ", ".join(f"{_score_sql(model, i, _P + 'input')} AS {_P}s{i}" for i in range(outputs))
    return f"SELECT {column(model.options.label, _P + 'input')} AS {_P}label, {scores} FROM {source}"


_CATEGORY_WEIGHTS = "ARRAY<STRUCT<category STRING, weight FLOAT64>>"


def weights_sql(model: GlmModel, standardize: bool = False) -> str:
    """ML.WEIGHTS: a row per feature (numeric: weight; categorical: category_weights), then __INTERCEPT__."""
    coefficients, intercepts = (model.coefficients, model.intercepts) if standardize else model.denormalised()
    multiclass = model.kind == "multiclass"
    columns = [("processed_input", "STRING"), ("weight", "FLOAT64"), ("category_weights", _CATEGORY_WEIGHTS)]
    if multiclass:
        columns.append(("class_label", "STRING"))
    rows = []
    for output, (weights, intercept) in enumerate(zip(coefficients, intercepts, strict=True)):
        extra = (str_label(model.classes[output]),) if multiclass else ()
        offset = 0
        for feature in model.features:
            if feature.numerical:
                rows.append((feature.name, weights[offset], [], *extra))
            else:
                by_category = dict(
                    zip(feature.encoded, weights[offset : offset + feature.width], strict=True)
                )
                categories = [*feature.categories, None] if feature.null_category else feature.categories
                pairs = [(c, float(by_category.get(c, 0.0))) for c in categories]
                rows.append((feature.name, None, pairs, *extra))
            offset += feature.width
        rows.append(("__INTERCEPT__", intercept, [], *extra))
    return rows_sql(columns, rows)


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
