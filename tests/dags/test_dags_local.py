"""Every DAG runs once, end to end, on the local target (dag.test) against the local stack, small: the
tables are filled, the checks pass (or fail the run, naming the check), the files are moved."""

from __future__ import annotations

import shutil
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from gcpipe.core.clients import ensure_table, storage_client
from gcpipe.core.config import load_config
from gcpipe.core.schemas import table_spec
from gcpipe.datagen.ecommerce import write_sessions
from gcpipe.datagen.kdd import write_kdd
from gcpipe.datagen.rentals import write_rentals
from gcpipe.datagen.ride_publisher import publish_rides
from gcpipe.datagen.taxi_trips import write_trips_csv
from gcpipe.deploy.naming import load_names
from gcpipe.orchestration import local_steps
from gcpipe.orchestration.airflow_home import DagOutcome, logical_date, outcome
from gcpipe.orchestration.local_steps import stop_streaming
from gcpipe.spark import jobs
from gcpipe.warehouse.load import load_json_lines
from gcpipe.warehouse.runner import run_sql
from tests.dags.conftest import parse

pytestmark = [pytest.mark.stack, pytest.mark.slow]


@pytest.fixture(scope="module")
def dags(airflow_db, local_stack):
    return parse("local")


def run(dags, dag_id: str, day: date | None, conf: dict | None = None, **task_changes) -> DagOutcome:
    """dag.test, as ``gcpipe dags test`` runs it; ``task_changes``: {task_id: {attribute: value}}."""
    dag = dags[dag_id]
    for task_id, changes in task_changes.items():
        for name, value in changes.items():
            setattr(dag.get_task(task_id), name, value)
    return outcome(dag.test(logical_date=logical_date(day), run_conf=conf))


def states(result: DagOutcome) -> dict[str, str]:
    return {task.task_id: task.state for task in result.tasks}


def count(bq, sql: str) -> int:
    return next(iter(bq.query(sql).result()))[0]


@pytest.fixture
def lake(local_stack):
    """The local lake, and the folders a test made in it removed afterwards."""
    made: list[Path] = []
    root = Path(local_stack.lake)
    yield root, made.append
    for path in made:
        shutil.rmtree(root / path, ignore_errors=True)


def objects(prefix: str) -> list[str]:
    """The names of the local lake bucket's objects under ``prefix``."""
    config = load_config()
    return [blob.name for blob in storage_client(config).list_blobs(config.lake_bucket, prefix=prefix)]


def landed_day(lake, day: date, rows: int, malformed: float):
    root, made = lake
    for folder in ("landing", "ingest", "processed/success", "processed/failure"):
        made(f"{folder}/taxi_trips/{day}")
    return write_trips_csv(root / f"landing/taxi_trips/{day}/trips.csv", rows, malformed=malformed, start=day)


def test_batch_ingest_loads_the_day_builds_the_summary_checks_it_and_sets_the_files_aside(dags, lake, bq):
    day = date(2019, 4, 2)
    trips = landed_day(lake, day, 400, malformed=0.005)
    result = run(dags, "batch_ingest", day)
    assert result.state == "success", result
    assert states(result) == {
        **{task: "success" for task in states(result)},
        "files_to_failure": "skipped",
    }
    taxi = f"{bq.project}.taxi"
    loaded = count(bq, f"SELECT COUNT(*) FROM `{taxi}.taxi_trips` WHERE DATE(pickup_datetime) = '{day}'")
    rejected = count(
        bq, f"SELECT COUNT(*) FROM `{taxi}.taxi_trips_dead_letter` WHERE partition_date = '{day}'"
    )
    assert loaded + rejected == trips.rows and rejected == trips.rows - trips.valid
    assert count(bq, f"SELECT SUM(trips) FROM `{taxi}.trips_by_zone_hour`") >= loaded
    root, _ = lake
    assert not list((root / f"landing/taxi_trips/{day}").glob("*"))
    assert (root / f"processed/success/taxi_trips/{day}/trips.csv").exists()


def test_a_failed_data_quality_check_fails_the_run_naming_the_check_and_sets_the_files_aside(
    dags, lake, capfd
):
    day = date(2019, 4, 3)
    landed_day(lake, day, 300, malformed=0.05)  # 5 % rejected: over the 1 % the check allows
    result = run(dags, "batch_ingest", day)
    assert result.state == "failed"
    assert states(result)["check_day_loaded"] == "failed"
    assert states(result)["files_to_success"] == "upstream_failed"
    assert states(result)["files_to_failure"] == "success"
    assert "check taxi_trips.dead_letter_rate failed" in capfd.readouterr().out
    root, _ = lake
    assert (root / f"processed/failure/taxi_trips/{day}/trips.csv").exists()


def test_a_task_that_fails_once_is_retried_and_the_run_succeeds(dags, lake, monkeypatch):
    """Issue 9's fault test for DAGs: moving the files fails once (a transient error), the retry moves them."""

    day = date(2019, 4, 4)
    landed_day(lake, day, 200, malformed=0.0)
    real, calls = local_steps.move_files, []

    def flaky(source: str, destination: str):
        calls.append(source)
        if len(calls) == 1:
            raise ConnectionError("the storage emulator is restarting")
        return real(source, destination)

    monkeypatch.setattr(local_steps, "move_files", flaky)
    result = run(dags, "batch_ingest", day, files_to_success={"retry_delay": timedelta(seconds=1)})
    assert result.state == "success"
    [moved] = [t for t in result.tasks if t.task_id == "files_to_success"]
    assert (moved.state, moved.tries) == ("success", 2)
    assert (lake[0] / f"processed/success/taxi_trips/{day}/trips.csv").exists()


def test_a_failing_spark_job_runs_once_per_airflow_try_and_its_cluster_step_still_runs(
    dags, monkeypatch, tmp_path
):
    """Airflow owns a DAG task's retries: each try runs the job once (run_local's own retry is the CLI's),
    so a job that keeps failing runs 1 + retries times, as the gcp DAG's Dataproc job does."""

    runs = tmp_path / "runs.log"
    failing = f"open({str(runs)!r}, 'a').write('run\\n'); raise SystemExit(1)"
    monkeypatch.setattr(jobs, "local_command", lambda job, args: [sys.executable, "-c", failing])
    monkeypatch.setattr(jobs, "sleep", lambda _: None)  # were run_local to run it again: no pause
    result = run(dags, "spark_kdd", date(2019, 4, 10), kdd_analysis={"retry_delay": timedelta(seconds=1)})
    assert result.state == "failed"
    [task] = [t for t in result.tasks if t.task_id == "kdd_analysis"]
    assert dags["spark_kdd"].get_task("kdd_analysis").retries == 2  # operators.DEFAULT_ARGS
    assert (task.state, task.tries) == ("failed", 3)
    assert runs.read_text().splitlines() == ["run"] * 3
    assert states(result)["delete_cluster"] == "success"


@pytest.mark.spark
def test_spark_kdd_runs_the_analysis_between_its_no_op_cluster_steps_then_flags_the_rarest(dags, lake, bq):
    root, _made = lake
    kdd = write_kdd(root / "landing/kdd/kddcup.data.gz", 1000, malformed=0.003)
    day = date(2019, 4, 8)
    result = run(dags, "spark_kdd", day)
    assert result.state == "success", result
    assert all(state == "success" for state in states(result).values())
    ran = [t.task_id for t in result.tasks]
    body = ["create_cluster", "kdd_analysis", "train_connection_clusters", "flag_rare_connections"]
    assert [t for t in ran if t != "delete_cluster"] == body  # the SQL after the job, in the flow's order
    assert sorted(ran) == sorted([*body, "delete_cluster"])  # the teardown: once the job is done
    written = objects(f"kdd/analysis/{day}/report/")  # in the local bucket, through the GCS connector
    assert {"report.md", "attack_stats.png"} <= {name.rsplit("/", 1)[1] for name in written}
    kdd_dataset = f"{bq.project}.kdd"
    assert count(bq, f"SELECT SUM(connections) FROM `{kdd_dataset}.attack_stats`") == kdd.valid
    # every valid connection, one row each; the malformed lines never reach it
    assert count(bq, f"SELECT COUNT(*) FROM `{kdd_dataset}.kdd_connections`") == kdd.valid
    labels = bq.query(f"SELECT label, COUNT(*) AS n FROM `{kdd_dataset}.kdd_connections` GROUP BY label")
    assert {r["label"]: r["n"] for r in labels.result()} == kdd.labels
    # contamination 0.01: the 1 % of connections furthest from their cluster's centre, each one flagged
    rare = [dict(r.items()) for r in bq.query(f"SELECT * FROM `{kdd_dataset}.rare_connections`").result()]
    assert abs(len(rare) - kdd.valid / 100) <= 3, len(rare)
    flagged = run_sql(
        "SELECT COUNTIF(is_anomaly) AS flagged, MIN(IF(is_anomaly, normalized_distance, NULL)) AS nearest "
        "FROM ML.DETECT_ANOMALIES(MODEL `{{ project }}.{{ kdd_dataset }}.connection_clusters`, "
        "STRUCT(0.01 AS contamination), TABLE `{{ project }}.{{ kdd_dataset }}.kdd_connections`)",
        config=load_config(target="local"),
    ).rows[0]
    assert flagged["flagged"] == len(rare)
    assert min(r["normalized_distance"] for r in rare) == pytest.approx(flagged["nearest"])
    assert {r["centroid_id"] for r in rare} <= {1, 2, 3, 4}


@pytest.mark.spark
def test_spark_recommendations_writes_five_per_user_to_the_lake_and_bigquery(dags, lake, bq):
    root, _made = lake
    rentals = write_rentals(root / "landing/rentals", accommodations=30, users=8)
    day = date(2019, 4, 9)
    result = run(dags, "spark_recommendations", day)
    assert result.state == "success"
    assert [name for name in objects(f"rentals/recommendations/{day}/") if name.endswith(".parquet")]
    recommendations = f"{bq.project}.rentals.recommendations"
    assert count(bq, f"SELECT COUNT(*) FROM `{recommendations}`") == 5 * rentals.users


def test_bqml_purchase_trains_evaluates_gates_and_predicts(dags, lake, bq, tmp_path):
    config = load_config(target="local")
    sessions = write_sessions(tmp_path / "ga_sessions.jsonl", 600)
    spec = table_spec("ga_sessions")
    bq.delete_table(spec.table_id(config), not_found_ok=True)
    ensure_table(bq, spec, spec.table_id(config))
    assert load_json_lines(bq, sessions.path, spec.table_id(config)) == sessions.sessions

    result = run(dags, "bqml_purchase", None, {"min_roc_auc": 0.5})  # no logical date: a manual trigger
    assert result.state == "success", result
    assert all(state == "success" for state in states(result).values())
    ecommerce = f"{bq.project}.ecommerce"
    assert count(bq, f"SELECT COUNT(*) FROM `{ecommerce}.purchase_predictions`") > 0

    gated = run(dags, "bqml_purchase", None, {"min_roc_auc": 1.01})  # no model is that good
    assert states(gated)["roc_auc_gate"] == "failed" and states(gated)["predict"] == "upstream_failed"


def test_taxi_streaming_ops_starts_the_job_and_finds_its_aggregates_fresh(dags, bq):
    job, started, done = "gcpipe-taxi-streaming", datetime.now(UTC), threading.Event()
    stop_streaming(job)  # a job an earlier run left: this run must start it

    def publish() -> None:  # rides until the run ends: the job reads them once it has started
        while not done.is_set():
            publish_rides(load_names()["rides_topic"], 20, 40)

    rides = threading.Thread(target=publish, daemon=True)
    rides.start()
    try:
        result = run(
            dags,
            "taxi_streaming_ops",
            None,
            {"local_seconds": 120},
            check_freshness={
                "retries": 8,
                "retry_delay": timedelta(seconds=5),
                "max_retry_delay": timedelta(seconds=10),
            },
        )
        again = run(dags, "taxi_streaming_ops", None, {"local_seconds": 120})  # the next scheduled run
    finally:
        done.set()
        stop_streaming(job)
        rides.join(timeout=30)
    assert result.state == "success", result
    assert states(result) == {
        "find_streaming_job": "success",
        "start_streaming_job": "success",
        "update_streaming_job": "skipped",
        "check_freshness": "success",
    }
    assert states(again) == {  # the job runs and no update was asked for: it is left alone, still fresh
        "find_streaming_job": "success",
        "start_streaming_job": "skipped",
        "update_streaming_job": "skipped",
        "check_freshness": "success",
    }
    newest = next(
        iter(bq.query(f"SELECT MAX(emitted_at) FROM `{bq.project}.taxi.rides_per_minute`").result())
    )[0]
    assert newest > started - timedelta(seconds=5)
