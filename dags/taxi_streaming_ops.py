"""### taxi_streaming_ops: keep the streaming rides job running on the current code, and its output fresh

* **SETUP** `find_streaming_job`: is the job `gcpipe-taxi-streaming` running?
* **BODY** `start_streaming_job` if not, else `update_streaming_job` (the other is skipped): the
  taxi_streaming flex template on Dataflow, reading the rides subscription into the `taxi` dataset; an
  update replaces the running job in place, keeping its state. Locally the pipeline runs as a process
  of its own on the Pub/Sub emulator (an update restarts it; its replay loses nothing).
  Then `check_freshness`: the newest per-minute aggregate was emitted at most `max_age_minutes` (10) ago,
  else the run fails naming the check; it retries with backoff first, as a job just started needs a
  few minutes before its first panes.
* **TEARDOWN** none: the job is meant to keep running; stop it with a Dataflow drain.

Every 15 minutes, one run at a time; a run that finds the job running and fresh changes nothing but
the job's code (an update).
"""

from datetime import timedelta

from airflow.sdk import TriggerRule
from airflow.timetables.trigger import CronTriggerTimetable
from gcpipe_ops import check, gcpipe_dag, streaming_job, streaming_source, table_id

with gcpipe_dag(
    "taxi_streaming_ops",
    doc=__doc__,
    schedule=CronTriggerTimetable("*/15 * * * *", timezone="UTC"),
    tags=["streaming", "dataflow"],
    dagrun_timeout=timedelta(minutes=45),
    params={"local_seconds": 0},
) as dag:
    find, start, update = streaming_job(
        "taxi_streaming",
        {**streaming_source(), "output_dataset": table_id("rides_per_minute").rsplit(".", 1)[0]},
        job_name="gcpipe-taxi-streaming",
        local_seconds="{{ params.local_seconds }}",
    )
    [start, update] >> check(
        "check_freshness",
        "checks/rides_per_minute_freshness.sql",
        {"max_age_minutes": 10},
        retries=4,
        retry_delay=timedelta(minutes=1),
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
    )
