"""Dataproc requests for the Spark jobs: a workflow template on a job-specific cluster, or a Serverless batch.

Both are built from ``infra/dataproc`` (``cluster.yaml``, ``serverless.yaml``) and the job's entry in
gcpipe.spark.jobs; the names of the service account and subnetwork come from the deployment's
(``infra/terraform/names.auto.tfvars.json`` through gcpipe.deploy.naming). Submitting is a plan of
gcpipe.deploy.steps: stage the code (package the Python code the jobs import, copy it with the job's main file, schema
files and jars to ``code/<tag>/`` of the staging bucket), then either write the workflow template and
instantiate it (Dataproc creates the cluster, runs the job, deletes the cluster) or submit the batch.
``--dry-run`` prints the plan. ``deploy dags`` stages the code of every job the same way, for the DAGs.
"""

from __future__ import annotations

import ast
import copy
import zipfile
from functools import cache
from pathlib import Path

import yaml

from gcpipe.core.config import PROJECT_ROOT, Config
from gcpipe.core.schemas import SCHEMA_DIR, TABLES_FILE
from gcpipe.deploy.naming import Deployment, deployed_tag
from gcpipe.deploy.steps import Step, gcloud_dict, show_path
from gcpipe.spark.jobs import MAX_ATTEMPTS, SparkJob, driver_log_levels

DATAPROC_DIR = PROJECT_ROOT / "infra" / "dataproc"
PACKAGE = "gcpipe_spark.zip"
# The gcpipe modules the jobs import (with all of spark_jobs/): standard library and pyarrow only.


@cache
def _infra(name: str) -> dict:
    return yaml.safe_load((DATAPROC_DIR / name).read_text())


def infra_file(name: str) -> dict:
    """A copy of ``infra/dataproc/<name>`` as the API's JSON form (a dict)."""
    return copy.deepcopy(_infra(name))


# -- what a job ships -------------------------------------------------------------------------------


def package_path(config: Config) -> Path:
    return config.state_dir / "dataproc" / PACKAGE


def package_modules() -> list[str]:
    """spark_jobs/ and the gcpipe modules they import (read from their imports, and so on), with the
    packages' ``__init__.py`` files: what ``--py-files`` must carry for the jobs to import on Dataproc."""
    todo = sorted(p.relative_to(PROJECT_ROOT).as_posix() for p in (PROJECT_ROOT / "spark_jobs").glob("*.py"))
    found: set[str] = set()
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        for node in ast.walk(ast.parse((PROJECT_ROOT / name).read_text())):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules = [node.module]
            for module in modules:
                parts = module.split(".")
                if parts[0] not in ("gcpipe", "spark_jobs"):
                    continue
                for depth in range(1, len(parts) + 1):  # each package's __init__.py, then the module
                    folder = PROJECT_ROOT.joinpath(*parts[:depth])
                    if (folder / "__init__.py").exists():
                        todo.append(f"{'/'.join(parts[:depth])}/__init__.py")
                    elif folder.with_suffix(".py").exists():
                        todo.append(f"{'/'.join(parts[:depth])}.py")
    return sorted(found)


def build_package(path: Path) -> Path:
    """The zip of spark_jobs/ and the gcpipe modules they import (``--py-files``); same code, same bytes."""
    sources = package_modules()
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
    return [job.main_file, package_path(config), *shipped_files(job), *(jar.path for jar in job.jars)]


def code_folder(config: Config, tag: str) -> str:
    """Where the jobs' code of version ``tag`` (the deployment's tag: gcpipe.deploy.naming.deployed_tag) is
    staged. Outside the prefixes the staging bucket expires (infra/terraform/storage.tf): the DAGs that
    deploy dags imported run this code for as long as they stay deployed."""
    return f"gs://{config.staging_bucket}/code/{tag}"


def pyspark_job(job: SparkJob, config: Config, args: list[str], *, tag: str) -> dict:
    """The PySparkJob / PySparkBatch fields: main file, arguments and the staged files it uses."""
    folder = code_folder(config, tag)

    def staged(path: Path | str) -> str:
        return f"{folder}/{Path(path).name}"

    request = {
        "mainPythonFileUri": staged(job.main_file),
        "args": list(args),
        "pythonFileUris": [staged(PACKAGE)],
        "fileUris": [staged(path) for path in shipped_files(job)],
    }
    if job.jars:
        request["jarFileUris"] = [staged(jar.path) for jar in job.jars]
    return request


def spark_properties(config: Config) -> dict[str, str]:
    """Properties every job gets: checkpoints (ALS cuts its lineage there) in the staging bucket."""
    return {"spark.checkpoint.dir": f"gs://{config.staging_bucket}/dataproc/checkpoints"}


def logging_config(job: SparkJob, args: list[str]) -> dict:
    """The job's LoggingConfig: the driver log levels its arguments ask for (else its declaration in
    gcpipe.spark.jobs), which Dataproc applies to the driver's log4j; the job applies them to its Python
    loggers from the same argument."""
    return {"driverLogLevels": driver_log_levels(job, args)}


def batch_log_properties(job: SparkJob, args: list[str]) -> dict[str, str]:
    """A Serverless batch has no loggingConfig: the root level goes in as ``spark.log.level`` (Spark applies it
    at start, as setLogLevel), and the job applies the per-logger levels of its --driver-log-levels itself."""
    levels = driver_log_levels(job, args)
    return {"spark.log.level": levels["root"]} if "root" in levels else {}


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


def cluster_job(job: SparkJob, config: Config, args: list[str], *, tag: str) -> dict:
    """The PySparkJob a job cluster runs: the staged files, the arguments, the properties every job gets,
    the driver log levels."""
    return {
        **pyspark_job(job, config, args, tag=tag),
        "properties": spark_properties(config),
        "loggingConfig": logging_config(job, args),
    }


def workflow_template(job: SparkJob, config: Config, args: list[str], *, tag: str) -> dict:
    """The inline workflow template: a managed cluster of cluster.yaml's shape, the job, then deletion.

    The body of ``workflowTemplates:instantiateInline`` and the file ``gcloud dataproc workflow-templates
    instantiate-from-file`` reads.
    """
    cluster = job_cluster(job, config)
    labels = cluster["labels"]
    spark_job = cluster_job(job, config, args, tag=tag)
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


def batch_request(job: SparkJob, config: Config, args: list[str], *, tag: str) -> dict:
    """The Serverless batch: the body of ``POST .../locations/REGION/batches``."""
    deployment = Deployment(config)
    batch = infra_file("serverless.yaml")
    execution = batch["environmentConfig"]["executionConfig"]
    execution["serviceAccount"] = deployment.service_account("dataproc")
    execution["subnetworkUri"] = deployment.subnetwork
    batch["runtimeConfig"]["properties"].update(spark_properties(config), **batch_log_properties(job, args))
    return {
        "pysparkBatch": pyspark_job(job, config, args, tag=tag),
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


def stage_steps(jobs: list[SparkJob], config: Config, tag: str) -> list[Step]:
    """Package the Python code the jobs import, then copy it with their main files, schema files and jars
    to ``code_folder``: how the code reaches Cloud Storage, for ``spark submit`` and ``deploy dags``."""
    package = package_path(config)
    files = dict.fromkeys(path for job in jobs for path in staged_files(job, config))  # once each, in order
    return [
        Step(
            "package the Python code the Spark jobs import",
            ("gcpipe", "spark", "package", f"--output={show_path(package)}"),
            call=lambda: build_package(package),
        ),
        Step(
            f"stage the code of {', '.join(job.name for job in jobs)}: main files, package, schema files, jars",
            Deployment(config).gcloud(
                "storage", "cp", *map(show_path, files), code_folder(config, tag) + "/"
            ),
        ),
    ]


def submit_plan(
    job: SparkJob, config: Config, args: list[str], serverless: bool = False, tag: str | None = None
) -> list[Step]:
    """Stage the code, then run the job on a job-specific cluster (or as a Serverless batch); ``tag``:
    the code's version, by default the deployment's (gcpipe.deploy.naming.deployed_tag)."""
    deployment = Deployment(config)
    tag = tag or deployed_tag()
    steps = stage_steps([job], config, tag)
    if serverless:
        return [
            *steps,
            Step(
                f"run {job.name} as a Dataproc Serverless batch",
                batch_command(batch_request(job, config, args, tag=tag), config),
            ),
        ]
    template = config.state_dir / "dataproc" / f"{job.name}.workflow.yaml"
    return [
        *steps,
        Step(
            "write the workflow template (a job-specific cluster, the job, then deletion)",
            path=template,
            content=yaml.safe_dump(workflow_template(job, config, args, tag=tag), sort_keys=False),
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
