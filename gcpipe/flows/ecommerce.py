"""The e-commerce warehouse flow on the local target: load the GA-like sessions, then run the flow's SQL
steps (gcpipe.flows.registry: check the sessions, build the denormalised tables, then train, evaluate and
apply the purchase model). ``make demo`` runs it on generated sessions; the bqml_purchase DAG runs the same
steps, one task each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gcpipe.core.clients import bigquery_client, ensure_table
from gcpipe.core.config import Config
from gcpipe.core.schemas import table_spec
from gcpipe.flows.registry import Step, flow
from gcpipe.flows.run import run_sql_steps
from gcpipe.warehouse.load import load_json_lines
from gcpipe.warehouse.runner import RunResult

ECOMMERCE = flow("ecommerce")


@dataclass
class FlowResult:
    sessions: int
    results: dict[str, RunResult] = field(default_factory=dict)

    @property
    def metrics(self) -> dict:
        """The purchase model's evaluation on the later first visits (ML.EVALUATE's row)."""
        return self.results["evaluate_model"].rows[0]

    @property
    def roc_curve(self) -> list[dict]:
        """The purchase model's ROC curve on the same visits (ML.ROC_CURVE's rows)."""
        return self.results["roc_curve"].rows


def run_ecommerce_flow(
    config: Config,
    sessions_path: str | Path,
    client=None,
    report: Callable[[Step, RunResult], None] | None = None,
) -> FlowResult:
    """Load ``sessions_path`` (JSON lines) into ga_sessions, then run every step; checks stop the flow."""
    client = client or bigquery_client(config)
    spec = table_spec("ga_sessions")
    ensure_table(client, spec, spec.table_id(config))
    loaded = load_json_lines(client, sessions_path, spec.table_id(config))
    return FlowResult(loaded, run_sql_steps(ECOMMERCE, config, client, report))
