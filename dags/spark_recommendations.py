"""### spark_recommendations: ALS accommodation recommendations on a cluster of its own

* **SETUP** `create_cluster`: a Dataproc cluster for this run only (`infra/dataproc/cluster.yaml`, named
  `gcpipe-als-recommend-<date>-<run hash>`); a no-op locally (Spark runs on local[*]).
* **BODY** `als_recommend`: the Spark job `spark_jobs/als_recommend.py` trains ALS on the ratings landed
  in the lake bucket (`gs://LAKE_BUCKET/landing/rentals/`; locally the storage emulator's), reports its
  RMSE against the mean rating, and writes the top 5 unseen accommodations of every user to
  `rentals/recommendations/<date>/` of the bucket and BigQuery `rentals.recommendations`.
* **TEARDOWN** `delete_cluster`: always (TriggerRule.ALL_DONE), also when the job failed; the run still
  fails then. A no-op locally.

Daily at 05:00 UTC. `GCPIPE_SPARK_SERVERLESS=1` in the Composer environment: a Dataproc Serverless batch.
"""

from datetime import timedelta

from airflow.timetables.interval import CronDataIntervalTimetable

from gcpipe.orchestration.operators import RUN_DATE, bucket_uri, flow, gcpipe_dag, table_id, task

with gcpipe_dag(
    "spark_recommendations",
    doc=__doc__,
    schedule=CronDataIntervalTimetable("0 5 * * *", timezone="UTC"),
    tags=["spark", "dataproc", "ml"],
    dagrun_timeout=timedelta(hours=4),
) as dag:
    recommendations = table_id("recommendations").rsplit(".", 1)[0]  # the job names its tables in a dataset
    task(
        flow("recommendations").step("als_recommend"),
        args=[
            "--sink",
            bucket_uri(f"rentals/recommendations/{RUN_DATE}"),
            "--sink",
            f"bq://{recommendations}",
        ],
    )
