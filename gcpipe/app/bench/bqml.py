"""Local BigQuery ML: training the purchase model on 100,000 sessions, and predicting 100,000 rows.

Data (not timed): ``write_sessions`` for 100,000 visitors, loaded into ``bench_bqml.ga_sessions``, and
``sql/ml/purchase_features.sql`` making one row per first visit (100,000 rows). Then, each a command:

* ours: ``gcpipe sql run`` of ``CREATE OR REPLACE MODEL ... AS SELECT`` (the query runs in the emulator,
  rows come back over the Storage Read API, the fit is local), and of ``CREATE TABLE ... AS SELECT ...
  FROM ML.PREDICT(...)`` (the model rewritten as SQL, run in the emulator). The figure is the statement's
  own time, as the runner reports it (interpreter start-up excluded, as for the baseline).
* baseline: what one does without it: pull the same rows out of the warehouse (Storage Read API too),
  one-hot encode and standardise them with scikit-learn, fit ``LogisticRegression``; to predict, pull the
  rows, ``predict_proba``, and load the predictions back into a table.

Goals (the issue's): training under 10 s, predicting under 5 s, on this machine. Then the other model
types, each beside its reference library (:mod:`gcpipe.app.bench.bqml_models`).
"""

from __future__ import annotations

import json
import sys

from gcpipe.app.bench import BenchContext, Figure, bqml_models, measure
from gcpipe.core.clients import bigquery_client
from gcpipe.core.config import PROJECT_ROOT
from gcpipe.datagen.ecommerce import write_sessions
from gcpipe.local import stack
from gcpipe.warehouse.load import load_json_lines
from gcpipe.warehouse.runner import run_sql_file

DATASET = "bench_bqml"
TRAIN = f"""CREATE OR REPLACE MODEL `{{{{ project }}}}.{DATASET}.purchase_model`
OPTIONS (model_type = 'logistic_reg', input_label_cols = ['will_buy_on_return_visit'])
AS SELECT * EXCEPT (fullVisitorId, visitId, date) FROM `{{{{ project }}}}.{DATASET}.purchase_features`;
"""
PREDICT = f"""CREATE OR REPLACE TABLE `{{{{ project }}}}.{DATASET}.purchase_predictions` AS
SELECT
  fullVisitorId,
  predicted_will_buy_on_return_visit,
  (SELECT p.prob FROM UNNEST(predicted_will_buy_on_return_visit_probs) AS p WHERE p.label = 1) AS probability
FROM ML.PREDICT(
  MODEL `{{{{ project }}}}.{DATASET}.purchase_model`, TABLE `{{{{ project }}}}.{DATASET}.purchase_features`
);
"""
BASELINE = """
import io, json, sys, time, warnings
warnings.simplefilter("ignore")
import pyarrow as pa, pyarrow.parquet as pq
from google.cloud import bigquery
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from gcpipe.core.clients import bigquery_client, bigquery_read_client
from gcpipe.core.config import load_config

config = load_config(target="local")
client, read = bigquery_client(config), bigquery_read_client(config)
table = f"{config.project}.%(dataset)s.purchase_features"
numeric = ["latest_ecommerce_progress", "bounces", "time_on_site", "pageviews"]
categorical = ["source", "medium", "channel_grouping", "device_category", "country"]
started = time.perf_counter()
frame = client.list_rows(table).to_dataframe(bqstorage_client=read)
prepare = ColumnTransformer([("n", StandardScaler(), numeric),
                             ("c", OneHotEncoder(handle_unknown="ignore"), categorical)])
model = make_pipeline(prepare, LogisticRegression(max_iter=1000))
model.fit(frame[numeric + categorical], frame["will_buy_on_return_visit"])
trained = time.perf_counter()
frame = client.list_rows(table).to_dataframe(bqstorage_client=read)
out = frame[["fullVisitorId"]].assign(probability=model.predict_proba(frame[numeric + categorical])[:, 1])
out["predicted_will_buy_on_return_visit"] = (out["probability"] > 0.5).astype("int64")
buffer = io.BytesIO()
pq.write_table(pa.Table.from_pandas(out, preserve_index=False), buffer)
buffer.seek(0)
target = f"{config.project}.%(dataset)s.baseline_predictions"
# (the emulator's load jobs neither create a table nor truncate one that is not there yet)
client.query(f"CREATE OR REPLACE TABLE `{target}` (fullVisitorId STRING, probability FLOAT64, "
             "predicted_will_buy_on_return_visit INT64)").result()
client.load_table_from_file(buffer, target, job_config=bigquery.LoadJobConfig(source_format="PARQUET")).result()
print(json.dumps({"train": trained - started, "predict": time.perf_counter() - trained}))
"""


def _prepare(ctx: BenchContext, visitors: int) -> int:
    """Sessions of ``visitors`` visitors in the warehouse, and their purchase features; returns the rows."""

    stack.up(ctx.config, report=lambda *_: None)
    config = ctx.config.replace(datasets={**ctx.config.datasets, "ecommerce": DATASET})
    client = bigquery_client(config)
    client.create_dataset(DATASET, exists_ok=True)
    sessions = ctx.workdir / f"bqml-sessions-{visitors}.jsonl.gz"
    if not sessions.exists():
        write_sessions(sessions, visitors)
    run_sql_file(PROJECT_ROOT / "sql/ddl/ga_sessions.sql", config=config, client=client)
    load_json_lines(client, sessions, f"{config.project}.{DATASET}.ga_sessions")
    run_sql_file(PROJECT_ROOT / "sql/ml/purchase_features.sql", config=config, client=client)
    return client.get_table(f"{config.project}.{DATASET}.purchase_features").num_rows


def _statement_seconds(command_output: str) -> float:
    return json.loads(command_output)["statements"][0]["seconds"]


def run(ctx: BenchContext) -> list[Figure]:
    rows = _prepare(ctx, ctx.size(100_000, 5_000))
    train, predict = ctx.workdir / "bqml-train.sql", ctx.workdir / "bqml-predict.sql"
    train.write_text(TRAIN)
    predict.write_text(PREDICT)
    sql = [sys.executable, "-m", "gcpipe.app.cli", "sql", "run", "--format", "json"]
    trained = measure([*sql, str(train)])
    predicted = measure([*sql, str(predict)])
    baseline = json.loads(measure([sys.executable, "-c", BASELINE % {"dataset": DATASET}]).stdout)
    train_s, predict_s = _statement_seconds(trained.stdout), _statement_seconds(predicted.stdout)
    others = bqml_models.run(ctx, bigquery_client(ctx.config), DATASET, sql)
    return [
        Figure(
            f"train logistic regression, {rows:,} sessions",
            train_s,
            "s",
            baseline=baseline["train"],
            baseline_name="pull rows + scikit-learn fit",
            goal="< 10 s",
            met=train_s < 10,
            peak_memory_mb=trained.peak_memory_mb,
            higher_is_better=False,
        ),
        Figure(
            f"predict {rows:,} rows into a table",
            predict_s,
            "s",
            baseline=baseline["predict"],
            baseline_name="pull rows + scikit-learn + load back",
            goal="< 5 s",
            met=predict_s < 5,
            peak_memory_mb=predicted.peak_memory_mb,
            higher_is_better=False,
        ),
        *others,
    ]
