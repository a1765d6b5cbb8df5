"""### spark_kdd: the KDD Cup 99 intrusion analysis on a cluster of its own

* **SETUP** `create_cluster`: a Dataproc cluster for this run only (`infra/dataproc/cluster.yaml`, named
  `gcpipe-kdd-analysis-<date>-<run hash>`); a no-op locally (Spark runs on local[*]).
* **BODY** `kdd_analysis`: the Spark job `spark_jobs/kdd_analysis.py` reads the connections file landed in
  the lake bucket (`gs://LAKE_BUCKET/landing/kdd/kddcup.data.gz`; locally the storage emulator's, through
  the same GCS connector) and writes its aggregates, report and malformed lines under
  `kdd/analysis/<date>/`, the attack statistics to BigQuery `kdd.attack_stats` and the valid connections,
  one row each, to `kdd.kdd_connections` -> `train_connection_clusters` (BigQuery ML k-means of 4 clusters on
  the connections' traffic aggregates, `kdd.connection_clusters`) -> `flag_rare_connections`
  (ML.DETECT_ANOMALIES: the 1 % of connections furthest from their cluster into `kdd.rare_connections`).
* **TEARDOWN** `delete_cluster`: always (TriggerRule.ALL_DONE), also when the job failed; the run still
  fails then. A no-op locally.

Weekly, Mondays at 04:00 UTC. Set `GCPIPE_SPARK_SERVERLESS=1` in the Composer environment to run the job
as a Dataproc Serverless batch instead (the cluster steps become no-ops).
"""

from datetime import timedelta

from airflow.sdk import chain
from airflow.timetables.interval import CronDataIntervalTimetable

from gcpipe.orchestration.operators import RUN_DATE, bucket_uri, flow, gcpipe_dag, task

with gcpipe_dag(
    "spark_kdd",
    doc=__doc__,
    schedule=CronDataIntervalTimetable("0 4 * * 1", timezone="UTC"),
    tags=["spark", "dataproc"],
    dagrun_timeout=timedelta(hours=4),
) as dag:
    kdd = flow("kdd")
    _create, analysis, _delete = task(
        kdd.step("kdd_analysis"), args=["--output", bucket_uri(f"kdd/analysis/{RUN_DATE}")]
    )
    chain(analysis, *(task(step) for step in kdd.steps[1:]))
