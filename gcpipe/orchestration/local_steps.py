"""Each DAG step on the local target: what the gcp operators do, against the lake folder and the emulators.

Called by the tasks that ``gcpipe.orchestration.operators`` makes for the local target; each returns something small
and JSON-friendly (it becomes the task's XCom) and logs what it did.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from gcpipe.core import pubsub
from gcpipe.core.clients import bigquery_client, ensure_dataset
from gcpipe.core.config import PROJECT_ROOT, Config, load_config
from gcpipe.core.errors import GcpipeError
from gcpipe.flows.streaming import start_pipeline, wait_until_reading
from gcpipe.local.stack import group_alive, stop_group
from gcpipe.spark.jobs import get_job, job_args, run_local
from gcpipe.warehouse.runner import run_sql_file

log = logging.getLogger(__name__)


def _config() -> Config:
    return load_config(target="local")


def lake_path(folder: str, config: Config | None = None) -> Path:
    """A folder of the lake (``landing/taxi_trips/2019-03-01``) as a local path."""
    return Path((config or _config()).lake) / folder


# -- files ----------------------------------------------------------------------------------------------


def files_arrived(folder: str) -> bool:
    """The sensor's poke: is there at least one file under the lake folder?"""
    path = lake_path(folder)
    found = sorted(p.name for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    log.info("%s: %s", path, f"{len(found)} file(s): {', '.join(found[:10])}" if found else "no file yet")
    return bool(found)


def move_files(source: str, destination: str) -> list[str]:
    """Move every file under the lake folder ``source`` to ``destination`` (same relative paths)."""
    config = _config()
    origin, target = lake_path(source, config), lake_path(destination, config)
    moved = []
    for path in sorted(p for p in origin.rglob("*") if p.is_file()) if origin.is_dir() else []:
        to = target / path.relative_to(origin)
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, to)
        moved.append(str(to.relative_to(config.lake)))
    log.info("moved %d file(s) from %s to %s", len(moved), origin, target)
    return moved


# -- SQL ------------------------------------------------------------------------------------------------


def run_sql(path: str, params: dict) -> list[dict]:
    """Run ``sql/<path>`` with gcpipe's SQL runner (checks fail with their names, BigQuery ML runs
    locally); return the last result's rows."""

    config = _config()
    client = bigquery_client(config)
    for dataset in sorted(set(config.datasets.values())):  # on gcp Terraform made them
        ensure_dataset(client, dataset)
    result = run_sql_file(PROJECT_ROOT / "sql" / path, params, config=config, client=client, max_rows=100)
    for statement in result.statements:
        done = statement.message or (
            f"{statement.affected_rows} rows affected" if statement.affected_rows is not None else ""
        )
        log.info(
            "%s:%d %s %s (%.1f s)", path, statement.line, statement.statement_type, done, statement.seconds
        )
    rows = json.loads(json.dumps(result.rows, default=str))
    for row in rows[:20]:
        log.info("%s", row)
    return rows


# -- Spark ----------------------------------------------------------------------------------------------


def spark_submit(job: str, args: list[str]) -> dict:
    """Run a Spark job once on local Spark (``gcpipe spark submit JOB``) with ``args`` over its defaults;
    return its JSON summary."""

    config = _config()
    spark_job = get_job(job)
    arguments = job_args(spark_job, config, args)
    log.info("spark-submit %s %s", job, " ".join(arguments))
    # one run per try: the task's retries are Airflow's, as on Dataproc (run_local's own are the CLI's)
    summary = json.loads(run_local(spark_job, config, arguments, attempts=1).stdout)
    log.info("%s", json.dumps(summary, default=str)[:2000])
    return summary


# -- the streaming pipeline, as a local "job" ------------------------------------------------------


def _pid_file(config: Config, job: str) -> Path:
    return config.state_dir / "run" / f"{job}.pid"


def streaming_pid(job: str) -> int | None:
    """The pid of the local streaming job ``job`` if it runs (it leads its process group)."""

    try:
        pid = int(_pid_file(_config(), job).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if group_alive(pid) else None


def start_streaming(job: str, options: dict[str, str], seconds: str = "0") -> int:
    """Start the streaming pipeline (``pipelines.taxi_streaming``) with ``options`` in a session of its own,
    as Dataflow starts a job, and return its pid once it reads; ``seconds`` > 0 makes it drain and stop
    after that long. Its log: ``logs/<job>.log`` under the state folder."""

    config = _config()
    options = dict(options)
    topic, dataset = options.pop("input_topic"), options.pop("output_dataset")
    flags = [f"--{name}={value}" for name, value in options.items()]
    if float(seconds or 0) > 0:
        flags.append(f"--duration_seconds={seconds}")
    log_file = config.state_dir / "logs" / f"{job}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    process = start_pipeline(topic, dataset, *flags, log=log_file)
    _pid_file(config, job).parent.mkdir(parents=True, exist_ok=True)
    _pid_file(config, job).write_text(str(process.pid))
    subscription = pubsub.path(config.project, "subscriptions", f"{topic}-taxi-streaming")
    try:
        wait_until_reading(process, subscription, config)
    except GcpipeError as err:
        stop_streaming(job)
        raise GcpipeError(f"the streaming job {job} did not start ({err}): see {log_file}.") from None
    log.info("streaming job %s runs (pid %d), reading %s; log: %s", job, process.pid, subscription, log_file)
    return process.pid


def stop_streaming(job: str, timeout: float = 30) -> bool:
    """Stop the local streaming job (its whole process group); True if one ran."""

    pid = streaming_pid(job)
    _pid_file(_config(), job).unlink(missing_ok=True)
    if pid is None:
        return False
    stop_group(pid, timeout)
    log.info("stopped the streaming job %s (pid %d)", job, pid)
    return True


def update_streaming(job: str, options: dict[str, str], seconds: str = "0") -> int:
    """Replace the running job with one of the current code and options (Dataflow's update, done as a
    restart: at start the pipeline rebuilds its windows and duplicate memory, so nothing is counted twice or lost)."""
    stop_streaming(job)
    return start_streaming(job, options, seconds)
