"""### bqml_purchase: retrain the purchase model in BigQuery ML, and predict only with a model good enough

* **SETUP** the data-quality checks on `ecommerce.ga_sessions` (unique visits, required values, accepted
  values): a failed check stops the run before training, naming the check.
* **BODY** `build_features` (first visits and whether the visitor bought on a later one) -> `train_model`
  (logistic regression, `CREATE OR REPLACE MODEL`) -> `evaluate_model` on later first visits it was not
  trained on -> `roc_auc_gate`: a check that fails the run when ROC AUC is below `min_roc_auc` (a run
  param, 0.75 by default), so `predict` never writes predictions of a worse model -> `predict` into
  `ecommerce.purchase_predictions`.
* **TEARDOWN** none: every step replaces what it writes (`CREATE OR REPLACE`), so a re-run is safe.

The SQL files and their dates are those of the e-commerce flow (`gcpipe.flows.ecommerce.STEPS`, which
`make demo` runs too). BigQuery ML on gcp; gcpipe's local BigQuery ML on the emulator locally. Weekly,
Sundays at 06:00 UTC.
"""

from datetime import timedelta

from airflow.timetables.trigger import CronTriggerTimetable

from gcpipe.orchestration.operators import check, flow_params, gcpipe_dag, sql

with gcpipe_dag(
    "bqml_purchase",
    doc=__doc__,
    schedule=CronTriggerTimetable("0 6 * * 0", timezone="UTC"),
    tags=["bigquery", "ml"],
    dagrun_timeout=timedelta(hours=3),
    params={"min_roc_auc": 0.75},
) as dag:
    checks = [
        check(f"check_{name}", f"checks/ga_sessions_{name}.sql")
        for name in ("unique_visits", "not_null", "accepted_values")
    ]
    evaluation = flow_params("ml/purchase_model_evaluate.sql")
    (
        checks
        >> sql("build_features", "ml/purchase_features.sql")
        >> sql("train_model", "ml/purchase_model.sql", flow_params("ml/purchase_model.sql"))
        >> sql("evaluate_model", "ml/purchase_model_evaluate.sql", evaluation)
        >> check(
            "roc_auc_gate",
            "checks/purchase_model_roc_auc.sql",
            {**evaluation, "min_roc_auc": "{{ params.min_roc_auc }}"},
        )
        >> sql("predict", "ml/purchase_predictions.sql", flow_params("ml/purchase_predictions.sql"))
    )
