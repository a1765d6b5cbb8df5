"""What linear, logistic and boosted-tree models share: their label, split, class weights, and the
evaluation functions of a model that predicts a label (ML.EVALUATE, ML.ROC_CURVE, ML.CONFUSION_MATRIX).

A subclass says how it scores rows: ``labelled(call)`` gives the input's labels (class indexes, or values)
and predictions (regression: values; binary: P(positive class); multiclass: rows x classes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gcpipe.warehouse.bqml import metrics
from gcpipe.warehouse.bqml.features import (
    NUMERIC_TYPES,
    Feature,
    ModelError,
    bigquery_type,
    split_mask,
    str_label,
)
from gcpipe.warehouse.bqml.functions import Call
from gcpipe.warehouse.bqml.models.base import Model, TrainingIteration
from gcpipe.warehouse.bqml.options import ModelOptions
from gcpipe.warehouse.bqml.sql import MlSqlError, roc_curve_sql, rows_sql

CLASSIFICATION_METRICS = ("precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc")
REGRESSION_METRICS = (
    "mean_absolute_error",
    "mean_squared_error",
    "mean_squared_log_error",
    "median_absolute_error",
    "r2_score",
    "explained_variance",
)
MAX_CLASSES = 50


@dataclass
class Labelled:
    """The training query's rows split into features and a target, and the held-out mask."""

    inputs: pa.Table
    label_type: str
    classes: list[Any]
    target: np.ndarray  # class indexes (classifiers) or values
    held: np.ndarray  # rows held out for evaluation

    @classmethod
    def prepare(cls, table: pa.Table, options: ModelOptions) -> Labelled:
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
        label_type = bigquery_type(labels.type)
        if options.is_classifier:
            if label_type not in ("INT64", "BOOL", "STRING"):
                raise ModelError(
                    f"{options.model_type} needs an INT64, BOOL or STRING label; {label} is {label_type}."
                )
            classes = sorted(pc.unique(labels).to_pylist())
            if len(classes) < 2:
                raise ModelError(
                    f"the label column {label} has a single value ({classes[0]!r}); need two or more."
                )
            if len(classes) > MAX_CLASSES:
                raise ModelError(
                    f"the label column {label} has {len(classes)} values; {options.model_type} takes up to 50."
                )
            known = pa.array(classes, labels.type)
            target = pc.index_in(labels, value_set=known).to_numpy(zero_copy_only=False)
        else:
            if label_type not in NUMERIC_TYPES:
                raise ModelError(f"{options.model_type} needs a numeric label; {label} is {label_type}.")
            classes, target = [], labels.to_numpy(zero_copy_only=False).astype(np.float64)
        held = split_mask(table, options)
        if held.all():
            raise ModelError("the data split leaves no rows for training; lower data_split_eval_fraction.")
        return cls(inputs, label_type, classes, target, held)

    @property
    def split(self) -> dict[str, Any]:
        return {"training_rows": int((~self.held).sum()), "evaluation_rows": int(self.held.sum())}

    def class_weights(self, options: ModelOptions, target: np.ndarray) -> np.ndarray:
        """Each row's weight: ``auto_class_weights`` (rows / (classes * rows of its class)) or ``class_weights``."""
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


@dataclass
class Supervised(Model):
    """A fitted model of a label, with what ML.EVALUATE, ML.ROC_CURVE and ML.CONFUSION_MATRIX report."""

    options: ModelOptions
    label_type: str
    classes: list[Any]  # classifiers: label values in ascending order (binary: classes[1] is positive)
    features: list[Feature]
    training: list = field(default_factory=list)
    evaluation: dict[str, float] = field(default_factory=dict)  # on the held-out rows (training if none)
    split: dict[str, Any] = field(default_factory=dict)
    roc: list[tuple] = field(default_factory=list)  # ML.ROC_CURVE without input (binary models), same rows
    confusion: list[list[int]] = field(default_factory=list)  # ML.CONFUSION_MATRIX without input, same rows

    @property
    def kind(self) -> str:
        if not self.options.is_classifier:
            return "linear"
        return "binary" if len(self.classes) == 2 else "multiclass"

    def labelled(self, call: Call) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def metrics(self, target: np.ndarray, predicted: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
        """ML.EVALUATE's metrics. ``target``: class indexes (classifiers) or values; ``predicted`` as above."""
        names = REGRESSION_METRICS if self.kind == "linear" else CLASSIFICATION_METRICS
        if not len(target):  # a dry run
            return dict.fromkeys(names, float("nan"))
        if self.kind == "linear":
            return metrics.regression_metrics(target, predicted)
        return metrics.classification_metrics(
            target.astype(np.int64), predicted, len(self.classes), threshold
        )

    def record_evaluation(self, target: np.ndarray, predicted: np.ndarray) -> None:
        """What the functions report without input rows: the held-out rows' (or the training rows')."""
        self.evaluation = self.metrics(target, predicted)
        if self.kind == "binary":
            self.roc = metrics.roc_curve(target == 1, predicted)
        if self.kind != "linear":
            self.confusion = metrics.confusion_matrix(target, predicted, len(self.classes)).tolist()

    def label_indexes(self, labels: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Labels of input rows as the model's class indexes (values for regression), or a one-line error."""
        if labels.null_count:
            raise ModelError(f"the evaluation rows have {labels.null_count} NULL labels; filter them out.")
        if self.kind == "linear":
            return labels.to_numpy(zero_copy_only=False).astype(np.float64)
        index = pc.index_in(labels, value_set=pa.array(self.classes, labels.type))
        if index.null_count:
            unseen = pc.unique(pc.filter(labels, pc.is_null(index))).to_pylist()[:3]
            raise ModelError(f"the evaluation rows have labels the model was not trained on: {unseen}.")
        return index.to_numpy(zero_copy_only=False)

    def check_threshold(self, call: Call) -> float:
        if "threshold" in call.settings and self.kind != "binary":
            raise MlSqlError(f"threshold applies to binary classification models only (ML.{call.function}).")
        return float(call.setting("threshold", 0.5))

    # -- the functions ---------------------------------------------------------------------------

    def evaluate(self, call: Call) -> str:
        threshold = self.check_threshold(call)
        names = REGRESSION_METRICS if self.kind == "linear" else CLASSIFICATION_METRICS
        if call.input_sql is None:
            if "threshold" in call.settings:
                raise MlSqlError("ML.EVALUATE takes a threshold only together with input rows.")
            values = self.evaluation
        else:
            values = self.metrics(*self.labelled(call), threshold)
        return rows_sql([(n, "FLOAT64") for n in names], [tuple(values[n] for n in names)])

    def roc_curve(self, call: Call) -> str:
        if self.kind != "binary":
            raise MlSqlError("ML.ROC_CURVE applies to binary classification models only.")
        if call.input_sql is None:
            if call.thresholds is not None:
                raise MlSqlError(
                    "local BigQuery ML keeps the evaluation rows' curve at the default thresholds only; "
                    "pass the rows to use GENERATE_ARRAY thresholds: ML.ROC_CURVE(MODEL m, (query), ...)."
                )
            if not self.roc:
                raise MlSqlError(f"model {call.model} predates ML.ROC_CURVE here; create it again.")
            return roc_curve_sql(self.roc)
        target, predicted = self.labelled(call)
        return roc_curve_sql(metrics.roc_curve(target == 1, predicted, call.thresholds))

    def confusion_matrix(self, call: Call) -> str:
        """ML.CONFUSION_MATRIX: a row per expected label, a column per predicted label (named after it)."""
        threshold = self.check_threshold(call)
        if call.input_sql is None:
            if "threshold" in call.settings:
                raise MlSqlError("ML.CONFUSION_MATRIX takes a threshold only together with input rows.")
            counts = np.array(self.confusion, dtype=np.int64).reshape(len(self.classes), len(self.classes))
        else:
            target, predicted = self.labelled(call)
            counts = metrics.confusion_matrix(target, predicted, len(self.classes), threshold)
        labels = [str_label(c) for c in self.classes]
        columns = [("expected_label", "STRING")] + [(label_column(label), "INT64") for label in labels]
        rows = [(label, *map(int, row)) for label, row in zip(labels, counts, strict=True)]
        return rows_sql(columns, rows)

    def supervised_json(self) -> dict[str, Any]:
        return {
            "options": self.options.to_json(),
            "label_type": self.label_type,
            "classes": self.classes,
            "features": [f.to_json() for f in self.features],
            "training": [t.__dict__ for t in self.training],
            "evaluation": self.evaluation,
            "split": self.split,
            "roc": self.roc,
            "confusion": self.confusion,
        }

    @staticmethod
    def supervised_fields(raw: dict[str, Any]) -> dict[str, Any]:
        return {
            "options": ModelOptions.from_json(raw["options"]),
            "label_type": raw["label_type"],
            "classes": raw["classes"],
            "features": [Feature(**f) for f in raw["features"]],
            "training": [TrainingIteration(**t) for t in raw["training"]],
            "evaluation": raw["evaluation"],
            "split": raw["split"],
            "roc": [tuple(row) for row in raw.get("roc", [])],
            "confusion": raw.get("confusion", []),
        }

    def predictions_columns(self) -> list[tuple[str, str]]:
        """ML.PREDICT's own columns: predicted_<label> (and its _probs for classifiers)."""
        label = self.options.label
        columns = [(f"predicted_{label}", "FLOAT64" if self.kind == "linear" else self.label_type)]
        if self.kind != "linear":
            columns.append(
                (f"predicted_{label}_probs", f"ARRAY<STRUCT<label {self.label_type}, prob FLOAT64>>")
            )
        return columns


def probabilities_array(classes: pa.Array, probabilities: np.ndarray) -> pa.ListArray:
    """ML.PREDICT's ``predicted_<label>_probs`` of rows x classes probabilities: per row, each class with its
    probability, the higher label first (as BigQuery lists them); built whole, not row by row."""
    n, k = probabilities.shape
    order = np.arange(k)[::-1]
    pairs = pa.StructArray.from_arrays(
        [
            classes.take(pa.array(np.tile(order, n))),
            pa.array(probabilities[:, order].reshape(-1), pa.float64()),
        ],
        names=["label", "prob"],
    )
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)), pairs)


def label_column(label: str) -> str:
    """A label as a column name, as BigQuery names ML.CONFUSION_MATRIX's columns (``_0``, ``high_value``)."""
    name = re.sub(r"\W", "_", label)
    return f"_{name}" if not name or name[0].isdigit() else name
