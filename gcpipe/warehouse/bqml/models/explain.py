"""ML.EXPLAIN_PREDICT for every model of a label: per row, the prediction and each feature's attribution.

Output (BigQuery ML's ``ML.EXPLAIN_PREDICT`` reference): ``predicted_<label>``, ``probability``
(classifiers: of the predicted class), ``top_feature_attributions`` ARRAY<STRUCT<feature STRING,
attribution FLOAT64>> (the ``top_k_features`` largest by absolute value, default 5),
``baseline_prediction_value``, ``prediction_value`` (for classifiers the predicted class's logit, as
BigQuery explains classifiers), ``approximation_error``, then the input's columns. Both local methods are
exact (linear shares; Tree SHAP for boosted trees), so the attributions add up to ``prediction_value -
baseline_prediction_value`` and ``approximation_error`` is 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from gcpipe.warehouse.bqml.functions import Call
from gcpipe.warehouse.bqml.sql import MlSqlError

if TYPE_CHECKING:
    from gcpipe.warehouse.bqml.models.supervised import Supervised

ATTRIBUTIONS = "ARRAY<STRUCT<feature STRING, attribution FLOAT64>>"


@dataclass
class Explained:
    predicted: np.ndarray  # as Supervised.labelled's predictions: values, P(positive), or probabilities
    chosen: np.ndarray  # the predicted class index of each row (0 for regression)
    attributions: np.ndarray  # rows x features
    baseline: np.ndarray  # per row (the predicted class's baseline score)


def chosen_classes(kind: str, predicted: np.ndarray, threshold: float) -> np.ndarray:
    """The predicted class index of each row (binary: above the threshold; regression: 0)."""
    if kind == "multiclass":
        return predicted.argmax(axis=1)
    if kind == "binary":
        return (predicted > threshold).astype(np.int64)
    return np.zeros(len(predicted), dtype=np.int64)


def explain_sql(model: Supervised, call: Call, explain: Callable[[pa.Table], Explained]) -> str:
    top_k = call.setting("top_k_features", 5)
    if not isinstance(top_k, int) or top_k < 1:
        raise MlSqlError("top_k_features must be a positive integer.")
    label, classifier = model.options.label, model.kind != "linear"
    schema = [(f"predicted_{label}", model.label_type if classifier else "FLOAT64")]
    schema += [("probability", "FLOAT64")] if classifier else []
    schema += [
        ("top_feature_attributions", ATTRIBUTIONS),
        ("baseline_prediction_value", "FLOAT64"),
        ("prediction_value", "FLOAT64"),
        ("approximation_error", "FLOAT64"),
    ]
    names = np.array([f.name for f in model.features], dtype=object)

    def compute(table: pa.Table) -> pa.Table:
        e = explain(table)
        n = table.num_rows
        order = np.argsort(-np.abs(e.attributions), axis=1, kind="stable")[:, :top_k]
        top = [
            [{"feature": names[j], "attribution": float(e.attributions[i, j])} for j in order[i]]
            for i in range(n)
        ]
        value = e.baseline + e.attributions.sum(axis=1)
        columns: dict[str, pa.Array] = {}
        if classifier:
            columns[schema[0][0]] = pa.array([model.classes[k] for k in e.chosen])
            p = e.predicted
            if model.kind == "binary":
                columns["probability"] = pa.array(np.where(e.chosen == 1, p, 1 - p))
            else:
                columns["probability"] = pa.array(p[np.arange(n), e.chosen] if n else np.zeros(0))
        else:
            columns[schema[0][0]] = pa.array(np.asarray(e.predicted, dtype=np.float64))
        columns["top_feature_attributions"] = pa.array(
            top, pa.list_(pa.struct([("feature", pa.string()), ("attribution", pa.float64())]))
        )
        columns["baseline_prediction_value"] = pa.array(np.asarray(e.baseline, dtype=np.float64))
        columns["prediction_value"] = pa.array(np.asarray(value, dtype=np.float64))
        columns["approximation_error"] = pa.array(np.zeros(n))
        return pa.table(columns)

    return call.per_row(compute, schema)
