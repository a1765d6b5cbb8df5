"""k-means (``model_type='kmeans'``) the way BigQuery ML fits and answers it.

Features are BigQuery ML's automatic preprocessing (numbers standardised unless ``standardize_features``
is FALSE, categories one-hot; :mod:`gcpipe.warehouse.bqml.features`). Lloyd's algorithm from
``kmeans_init_method``'s centroids (RANDOM: distinct rows drawn with a fixed seed; KMEANS++; CUSTOM: the
rows whose BOOL ``kmeans_init_col`` is TRUE), ``distance_type`` EUCLIDEAN or COSINE (spherical k-means),
until ``max_iterations`` or, with ``early_stop``, an iteration that lowers the mean squared distance by
less than ``min_rel_progress``. Without ``num_clusters`` the local default is log10(rows), 2 to 100.

Functions (output columns as in BigQuery ML's references for each): ``ML.PREDICT`` (``centroid_id``,
``nearest_centroids_distance`` ARRAY<STRUCT<centroid_id INT64, distance FLOAT64>>, nearest first) is
computed here, every row at once with numpy, beside the input's columns (``Call.per_row``: the input read
once and loaded back once); ``ML.DETECT_ANOMALIES`` (``is_anomaly``, ``normalized_distance``,
``centroid_id``) is SQL run in the warehouse: the distances to each centroid are expressions over the
input's columns. ``normalized_distance``
is the distance to the nearest centroid over that cluster's mean distance in training; a row is an anomaly
when it exceeds the training rows' ``1 - contamination`` quantile of it. ``ML.EVALUATE``
(``davies_bouldin_index``, ``mean_squared_distance``), ``ML.CENTROIDS``, ``ML.FEATURE_INFO`` and
``ML.TRAINING_INFO`` are rows computed here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from gcpipe.warehouse.bqml.features import Feature, ModelError, feature_info_sql
from gcpipe.warehouse.bqml.functions import Call
from gcpipe.warehouse.bqml.models.base import Model, TrainingIteration, require_columns
from gcpipe.warehouse.bqml.models.glm import describe_features, design_matrix
from gcpipe.warehouse.bqml.options import ModelOptions
from gcpipe.warehouse.bqml.sql import MlSqlError, column, rows_sql, sql_literal

_P = "_gcpipe_"
NEAREST = "ARRAY<STRUCT<centroid_id INT64, distance FLOAT64>>"
_QUANTILES = 1001  # of the training rows' normalized distances, kept for ML.DETECT_ANOMALIES


@dataclass
class KMeansModel(Model):
    TYPES = ("kmeans",)
    options: ModelOptions
    features: list[Feature]
    centers: list[list[float]] = field(default_factory=list)  # per cluster, per design column
    scales: list[float] = field(default_factory=list)  # each cluster's mean distance of its training rows
    quantiles: list[float] = field(default_factory=list)  # training normalized distances, 0 to 1 by 0.001
    training: list[TrainingIteration] = field(default_factory=list)
    evaluation: dict[str, float] = field(default_factory=dict)
    rows: int = 0

    @property
    def cosine(self) -> bool:
        return self.options.distance_type == "COSINE"

    # -- fitting ---------------------------------------------------------------------------------

    @classmethod
    def fit(cls, table: pa.Table, options: ModelOptions, transform=None) -> KMeansModel:
        init_col = options.kmeans_init_col
        if init_col:
            require_columns(table, {"kmeans_init_col": init_col})
        inputs = table.drop_columns([init_col]) if init_col else table
        if not inputs.num_columns:
            raise ModelError("the training query has no feature columns.")
        n = table.num_rows
        k = options.num_clusters or min(max(2, round(math.log10(max(n, 1)))), 100)
        if n < k:
            raise ModelError(
                f"the training query returned {n} rows; a k-means model of {k} clusters needs {k} or more."
            )
        features = describe_features(inputs, transform=transform)
        if not options.standardize_features:
            for feature in features:
                if feature.numerical:
                    feature.stddev = 1.0  # centred only, which leaves Euclidean distances as they are
        model = cls(options, features, rows=n)
        X = model.design(inputs)
        first = _initial(X, k, options, table[init_col] if init_col else None)
        model.centers = _lloyd(model, X, first).tolist()
        distances = model.distances(X)
        nearest = distances.argmin(axis=1)
        d = distances[np.arange(n), nearest]
        scales = np.array([d[nearest == c].mean() if (nearest == c).any() else 1.0 for c in range(k)])
        model.scales = np.where(scales > 0, scales, 1.0).tolist()
        model.quantiles = np.quantile(
            d / np.asarray(model.scales)[nearest], np.linspace(0, 1, _QUANTILES)
        ).tolist()
        model.evaluation = model.metrics(X)
        return model

    def summary(self) -> str:
        return (
            f"{self.rows:,} rows, {len(self.centers)} clusters, {len(self.training)} iterations; "
            f"davies_bouldin_index {self.evaluation['davies_bouldin_index']:.4g}, mean_squared_distance "
            f"{self.evaluation['mean_squared_distance']:.4g}"
        )

    # -- using it --------------------------------------------------------------------------------

    def design(self, inputs: pa.Table) -> np.ndarray:
        X = design_matrix(self.features, inputs)
        return _unit(X) if self.cosine else X

    def distances(self, X: np.ndarray) -> np.ndarray:
        """Rows x clusters: Euclidean distance, or cosine distance (1 - cosine similarity)."""
        C = np.asarray(self.centers)
        if self.cosine:
            return 1.0 - X @ _unit(C).T
        squared = (X**2).sum(axis=1)[:, None] - 2 * X @ C.T + (C**2).sum(axis=1)[None, :]
        return np.sqrt(np.maximum(squared, 0.0))

    def metrics(self, X: np.ndarray) -> dict[str, float]:
        """ML.EVALUATE: the Davies-Bouldin index and the mean squared distance to the nearest centroid."""
        if not len(X):
            return {"davies_bouldin_index": float("nan"), "mean_squared_distance": float("nan")}
        distances = self.distances(X)
        nearest = distances.argmin(axis=1)
        d = distances[np.arange(len(X)), nearest]
        C = np.asarray(self.centers)
        k = len(C)
        spread = np.array([d[nearest == c].mean() if (nearest == c).any() else 0.0 for c in range(k)])
        apart = np.sqrt(((C[:, None, :] - C[None, :, :]) ** 2).sum(axis=2))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = (spread[:, None] + spread[None, :]) / apart
        np.fill_diagonal(ratio, -np.inf)
        return {
            "davies_bouldin_index": float(np.mean(np.max(ratio, axis=1))),
            "mean_squared_distance": float(np.mean(d**2)),
        }

    # -- the functions ---------------------------------------------------------------------------

    def predict(self, call: Call) -> str:
        def compute(table: pa.Table) -> pa.Table:
            distances = self.distances(self.design(table))
            n, k = distances.shape
            order = np.argsort(distances, axis=1, kind="stable")  # nearest first; a tie: the lower id
            nearest = pa.StructArray.from_arrays(
                [
                    pa.array((order + 1).reshape(-1), pa.int64()),
                    pa.array(np.take_along_axis(distances, order, axis=1).reshape(-1), pa.float64()),
                ],
                names=["centroid_id", "distance"],
            )
            offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
            return pa.table(
                {
                    "centroid_id": pa.array(order[:, 0] + 1, pa.int64()),
                    "nearest_centroids_distance": pa.ListArray.from_arrays(offsets, nearest),
                }
            )

        return call.per_row(compute, [("centroid_id", "INT64"), ("nearest_centroids_distance", NEAREST)])

    def detect_anomalies(self, call: Call) -> str:
        if call.input_sql is None:
            raise MlSqlError("ML.DETECT_ANOMALIES of a k-means model needs input rows: (query) or TABLE t.")
        contamination = call.settings.get("contamination")
        if contamination is None or not 0 <= float(contamination) <= 0.5:
            raise MlSqlError(
                "ML.DETECT_ANOMALIES of a k-means model needs STRUCT(c AS contamination), c from 0 to 0.5."
            )
        threshold = (
            float(np.quantile(self.quantiles, 1 - float(contamination))) if contamination else math.inf
        )
        scales = " ".join(f"WHEN {c + 1} THEN {sql_literal(s, 'FLOAT64')}" for c, s in enumerate(self.scales))
        normalized = f"{_P}m / (CASE {_P}c {scales} END)"
        limit = sql_literal(threshold, "FLOAT64")
        return call.pass_through(
            self,
            lambda model, source: (
                f"SELECT {normalized} > {limit} AS is_anomaly, {normalized} AS normalized_distance, "
                f"{_P}c AS centroid_id,\n  * EXCEPT ({model._helpers()})\nFROM ({model._distances_sql(source)})"
            ),
        )

    def evaluate(self, call: Call) -> str:
        values = self.evaluation if call.input_sql is None else self.metrics(self.design(call.fetch()))
        names = ("davies_bouldin_index", "mean_squared_distance")
        return rows_sql([(n, "FLOAT64") for n in names], [tuple(values[n] for n in names)])

    def centroids(self, call: Call) -> str:
        """ML.CENTROIDS: a row per centroid and feature (numbers on the input's scale unless standardize)."""
        standardize = bool(call.setting("standardize", False))
        rows = []
        for c, centroid in enumerate(self.centers):
            offset = 0
            for feature in self.features:
                values = centroid[offset : offset + feature.width]
                if feature.numerical:
                    value = values[0] if standardize else values[0] * (feature.stddev or 1.0) + feature.mean
                    rows.append((c + 1, feature.name, value, []))
                else:
                    pairs = [
                        (category, value) for category, value in zip(feature.encoded, values, strict=True)
                    ]
                    rows.append((c + 1, feature.name, None, pairs))
                offset += feature.width
        columns = [
            ("centroid_id", "INT64"),
            ("feature", "STRING"),
            ("numerical_value", "FLOAT64"),
            ("categorical_value", "ARRAY<STRUCT<category STRING, value FLOAT64>>"),
        ]
        return rows_sql(columns, rows)

    def feature_info(self, call: Call) -> str:
        return feature_info_sql(self.features)

    # -- the model as SQL ------------------------------------------------------------------------

    def _helpers(self) -> str:
        names = [f"{_P}d{c}" for c in range(len(self.centers))] + [f"{_P}m", f"{_P}c"]
        names += [f"{_P}z{i}" for i, f in enumerate(self.features) if f.numerical]
        return ", ".join(names)

    def _distances_sql(self, input_sql: str) -> str:
        """The input's rows and columns, then each centroid's distance, the nearest one's and its id."""
        zs, alias = [], f"{_P}input"
        for i, feature in enumerate(self.features):
            if feature.numerical:
                ref, mean = column(feature.column, alias), sql_literal(feature.mean, "FLOAT64")
                scale = sql_literal(feature.stddev or 1.0, "FLOAT64")
                zs.append(f"(COALESCE(CAST({ref} AS FLOAT64), {mean}) - {mean}) / {scale} AS {_P}z{i}")
        standardised = f"SELECT {alias}.*{''.join(', ' + z for z in zs)} FROM ({input_sql}) AS {alias}"
        k = len(self.centers)
        distances = ", ".join(f"{self._distance_sql(c)} AS {_P}d{c}" for c in range(k))
        nearest = "LEAST(" + ", ".join(f"{_P}d{c}" for c in range(k)) + ")"
        choose = " ".join(f"WHEN {_P}d{c} = {_P}m THEN {c + 1}" for c in range(k))
        return (
            f"SELECT *, CASE {choose} END AS {_P}c FROM (SELECT *, {nearest} AS {_P}m FROM "
            f"(SELECT *, {distances} FROM ({standardised})))"
        )

    def _distance_sql(self, c: int) -> str:
        """Distance of a row to centroid ``c``: sums over the numbers' z columns and the categories' lookups."""
        centroid = self.centers[c]
        squared, dots, norms = [], [], []
        offset = 0
        for i, feature in enumerate(self.features):
            values = centroid[offset : offset + feature.width]
            if feature.numerical:
                z, v = f"{_P}z{i}", sql_literal(values[0], "FLOAT64")
                squared.append(f"POW({z} - {v}, 2)")
                dots.append(f"{z} * {v}")
                norms.append(f"POW({z}, 2)")
            else:
                ref = column(feature.column)
                constant = sum(v * v for v in values)
                squared.append(
                    f"({sql_literal(constant, 'FLOAT64')} + {_lookup(ref, feature, [1 - 2 * v for v in values])})"
                )
                dots.append(_lookup(ref, feature, values))
                norms.append(_lookup(ref, feature, [1.0] * len(values)))
            offset += feature.width
        if not self.cosine:
            return f"SQRT(GREATEST({' + '.join(squared) or '0'}, 0))"
        length = sql_literal(float(np.linalg.norm(centroid)) or 1.0, "FLOAT64")
        return f"1 - SAFE_DIVIDE({' + '.join(dots)}, SQRT({' + '.join(norms)}) * {length})"

    # -- artefact --------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 2,
            "options": self.options.to_json(),
            "features": [f.to_json() for f in self.features],
            "centroids": self.centers,
            "scales": self.scales,
            "quantiles": self.quantiles,
            "training": [t.__dict__ for t in self.training],
            "evaluation": self.evaluation,
            "rows": self.rows,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> KMeansModel:
        return cls(
            ModelOptions.from_json(raw["options"]),
            [Feature(**f) for f in raw["features"]],
            raw["centroids"],
            raw["scales"],
            raw["quantiles"],
            [TrainingIteration(**t) for t in raw["training"]],
            raw["evaluation"],
            raw["rows"],
        )


def _lookup(ref: str, feature: Feature, values: list[float]) -> str:
    """A category's value per row (a CASE over the categories; NULL has its own if it was seen; else 0)."""
    by_category = dict(zip(feature.encoded, values, strict=True))
    null_value = by_category.pop(None, 0.0)
    whens = " ".join(
        f"WHEN {sql_literal(c, 'STRING')} THEN {sql_literal(v, 'FLOAT64')}" for c, v in by_category.items()
    )
    otherwise = f"IF({ref} IS NULL, {sql_literal(null_value, 'FLOAT64')}, 0)" if null_value else "0"
    return f"(CASE CAST({ref} AS STRING) {whens} ELSE {otherwise} END)" if whens else otherwise


def _unit(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def _initial(X: np.ndarray, k: int, options: ModelOptions, init: pa.ChunkedArray | None) -> np.ndarray:
    """The first centroids (rows x columns) of kmeans_init_method."""
    rng = np.random.default_rng(0)
    if options.kmeans_init_method == "CUSTOM":
        chosen = np.flatnonzero(init.fill_null(False).to_numpy(zero_copy_only=False))
        if len(chosen) != k:
            raise ModelError(
                f"kmeans_init_col {options.kmeans_init_col} is TRUE in {len(chosen)} rows; it must be TRUE in "
                f"exactly num_clusters ({k}) rows."
            )
        return X[chosen].copy()
    distinct = np.unique(X, axis=0)
    if len(distinct) < k:
        raise ModelError(
            f"the training rows have {len(distinct)} distinct points; {k} clusters need {k} or more."
        )
    if options.kmeans_init_method == "RANDOM":
        return distinct[rng.choice(len(distinct), k, replace=False)]
    centroids = [distinct[rng.integers(len(distinct))]]  # KMEANS++
    closest = ((distinct - centroids[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        centroids.append(distinct[rng.choice(len(distinct), p=closest / closest.sum())])
        closest = np.minimum(closest, ((distinct - centroids[-1]) ** 2).sum(axis=1))
    return np.array(centroids)


def _lloyd(model: KMeansModel, X: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    options, k = model.options, len(centroids)
    previous, assigned = math.inf, None
    for iteration in range(options.max_iterations):
        started = time.perf_counter()
        model.centers = centroids.tolist()
        distances = model.distances(X)
        nearest = distances.argmin(axis=1)
        loss = float(np.mean(distances[np.arange(len(X)), nearest] ** 2))
        counts = np.bincount(nearest, minlength=k)
        sums = np.zeros_like(centroids)
        np.add.at(sums, nearest, X)
        updated = sums / np.maximum(counts, 1)[:, None]
        for empty in np.flatnonzero(counts == 0):  # an empty cluster takes the farthest row
            updated[empty] = X[distances[np.arange(len(X)), nearest].argmax()]
        model.training.append(
            TrainingIteration(iteration, loss, None, None, round((time.perf_counter() - started) * 1000))
        )
        unchanged = assigned is not None and np.array_equal(nearest, assigned)
        progress = (previous - loss) / previous if previous not in (0, math.inf) else math.inf
        centroids, assigned, previous = updated, nearest, loss
        if unchanged or (options.early_stop and progress < options.min_rel_progress):
            break
    return centroids
