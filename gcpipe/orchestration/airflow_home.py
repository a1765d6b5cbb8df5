"""Airflow on the local target: SQLite under the state folder, the DAGs folder ``dags/``, the local stack.

Airflow reads its settings when it is first imported, so :func:`use_local_airflow` sets them in the
environment before anything imports it (and every process started from here inherits them).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from gcpipe.core.config import PROJECT_ROOT, Config
from gcpipe.core.errors import GcpipeError

DAGS_DIR = PROJECT_ROOT / "dags"


class DagRunError(GcpipeError):
    """A DAG that cannot be found, parsed or run, worded for the user."""


def airflow_env(config: Config, home: Path | None = None) -> dict[str, str]:
    """The variables that make Airflow local: its home and SQLite database, the DAGs folder, the port
    (``airflow`` + the port offset, loopback only, no login), and the local target's emulators."""
    home = Path(home or config.state_dir / "airflow")
    port = config.port("airflow")
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # loopback only: no login page
        # The Google operators' connection, for a task that asks for it locally: the local project.
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps(
            {"conn_type": "google_cloud_platform", "extra": {"project": config.project}}
        ),
        "GCPIPE_TARGET": "local",
        "GCPIPE_PORT_OFFSET": str(config.port_offset),
        **config.emulator_env(),
    }


def use_local_airflow(config: Config, home: Path | None = None) -> dict[str, str]:
    """Point this process (and its children) at the local Airflow; fail if Airflow was set up otherwise."""
    import sys

    env = airflow_env(config, home)
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != env["AIRFLOW_HOME"]:
        raise DagRunError("Airflow was imported before gcpipe set its home: run this in a fresh process.")
    os.environ.update(env)
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def migrate_database() -> None:
    """Create or upgrade Airflow's SQLite database (idempotent; a few seconds the first time)."""
    from airflow.utils import db

    db.upgradedb()


def load_dags() -> dict:
    """Every DAG in ``dags/``, by id; a DAG file that does not import is one error naming the file."""
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(str(DAGS_DIR), bundle_path=DAGS_DIR, bundle_name="dags-folder")  # dags/ on sys.path
    if bag.import_errors:
        path, error = next(iter(bag.import_errors.items()))
        raise DagRunError(f"{Path(path).name} does not import: {error.strip().splitlines()[-1]}")
    return bag.dags


def logical_date(day: date | None) -> datetime | None:
    """A DATE as Airflow's logical date (aware midnight UTC); None: a run without one, as Airflow 3's
    manual triggers are."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None


@dataclass(frozen=True)
class TaskOutcome:
    task_id: str
    state: str
    tries: int
    seconds: float | None


@dataclass(frozen=True)
class DagOutcome:
    dag_id: str
    run_id: str
    state: str
    tasks: list[TaskOutcome]

    @property
    def failed(self) -> list[str]:
        return [t.task_id for t in self.tasks if t.state == "failed"]


def run_dag(dag_id: str, day: date | None = None, conf: dict | None = None) -> DagOutcome:
    """Run ``dag_id`` once in this process (``dag.test``), for ``day`` or without a logical date."""
    dags = load_dags()
    if dag_id not in dags:
        raise DagRunError(f"there is no DAG {dag_id!r} in dags/; there are: {', '.join(sorted(dags))}.")
    run = dags[dag_id].test(logical_date=logical_date(day), run_conf=conf)
    return outcome(run)


def outcome(run) -> DagOutcome:
    """What a finished DagRun did, task by task, in the order the tasks ran."""
    instances = sorted(
        run.get_task_instances(), key=lambda ti: ti.start_date or datetime.max.replace(tzinfo=UTC)
    )
    tasks = [TaskOutcome(ti.task_id, str(ti.state), ti.try_number, ti.duration) for ti in instances]
    return DagOutcome(run.dag_id, run.run_id, str(run.state), tasks)
