"""### batch_ingest: a day's taxi-trip CSV files into BigQuery, transformed, checked, then set aside

* **SETUP** `wait_for_files`: the day's files in the lake under `landing/taxi_trips/<date>/` (a GCS sensor
  on gcp, the lake folder locally); `create_zones_table` and `seed_zones`: the zones the transform joins.
* **BODY** `ingest_csv`: the CSV ingestion pipeline (Beam: on Dataflow with the csv_ingest image, on the
  DirectRunner locally) validates every row, replaces the day's partition of `taxi.taxi_trips` and
  dead-letters what it rejects; `build_trips_by_zone_hour` rebuilds the zone summary; the data-quality
  checks fail the run, naming the check, if the day is empty, too many rows were rejected, or the
  summary lost trips; `train_demand_model` (ARIMA_PLUS on each pickup zone's hourly pickups) and
  `forecast_demand` (ML.FORECAST of the next day into `taxi.taxi_demand_forecast`).
* **TEARDOWN** the files move to `processed/success/taxi_trips/<date>/` when the run succeeds, to
  `processed/failure/taxi_trips/<date>/` when any step failed (look there, fix, move them back, re-run).

Daily at 02:00 UTC for the day before (the logical date is the day: a re-run replaces that day, never
duplicates it). Trigger with `{"date": "2019-03-01"}` to load any day; without a date and without a
logical date (a manual trigger) it loads the trigger's day.
"""

from datetime import timedelta

from airflow.sdk import TriggerRule
from airflow.timetables.interval import CronDataIntervalTimetable

from gcpipe.orchestration.operators import (
    RUN_DATE,
    flow,
    gcpipe_dag,
    lake_uri,
    move_files,
    table_id,
    task,
    wait_for_files,
)

batch = flow("batch_csv")
LANDING = f"{batch.step('wait_for_files').runs}/{RUN_DATE}"

with gcpipe_dag(
    "batch_ingest",
    doc=__doc__,
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    tags=["batch", "beam", "bigquery"],
    dagrun_timeout=timedelta(hours=8),
    params={"max_dead_letter_percent": 1.0},
) as dag:
    arrived = wait_for_files("wait_for_files", LANDING)
    zones = task(batch.step("create_zones_table")) >> task(batch.step("seed_zones"))

    ingest = task(
        batch.step("ingest_csv"),
        options={
            "input": lake_uri(f"{LANDING}/*.csv*"),
            "schema": "taxi_trips",
            "table": table_id("taxi_trips"),
            "partition_date": RUN_DATE,
            "output": lake_uri(f"ingest/taxi_trips/{RUN_DATE}"),
        },
    )
    day_loaded = task(
        batch.step("check_day_loaded"),
        params={
            "partition_date": RUN_DATE,
            "max_dead_letter_percent": "{{ params.max_dead_letter_percent }}",
        },
    )
    summary = task(batch.step("build_trips_by_zone_hour"))
    conserved = task(batch.step("check_trips_by_zone_hour"))
    demand = task(batch.step("train_demand_model"))
    forecast = task(batch.step("forecast_demand"))

    succeeded = move_files("files_to_success", LANDING, f"{batch.step('files_to_success').runs}/{RUN_DATE}")
    failed = move_files(
        "files_to_failure",
        LANDING,
        f"{batch.step('files_to_failure').runs}/{RUN_DATE}",
        trigger_rule=TriggerRule.ONE_FAILED,
    )

    arrived >> ingest
    [ingest, zones] >> summary >> conserved >> demand >> forecast
    ingest >> day_loaded
    [day_loaded, forecast] >> succeeded
    [ingest, summary, day_loaded, conserved, demand, forecast] >> failed
