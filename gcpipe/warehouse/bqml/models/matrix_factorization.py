"""Matrix factorization (``model_type='matrix_factorization'``) by alternating least squares, as BigQuery ML's
WALS trains it.

EXPLICIT feedback: a rating is the training ratings' mean plus ``user_factors . item_factors``, fitted by
minimising the squared error over the given ratings plus ``l2_reg`` times the factors' squared norms.
IMPLICIT feedback (Hu, Koren and Volinsky's weighted ALS, BigQuery's): every user-item pair counts, with
preference 1 where a rating (an interaction strength) is positive and 0 elsewhere, weighted by the
confidence ``1 + wals_alpha * rating``; the prediction is that preference's estimate. Each half-step
solves every user's (then every item's) small least-squares system at once. Factors start from a fixed
seed; training stops after ``max_iterations`` or, with ``early_stop``, when the loss improves by less
than ``min_rel_progress``. Without ``num_factors`` the local default is 10.

``ML.RECOMMEND`` (``predicted_<rating_col>``, or ``predicted_<rating_col>_confidence`` for implicit
feedback, then the user and item columns): every user with every item, or the users, items or pairs of
the input rows; a user or item unseen in training gets NULL. ``ML.EVALUATE``: explicit models the
regression metrics, implicit ones ``mean_average_precision``, ``mean_squared_error``,
``normalized_discounted_cumulative_gain`` and ``average_rank`` (the expected percentile rank).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gcpipe.warehouse.bqml import metrics
from gcpipe.warehouse.bqml.features import NUMERIC_TYPES, ModelError, bigquery_type
from gcpipe.warehouse.bqml.functions import Call
from gcpipe.warehouse.bqml.models.base import Model, TrainingIteration, require_columns
from gcpipe.warehouse.bqml.models.supervised import REGRESSION_METRICS
from gcpipe.warehouse.bqml.options import ModelOptions
from gcpipe.warehouse.bqml.sql import MlSqlError, rows_sql

IMPLICIT_METRICS = (
    "mean_average_precision",
    "mean_squared_error",
    "normalized_discounted_cumulative_gain",
    "average_rank",
)
DEFAULT_FACTORS = 10


@dataclass
class MatrixFactorizationModel(Model):
    TYPES = ("matrix_factorization",)
    options: ModelOptions
    users: list[Any]
    items: list[Any]
    user_type: str
    item_type: str
    user_factors: list[list[float]] = field(default_factory=list)
    item_factors: list[list[float]] = field(default_factory=list)
    mean: float = 0.0  # explicit: the training ratings' mean
    training: list[TrainingIteration] = field(default_factory=list)
    evaluation: dict[str, float] = field(default_factory=dict)
    ratings: int = 0

    @property
    def implicit(self) -> bool:
        return self.options.feedback_type == "IMPLICIT"

    @property
    def predicted_column(self) -> str:
        suffix = "_confidence" if self.implicit else ""
        return f"predicted_{self.options.rating_col}{suffix}"

    # -- fitting ---------------------------------------------------------------------------------

    @classmethod
    def fit(cls, table: pa.Table, options: ModelOptions, transform=None) -> MatrixFactorizationModel:
        o = options
        require_columns(table, {"user_col": o.user_col, "item_col": o.item_col, "rating_col": o.rating_col})
        if not table.num_rows:
            raise ModelError("the training query returned no rows.")
        for name in (o.user_col, o.item_col, o.rating_col):
            if table[name].null_count:
                raise ModelError(f"column {name} is NULL in {table[name].null_count} rows; filter them out.")
        if bigquery_type(table[o.rating_col].type) not in NUMERIC_TYPES:
            raise ModelError(f"rating_col {o.rating_col} must be numeric.")
        users = sorted(pc.unique(table[o.user_col]).to_pylist())
        items = sorted(pc.unique(table[o.item_col]).to_pylist())
        model = cls(
            o, users, items, bigquery_type(table[o.user_col].type), bigquery_type(table[o.item_col].type)
        )
        u, i = model.indexes(table[o.user_col], table[o.item_col])
        r = table[o.rating_col].to_numpy(zero_copy_only=False).astype(np.float64)
        model.ratings = len(r)
        _als(model, u, i, r)
        model.evaluation = model.metrics(u, i, r)
        return model

    def summary(self) -> str:
        scores = ", ".join(f"{name} {value:.4g}" for name, value in list(self.evaluation.items())[:2])
        return (
            f"{self.ratings:,} ratings of {len(self.users):,} users and {len(self.items):,} items, "
            f"{len(self.user_factors[0]) if self.user_factors else 0} factors, {len(self.training)} iterations; "
            f"{scores} on the training ratings"
        )

    # -- using it --------------------------------------------------------------------------------

    def indexes(self, users: pa.ChunkedArray, items: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of users and items in the model (-1: not seen in training)."""

        def index(values, known):
            found = pc.index_in(values, value_set=pa.array(known, values.type))
            return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)

        return index(users, self.users), index(items, self.items)

    def scores(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Predicted ratings (or confidences) of user-item index pairs; NaN where either is unknown."""
        U, V = np.asarray(self.user_factors), np.asarray(self.item_factors)
        known = (u >= 0) & (i >= 0)
        out = np.full(len(u), np.nan)
        out[known] = np.einsum("ij,ij->i", U[u[known]], V[i[known]]) + (0.0 if self.implicit else self.mean)
        return out

    def metrics(self, u: np.ndarray, i: np.ndarray, r: np.ndarray) -> dict[str, float]:
        names = IMPLICIT_METRICS if self.implicit else REGRESSION_METRICS
        known = (u >= 0) & (i >= 0)
        if not known.any():
            return dict.fromkeys(names, float("nan"))
        u, i, r = u[known], i[known], r[known]
        if not self.implicit:
            return metrics.regression_metrics(r, self.scores(u, i))
        return _implicit_metrics(np.asarray(self.user_factors), np.asarray(self.item_factors), u, i, r)

    # -- the functions ---------------------------------------------------------------------------

    def recommend(self, call: Call) -> str:
        o = self.options
        user_ids, item_ids = np.arange(len(self.users)), np.arange(len(self.items))
        users, items = pa.array(self.users), pa.array(self.items)
        if call.input_sql is not None:
            table = call.fetch()
            has_user, has_item = o.user_col in table.column_names, o.item_col in table.column_names
            if not (has_user or has_item):
                raise MlSqlError(
                    f"the input rows of ML.RECOMMEND need column {o.user_col} or {o.item_col}, or both."
                )
            if has_user and has_item:
                users, items = table[o.user_col].combine_chunks(), table[o.item_col].combine_chunks()
                user_ids, item_ids = self.indexes(users, items)
            elif has_user:
                users = pc.unique(table[o.user_col])
                user_ids = self.indexes(users, pa.array(self.items[:1]))[0]
            else:
                items = pc.unique(table[o.item_col])
                item_ids = self.indexes(pa.array(self.users[:1]), items)[1]
            if not (has_user and has_item):  # every chosen user with every item, or the other way round
                user_rows = np.repeat(np.arange(len(users)), len(items))
                item_rows = np.tile(np.arange(len(items)), len(users))
                users, items = users.take(pa.array(user_rows)), items.take(pa.array(item_rows))
                user_ids, item_ids = user_ids[user_rows], item_ids[item_rows]
        else:
            user_rows = np.repeat(user_ids, len(item_ids))
            item_rows = np.tile(item_ids, len(user_ids))
            users, items = users.take(pa.array(user_rows)), items.take(pa.array(item_rows))
            user_ids, item_ids = user_rows, item_rows
        predicted = self.scores(user_ids, item_ids)
        table = pa.table(
            {
                self.predicted_column: pa.array(predicted, mask=np.isnan(predicted)),
                o.user_col: users,
                o.item_col: items,
            }
        )
        schema = [
            (self.predicted_column, "FLOAT64"),
            (o.user_col, self.user_type),
            (o.item_col, self.item_type),
        ]
        return call.table(table, schema)

    def evaluate(self, call: Call) -> str:
        o = self.options
        if call.input_sql is None:
            values = self.evaluation
        else:
            table = call.fetch()
            require_columns(
                table, {"user_col": o.user_col, "item_col": o.item_col, "rating_col": o.rating_col}
            )
            u, i = self.indexes(table[o.user_col], table[o.item_col])
            values = self.metrics(u, i, table[o.rating_col].to_numpy(zero_copy_only=False).astype(np.float64))
        names = IMPLICIT_METRICS if self.implicit else REGRESSION_METRICS
        return rows_sql([(n, "FLOAT64") for n in names], [tuple(values[n] for n in names)])

    # -- artefact --------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 2,
            "options": self.options.to_json(),
            **{
                name: getattr(self, name)
                for name in (
                    "users",
                    "items",
                    "user_type",
                    "item_type",
                    "user_factors",
                    "item_factors",
                    "mean",
                    "evaluation",
                    "ratings",
                )
            },
            "training": [t.__dict__ for t in self.training],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> MatrixFactorizationModel:
        values = {
            k: v for k, v in raw.items() if k not in ("format", "model", "registered", "options", "training")
        }
        return cls(
            ModelOptions.from_json(raw["options"]),
            training=[TrainingIteration(**t) for t in raw["training"]],
            **values,
        )


def _solve_all(
    fixed: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray,
    pulls: np.ndarray,
    count: int,
    l2: float,
    base: np.ndarray | None,
) -> np.ndarray:
    """For every row index r, the x solving (base + sum_{(r, c)} w f f' + l2 I) x = sum_{(r, c)} pull f, with
    f = fixed[c]: the least-squares factors of each user (or item) given the other side's. Each entry of
    the symmetric sums is one ``np.bincount`` over the ratings (a few times faster than ``np.add.at``)."""
    k = fixed.shape[1]
    F = fixed[cols]
    weighted = weights[:, None] * F
    grams = np.zeros((count, k, k)) if base is None else np.broadcast_to(base, (count, k, k)).copy()
    for a in range(k):
        for b in range(a, k):
            summed = np.bincount(rows, weights=weighted[:, a] * F[:, b], minlength=count)
            grams[:, a, b] += summed
            if a != b:
                grams[:, b, a] += summed
    grams += l2 * np.eye(k)
    rhs = np.column_stack([np.bincount(rows, weights=pulls * F[:, a], minlength=count) for a in range(k)])
    return np.linalg.solve(grams, rhs.reshape(count, k, 1))[:, :, 0]


def _als(model: MatrixFactorizationModel, u: np.ndarray, i: np.ndarray, r: np.ndarray) -> None:
    o = model.options
    k = o.num_factors or DEFAULT_FACTORS
    n_users, n_items = len(model.users), len(model.items)
    rng = np.random.default_rng(0)
    U = rng.normal(0, 0.1, (n_users, k))
    V = rng.normal(0, 0.1, (n_items, k))
    if model.implicit:
        preference = (r > 0).astype(np.float64)
        extra = o.wals_alpha * r  # confidence - 1 on the given pairs; 1 elsewhere
    else:
        model.mean = float(np.mean(r))
        preference, extra = r - model.mean, np.ones(len(r))
    previous = math.inf
    for iteration in range(o.max_iterations):
        started = time.perf_counter()
        if model.implicit:  # Y'Y over every item, plus the given pairs' extra confidence
            pulls = preference * (1 + extra)
            U = _solve_all(V, u, i, extra, pulls, n_users, o.l2_reg, V.T @ V)
            V = _solve_all(U, i, u, extra, pulls, n_items, o.l2_reg, U.T @ U)
            loss = _implicit_loss(U, V, u, i, extra, preference)
        else:
            U = _solve_all(V, u, i, extra, preference, n_users, o.l2_reg, None)  # (extra: ones)
            V = _solve_all(U, i, u, extra, preference, n_items, o.l2_reg, None)
            loss = float(np.mean((np.einsum("ij,ij->i", U[u], V[i]) - preference) ** 2))
        model.training.append(
            TrainingIteration(iteration, loss, None, None, round((time.perf_counter() - started) * 1000))
        )
        progress = (previous - loss) / previous if previous not in (0, math.inf) else math.inf
        previous = loss
        if o.early_stop and progress < o.min_rel_progress:
            break
    model.user_factors, model.item_factors = U.tolist(), V.tolist()


def _implicit_loss(U, V, u, i, extra, preference) -> float:
    """Mean over every user-item pair of confidence * (preference - estimate)^2."""
    s = np.einsum("ij,ij->i", U[u], V[i])
    everything = float(np.sum((U.T @ U) * (V.T @ V)))  # sum over all pairs of estimate^2
    given = np.sum(preference * (1 - 2 * s)) + np.sum(extra * (preference - s) ** 2)
    return float((everything + given) / (len(U) * len(V)))


def _implicit_metrics(U, V, u, i, r) -> dict[str, float]:
    """Ranking metrics of the given pairs among every item, per user (the users of the pairs)."""
    users = np.unique(u)
    scores = U[users] @ V.T  # users x items
    order = np.argsort(-scores, axis=1, kind="stable")
    rank = np.empty_like(order)
    rank[np.arange(len(users))[:, None], order] = np.arange(V.shape[0])[None, :]
    row = np.searchsorted(users, u)
    position = rank[row, i]  # 0 = the top recommendation
    percentile = position / max(V.shape[0] - 1, 1)
    relevant = r > 0
    aps, ndcgs = [], []
    for index in range(len(users)):
        mine = (row == index) & relevant
        if not mine.any():
            continue
        positions = np.sort(position[mine])
        aps.append(float(np.mean(np.arange(1, len(positions) + 1) / (positions + 1))))
        gains = r[mine][np.argsort(position[mine])]
        dcg = np.sum(gains / np.log2(positions + 2))
        ideal = np.sum(np.sort(gains)[::-1] / np.log2(np.arange(len(gains)) + 2))
        ndcgs.append(float(dcg / ideal) if ideal else 0.0)
    estimate = np.einsum("ij,ij->i", U[u], V[i])
    weight = r.sum()
    return {
        "mean_average_precision": float(np.mean(aps)) if aps else float("nan"),
        "mean_squared_error": float(np.mean((relevant.astype(float) - estimate) ** 2)),
        "normalized_discounted_cumulative_gain": float(np.mean(ndcgs)) if ndcgs else float("nan"),
        "average_rank": float(np.sum(r * percentile) / weight) if weight else float("nan"),
    }
