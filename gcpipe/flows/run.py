"""Running a flow's SQL steps in order on the configured target, as the demo and the tests do (a DAG runs
them one task each)."""

from __future__ import annotations

from collections.abc import Callable

from gcpipe.core.config import PROJECT_ROOT, Config
from gcpipe.flows.registry import CHECK, SQL, Flow, Step
from gcpipe.warehouse.runner import RunResult, run_sql_file

SQL_DIR = PROJECT_ROOT / "sql"


def run_sql_steps(
    flow: Flow, config: Config, client=None, report: Callable[[Step, RunResult], None] | None = None
) -> dict[str, RunResult]:
    """Run each SQL and check step of ``flow`` that the demo runs, in order; a failed check stops the run.
    Returns each step's result by step name."""
    results = {}
    for step in flow.demo_steps(SQL, CHECK):
        results[step.name] = run_sql_file(
            SQL_DIR / step.runs, dict(step.params), config=config, client=client
        )
        if report:
            report(step, results[step.name])
    return results
