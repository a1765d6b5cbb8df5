"""The e-commerce warehouse flow, as the SQL files it runs in order: load the GA-like sessions, build the
denormalised tables, check the data, then train, evaluate and apply the purchase model.

``make demo`` runs it on generated sessions; an Airflow DAG can run the same steps (``STEPS``) one task
each. Dates match the generator's year (August 2016 to July 2017): the model learns from first visits up
to the end of April and is judged on, and applied to, the three months after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from gcpipe.core.clients import bigquery_client, ensure_table
from gcpipe.core.config import PROJECT_ROOT, Config
from gcpipe.core.schemas import table_spec
from gcpipe.warehouse.load import load_json_lines
from gcpipe.warehouse.runner import RunResult, run_sql_file

SQL_DIR = PROJECT_ROOT / "sql"
TRAIN = {"train_from": date(2016, 8, 1), "train_to": date(2017, 4, 30)}
LATER = {"from": date(2017, 5, 1), "to": date(2017, 7, 31)}

STEPS: list[tuple[str, dict]] = [
    ("transforms/visitor_sessions.sql", {}),
    ("transforms/session_funnel.sql", {}),
    ("transforms/top_products.sql", {"top_n": 3}),
    ("checks/ga_sessions_unique_visits.sql", {}),
    ("checks/ga_sessions_not_null.sql", {}),
    ("checks/ga_sessions_accepted_values.sql", {}),
    ("checks/visitor_sessions_row_counts.sql", {}),
    ("ml/purchase_features.sql", {}),
    ("ml/purchase_model.sql", TRAIN),
    ("ml/purchase_model_evaluate.sql", {"eval_from": LATER["from"], "eval_to": LATER["to"]}),
    ("ml/purchase_model_roc_curve.sql", {"eval_from": LATER["from"], "eval_to": LATER["to"]}),
    ("ml/purchase_predictions.sql", {"predict_from": LATER["from"], "predict_to": LATER["to"]}),
]


@dataclass
class FlowResult:
    sessions: int
    results: dict[str, RunResult] = field(default_factory=dict)

    @property
    def metrics(self) -> dict:
        """The purchase model's evaluation on the later first visits (ML.EVALUATE's row)."""
        return self.results["ml/purchase_model_evaluate.sql"].rows[0]

    @property
    def roc_curve(self) -> list[dict]:
        """The purchase model's ROC curve on the same visits (ML.ROC_CURVE's rows)."""
        return self.results["ml/purchase_model_roc_curve.sql"].rows


def run_ecommerce_flow(
    config: Config,
    sessions_path: str | Path,
    client=None,
    report: Callable[[str, RunResult], None] | None = None,
) -> FlowResult:
    """Load ``sessions_path`` (JSON lines) into ga_sessions, then run every step; checks stop the flow."""

    client = client or bigquery_client(config)
    spec = table_spec("ga_sessions")
    ensure_table(client, spec, spec.table_id(config))
    flow = FlowResult(load_json_lines(client, sessions_path, spec.table_id(config)))
    for path, params in STEPS:
        flow.results[path] = result = run_sql_file(SQL_DIR / path, params, config=config, client=client)
        if report:
            report(path, result)
    return flow
