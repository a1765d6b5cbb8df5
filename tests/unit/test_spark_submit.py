"""gcpipe spark submit: the Dataproc requests it would send, checked against the API's own messages.

Dataproc cannot be reached here: the workflow template and the batch are validated by parsing them into
google.cloud.dataproc_v1 messages (an unknown or misspelt field fails), and the real (non dry) run calls a
gcloud stand-in that records exactly what it was asked (tests/unit/test_deploy.py's).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import zipfile

import pytest
import yaml
from google.cloud import dataproc_v1

from gcpipe.core.config import PROJECT_ROOT, Config
from gcpipe.deploy import dataproc
from gcpipe.deploy.naming import TERRAFORM_DIR
from gcpipe.spark.jobs import JOBS, SparkJobError, cloudsql_args, job_args
from tests.unit.test_deploy import cloud  # noqa: F401 (the fixture: gcloud stand-in, state dir, gcp settings)
from tests.unit.test_terraform import blocks, resources

PROJECT, REGION = "acme-data-prod", "europe-west1"
GCP = Config(
    target="gcp", project=PROJECT, region=REGION, lake_bucket="acme-lake", staging_bucket="acme-staging"
)
TAG = "v1"
STAGED = f"gs://acme-staging/code/{TAG}"  # the code of version TAG


def gcpipe(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gcpipe.app.cli", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_the_workflow_template_creates_a_job_cluster_runs_the_job_on_gcs_and_is_a_valid_request():
    job = JOBS["kdd_analysis"]
    template = dataproc.workflow_template(job, GCP, job_args(job, GCP), tag=TAG)
    dataproc_v1.WorkflowTemplate.from_json(json.dumps(template))  # the API's message: no unknown field
    cluster = template["placement"]["managedCluster"]
    assert cluster["clusterName"] == "gcpipe-kdd-analysis"
    config = cluster["config"]
    assert config["softwareConfig"]["imageVersion"] == "3.0-debian12"
    assert (config["masterConfig"]["numInstances"], config["masterConfig"]["machineTypeUri"]) == (
        1,
        "n2-standard-4",
    )
    assert (config["workerConfig"]["numInstances"], config["workerConfig"]["machineTypeUri"]) == (
        2,
        "n2-standard-4",
    )
    assert (
        config["gceClusterConfig"]["serviceAccount"] == f"gcpipe-dataproc@{PROJECT}.iam.gserviceaccount.com"
    )
    assert config["gceClusterConfig"]["subnetworkUri"] == f"regions/{REGION}/subnetworks/gcpipe"
    assert config["gceClusterConfig"]["internalIpOnly"] is True
    [step] = template["jobs"]
    assert step["stepId"] == "kdd-analysis"
    assert step["pysparkJob"] == {
        "mainPythonFileUri": f"{STAGED}/kdd_analysis.py",
        "args": [
            "--input",
            "gs://acme-lake/landing/kdd/kddcup.data.gz",
            "--output",
            "gs://acme-lake/kdd/analysis",
            "--bq_table",
            f"{PROJECT}.kdd.attack_stats",
            "--driver-log-levels",
            "root=WARN,org.apache.spark=WARN,spark_jobs=INFO",
        ],
        "pythonFileUris": [f"{STAGED}/gcpipe_spark.zip"],
        "fileUris": [*(f"{STAGED}/{name}.json" for name in job.schemas), f"{STAGED}/tables.json"],
        "properties": {"spark.checkpoint.dir": "gs://acme-staging/dataproc/checkpoints"},
        "loggingConfig": {
            "driverLogLevels": {"root": "WARN", "org.apache.spark": "WARN", "spark_jobs": "INFO"}
        },
    }


def test_the_driver_log_levels_a_user_gives_reach_the_job_and_every_dataproc_request(monkeypatch):
    """--driver-log-levels replaces the job's declaration (SparkJob.driver_log_levels) in its arguments and
    in the requests: the workflow template's and the cluster job's loggingConfig, and for a Serverless batch
    (no loggingConfig in the API) the root level as spark.log.level; each a valid Dataproc message."""
    from gcpipe.orchestration.gcp_requests import dataproc_job

    monkeypatch.setenv("GCPIPE_IMAGE_TAG", TAG)
    job = JOBS["kdd_analysis"]
    args = job_args(job, GCP, ["--driver_log_levels", "root=INFO,org.apache.spark=warn,com.google=DEBUG"])
    # once, in place: the user's levels over the declaration's (spark_jobs=INFO kept), either spelling
    assert args[-2:] == [
        "--driver-log-levels",
        "root=INFO,org.apache.spark=WARN,spark_jobs=INFO,com.google=DEBUG",
    ]
    assert args.count("--driver-log-levels") == 1 and "--driver_log_levels" not in args
    expected = {"root": "INFO", "org.apache.spark": "WARN", "spark_jobs": "INFO", "com.google": "DEBUG"}

    template = dataproc.workflow_template(job, GCP, args, tag=TAG)
    message = dataproc_v1.WorkflowTemplate.from_json(json.dumps(template))
    assert template["jobs"][0]["pysparkJob"]["loggingConfig"] == {"driverLogLevels": expected}
    assert dict(message.jobs[0].pyspark_job.logging_config.driver_log_levels) == {
        name: dataproc_v1.LoggingConfig.Level[level] for name, level in expected.items()
    }
    assert dataproc.cluster_job(job, GCP, args, tag=TAG)["loggingConfig"] == {"driverLogLevels": expected}
    batch = dataproc.batch_request(job, GCP, args, tag=TAG)
    dataproc_v1.Batch.from_json(json.dumps(batch))
    assert batch["runtimeConfig"]["properties"]["spark.log.level"] == "INFO"
    assert batch["pysparkBatch"]["args"] == args  # the job applies the per-logger levels itself
    # the DAG's request (DataprocSubmitJobOperator) without user arguments: the job's declaration
    submitted = dataproc_job("kdd_analysis", GCP, [], "c")
    assert submitted["pyspark_job"]["logging_config"] == {
        "driver_log_levels": {
            name: dataproc_v1.LoggingConfig.Level[level].value
            for name, level in {"root": "WARN", "org.apache.spark": "WARN", "spark_jobs": "INFO"}.items()
        }
    }
    with pytest.raises(SparkJobError, match="--driver-log-levels: 'root=LOUD' is not LOGGER=LEVEL"):
        job_args(job, GCP, ["--driver-log-levels=root=LOUD"])


def test_the_serverless_batch_for_als_with_cloud_sql_is_a_valid_request():
    job = JOBS["als_recommend"]
    config = GCP.replace(
        jdbc_url="jdbc:postgresql://10.0.0.3:5432/rentals",
        jdbc_password_secret=f"projects/{PROJECT}/secrets/pg/versions/latest",
    )
    args = job_args(job, config, cloudsql_args(config), ["--sink", "gs://acme-lake/recs"])
    batch = dataproc.batch_request(job, config, args, tag=TAG)
    dataproc_v1.Batch.from_json(json.dumps(batch))
    assert batch["runtimeConfig"]["version"] == "3.0"
    assert batch["environmentConfig"]["executionConfig"]["serviceAccount"].startswith("gcpipe-dataproc@")
    assert batch["pysparkBatch"]["jarFileUris"] == [f"{STAGED}/postgresql-42.7.8.jar"]
    assert batch["pysparkBatch"]["args"] == [
        "--source",
        "jdbc:postgresql://10.0.0.3:5432/rentals",
        "--sink",
        "gs://acme-lake/recs",
        "--driver-log-levels",
        "root=WARN,org.apache.spark=WARN,spark_jobs=INFO",
        "--rejected",
        "gs://acme-lake/rentals/rejected",
        "--jdbc_user",
        "gcpipe",
        "--jdbc_password_secret",
        f"projects/{PROJECT}/secrets/pg/versions/latest",
    ]
    assert batch["runtimeConfig"]["properties"]["spark.log.level"] == "WARN"
    command = dataproc.batch_command(batch, config)
    assert command[:6] == ("gcloud", "dataproc", "batches", "submit", "pyspark", f"{STAGED}/als_recommend.py")
    assert f"--region={REGION}" in command and "--version=3.0" in command
    assert command[command.index("--") + 1 :] == tuple(args)


def test_dry_run_prints_the_plan_with_the_exact_template_and_gcloud_commands(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GCPIPE_CONFIG": str(tmp_path / "none.toml"),
        "GCPIPE_STATE_DIR": str(tmp_path / "state"),
        "GCPIPE_PROJECT": PROJECT,
        "GCPIPE_REGION": REGION,
        "GCPIPE_LAKE_BUCKET": "acme-lake",
        "GCPIPE_STAGING_BUCKET": "acme-staging",
        "GCPIPE_IMAGE_TAG": TAG,
    }
    (tmp_path / "none.toml").write_text("")
    done = gcpipe(
        "spark",
        "submit",
        "kdd_analysis",
        "--target",
        "gcp",
        "--dry-run",
        "--input=gs://acme-lake/k.gz",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    template_file = tmp_path / "state" / "dataproc" / "kdd_analysis.workflow.yaml"
    assert not (tmp_path / "state" / "dataproc").exists()  # a dry run writes nothing
    heredoc = re.search(r"<<'EOF'\n(.*?)\nEOF\n", done.stdout, re.DOTALL)[1]
    job = JOBS["kdd_analysis"]
    args = job_args(job, GCP, ["--input", "gs://acme-lake/k.gz"])
    assert yaml.safe_load(heredoc) == dataproc.workflow_template(job, GCP, args, tag=TAG)
    lines = done.stdout.splitlines()
    assert (
        f"gcloud dataproc workflow-templates instantiate-from-file --file={template_file} --region={REGION} "
        f"--project={PROJECT}"
    ) in lines
    staged = next(line for line in lines if line.startswith("gcloud storage cp "))
    assert shlex.split(staged) == [
        "gcloud",
        "storage",
        "cp",
        "spark_jobs/kdd_analysis.py",
        str(tmp_path / "state/dataproc/gcpipe_spark.zip"),
        *(f"sql/schemas/{name}.json" for name in job.schemas),
        "sql/tables.json",
        f"{STAGED}/",
        f"--project={PROJECT}",
    ]


def test_a_real_submit_runs_exactly_the_printed_plan(cloud, monkeypatch):  # noqa: F811
    monkeypatch.setenv("GCPIPE_LAKE_BUCKET", f"{PROJECT}-lake")
    printed = gcpipe("spark", "submit", "als_recommend", "--target", "gcp", "--serverless", "--dry-run")
    assert printed.returncode == 0 and not cloud.calls()
    done = gcpipe("spark", "submit", "als_recommend", "--target", "gcp", "--serverless")
    assert done.returncode == 0, done.stderr
    calls = cloud.calls()
    commands = [line for line in printed.stdout.splitlines() if line.startswith("gcloud ")]
    assert [shlex.join(call) for call in calls] == commands
    assert str(cloud.state_dir / "dataproc" / "gcpipe_spark.zip") in calls[0]
    assert calls[0][-2] == f"gs://{PROJECT}-staging/code/abc123/"  # the code of version GCPIPE_IMAGE_TAG
    assert (cloud.state_dir / "dataproc" / "gcpipe_spark.zip").exists()
    assert calls[1][calls[1].index("--") + 1 :] == [
        "--source",
        f"gs://{PROJECT}-lake/landing/rentals",
        "--sink",
        f"gs://{PROJECT}-lake/rentals/recommendations",
        "--sink",
        f"bq://{PROJECT}.rentals",
        "--driver-log-levels",
        "root=WARN,org.apache.spark=WARN,spark_jobs=INFO",
    ]


def test_the_staged_code_never_expires_as_the_staging_bucket_s_temporary_files_do():
    """The DAGs deploy dags imported run the code it staged for as long as they stay deployed."""
    [staging] = [block["staging"] for block in blocks(TERRAFORM_DIR, "module") if "staging" in block]
    expiring = staging["expire_prefixes"]
    assert "dataproc/" in expiring  # checkpoints: garbage after the run
    folder = dataproc.code_folder(GCP, TAG).removeprefix("gs://acme-staging/") + "/"
    assert folder == f"code/{TAG}/" and not any(folder.startswith(prefix) for prefix in expiring)
    checkpoints = dataproc.spark_properties(GCP)["spark.checkpoint.dir"]
    assert checkpoints.removeprefix("gs://acme-staging/").startswith(tuple(expiring))


def test_user_arguments_replace_the_defaults_in_place():
    job = JOBS["als_recommend"]
    local = Config(state_dir=PROJECT_ROOT / ".gcpipe")
    assert job_args(job, local, ["--sink", "gs://a", "--top", "3", "--sink", "gs://b"]) == [
        "--source",
        "gs://gcpipe-lake/landing/rentals",  # the local bucket, as on Dataproc
        "--sink",
        "gs://a",
        "--sink",
        "gs://b",
        "--driver-log-levels",
        "root=WARN,org.apache.spark=WARN,spark_jobs=INFO",
        "--top",
        "3",
    ]
    assert job_args(job, local, ["--source=bq://p.d"])[:2] == ["--source", "bq://p.d"]
    with pytest.raises(SparkJobError, match="is not an option"):
        job_args(job, local, ["stray"])
    with pytest.raises(SparkJobError, match="no Cloud SQL database is configured"):
        cloudsql_args(GCP)


def test_the_package_runs_the_jobs_without_the_checkout(tmp_path):
    package = dataproc.build_package(tmp_path / "gcpipe_spark.zip")
    assert dataproc.build_package(tmp_path / "again.zip").read_bytes() == package.read_bytes()
    names = zipfile.ZipFile(package).namelist()
    assert {"spark_jobs/kdd_analysis.py", "spark_jobs/als_recommend.py", "gcpipe/core/schemas.py"} <= set(
        names
    )
    # As on Dataproc: only the zip on the path, the schema file in the working directory (--files).
    (tmp_path / "kdd_connections.json").write_text(
        (PROJECT_ROOT / "sql/schemas/kdd_connections.json").read_text()
    )
    probe = (
        "import gcpipe.core.config, spark_jobs.kdd_analysis, spark_jobs.als_recommend;"
        "from spark_jobs.common import job_schema;"
        f"assert gcpipe.core.config.__file__.startswith({str(package)!r});"
        "print(len(job_schema('kdd_connections').names))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(package), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


def test_the_autoscaling_policy_is_a_valid_request_and_terraform_reads_it():
    policy = yaml.safe_load((dataproc.DATAPROC_DIR / "autoscaling_policy.yaml").read_text())
    dataproc_v1.AutoscalingPolicy.from_json(json.dumps(policy))
    assert policy["workerConfig"] == {"minInstances": 2, "maxInstances": 2}
    [declared] = [block["autoscaling"] for block in blocks(TERRAFORM_DIR, "locals") if "autoscaling" in block]
    assert "../dataproc/autoscaling_policy.yaml" in declared
    [body] = [
        body for kind, _, body in resources(TERRAFORM_DIR) if kind == "google_dataproc_autoscaling_policy"
    ]
    settings = [value for section in policy.values() for value in section.values()]
    settings = [v for value in settings for v in (value.values() if isinstance(value, dict) else [value])]
    assert json.dumps(body).count("local.autoscaling.") == len(settings) == 8  # each one comes from the file


def test_local_dry_run_prints_the_local_command():
    done = gcpipe(
        "spark", "submit", "kdd_analysis", "--target", "local", "--dry-run", "--input", "/data/k.gz"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[1:4] == ["-m", "spark_jobs.kdd_analysis", "--input"]
    assert "/data/k.gz" in done.stdout.split()


def test_serverless_on_the_local_target_is_one_sentence():
    done = gcpipe("spark", "submit", "kdd_analysis", "--target", "local", "--serverless")
    assert (done.returncode, done.stderr.strip()) == (
        1,
        "error: --serverless runs on Dataproc: add --target gcp.",
    )
