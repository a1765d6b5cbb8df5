"""The platform's flows, each declared once: its steps (what each runs, with which parameters), the DAG that
orchestrates it, its code, its SQL and its tests.

The DAG files take their steps from here (``gcpipe.orchestration.operators.step``), the demo runs one stage
per flow in this order (``gcpipe.app.demo``), and the README's flow table is rendered from it
(``gcpipe flows``); ``tests/unit/test_flows.py`` and ``tests/dags/`` fail when any of them drifts. A step's
``name`` is its task id in the DAG. Plain data: DAG files import it when Composer parses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType

# Step kinds: what a step runs, and so which operator a DAG gives it.
SQL, CHECK, BEAM, SPARK, STREAMING, FILES = "sql", "check", "beam", "spark", "streaming", "files"


@dataclass(frozen=True)
class Step:
    """One step of a flow. ``runs``: a SQL file under ``sql/`` (kinds sql and check), a Beam pipeline's
    module (beam, streaming), a Spark job of ``gcpipe.spark.jobs`` (spark), or a lake folder (files).
    ``params``: the fixed query parameters of a SQL step (a DAG may add the run's own, such as its date).
    ``in_demo``: whether ``make demo`` runs it (a sensor or a gate on a cloud threshold may be DAG-only)."""

    name: str
    kind: str
    runs: str
    params: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    in_demo: bool = True

    def __post_init__(self):
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))


@dataclass(frozen=True)
class Flow:
    name: str
    title: str  # the demo's stage title
    dag: str  # the DAG id (dags/<dag>.py)
    code: tuple[str, ...]  # the pipelines and jobs it runs (repository paths)
    tests: tuple[str, ...]  # where it is tested end to end
    steps: tuple[Step, ...]

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"flow {self.name} has no step {name!r}; its steps: {[s.name for s in self.steps]}")

    @property
    def sql_files(self) -> list[str]:
        return [f"sql/{s.runs}" for s in self.steps if s.kind in (SQL, CHECK)]

    def demo_steps(self, *kinds: str) -> list[Step]:
        return [s for s in self.steps if s.in_demo and (not kinds or s.kind in kinds)]


# The e-commerce model learns from first visits up to the end of April 2017 (the generator's year runs from
# August 2016) and is judged on, and applied to, the three months after.
TRAIN = {"train_from": date(2016, 8, 1), "train_to": date(2017, 4, 30)}
LATER_FROM, LATER_TO = date(2017, 5, 1), date(2017, 7, 31)
EVALUATE = {"eval_from": LATER_FROM, "eval_to": LATER_TO}

FLOWS: tuple[Flow, ...] = (
    Flow(
        "batch_csv",
        "batch CSV ingestion (Beam), then trips by zone and hour (SQL, GIS)",
        dag="batch_ingest",
        code=("pipelines/csv_ingest.py",),
        tests=("pipelines/csv_ingest_test.py", "tests/integration/test_csv_ingest.py"),
        steps=(
            Step("wait_for_files", FILES, "landing/taxi_trips", in_demo=False),
            Step("create_zones_table", SQL, "ddl/taxi_zones.sql", in_demo=False),  # the demo made every table
            Step("seed_zones", SQL, "seeds/taxi_zones.sql"),
            Step("ingest_csv", BEAM, "pipelines.csv_ingest"),
            Step("check_day_loaded", CHECK, "checks/taxi_trips_day_loaded.sql", in_demo=False),
            Step("build_trips_by_zone_hour", SQL, "transforms/taxi_trips_by_zone_hour.sql"),
            Step("check_trips_by_zone_hour", CHECK, "checks/trips_by_zone_hour_row_counts.sql"),
            Step("train_demand_model", SQL, "ml/taxi_demand_model.sql"),  # ARIMA_PLUS per pickup zone
            Step("forecast_demand", SQL, "ml/taxi_demand_forecast.sql"),
            Step("files_to_success", FILES, "processed/success/taxi_trips", in_demo=False),
            Step("files_to_failure", FILES, "processed/failure/taxi_trips", in_demo=False),
        ),
    ),
    Flow(
        "kdd",
        "Spark: KDD Cup 99 analysis, then k-means and the rarest connections (BigQuery ML)",
        dag="spark_kdd",
        code=("spark_jobs/kdd_analysis.py", "spark_jobs/kdd_report.py"),
        tests=("tests/unit/test_kdd_analysis.py", "tests/dags/test_dags_local.py"),
        steps=(
            Step("kdd_analysis", SPARK, "kdd_analysis"),  # also loads the valid connections
            Step("train_connection_clusters", SQL, "ml/kdd_connection_clusters.sql"),  # k-means, 4 clusters
            Step("flag_rare_connections", SQL, "ml/kdd_rare_connections.sql"),  # ML.DETECT_ANOMALIES, 1 %
        ),
    ),
    Flow(
        "recommendations",
        "Spark: ALS recommendations",
        dag="spark_recommendations",
        code=("spark_jobs/als_recommend.py",),
        tests=("tests/unit/test_als_recommend.py", "tests/integration/test_spark_sources_and_sinks.py"),
        steps=(Step("als_recommend", SPARK, "als_recommend"),),
    ),
    Flow(
        "ecommerce",
        "e-commerce SQL and BigQuery ML",
        dag="bqml_purchase",
        code=(),
        tests=("tests/integration/test_sql_files.py", "tests/integration/test_bqml_local.py"),
        steps=(
            Step("check_unique_visits", CHECK, "checks/ga_sessions_unique_visits.sql"),
            Step("check_not_null", CHECK, "checks/ga_sessions_not_null.sql"),
            Step("check_accepted_values", CHECK, "checks/ga_sessions_accepted_values.sql"),
            Step("build_visitor_sessions", SQL, "transforms/visitor_sessions.sql"),
            Step("build_session_funnel", SQL, "transforms/session_funnel.sql"),
            Step("build_top_products", SQL, "transforms/top_products.sql", {"top_n": 3}),
            Step("check_visitor_sessions", CHECK, "checks/visitor_sessions_row_counts.sql"),
            Step("build_features", SQL, "ml/purchase_features.sql"),
            Step("train_model", SQL, "ml/purchase_model.sql", TRAIN),
            Step("evaluate_model", SQL, "ml/purchase_model_evaluate.sql", EVALUATE),
            Step("roc_curve", SQL, "ml/purchase_model_roc_curve.sql", EVALUATE),
            Step("train_tree_model", SQL, "ml/purchase_tree_model.sql"),  # beside the logistic one
            Step("compare_roc_curves", SQL, "ml/purchase_models_roc_curves.sql", EVALUATE),
            Step("confusion_matrices", SQL, "ml/purchase_models_confusion_matrices.sql", EVALUATE),
            Step("roc_auc_gate", CHECK, "checks/purchase_model_roc_auc.sql", EVALUATE, in_demo=False),
            Step(
                "predict",
                SQL,
                "ml/purchase_predictions.sql",
                {"predict_from": LATER_FROM, "predict_to": LATER_TO},
            ),
        ),
    ),
    Flow(
        "streaming_rides",
        "streaming rides",
        dag="taxi_streaming_ops",
        code=("pipelines/taxi_streaming.py", "gcpipe/datagen/ride_publisher.py", "gcpipe/app/dashboard/"),
        tests=("pipelines/taxi_streaming_test.py", "tests/integration/test_taxi_streaming.py"),
        steps=(
            Step("start_streaming_job", STREAMING, "pipelines.taxi_streaming"),
            Step("check_freshness", CHECK, "checks/rides_per_minute_freshness.sql", {"max_age_minutes": 10}),
        ),
    ),
)


def flow(name: str) -> Flow:
    for candidate in FLOWS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"no flow {name!r}; the flows: {[f.name for f in FLOWS]}")


def markdown_table() -> str:
    """The README's flow table: flow -> DAG -> code -> SQL -> tests."""

    def cell(paths) -> str:
        return ", ".join(f"`{p}`" for p in paths) or "-"

    lines = ["| flow | DAG | code | SQL | tests |", "|---|---|---|---|---|"]
    for f in FLOWS:
        sql = [path.removeprefix("sql/") for path in f.sql_files]
        lines.append(f"| {f.name} | `dags/{f.dag}.py` | {cell(f.code)} | {cell(sql)} | {cell(f.tests)} |")
    return "\n".join(lines)
