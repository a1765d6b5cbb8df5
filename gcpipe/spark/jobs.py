"""The Spark jobs gcpipe runs: what each ships to Dataproc, its default arguments, and the local runner.

A job's arguments are URIs that name where the target keeps things (``config.bucket``: ``gs://LAKE_BUCKET``,
locally the storage emulator's bucket, reached through Google's GCS connector as on Dataproc), so the same
defaults serve both targets. Arguments given by the user replace
the defaults of the same option (all of them, for a repeatable option such as ``--sink``).
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from time import sleep

from gcpipe.core.clients import bigquery_client, ensure_dataset, ensure_table, storage_client
from gcpipe.core.config import PROJECT_ROOT, Config
from gcpipe.core.errors import GcpipeError
from gcpipe.core.jars import POSTGRESQL_JDBC, Jar
from gcpipe.core.options import option_pairs
from gcpipe.core.schemas import load_tables
from gcpipe.local import stack
from gcpipe.warehouse.cloudsql import ensure_database

MAX_ATTEMPTS = 2  # a failed job runs once more: locally (run_local) and on Dataproc (maxFailuresPerHour)
RETRY_PAUSE = 5.0  # seconds between a failed local run and the next
USAGE_ERROR = 2  # argparse's exit status: the arguments are wrong, and would be on every attempt


class SparkJobError(GcpipeError):
    """A Spark job that cannot run, worded for the user."""


@dataclass(frozen=True)
class SparkJob:
    name: str  # the module spark_jobs.<name>
    schemas: tuple[str, ...]  # files of sql/schemas the job reads: shipped with it (--files)
    defaults: tuple[str, ...]  # arguments, with {lake}, {project}, {kdd_dataset}... (Config.template_vars)
    jars: tuple[Jar, ...] = ()  # pinned jars shipped with it (--jars; Dataproc's image has the GCS connector)

    def default_args(self, config: Config) -> list[str]:
        return [arg.format(**config.template_vars()) for arg in self.defaults]

    @property
    def module(self) -> str:
        return f"spark_jobs.{self.name}"

    @property
    def main_file(self) -> Path:
        return PROJECT_ROOT / "spark_jobs" / f"{self.name}.py"


JOBS: dict[str, SparkJob] = {
    job.name: job
    for job in (
        SparkJob(
            "kdd_analysis",
            (
                "kdd_connections",
                "kdd_attack_stats",
                "kdd_connections_by_protocol",
                "kdd_connections_by_label",
                "kdd_connections_by_category",
                "kdd_top_attacked_services",
                "dead_letter",
            ),
            (
                "--input",
                "{bucket}/landing/kdd/kddcup.data.gz",
                "--output",
                "{bucket}/kdd/analysis",
                "--bq_table",
                "{project}.{kdd_dataset}.attack_stats",
            ),
        ),
        SparkJob(
            "als_recommend",
            ("accommodations", "ratings", "recommendations"),
            (
                "--source",
                "{bucket}/landing/rentals",
                "--sink",
                "{bucket}/rentals/recommendations",
                "--sink",
                "bq://{project}.{rentals_dataset}",
            ),
            jars=(POSTGRESQL_JDBC,),
        ),
    )
}


def get_job(name: str) -> SparkJob:
    if name not in JOBS:
        raise SparkJobError(f"unknown Spark job {name!r}; known: {', '.join(JOBS)}.")
    return JOBS[name]


def cloudsql_args(config: Config) -> list[str]:
    """Read from and write to Cloud SQL, as the lab did (locally the stack's PostgreSQL)."""
    if not config.jdbc_url:
        raise SparkJobError(
            "no Cloud SQL database is configured: set jdbc_url (GCPIPE_JDBC_URL) to its JDBC URL, "
            "e.g. jdbc:postgresql://10.0.0.3:5432/rentals."
        )
    return [
        "--source",
        config.jdbc_url,
        "--sink",
        config.jdbc_url,
        "--rejected",
        f"{config.bucket}/rentals/rejected",
        "--jdbc_user",
        config.jdbc_user,
        "--jdbc_password_secret",
        config.jdbc_password_secret,
    ]


def _options(args: list[str]) -> list[tuple[str, str | None]]:
    return option_pairs(args, "job arguments", SparkJobError)


def job_args(job: SparkJob, config: Config, *layers: list[str]) -> list[str]:
    """The job's defaults for ``config``; each layer's options replace those of the same name before it
    (in place: the first occurrence takes all of the layer's values, as for a repeatable ``--sink``)."""
    pairs = _options(job.default_args(config))
    for layer in layers:
        given = _options(list(layer))
        by_name: dict[str, list] = {}
        for name, value in given:
            by_name.setdefault(name, []).append((name, value))
        merged = []
        for name, value in pairs:
            if name not in by_name:
                merged.append((name, value))
            elif by_name[name]:
                merged += by_name[name]
                by_name[name] = []
        pairs = merged + [pair for values in by_name.values() for pair in values]
    return [token for name, value in pairs for token in ((name,) if value is None else (name, value))]


# -- the local target -------------------------------------------------------------------------------


def local_command(job: SparkJob, args: list[str]) -> list[str]:
    return [sys.executable, "-m", job.module, *args]


INPUT_OPTIONS = ("--input", "--source")


def stage_inputs(config: Config, args: list[str]) -> list[str]:
    """Stage each gs:// input of ``args`` in the local bucket from the same path of the lake folder.

    Locally, files land in the lake folder (``gcpipe datagen``, or by hand); the bucket is the storage
    emulator's, held in memory. An input found in neither place stays missing, and the job says so.
    """
    prefix = f"{config.bucket}/"
    names = [
        v.removeprefix(prefix) for n, v in _options(args) if n in INPUT_OPTIONS and v and v.startswith(prefix)
    ]
    return [uri for name in names for uri in stage_in_bucket(config, Path(config.lake) / name, prefix + name)]


def stage_in_bucket(config: Config, local: Path, uri: str) -> list[str]:
    """Copy the file ``local`` (or the files under the folder ``local``) to ``uri`` in the local lake bucket
    where the bucket lacks them or holds an older copy with other bytes (``gsutil rsync -u``'s rule: an
    object put there later, by a test or ``gcloud storage cp``, is kept). Returns the objects written."""
    bucket = storage_client(config).bucket(config.lake_bucket)
    name = uri.removeprefix(f"{config.bucket}/").rstrip("/")
    files = [local] if local.is_file() else sorted(path for path in local.rglob("*") if path.is_file())
    staged = []
    for path in files:
        object_name = name if path == local else f"{name}/{path.relative_to(local).as_posix()}"
        held = bucket.get_blob(object_name)
        if held is None or (path.stat().st_mtime > held.updated.timestamp() and held.md5_hash != _md5(path)):
            bucket.blob(object_name).upload_from_filename(str(path))
            staged.append(f"{config.bucket}/{object_name}")
    if staged:
        print(f"staged from {local}: {', '.join(staged)}", file=sys.stderr, flush=True)
    return staged


def _md5(path: Path) -> str:
    """The file's MD5 as Cloud Storage reports an object's (base64)."""
    digest = hashlib.md5()  # noqa: S324 (a checksum to compare with Cloud Storage's, not security)
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode()


def prepare_local(job: SparkJob, config: Config, args: list[str]) -> None:
    """Start what the arguments need: the storage emulator (and the inputs it lacks), the BigQuery emulator
    (its datasets, and the job's catalog tables in them, as Terraform makes them on gcp: a load job would
    make a missing table with every column NULLABLE), PostgreSQL (and its database)."""

    options = _options(args)
    values = [value or "" for _, value in options]
    if any(value.startswith("gs://") for value in values):
        stack.up(config, ["metadata", "gcs"], report=lambda *_: None)
        stage_inputs(config, args)
    datasets = {v.split(".")[1] for n, v in options if n == "--bq_table" and v and v.count(".") == 2}
    datasets |= {v.removeprefix("bq://").split(".")[1] for v in values if v.startswith("bq://") and "." in v}
    if datasets:
        stack.up(config, ["metadata", "bigquery"], report=lambda *_: None)
        client = bigquery_client(config)
        for dataset in sorted(datasets):
            ensure_dataset(client, dataset)
        for spec in load_tables().values():
            if (
                spec.schema.name in job.schemas
                and (table_id := spec.table_id(config)).split(".")[1] in datasets
            ):
                ensure_table(client, spec, table_id)
    databases = {v.rsplit("/", 1)[1] for v in values if v.startswith("jdbc:postgresql://")}
    if databases:
        for database in sorted(databases):
            ensure_database(config, database)


def run_local(
    job: SparkJob, config: Config, args: list[str], attempts: int = MAX_ATTEMPTS, pause: float = RETRY_PAUSE
) -> subprocess.CompletedProcess:
    """Run the job on local Spark with ``args``; its JSON summary comes back on stdout, its log on stderr.

    A failed run is run again after ``pause`` seconds, up to ``attempts`` runs in all, as Dataproc restarts
    a failed job (``maxFailuresPerHour``); a usage error (exit 2) would fail the same way, so it is not.
    The jobs replace their outputs, so a second run never adds to what a failed one wrote.
    """
    prepare_local(job, config, args)
    env = {**os.environ, **config.emulator_env(), "PYTHONPATH": str(PROJECT_ROOT)}
    for attempt in range(1, attempts + 1):
        result = subprocess.run(
            local_command(job, args), cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        if result.returncode in (0, USAGE_ERROR) or attempt == attempts:
            break
        print(
            f"{job.name}: attempt {attempt} of {attempts} failed (exit {result.returncode}); "
            f"running it again in {pause:.0f} s.",
            file=sys.stderr,
            flush=True,
        )
        sleep(pause)
    if result.returncode != 0:
        raise SparkJobError(
            f"the Spark job {job.name} failed (exit {result.returncode}, attempt {attempt} of {attempts}); "
            "its log is above."
        )
    return result
