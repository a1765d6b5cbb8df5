"""The Spark jobs gcpipe runs: what each ships to Dataproc, its default arguments, and the local runner.

A job's arguments are URIs that name where the target keeps things (``config.bucket``: ``gs://LAKE_BUCKET``,
locally the storage emulator's bucket, reached through Google's GCS connector as on Dataproc), so the same
defaults serve both targets. Arguments given by the user replace the defaults of the same option (all of
them, for a repeatable option such as ``--sink``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from time import sleep, strftime

from gcpipe.core.clients import bigquery_client, ensure_dataset, ensure_table, storage_client
from gcpipe.core.config import PROJECT_ROOT, Config
from gcpipe.core.errors import GcpipeError
from gcpipe.core.jars import POSTGRESQL_JDBC, Jar
from gcpipe.core.options import option_pairs
from gcpipe.core.schemas import load_tables
from gcpipe.local import stack
from gcpipe.warehouse.cloudsql import ensure_database
from spark_jobs.logs import DRIVER_LOG_LEVELS, LOG_ENV, USER_ERROR, format_levels, parse_levels

MAX_ATTEMPTS = 2  # a failed job runs once more: locally (run_local) and on Dataproc (maxFailuresPerHour)
RETRY_PAUSE = 5.0  # seconds between a failed local run and the next
USAGE_ERROR = 2  # argparse's exit status: the arguments are wrong, and would be on every attempt
# Exit statuses of failures that would recur on every attempt (not retried), and what they mean
DETERMINISTIC = {
    USAGE_ERROR: "a usage error",
    USER_ERROR: "a user error",  # a missing input, a bad argument, a missing jar
}
DRIVER_LOG_LEVELS_OPTION = "--driver-log-levels"
LEVELS_SPELLINGS = (DRIVER_LOG_LEVELS_OPTION, "--driver_log_levels")


class SparkJobError(GcpipeError):
    """A Spark job that cannot run, worded for the user."""


@dataclass(frozen=True)
class SparkJob:
    name: str  # the module spark_jobs.<name>
    schemas: tuple[str, ...]  # files of sql/schemas the job reads: shipped with it (--files)
    defaults: tuple[str, ...]  # arguments, with {bucket}, {project}, {kdd_dataset}... (Config.template_vars)
    jars: tuple[Jar, ...] = ()  # pinned jars shipped with it (--jars; Dataproc's image has the GCS connector)
    # Dataproc's driver log levels (log4j per logger): the job's --driver-log-levels, and on Dataproc
    # the request's loggingConfig.driverLogLevels
    driver_log_levels: str = DRIVER_LOG_LEVELS

    def default_args(self, config: Config) -> list[str]:
        args = [arg.format(**config.template_vars()) for arg in self.defaults]
        return [*args, DRIVER_LOG_LEVELS_OPTION, self.driver_log_levels]

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
    (in place: the first occurrence takes all of the layer's values, as for a repeatable ``--sink``), but
    for the driver log levels: a layer's levels replace those of the same loggers (Dataproc's
    ``--driver-log-levels org.apache.spark=INFO`` keeps the job's other levels)."""
    pairs = _options(job.default_args(config))
    for layer in layers:
        given = [
            (DRIVER_LOG_LEVELS_OPTION if name in LEVELS_SPELLINGS else name, value)
            for name, value in _options(list(layer))
        ]
        previous = dict(pairs).get(DRIVER_LOG_LEVELS_OPTION)
        given = [
            (name, _merged_levels(previous, value) if name == DRIVER_LOG_LEVELS_OPTION else value)
            for name, value in given
        ]
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


def _levels(text: str | None) -> dict[str, str]:
    try:
        return parse_levels(text or "")
    except ValueError as err:
        raise SparkJobError(f"--driver-log-levels: {err}.") from None


def _merged_levels(base: str | None, given: str | None) -> str:
    return format_levels({**_levels(base), **_levels(given)})


def driver_log_levels(job: SparkJob, args: list[str]) -> dict[str, str]:
    """The driver log levels of a run of ``job`` with ``args``: the job's declaration, with the levels of
    its --driver-log-levels over it; ``{logger: LEVEL}``, as Dataproc's loggingConfig.driverLogLevels
    takes them."""
    given = [value for name, value in _options(args) if name in LEVELS_SPELLINGS]
    return _levels(_merged_levels(job.driver_log_levels, given[-1] if given else None))


def local_log(job: SparkJob, config: Config) -> Path:
    """Where a local run of ``job`` keeps Spark's log (one file a run, under the state folder)."""
    return config.state_dir / "logs" / "spark" / f"{job.name}-{strftime('%Y%m%d-%H%M%S')}.log"


def _is_sentence(job: SparkJob, line: str) -> bool:
    """Whether a line of the job's stderr is its one failure sentence (``JOB: ...`` or ``JOB failed: ...``,
    plain or as a JSON line of severity ERROR) rather than a log line."""
    message = line
    if line.startswith("{"):
        try:
            entry = json.loads(line)
        except ValueError:
            return False
        if not isinstance(entry, dict) or entry.get("severity") != "ERROR":
            return False
        message = str(entry.get("message", ""))
    return message.startswith((f"{job.name}: ", f"{job.name} failed: "))


def _run_once(job: SparkJob, args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, str]:
    """One run: its stdout captured (the JSON summary), its stderr passed on as it comes, but for its
    failure sentence, which comes back (the caller words the outcome); usage text passes through."""
    process = subprocess.Popen(
        local_command(job, args),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sentences: list[str] = []

    def relay() -> None:
        for line in process.stderr:
            if _is_sentence(job, line):
                sentences.append(line.rstrip("\n"))
            else:
                sys.stderr.write(line)
                sys.stderr.flush()

    relaying = threading.Thread(target=relay, daemon=True)
    relaying.start()
    stdout = process.stdout.read()
    process.wait()
    relaying.join()
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, None)
    if result.returncode == 0 and sentences:  # not a failure after all: show what it said
        print("\n".join(sentences), file=sys.stderr, flush=True)
    return result, "; ".join(_plain(line) for line in sentences)


def _plain(line: str) -> str:
    if line.startswith("{"):
        try:
            return str(json.loads(line)["message"])
        except (ValueError, KeyError, TypeError):
            pass
    return line


def run_local(
    job: SparkJob, config: Config, args: list[str], attempts: int = MAX_ATTEMPTS, pause: float = RETRY_PAUSE
) -> subprocess.CompletedProcess:
    """Run the job on local Spark with ``args``; its JSON summary comes back on stdout, its own log lines
    pass to stderr, Spark's log goes to a file under ``.gcpipe/logs/spark/``.

    A failed run is run again after ``pause`` seconds, up to ``attempts`` runs in all, as Dataproc restarts
    a failed job (``maxFailuresPerHour``); a deterministic failure (a usage error, exit 2; a user error, exit
    USER_ERROR: missing input, bad argument, missing jar) would fail the same way, so it is not. The jobs
    replace their outputs, so a second run never adds to what a failed one wrote. A failure ends in one
    sentence: the job's, with its class and the attempts made.
    """
    prepare_local(job, config, args)
    env = {**os.environ, **config.emulator_env(), "PYTHONPATH": str(PROJECT_ROOT)}
    for attempt in range(1, attempts + 1):
        env[LOG_ENV] = str(local_log(job, config))
        result, sentence = _run_once(job, args, {**env})
        if result.returncode == 0 or result.returncode in DETERMINISTIC or attempt == attempts:
            break
        print(
            f"{job.name}: attempt {attempt} of {attempts} failed (exit {result.returncode}): "
            f"{sentence.rstrip('.') or 'see its log above'}; running it again in {pause:.0f} s.",
            file=sys.stderr,
            flush=True,
        )
        sleep(pause)
    if result.returncode != 0:
        kind = DETERMINISTIC.get(result.returncode)
        outcome = (
            f"{kind}, exit {result.returncode}: not run again, it would fail the same way"
            if kind
            else f"exit {result.returncode}, attempt {attempt} of {attempts}"
        )
        raise SparkJobError(
            f"{sentence.rstrip('.')} ({outcome})."
            if sentence
            else f"the Spark job {job.name} failed ({outcome}); its log is above."
        )
    return result
