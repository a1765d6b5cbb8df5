"""The DAGs on the gcp target. Google Cloud cannot be reached here, so the Google hooks are mocked and the
tests assert the exact requests each task would send: the job cluster, the job with its gs:// URIs, the
Serverless batch, the Dataflow launch, the BigQuery jobs and their destination tables, the GCS moves."""

from __future__ import annotations

import re
from datetime import date, timedelta
from types import SimpleNamespace
from unittest import mock

import pytest

from gcpipe.core.config import PROJECT_ROOT
from gcpipe.orchestration.airflow_home import logical_date, outcome
from tests.dags.conftest import LAKE, PROJECT, REGION, TAG, parse, target

STAGED = f"gs://acme-data-prod-staging/code/{TAG}"  # where deploy dags staged the Spark code of version TAG
CHECKPOINTS = {"spark.checkpoint.dir": "gs://acme-data-prod-staging/dataproc/checkpoints"}
DAY = date(2019, 4, 8)
KDD_RUN = {  # spark_kdd's job on a cluster or as a batch, for DAY: the staged code, the run's arguments
    "main_python_file_uri": f"{STAGED}/kdd_analysis.py",
    "args": [
        "--input",
        f"gs://{LAKE}/landing/kdd/kddcup.data.gz",
        "--output",
        f"gs://{LAKE}/kdd/analysis/2019-04-08",
        "--bq_table",
        f"{PROJECT}.kdd.attack_stats",
        "--driver-log-levels",
        "root=WARN,org.apache.spark=WARN,spark_jobs=INFO",
    ],
    "python_file_uris": [f"{STAGED}/gcpipe_spark.zip"],
    "file_uris": [
        f"{STAGED}/{schema}.json"
        for schema in (
            "kdd_connections",
            "kdd_attack_stats",
            "kdd_connections_by_protocol",
            "kdd_connections_by_label",
            "kdd_connections_by_category",
            "kdd_top_attacked_services",
            "dead_letter",
            "tables",
        )
    ],
}
# the jobs' declared driver log levels (gcpipe.spark.jobs), as the client library's enum numbers
DRIVER_LOG_LEVELS = {"driver_log_levels": {"root": 5, "org.apache.spark": 5, "spark_jobs": 4}}
NAMES = {
    "project": PROJECT,
    "taxi_dataset": "taxi",
    "ecommerce_dataset": "ecommerce",
    "kdd_dataset": "kdd",
}  # the gcp target's


def sql_text(path: str) -> str:
    """``sql/<path>`` with its names filled as the gcp target names them."""
    return re.sub(r"\{\{ (\w+) \}\}", lambda name: NAMES[name[1]], (PROJECT_ROOT / "sql" / path).read_text())


def query_job(path: str, label: str, **parameters: tuple[str, str]) -> dict:
    """The configuration of the query job that runs ``sql/<path>`` with ``parameters``: {name: (type, value)}."""
    text = sql_text(path).removesuffix(
        "\n"
    )  # the operator renders it with Jinja, which drops the last newline
    query = {"query": text, "useLegacySql": False}
    if parameters:
        query["parameterMode"] = "NAMED"
        query["queryParameters"] = [
            {"name": name, "parameterType": {"type": kind}, "parameterValue": {"value": value}}
            for name, (kind, value) in sorted(parameters.items())
        ]
    return {"query": query, "labels": {"app": "gcpipe", "sql": label}}


def assert_check_job(configuration: dict, path: str, label: str, **parameters: tuple[str, str]) -> None:
    """A check's job: its one statement, inside the query that fails naming the check when it counts any."""
    statement = "\n".join(line for line in sql_text(path).splitlines() if not line.startswith("--"))
    query = configuration["query"].pop("query")
    assert query.startswith(
        """SELECT check_name, IF(failures > 0, ERROR(FORMAT("check %s failed: %'d %s%s", """
    )
    assert query.endswith(f"FROM (\n{statement.strip().removesuffix(';')}\n) AS c")
    expected = query_job(path, label, **parameters)
    expected["query"].pop("query")
    assert configuration == expected


@pytest.fixture(scope="module")
def dags():
    return parse("gcp")


def rendered(dag, task_id: str, day: date | None = DAY, conf: dict | None = None):
    """The task with its templates rendered for a run of ``day`` (None: triggered without a logical date)."""
    from datetime import UTC, datetime

    task = dag.get_task(task_id).prepare_for_execution()
    run = SimpleNamespace(
        logical_date=logical_date(day), run_after=datetime(2019, 4, 10, 9, tzinfo=UTC), run_id="manual__run-1"
    )
    params = {**{name: param.value for name, param in dag.params.items()}, **(conf or {})}
    with target("gcp"):
        context = {"dag_run": run, "params": params, "ti": SimpleNamespace(try_number=1)}
        task.render_template_fields(context, jinja_env=dag.get_template_env())
    return task


# -- Spark on a job cluster: run with the Dataproc hook mocked ----------------------------------------


@pytest.fixture
def dataproc():
    from google.cloud.dataproc_v1 import Cluster, ClusterStatus, Job, JobReference

    with mock.patch("airflow.providers.google.cloud.operators.dataproc.DataprocHook") as hook_class:
        hook = hook_class.return_value
        hook.project_id = PROJECT
        hook.get_cluster.return_value = Cluster(status=ClusterStatus(state=ClusterStatus.State.RUNNING))
        hook.submit_job.return_value = Job(reference=JobReference(job_id="job-1", project_id=PROJECT))
        yield hook


def run_gcp(dag, day: date | None):
    with target("gcp"):
        return outcome(dag.test(logical_date=logical_date(day)))


@pytest.mark.usefixtures("airflow_db")
def test_spark_kdd_creates_a_cluster_of_its_own_submits_the_job_on_it_and_deletes_it(dags, dataproc):
    from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator

    queries = []  # BigQuery cannot run here: the jobs the SQL steps would insert, in the order they ran

    def insert(operator, context):
        queries.append((operator.task_id, dataproc.wait_for_job.call_count, operator.configuration))

    with mock.patch.object(BigQueryInsertJobOperator, "execute", autospec=True, side_effect=insert):
        result = run_gcp(dags["spark_kdd"], DAY)
    assert result.state == "success"
    # after the job (it had been waited for), k-means then ML.DETECT_ANOMALIES, each its file's query
    assert queries == [
        (
            "train_connection_clusters",
            1,
            query_job("ml/kdd_connection_clusters.sql", "ml-kdd_connection_clusters"),
        ),
        ("flag_rare_connections", 1, query_job("ml/kdd_rare_connections.sql", "ml-kdd_rare_connections")),
    ]
    assert f"`{PROJECT}.kdd.kdd_connections`" in queries[0][2]["query"]["query"]

    create = dataproc.create_cluster.call_args.kwargs
    name = create["cluster_name"]
    assert re.fullmatch(r"gcpipe-kdd-analysis-20190408-[0-9a-f]{8}", name)
    assert (create["project_id"], create["region"]) == (PROJECT, REGION)
    gce = create["cluster_config"]["gce_cluster_config"]
    assert gce["service_account"] == f"gcpipe-dataproc@{PROJECT}.iam.gserviceaccount.com"
    assert gce["subnetwork_uri"] == f"regions/{REGION}/subnetworks/gcpipe" and gce["internal_ip_only"] is True
    assert create["cluster_config"]["software_config"]["image_version"] == "3.0-debian12"
    assert create["labels"]["job"] == "kdd-analysis"

    submitted = dataproc.submit_job.call_args.kwargs
    assert (submitted["project_id"], submitted["region"]) == (PROJECT, REGION)
    assert submitted["job"] == {
        "reference": {"project_id": PROJECT},
        "placement": {"cluster_name": name},
        "pyspark_job": {**KDD_RUN, "properties": CHECKPOINTS, "logging_config": DRIVER_LOG_LEVELS},
        "labels": create["labels"],
    }
    dataproc.wait_for_job.assert_called_once()
    delete = dataproc.delete_cluster.call_args.kwargs
    assert (delete["cluster_name"], delete["project_id"], delete["region"]) == (name, PROJECT, REGION)


@pytest.mark.usefixtures("airflow_db")
def test_a_failed_spark_job_still_deletes_its_cluster_and_fails_the_run(dags, dataproc):
    from airflow.providers.common.compat.sdk import AirflowException

    dataproc.wait_for_job.side_effect = AirflowException("Job failed:\nreference {job_id: 'job-1'}")
    dag = dags["spark_recommendations"]
    dag.get_task("als_recommend").retries = 0
    result = run_gcp(dag, DAY)
    assert result.state == "failed"  # the teardown's success does not hide the job's failure
    states = {t.task_id: t.state for t in result.tasks}
    assert states == {"create_cluster": "success", "als_recommend": "failed", "delete_cluster": "success"}
    name = dataproc.create_cluster.call_args.kwargs["cluster_name"]
    assert dataproc.delete_cluster.call_args.kwargs["cluster_name"] == name
    assert name.startswith("gcpipe-als-recommend-20190408-")
    job = dataproc.submit_job.call_args.kwargs["job"]
    assert job["placement"] == {"cluster_name": name}
    assert job["pyspark_job"] == {
        "main_python_file_uri": f"{STAGED}/als_recommend.py",
        "args": [
            "--source",
            f"gs://{LAKE}/landing/rentals",
            "--sink",
            f"gs://{LAKE}/rentals/recommendations/2019-04-08",
            "--sink",
            f"bq://{PROJECT}.rentals",
            "--driver-log-levels",
            "root=WARN,org.apache.spark=WARN,spark_jobs=INFO",
        ],
        "python_file_uris": [f"{STAGED}/gcpipe_spark.zip"],
        "file_uris": [
            f"{STAGED}/{schema}.json" for schema in ("accommodations", "ratings", "recommendations", "tables")
        ],
        "jar_file_uris": [f"{STAGED}/postgresql-42.7.8.jar"],
        "properties": CHECKPOINTS,
        "logging_config": DRIVER_LOG_LEVELS,
    }


def test_serverless_runs_the_job_as_a_batch_and_keeps_the_graph(monkeypatch):
    bag = parse("gcp", GCPIPE_SPARK_SERVERLESS="1")
    dag = bag["spark_kdd"]
    assert {t.task_id: t.task_type for t in dag.tasks} == {
        "create_cluster": "EmptyOperator",
        "kdd_analysis": "DataprocCreateBatchOperator",
        "delete_cluster": "EmptyOperator",
        "train_connection_clusters": "BigQueryInsertJobOperator",
        "flag_rare_connections": "BigQueryInsertJobOperator",
    }
    assert dag.get_task("train_connection_clusters").upstream_task_ids == {"kdd_analysis"}
    batch = rendered(dag, "kdd_analysis")
    assert re.fullmatch(r"gcpipe-kdd-analysis-20190408-[0-9a-f]{8}-try1", batch.batch_id)
    assert batch.batch["pyspark_batch"] == KDD_RUN
    assert CHECKPOINTS.items() <= batch.batch["runtime_config"]["properties"].items()
    assert batch.batch["environment_config"]["execution_config"]["service_account"] == (
        f"gcpipe-dataproc@{PROJECT}.iam.gserviceaccount.com"
    )


# -- the other DAGs: the requests their operators hand the hooks, rendered for a run -------------------


def test_batch_ingest_waits_on_gcs_runs_the_flex_template_on_dataflow_and_moves_the_files(dags):
    dag = dags["batch_ingest"]
    sensor = rendered(dag, "wait_for_files")
    assert (sensor.task_type, sensor.bucket, sensor.prefix) == (
        "GCSObjectsWithPrefixExistenceSensor",
        LAKE,
        "landing/taxi_trips/2019-04-08/",
    )
    assert sensor.mode == "reschedule"

    ingest = rendered(dag, "ingest_csv")
    assert (ingest.task_type, ingest.runner, ingest.py_file, ingest.py_options) == (
        "BeamRunPythonPipelineOperator",
        "DataflowRunner",
        "pipelines.csv_ingest",
        ["-m"],
    )
    options = dict(ingest.pipeline_options)
    image = options.pop("sdk_container_image")
    assert image == f"{REGION}-docker.pkg.dev/{PROJECT}/gcpipe/csv-ingest:{TAG}"
    assert options == {
        "input": f"gs://{LAKE}/landing/taxi_trips/2019-04-08/*.csv*",
        "schema": "taxi_trips",
        "table": f"{PROJECT}.taxi.taxi_trips",
        "partition_date": "2019-04-08",
        "output": f"gs://{LAKE}/ingest/taxi_trips/2019-04-08",
        "temp_location": "gs://acme-data-prod-staging/temp",
        "staging_location": "gs://acme-data-prod-staging/staging",
        "subnetwork": f"regions/{REGION}/subnetworks/gcpipe",
        "no_use_public_ips": True,
        "sdk_location": "container",
    }
    dataflow = ingest.dataflow_config
    assert re.fullmatch(r"gcpipe-csv-ingest-20190408-[0-9a-f]{8}", dataflow.job_name)
    assert (
        dataflow.project_id,
        dataflow.location,
        dataflow.append_job_name,
        dataflow.wait_until_finished,
    ) == (
        PROJECT,
        REGION,
        False,
        True,
    )
    assert dataflow.service_account == f"gcpipe-dataflow@{PROJECT}.iam.gserviceaccount.com"

    def configuration(task_id: str) -> dict:
        task = rendered(dag, task_id)
        assert (task.task_type, task.project_id, task.location) == (
            "BigQueryInsertJobOperator",
            PROJECT,
            REGION,
        )
        return task.configuration

    # the tables' DDL and seeds, the transform: the files' SQL, names filled, into taxi.<table>
    assert configuration("create_zones_table") == query_job("ddl/taxi_zones.sql", "ddl-taxi_zones")
    assert f"CREATE TABLE IF NOT EXISTS `{PROJECT}.taxi.taxi_zones`" in sql_text("ddl/taxi_zones.sql")
    assert configuration("seed_zones") == query_job("seeds/taxi_zones.sql", "seeds-taxi_zones")
    assert f"INSERT INTO `{PROJECT}.taxi.taxi_zones`" in sql_text("seeds/taxi_zones.sql")
    summary = "transforms/taxi_trips_by_zone_hour.sql"
    assert configuration("build_trips_by_zone_hour") == query_job(
        summary, "transforms-taxi_trips_by_zone_hour"
    )
    assert f"`{PROJECT}.taxi.trips_by_zone_hour`" in sql_text(summary)
    assert_check_job(
        configuration("check_day_loaded"),
        "checks/taxi_trips_day_loaded.sql",
        "checks-taxi_trips_day_loaded",
        max_dead_letter_percent=("STRING", "1.0"),
        partition_date=("STRING", "2019-04-08"),
    )
    assert_check_job(
        configuration("check_trips_by_zone_hour"),
        "checks/trips_by_zone_hour_row_counts.sql",
        "checks-trips_by_zone_hour_row_counts",
    )

    for task_id, outcome_ in (("files_to_success", "success"), ("files_to_failure", "failure")):
        move = rendered(dag, task_id)
        assert (move.source_bucket, move.source_object, move.destination_object, move.move_object) == (
            LAKE,
            "landing/taxi_trips/2019-04-08/",
            f"processed/{outcome_}/taxi_trips/2019-04-08/",
            True,
        )


def test_a_run_without_a_logical_date_works_on_the_day_it_was_triggered_or_the_date_param(dags):
    dag = dags["batch_ingest"]
    assert rendered(dag, "wait_for_files", day=None).prefix == "landing/taxi_trips/2019-04-10/"
    assert rendered(dag, "wait_for_files", day=None, conf={"date": "2019-03-01"}).prefix == (
        "landing/taxi_trips/2019-03-01/"
    )


def test_bqml_purchase_sends_the_flow_sql_and_gates_on_roc_auc(dags):
    dag = dags["bqml_purchase"]
    for task_id, path, dates, writes in (
        (
            "train_model",
            "ml/purchase_model.sql",
            {"train_from": "2016-08-01", "train_to": "2017-04-30"},
            f"CREATE OR REPLACE MODEL `{PROJECT}.ecommerce.purchase_model`",
        ),
        (
            "predict",
            "ml/purchase_predictions.sql",
            {"predict_from": "2017-05-01", "predict_to": "2017-07-31"},
            f"`{PROJECT}.ecommerce.purchase_predictions`",
        ),
    ):
        configuration = rendered(dag, task_id).configuration
        label = path.removesuffix(".sql").replace("/", "-")
        assert configuration == query_job(path, label, **{name: ("DATE", day) for name, day in dates.items()})
        assert writes in configuration["query"]["query"]
    assert_check_job(
        rendered(dag, "roc_auc_gate", conf={"min_roc_auc": 0.8}).configuration,
        "checks/purchase_model_roc_auc.sql",
        "checks-purchase_model_roc_auc",
        eval_from=("DATE", "2017-05-01"),
        eval_to=("DATE", "2017-07-31"),
        min_roc_auc=("STRING", "0.8"),
    )
    assert [t.task_id for t in dag.get_task("predict").upstream_list] == ["roc_auc_gate"]


def test_taxi_streaming_ops_starts_or_updates_the_flex_template_job_in_place(dags):
    dag = dags["taxi_streaming_ops"]
    start, update = rendered(dag, "start_streaming_job"), rendered(dag, "update_streaming_job")
    assert start.body["launchParameter"]["jobName"] == "gcpipe-taxi-streaming"
    assert "update" not in start.body["launchParameter"] and update.body["launchParameter"]["update"] is True
    parameters = update.body["launchParameter"]["parameters"]
    assert parameters["input_subscription"] == f"projects/{PROJECT}/subscriptions/rides"
    assert parameters["output_dataset"] == f"{PROJECT}.taxi"
    assert (start.wait_until_finished, start.append_job_name) == (False, False)
    freshness = rendered(dag, "check_freshness")
    assert f"`{PROJECT}.taxi.rides_per_minute`" in freshness.configuration["query"]["query"]
    assert freshness.retries == 4 and freshness.retry_delay == timedelta(minutes=1)

    with mock.patch("airflow.providers.google.cloud.hooks.dataflow.DataflowHook") as hook_class:
        find = dag.get_task("find_streaming_job")
        hook_class.return_value.is_job_dataflow_running.return_value = True
        assert find.python_callable(**find.op_kwargs, params={"update": False}) == ["check_freshness"]
        assert find.python_callable(**find.op_kwargs, params={"update": True}) == [
            "update_streaming_job",
            "check_freshness",
        ]  # only when asked: a Dataflow update replaces a healthy job
        hook_class.return_value.is_job_dataflow_running.assert_called_with(
            name="gcpipe-taxi-streaming", project_id=PROJECT, location=REGION
        )
        hook_class.return_value.is_job_dataflow_running.return_value = False
        assert find.python_callable(**find.op_kwargs, params={"update": True}) == [
            "start_streaming_job",
            "check_freshness",
        ]
