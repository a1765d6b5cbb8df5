"""Dataproc requests for the Spark jobs: a workflow template on a job-specific cluster, or a Serverless batch.

Both are built from ``infra/dataproc`` (``cluster.yaml``, ``serverless.yaml``) and the job's entry in
gcpipe.spark.jobs; the names of the service account and subnetwork come from the deployment's
(``infra/terraform/names.auto.tfvars.json`` through gcpipe.deploy). Submitting is a plan of gcpipe.deploy
steps: package the Python code the jobs import, stage it with the job's main file, schema files and jars
in the staging bucket, then either write the workflow template and instantiate it (Dataproc creates the
cluster, runs the job, deletes the cluster) or submit the batch. ``--dry-run`` prints the plan.
"""

from __future__ import annotations

import copy
import zipfile
from functools import cache
from pathlib import Path

import yaml

from gcpipe.config import PROJECT_ROOT, Config
from gcpipe.deploy import Deployment, Step, gcloud_dict, show_path
from gcpipe.schemas import SCHEMA_DIR, TABLES_FILE
from gcpipe.spark.jobs import MAX_ATTEMPTS, SparkJob

DATAPROC_DIR = PROJECT_ROOT / "infra" / "dataproc"
PACKAGE = "gcpipe_spark.zip"
# The gcpipe modules the jobs import (with all of spark_jobs/): standard library and pyarrow only.
PACKAGE_MODULES = ("gcpipe/__init__.py", "gcpipe/bq_load.py", "gcpipe/config.py", "gcpipe/errors.py",
                   "gcpipe/kdd.py", "gcpipe/schemas.py", "gcpipe/secrets.py")  # fmt: skip


@cache
def _infra(name: str) -> dict:
    return yaml.safe_load((DATAPROC_DIR / name).read_text())


def infra_file(name: str) -> dict:
    """A copy of ``infra/dataproc/<name>`` as the API's JSON form (a dict)."""
    return copy.deepcopy(_infra(name))


# -- what a job ships -------------------------------------------------------------------------------


def package_path(config: Config) -> Path:
    return config.state_dir / "dataproc" / PACKAGE


def build_package(path: Path) -> Path:
    """The zip of spark_jobs/ and the gcpipe modules they import (``--py-files``); same code, same bytes."""
    sources = [*PACKAGE_MODULES, *sorted(p.relative_to(PROJECT_ROOT).as_posix()
                                         for p in (PROJECT_ROOT / "spark_jobs").glob("*.py"))]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sources:
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, (PROJECT_ROOT / name).read_bytes(), zipfile.ZIP_DEFLATED)
    return path


def shipped_files(job: SparkJob) -> list[Path]:
    """Files the job reads beside it (``--files``): its schemas, and the catalog with the tables' rules."""
    return [*(SCHEMA_DIR / f"{name}.json" for name in job.schemas), TABLES_FILE]


def staged_files(job: SparkJob, config: Config) -> list[Path]:
    """What the job needs beside it on the cluster: main file, package, schema files and catalog, jars."""
    return [job.main_file, package_path(config), *shipped_files(job), *map(Path, job.jars)]


def staging_folder(config: Config) -> str:
    return f"gs://{config.staging_bucket}/dataproc/gcpipe"


def staged(config: Config, path: Path | str) -> str:
    return f"{staging_folder(config)}/{Path(path).name}"


def pyspark_job(job: SparkJob, config: Config, args: list[str]) -> dict:
    """The PySparkJob / PySparkBatch fields: main file, arguments and the staged files it uses."""
    request = {
        "mainPythonFileUri": staged(config, job.main_file),
        "args": list(args),
        "pythonFileUris": [staged(config, PACKAGE)],
        "fileUris": [staged(config, path) for path in shipped_files(job)],
    }
    if job.jars:
        request["jarFileUris"] = [staged(config, jar) for jar in job.jars]
    return request


def spark_properties(config: Config) -> dict[str, str]:
    """Properties every job gets: checkpoints (ALS cuts its lineage there) in the staging bucket."""
    return {"spark.checkpoint.dir": f"gs://{config.staging_bucket}/dataproc/checkpoints"}


def step_id(job: SparkJob) -> str:
    return job.name.replace("_", "-")


# -- the two ways to run it ---------------------------------------------------------------------------


def job_cluster(job: SparkJob, config: Config) -> dict:
    """The job-specific cluster: cluster.yaml's ``config`` with the deployment's service account and
    subnetwork, and its ``labels`` (the job's name among them)."""
    deployment = Deployment(config)
    cluster = infra_file("cluster.yaml")
    gce = cluster["config"]["gceClusterConfig"]
    gce["serviceAccount"] = deployment.service_account("dataproc")
    gce["subnetworkUri"] = deployment.subnetwork
    return {"config": cluster["config"], "labels": {**cluster["labels"], "job": step_id(job)}}


def cluster_job(job: SparkJob, config: Config, args: list[str]) -> dict:
    """The PySparkJob a job cluster runs: the staged files, the arguments, the properties every job gets."""
    return {**pyspark_job(job, config, args), "properties": spark_properties(config)}


def workflow_template(job: SparkJob, config: Config, args: list[str]) -> dict:
    """The inline workflow template: a managed cluster of cluster.yaml's shape, the job, then deletion.

    The body of ``workflowTemplates:instantiateInline`` and the file ``gcloud dataproc workflow-templates
    instantiate-from-file`` reads.
    """
    cluster = job_cluster(job, config)
    labels = cluster["labels"]
    spark_job = cluster_job(job, config, args)
    return {
        "placement": {
            "managedCluster": {
                "clusterName": f"gcpipe-{step_id(job)}",
                "config": cluster["config"],
                "labels": labels,
            }
        },
        "jobs": [
            {
                "stepId": step_id(job),
                "pysparkJob": spark_job,
                "labels": dict(labels),
                # Dataproc restarts a failed driver, as run_local runs a failed job again
                "scheduling": {"maxFailuresPerHour": MAX_ATTEMPTS - 1},
            }
        ],
        "labels": dict(labels),
    }


def batch_request(job: SparkJob, config: Config, args: list[str]) -> dict:
    """The Serverless batch: the body of ``POST .../locations/REGION/batches``."""
    deployment = Deployment(config)
    batch = infra_file("serverless.yaml")
    execution = batch["environmentConfig"]["executionConfig"]
    execution["serviceAccount"] = deployment.service_account("dataproc")
    execution["subnetworkUri"] = deployment.subnetwork
    batch["runtimeConfig"]["properties"].update(spark_properties(config))
    return {
        "pysparkBatch": pyspark_job(job, config, args),
        **batch,
        "labels": {**batch["labels"], "job": step_id(job)},
    }


def batch_command(batch: dict, config: Config) -> tuple[str, ...]:
    """``gcloud dataproc batches submit pyspark`` for ``batch`` (the job's own arguments after ``--``)."""
    job, runtime = batch["pysparkBatch"], batch["runtimeConfig"]
    execution = batch["environmentConfig"]["executionConfig"]
    flags = [
        f"--region={config.region}",
        f"--version={runtime['version']}",
        f"--py-files={','.join(job['pythonFileUris'])}",
        f"--files={','.join(job['fileUris'])}",
        *([f"--jars={','.join(job['jarFileUris'])}"] if job.get("jarFileUris") else []),
        f"--properties={gcloud_dict(runtime['properties'])}",
        f"--service-account={execution['serviceAccount']}",
        f"--subnet={execution['subnetworkUri']}",
        f"--ttl={execution['ttl']}",
        f"--labels={gcloud_dict(batch['labels'])}",
        f"--project={config.project}",
    ]
    return (
        "gcloud",
        "dataproc",
        "batches",
        "submit",
        "pyspark",
        job["mainPythonFileUri"],
        *flags,
        "--",
        *job["args"],
    )


def submit_plan(job: SparkJob, config: Config, args: list[str], serverless: bool = False) -> list[Step]:
    """Package, stage, then run the job on a job-specific cluster (or as a Serverless batch)."""
    deployment = Deployment(config)
    package = package_path(config)
    steps = [
        Step(
            "package the Python code the job imports",
            ("gcpipe", "spark", "package", f"--output={show_path(package)}"),
            call=lambda: build_package(package),
        ),
        Step(
            "stage the job's main file, code, schema files and jars",
            deployment.gcloud(
                "storage",
                "cp",
                *[show_path(path) for path in staged_files(job, config)],
                staging_folder(config) + "/",
            ),
        ),
    ]
    if serverless:
        return [*steps, Step(f"run {job.name} as a Dataproc Serverless batch", batch_command(
            batch_request(job, config, args), config))]  # fmt: skip
    template = config.state_dir / "dataproc" / f"{job.name}.workflow.yaml"
    return [
        *steps,
        Step(
            "write the workflow template (a job-specific cluster, the job, then deletion)",
            path=template,
            content=yaml.safe_dump(workflow_template(job, config, args), sort_keys=False),
        ),
        Step(
            f"run {job.name}: Dataproc creates the cluster, runs the job and deletes the cluster",
            deployment.gcloud(
                "dataproc",
                "workflow-templates",
                "instantiate-from-file",
                f"--file={show_path(template)}",
                f"--region={config.region}",
            ),
        ),
    ]
