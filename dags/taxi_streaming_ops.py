"""### taxi_streaming_ops: keep the streaming rides job running on the current code, and its output fresh

* **SETUP** `find_streaming_job`: is the job `gcpipe-taxi-streaming` running?
* **BODY** `start_streaming_job` if it does not run; `update_streaming_job` if it runs and the run was
  triggered with `{"update": true}` (after deploying new code: an update replaces the running job in
  place, keeping its state); neither if it runs and no update was asked for. The taxi_streaming flex
  template on Dataflow reads the rides subscription into the `taxi` dataset; locally the pipeline runs
  as a process of its own on the Pub/Sub emulator (an update restarts it; its replay loses nothing).
  Then, always, `check_freshness`: the newest per-minute aggregate was emitted at most
  `max_age_minutes` (10) ago, else the run fails naming the check; it retries with backoff first, as a
  job just started needs a few minutes before its first panes.
* **TEARDOWN** none: the job is meant to keep running; stop it with a Dataflow drain.

Every 15 minutes, one run at a time: a scheduled run restarts a job that stopped and checks that its
output is fresh; it never replaces a healthy job (a Dataflow update is not free).
"""

from datetime import timedelta

from airflow.sdk import TriggerRule
from airflow.timetables.trigger import CronTriggerTimetable

from gcpipe.orchestration.operators import flow, gcpipe_dag, streaming_job, streaming_source, table_id, task

rides = flow("streaming_rides")

with gcpipe_dag(
    "taxi_streaming_ops",
    doc=__doc__,
    schedule=CronTriggerTimetable("*/15 * * * *", timezone="UTC"),
    tags=["streaming", "dataflow"],
    dagrun_timeout=timedelta(minutes=45),
    params={"update": False, "local_seconds": 0},
) as dag:
    find, start, update = streaming_job(
        rides.step("start_streaming_job").runs.removeprefix("pipelines."),
        {**streaming_source(), "output_dataset": table_id("rides_per_minute").rsplit(".", 1)[0]},
        job_name="gcpipe-taxi-streaming",
        then="check_freshness",
        local_seconds="{{ params.local_seconds }}",
    )
    [find, start, update] >> task(
        rides.step("check_freshness"),
        retries=4,
        retry_delay=timedelta(minutes=1),
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
    )
