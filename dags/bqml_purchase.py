"""### bqml_purchase: retrain the purchase model in BigQuery ML, and predict only with a model good enough

* **SETUP** the data-quality checks on `ecommerce.ga_sessions` (unique visits, required values, accepted
  values): a failed check stops the run before anything is built, naming the check.
* **BODY** the denormalised tables (`build_visitor_sessions`, `build_session_funnel`, `build_top_products`,
  checked: no session lost) -> `build_features` (first visits and whether the visitor bought on a later
  one) -> `train_model` (logistic regression, `CREATE OR REPLACE MODEL`) -> `evaluate_model` on later
  first visits it was not trained on, and its `roc_curve` -> `train_tree_model` (boosted trees on the same
  rows) -> `compare_roc_curves` and `confusion_matrices` of both models -> `roc_auc_gate`: a check that
  fails the run when the logistic model's ROC AUC is below `min_roc_auc` (a run param, 0.75 by default),
  so `predict` never writes predictions of a worse model -> `predict` into `ecommerce.purchase_predictions`.
* **TEARDOWN** none: every step replaces what it writes (`CREATE OR REPLACE`), so a re-run is safe.

The steps, their SQL files and dates are the e-commerce flow's (`gcpipe.flows.registry`), which `make demo`
runs too, one after another. BigQuery ML on gcp; gcpipe's local BigQuery ML on the emulator locally.
Weekly, Sundays at 06:00 UTC.
"""

from datetime import timedelta

from airflow.sdk import chain
from airflow.timetables.trigger import CronTriggerTimetable

from gcpipe.orchestration.operators import flow, gcpipe_dag, task

with gcpipe_dag(
    "bqml_purchase",
    doc=__doc__,
    schedule=CronTriggerTimetable("0 6 * * 0", timezone="UTC"),
    tags=["bigquery", "ml"],
    dagrun_timeout=timedelta(hours=3),
    params={"min_roc_auc": 0.75},
) as dag:
    gate = {"roc_auc_gate": {"min_roc_auc": "{{ params.min_roc_auc }}"}}
    chain(*(task(step, params=gate.get(step.name)) for step in flow("ecommerce").steps))
