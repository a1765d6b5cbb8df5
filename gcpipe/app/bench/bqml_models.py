"""Local BigQuery ML beyond logistic regression: each model type's train and predict on 100,000 rows, beside
its reference library in the same run (part of ``gcpipe bench bqml``).

Data (not timed): generated with numpy and loaded into ``bench_bqml``: 8 numeric features in 8 separated
clusters (k-means), the same features with a label logistic regression cannot learn (boosted trees), and
100,000 ratings of 2,000 users and 1,000 items from a rank-8 matrix plus noise (matrix factorization).

* ours: ``gcpipe sql run`` of ``CREATE OR REPLACE MODEL`` and of ``CREATE TABLE ... AS SELECT ... FROM
  ML.PREDICT`` (ML.RECOMMEND of the 100,000 rated pairs for matrix factorization); the statement's own time.
* baseline (:func:`baseline`, in its own interpreter): pull the same rows over the Storage Read API, fit
  the reference (scikit-learn ``KMeans``, ``xgboost.train``, alternating least squares in numpy) with the
  same settings; to predict, pull the rows, predict, and load the predictions back into a table.

Goal (issue 20): within 2x of the library, the SQL runner's overhead included.
"""

from __future__ import annotations

import io
import json
import sys
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gcpipe.app.bench import BenchContext, Figure, measure

ROWS, FEATURES, CLUSTERS = 100_000, 8, 8
USERS, ITEMS, FACTORS = 2_000, 1_000, 8
TREE_ROUNDS, TREE_DEPTH, ALS_ITERATIONS, L2 = 50, 6, 10, 1.0


@dataclass(frozen=True)
class Case:
    model_type: str
    table: str
    options: str  # the CREATE MODEL options beyond model_type
    predict: str  # the select list and function call that scores the table's rows
    baseline_name: str


FEATURE_LIST = ", ".join(f"f{i}" for i in range(FEATURES))
CASES = (
    Case(
        "kmeans",
        "blobs",
        f"num_clusters = {CLUSTERS}, kmeans_init_method = 'KMEANS++', max_iterations = 20, "
        "standardize_features = FALSE",
        "centroid_id FROM ML.PREDICT(MODEL {model}, TABLE {table})",
        "pull rows + scikit-learn KMeans",
    ),
    Case(
        "boosted_tree_classifier",
        "nonlinear",
        f"input_label_cols = ['label'], max_iterations = {TREE_ROUNDS}, max_tree_depth = {TREE_DEPTH}, "
        "learn_rate = 0.3, early_stop = FALSE, data_split_method = 'NO_SPLIT'",
        "predicted_label FROM ML.PREDICT(MODEL {model}, TABLE {table})",
        "pull rows + xgboost",
    ),
    Case(
        "matrix_factorization",
        "ratings",
        f"user_col = 'user_id', item_col = 'item_id', rating_col = 'rating', feedback_type = 'EXPLICIT', "
        f"num_factors = {FACTORS}, l2_reg = {L2}, max_iterations = {ALS_ITERATIONS}, early_stop = FALSE",
        "user_id, item_id, predicted_rating FROM ML.RECOMMEND(MODEL {model}, "
        "(SELECT user_id, item_id FROM {table}))",
        "pull rows + ALS in numpy",
    ),
)


def generate(name: str, rng: np.random.Generator, rows: int) -> pa.Table:
    """The rows each case learns from (see the module's docstring)."""
    if name == "ratings":
        users, items = rng.integers(0, USERS, rows), rng.integers(0, ITEMS, rows)
        u, v = rng.normal(0, 1, (USERS, FACTORS)), rng.normal(0, 1, (ITEMS, FACTORS))
        rating = 3 + np.einsum("ij,ij->i", u[users], v[items]) / np.sqrt(FACTORS) + rng.normal(0, 0.3, rows)
        return pa.table({"user_id": users, "item_id": items, "rating": rating})
    centres = rng.normal(0, 10, (CLUSTERS, FEATURES))
    x = centres[rng.integers(0, CLUSTERS, rows)] + rng.normal(0, 1, (rows, FEATURES))
    columns = {f"f{i}": x[:, i] for i in range(FEATURES)}
    if name == "nonlinear":  # a checkerboard of the first two features: no linear boundary
        columns["label"] = ((np.floor(x[:, 0] / 4) + np.floor(x[:, 1] / 4)) % 2).astype(np.int64)
    return pa.table(columns)


def _load(client, table: pa.Table, table_id: str) -> None:
    kinds = {pa.int64(): "INT64", pa.float64(): "FLOAT64"}
    columns = ", ".join(f"{f.name} {kinds[f.type]}" for f in table.schema)
    # (the emulator's load jobs neither create a table nor truncate one that is not there yet)
    client.query(f"CREATE OR REPLACE TABLE `{table_id}` ({columns})").result()
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    buffer.seek(0)
    from google.cloud import bigquery

    job = bigquery.LoadJobConfig(source_format="PARQUET")
    client.load_table_from_file(buffer, table_id, job_config=job).result()


def _als(users, items, ratings, n_users, n_items, iterations):
    """Explicit alternating least squares, the L2 penalty on each factor vector."""
    rng = np.random.default_rng(0)
    u, v = rng.normal(0, 0.1, (n_users, FACTORS)), rng.normal(0, 0.1, (n_items, FACTORS))
    eye = L2 * np.eye(FACTORS)
    for _ in range(iterations):
        u = _solve_side(users, items, ratings, v, n_users, eye)
        v = _solve_side(items, users, ratings, u, n_items, eye)
    return u, v


def _solve_side(rows, cols, ratings, fixed, n, eye):
    """Each row's factors given the other side's: ridge regression of its ratings on their factors."""
    order = np.argsort(rows, kind="stable")
    bounds = np.searchsorted(rows[order], np.arange(n + 1))
    out = np.zeros((n, FACTORS))
    for k in range(n):
        chosen = order[bounds[k] : bounds[k + 1]]
        a = fixed[cols[chosen]]
        out[k] = np.linalg.solve(a.T @ a + eye, a.T @ ratings[chosen])
    return out


def baseline(model_type: str, dataset: str) -> None:
    """The reference library's train and predict of ``model_type`` (prints {"train": s, "predict": s})."""
    from gcpipe.core.clients import bigquery_client, bigquery_read_client
    from gcpipe.core.config import load_config

    config = load_config(target="local")
    client, read = bigquery_client(config), bigquery_read_client(config)
    case = next(c for c in CASES if c.model_type == model_type)
    table_id = f"{config.project}.{dataset}.{case.table}"

    def pull() -> pa.Table:
        return client.list_rows(table_id).to_arrow(bqstorage_client=read)

    started = time.perf_counter()
    rows = pull()
    if model_type == "kmeans":
        from sklearn.cluster import KMeans

        x = np.column_stack([rows[f"f{i}"].to_numpy() for i in range(FEATURES)])
        model = KMeans(CLUSTERS, init="k-means++", n_init=1, max_iter=20, random_state=0).fit(x)
    elif model_type == "boosted_tree_classifier":
        import xgboost as xgb

        x = np.column_stack([rows[f"f{i}"].to_numpy() for i in range(FEATURES)])
        params = {"objective": "binary:logistic", "eta": 0.3, "max_depth": TREE_DEPTH, "tree_method": "hist"}
        model = xgb.train(params, xgb.DMatrix(x, label=rows["label"].to_numpy()), TREE_ROUNDS)
    else:
        users, items = rows["user_id"].to_numpy(), rows["item_id"].to_numpy()
        model = _als(users, items, rows["rating"].to_numpy(), USERS, ITEMS, ALS_ITERATIONS)
    trained = time.perf_counter()
    rows = pull()
    if model_type == "kmeans":
        x = np.column_stack([rows[f"f{i}"].to_numpy() for i in range(FEATURES)])
        out = pa.table({"centroid_id": model.predict(x).astype(np.int64) + 1})
    elif model_type == "boosted_tree_classifier":
        x = np.column_stack([rows[f"f{i}"].to_numpy() for i in range(FEATURES)])
        out = pa.table({"predicted_label": (model.predict(xgb.DMatrix(x)) > 0.5).astype(np.int64)})
    else:
        users, items = rows["user_id"].to_numpy(), rows["item_id"].to_numpy()
        u, v = model
        predicted = np.einsum("ij,ij->i", u[users], v[items])
        out = pa.table({"user_id": users, "item_id": items, "predicted_rating": predicted})
    _load(client, out, f"{config.project}.{dataset}.baseline_{case.table}_predictions")
    print(json.dumps({"train": trained - started, "predict": time.perf_counter() - trained}))


def run(ctx: BenchContext, client, dataset: str, sql: list[str]) -> list[Figure]:
    """Train and predict each case ours and the reference's way; two figures per model type."""
    rows = ctx.size(ROWS, 5_000)
    project = ctx.config.project
    figures = []
    for case in CASES:
        _load(
            client, generate(case.table, np.random.default_rng(1), rows), f"{project}.{dataset}.{case.table}"
        )
        model, table = f"`{project}.{dataset}.{case.table}_model`", f"`{project}.{dataset}.{case.table}`"
        train = ctx.workdir / f"bqml-{case.model_type}-train.sql"
        train.write_text(
            f"CREATE OR REPLACE MODEL {model}\nOPTIONS (model_type = '{case.model_type}', {case.options})\n"
            f"AS SELECT * FROM {table};\n"
        )
        predict = ctx.workdir / f"bqml-{case.model_type}-predict.sql"
        scored = f"`{project}.{dataset}.{case.table}_predictions`"
        predict.write_text(
            f"CREATE OR REPLACE TABLE {scored} AS\nSELECT "
            + case.predict.format(model=model, table=table)
            + ";\n"
        )
        trained, predicted = measure([*sql, str(train)]), measure([*sql, str(predict)])
        code = (
            f"from gcpipe.app.bench.bqml_models import baseline; baseline({case.model_type!r}, {dataset!r})"
        )
        reference = json.loads(measure([sys.executable, "-c", code]).stdout)
        for what, ours, measured, theirs in (
            ("train", trained, json.loads(trained.stdout)["statements"][0]["seconds"], reference["train"]),
            (
                "predict",
                predicted,
                json.loads(predicted.stdout)["statements"][0]["seconds"],
                reference["predict"],
            ),
        ):
            figures.append(
                Figure(
                    f"{what} {case.model_type}, {rows:,} rows",
                    measured,
                    "s",
                    baseline=theirs,
                    baseline_name=case.baseline_name,
                    goal="within 2x of the library",
                    met=measured <= 2 * theirs,
                    peak_memory_mb=ours.peak_memory_mb,
                    higher_is_better=False,
                )
            )
    return figures
