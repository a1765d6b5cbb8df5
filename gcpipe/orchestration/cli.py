"""``gcpipe dags``: gcpipe's Airflow DAGs on the local target (list them, run one once, serve Airflow)."""

from __future__ import annotations

import os
import sys

import click
from rich.table import Table

from gcpipe.core.config import load_config
from gcpipe.core.ui import console, print_table


def _local_airflow():
    from gcpipe.orchestration.airflow_home import migrate_database, use_local_airflow

    config = load_config(target="local")
    env = use_local_airflow(config)
    migrate_database()
    return config, env


@click.group()
def dags() -> None:
    """gcpipe's Airflow DAGs (dags/) on the local target."""


@dags.command("list")
def list_dags() -> None:
    """Every DAG in dags/: its schedule, tags and tasks."""
    from gcpipe.orchestration.airflow_home import load_dags, use_local_airflow

    use_local_airflow(load_config(target="local"))
    table = Table("DAG", "schedule", "tags", "tasks", title="dags/")
    for dag_id, dag in sorted(load_dags().items()):
        table.add_row(dag_id, str(dag.timetable.summary), ", ".join(sorted(dag.tags)), str(len(dag.tasks)))
    print_table(table)


@dags.command("test")
@click.argument("dag_id")
@click.argument("day", required=False, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--conf", "conf", multiple=True, metavar="NAME=VALUE", help="A run param (repeatable).")
def test(dag_id: str, day, conf: tuple[str, ...]) -> None:
    """Run DAG_ID once, end to end, on the local target: for DAY (YYYY-MM-DD), or without a logical date."""
    from gcpipe.local import stack
    from gcpipe.orchestration.airflow_home import DagRunError, run_dag

    config, _ = _local_airflow()
    stack.up(config, report=lambda *_: None)
    params = dict(item.split("=", 1) for item in conf)
    outcome = run_dag(dag_id, day.date() if day else None, params or None)
    table = Table("task", "state", "tries", "seconds", title=f"{dag_id} {outcome.run_id}: {outcome.state}")
    for task in outcome.tasks:
        colour = {"success": "green", "failed": "red", "upstream_failed": "red"}.get(task.state, "yellow")
        seconds = f"{task.seconds:.1f}" if task.seconds is not None else ""
        table.add_row(task.task_id, f"[{colour}]{task.state}[/]", str(task.tries), seconds)
    print_table(table)
    if outcome.state != "success":
        raise DagRunError(f"{dag_id} failed at {', '.join(outcome.failed) or 'a task'}: its log is above.")


@dags.command()
def standalone() -> None:
    """``airflow standalone`` on SQLite under the state folder, with dags/ and the local connections."""
    config, env = _local_airflow()
    console.print(
        f"Airflow on http://127.0.0.1:{config.port('airflow')}/ (no login, loopback only); "
        f"home {env['AIRFLOW_HOME']}, DAGs from dags/ on the local target. Ctrl-C stops it."
    )
    bin_dir = os.path.dirname(sys.executable)  # standalone starts its parts as `airflow ...` from PATH
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    airflow = os.path.join(bin_dir, "airflow")
    os.execv(airflow, [airflow, "standalone"])  # noqa: S606 (becomes Airflow: Ctrl-C reaches it directly)
