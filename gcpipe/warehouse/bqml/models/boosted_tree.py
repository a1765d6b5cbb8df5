"""Boosted trees (``boosted_tree_classifier``, ``boosted_tree_regressor``), trained with XGBoost as BigQuery
ML trains them.

Options map onto XGBoost's parameters as BigQuery's reference describes them: ``max_iterations`` boosting
rounds, ``learn_rate`` eta, ``max_tree_depth``, ``subsample``, ``l1_reg`` alpha, ``l2_reg`` lambda,
``min_split_loss`` gamma, ``min_tree_child_weight``, ``colsample_by*``, ``num_parallel_tree``; the
``hist`` tree method, seed 0. With ``early_stop``, boosting stops at the first round that improves the
evaluation rows' loss (training rows' without a split) by less than ``min_rel_progress``. Numbers go in
as they are, NULL as missing (XGBoost learns which way missing values go); categories are label-encoded
(their sorted order), NULL and unseen categories missing.

Predictions are rows computed here (XGBoost's own predict, so float32 split thresholds behave exactly
as in training), served back joined to the input in the warehouse. ``ML.FEATURE_IMPORTANCE``: XGBoost's
weight (splits on the feature), average gain and average cover. ``ML.EXPLAIN_PREDICT``: Tree SHAP.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gcpipe.warehouse.bqml.features import Feature, ModelError, _as_strings, feature_info_sql, input_columns
from gcpipe.warehouse.bqml.functions import Call
from gcpipe.warehouse.bqml.models.base import TrainingIteration
from gcpipe.warehouse.bqml.models.explain import Explained, chosen_classes, explain_sql
from gcpipe.warehouse.bqml.models.supervised import Labelled, Supervised, probabilities_array
from gcpipe.warehouse.bqml.sql import rows_sql


@dataclass
class BoostedTreeModel(Supervised):
    TYPES = ("boosted_tree_classifier", "boosted_tree_regressor")
    booster_json: str = ""  # XGBoost's own JSON of the trees
    _booster: Any = field(default=None, repr=False, compare=False)
    _forest: Any = field(default=None, repr=False, compare=False)

    # -- fitting ---------------------------------------------------------------------------------

    @classmethod
    def fit(cls, table: pa.Table, options, transform=None) -> BoostedTreeModel:
        import xgboost as xgb

        data = Labelled.prepare(table, options)
        features = [
            Feature.describe(name, path, values, False) for name, path, values in input_columns(data.inputs)
        ]
        model = cls(options, data.label_type, data.classes, features)
        X, target, held = model.matrix(data.inputs), data.target, data.held
        train = ~held
        model.split = {"method": options.data_split_method, **data.split}
        weights = data.class_weights(options, target[train])
        dtrain = xgb.DMatrix(X[train], label=target[train], weight=weights, missing=np.nan)
        evals = [(dtrain, "train")]
        if held.any():
            evals.append((xgb.DMatrix(X[held], label=target[held], missing=np.nan), "eval"))
        history: dict = {}
        stop = _EarlyStop(options, time.perf_counter())
        booster = xgb.train(
            model._params(),
            dtrain,
            num_boost_round=options.max_iterations,
            evals=evals,
            evals_result=history,
            callbacks=[stop],
            verbose_eval=False,
        )
        model._booster = booster
        model.booster_json = bytes(booster.save_raw("json")).decode()
        metric = next(iter(history["train"]))
        square = metric == "rmse"  # BigQuery reports the mean squared error for regression
        for i, loss in enumerate(history["train"][metric]):
            held_loss = history["eval"][metric][i] if "eval" in history else None
            model.training.append(
                TrainingIteration(
                    i,
                    loss**2 if square else loss,
                    None if held_loss is None else (held_loss**2 if square else held_loss),
                    options.learn_rate,
                    stop.durations[i] if i < len(stop.durations) else 0,
                )
            )
        scored = held if held.any() else train
        model.record_evaluation(target[scored], model.predict_matrix(X[scored]))
        return model

    def _params(self) -> dict[str, Any]:
        o = self.options
        params = {
            "eta": o.learn_rate,
            "max_depth": o.max_tree_depth,
            "subsample": o.subsample,
            "alpha": o.l1_reg,
            "lambda": o.l2_reg,
            "gamma": o.min_split_loss,
            "min_child_weight": o.min_tree_child_weight,
            "colsample_bytree": o.colsample_bytree,
            "colsample_bylevel": o.colsample_bylevel,
            "colsample_bynode": o.colsample_bynode,
            "num_parallel_tree": o.num_parallel_tree,
            "tree_method": "hist",
            "seed": 0,
            "nthread": os.cpu_count() or 1,
        }
        if self.kind == "linear":
            params["objective"] = "reg:squarederror"
        elif self.kind == "binary":
            params["objective"] = "binary:logistic"
        else:
            params.update(objective="multi:softprob", num_class=len(self.classes))
        return params

    def summary(self) -> str:
        scores = ", ".join(f"{name} {value:.4g}" for name, value in list(self.evaluation.items())[-2:])
        held = self.split["evaluation_rows"]
        rows = f"{held:,} evaluation rows" if held else "the training rows"
        return (
            f"{self.split['training_rows']:,} training rows, {len(self.training)} trees; {scores} on {rows}"
        )

    # -- using it --------------------------------------------------------------------------------

    @property
    def booster(self):
        if self._booster is None:
            import xgboost as xgb

            self._booster = xgb.Booster()
            self._booster.load_model(bytearray(self.booster_json.encode()))
        return self._booster

    def matrix(self, inputs: pa.Table) -> np.ndarray:
        """The features as XGBoost takes them: numbers as they are, categories as their index; NaN missing."""
        columns = {path: values for _, path, values in input_columns(inputs)}
        out = np.full((inputs.num_rows, len(self.features)), np.nan, dtype=np.float32)
        for j, feature in enumerate(self.features):
            if feature.column not in columns:
                raise ModelError(
                    f"the input has no column {feature.column!r}, which the model was trained on."
                )
            values = columns[feature.column]
            if feature.numerical:
                out[:, j] = values.to_numpy(zero_copy_only=False).astype(np.float64)
            else:
                index = pc.index_in(_as_strings(values), value_set=pa.array(feature.categories, pa.string()))
                out[:, j] = index.to_numpy(zero_copy_only=False).astype(np.float64)
        return out

    def predict_matrix(self, X: np.ndarray, **settings) -> np.ndarray:
        """XGBoost's predictions (``settings``: of its ``Booster.predict``). Binary classifiers and regressors
        are evaluated here from the trees in numpy, as XGBoost's predictor does (importing XGBoost alone
        takes about 1.5 s); the rest by XGBoost."""
        if not settings and self.kind in ("binary", "linear"):
            if self._forest is None:
                self._forest = _Forest.of(self.booster_json)
            margin = self._forest.margin(X)
            if self.kind == "linear":
                return margin
            return np.float32(1) / (np.float32(1) + np.exp(-margin))
        import xgboost as xgb

        return self.booster.predict(xgb.DMatrix(X, missing=np.nan), **settings)

    def labelled(self, call: Call) -> tuple[np.ndarray, np.ndarray]:
        table = call.fetch()
        if self.options.label not in table.column_names:
            raise ModelError(f"the evaluation rows have no label column {self.options.label!r}.")
        return self.label_indexes(table[self.options.label]), self.predict_matrix(self.matrix(table))

    # -- the functions ---------------------------------------------------------------------------

    def predict(self, call: Call) -> str:
        threshold = self.check_threshold(call)
        columns = self.predictions_columns()

        def compute(table: pa.Table) -> pa.Table:
            p = self.predict_matrix(self.matrix(table))
            if self.kind == "linear":
                return pa.table({columns[0][0]: pa.array(p.astype(np.float64))})
            probabilities = np.column_stack([1 - p, p]) if self.kind == "binary" else p
            chosen = chosen_classes(self.kind, p, threshold)
            classes = pa.array(self.classes)
            return pa.table(
                {
                    columns[0][0]: classes.take(pa.array(chosen)),
                    columns[1][0]: probabilities_array(classes, probabilities),
                }
            )

        return call.per_row(compute, columns)

    def feature_importance(self, call: Call) -> str:
        scores = {kind: self.booster.get_score(importance_type=kind) for kind in ("weight", "gain", "cover")}
        rows = [
            (
                f.name,
                int(scores["weight"].get(f"f{j}", 0)),
                scores["gain"].get(f"f{j}", 0.0),
                scores["cover"].get(f"f{j}", 0.0),
            )
            for j, f in enumerate(self.features)
        ]
        columns = [
            ("feature", "STRING"),
            ("importance_weight", "INT64"),
            ("importance_gain", "FLOAT64"),
            ("importance_cover", "FLOAT64"),
        ]
        return rows_sql(columns, rows)

    def feature_info(self, call: Call) -> str:
        return feature_info_sql(self.features)

    def explain_predict(self, call: Call) -> str:
        threshold = self.check_threshold(call)

        def explain(table: pa.Table) -> Explained:
            X = self.matrix(table)
            predicted = self.predict_matrix(X)
            chosen = chosen_classes(self.kind, predicted, threshold)
            contributions = self.predict_matrix(X, pred_contribs=True)
            if self.kind == "multiclass":
                contributions = contributions[np.arange(len(X)), chosen]
            sign = np.where(chosen == 1, 1.0, -1.0) if self.kind == "binary" else np.ones(len(X))
            contributions = contributions * sign[:, None]
            return Explained(predicted, chosen, contributions[:, :-1], contributions[:, -1])

        return explain_sql(self, call, explain)

    # -- artefact --------------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {"format": 2, **self.supervised_json(), "booster": self.booster_json}

    @classmethod
    def from_json(cls, raw: dict) -> BoostedTreeModel:
        return cls(**cls.supervised_fields(raw), booster_json=raw["booster"])


@dataclass(frozen=True)
class _Forest:
    """The trees of an XGBoost model of one output (binary:logistic, reg:squarederror), from its JSON: per
    tree, each node's split feature and threshold (a leaf's: its value), its two children side by side
    (right, left; a leaf is its own child) and, for a missing value, the child XGBoost sends it to. Every
    row walks a tree at once, a level per step, as deep as the tree; the leaves' values are summed in
    float32 over the base margin, as XGBoost's CPU predictor sums them."""

    trees: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]]
    base_margin: np.float32

    @classmethod
    def of(cls, booster_json: str) -> _Forest:
        learner = json.loads(booster_json)["learner"]
        base = float(learner["learner_model_param"]["base_score"].strip("[]").split(",")[0])
        if learner["objective"]["name"] == "binary:logistic":
            base = math.log(base / (1 - base))
        trees = []
        for tree in learner["gradient_booster"]["model"]["trees"]:
            left = np.asarray(tree["left_children"], dtype=np.int32)
            right = np.asarray(tree["right_children"], dtype=np.int32)
            nodes = np.arange(len(left), dtype=np.int32)
            leaf = left == -1
            left, right = np.where(leaf, nodes, left), np.where(leaf, nodes, right)
            missing = np.where(np.asarray(tree["default_left"], dtype=bool), left, right)
            depth = np.zeros(len(left), dtype=np.int32)
            for node in range(len(left)):  # children come after their parent
                if not leaf[node]:
                    depth[left[node]] = depth[right[node]] = depth[node] + 1
            children = np.column_stack([right, left]).reshape(-1)  # [2 * node + (x < threshold)]
            feature = np.asarray(tree["split_indices"], dtype=np.int32)
            threshold = np.asarray(tree["split_conditions"], dtype=np.float32)
            trees.append((feature, threshold, children, missing, int(depth.max())))
        return cls(trees, np.float32(base))

    def margin(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        n, width = X.shape
        flat, starts = X.reshape(-1), np.arange(n, dtype=np.int64) * width
        gaps = bool(np.isnan(flat).any())
        total = np.zeros(n, dtype=np.float32)
        for feature, threshold, children, missing, depth in self.trees:
            node = np.zeros(n, dtype=np.int32)
            for _ in range(depth):
                x = flat[starts + feature[node]]
                step = children[2 * node + (x < threshold[node])]
                node = np.where(np.isnan(x), missing[node], step) if gaps else step
            total += threshold[node]
        return total + self.base_margin


class _EarlyStop:
    """XGBoost callback: BigQuery's early_stop (relative loss improvement below min_rel_progress)."""

    def __new__(cls, options, started: float):
        import xgboost as xgb

        class EarlyStop(xgb.callback.TrainingCallback):
            def __init__(self):
                super().__init__()
                self.durations: list[int] = []
                self.last = started

            def after_iteration(self, model, epoch, evals_log) -> bool:
                now = time.perf_counter()
                self.durations.append(round((now - self.last) * 1000))
                self.last = now
                if not options.early_stop:
                    return False
                log = evals_log.get("eval") or evals_log["train"]
                losses = next(iter(log.values()))
                if len(losses) < 2 or losses[-2] <= 0:
                    return False
                return (losses[-2] - losses[-1]) / losses[-2] < options.min_rel_progress

        return EarlyStop()
