"""The Cloud Storage emulator stopped and started again while the CSV pipeline reads its gs:// input.

The pipeline reads the file in blocks through Beam's GCS file system (the emulator, locally). A read that
meets the outage is retried by the storage client; past that, the run fails with one sentence before it
loads anything: the table is as it was. Run again (the file uploaded again if the emulator lost it), it
leaves every row once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import date

import pytest

from gcpipe.core.clients import storage_client
from gcpipe.core.errors import GcpipeError
from gcpipe.datagen.taxi_trips import write_trips_csv
from gcpipe.local import stack
from pipelines import csv_ingest
from tests.integration.test_csv_ingest import day_args

pytestmark = [pytest.mark.stack, pytest.mark.slow]


class _Heard(logging.Handler):
    """Set ``event`` once a log record contains ``text``."""

    def __init__(self, text: str):
        super().__init__()
        self.text, self.event = text, threading.Event()

    def emit(self, record):
        if self.text in record.getMessage():
            self.event.set()


def _count(bq, sql: str) -> int:
    return next(iter(bq.query(sql).result()))[0]


def test_the_csv_pipeline_meets_a_storage_restart_while_reading(bq, local_stack, dataset, tmp_path):
    made = write_trips_csv(tmp_path / "trips.csv", 300_000, seed=8, malformed=0.01, start=date(2019, 3, 1))
    blob = f"landing/outage-{uuid.uuid4().hex[:8]}/trips.csv"
    bucket = storage_client(local_stack).bucket(local_stack.lake_bucket)
    bucket.blob(blob).upload_from_filename(made.path)
    table = f"{local_stack.project}.{dataset}.taxi_trips"
    argv = day_args(f"gs://{local_stack.lake_bucket}/{blob}", table)
    outcome: dict = {}

    def ingest():
        try:
            outcome["result"] = csv_ingest.run(argv)
        except GcpipeError as err:
            outcome["error"] = str(err)
        except Exception as err:  # the test asserts there is none
            outcome["crash"] = repr(err)

    reading = _Heard("valid rows and dead letters as Parquet under")  # logged as the pipeline starts
    logging.getLogger("pipelines.csv_ingest").addHandler(reading)
    service = stack.SERVICES["gcs"]
    try:
        loading = threading.Thread(target=ingest, daemon=True)
        loading.start()
        assert reading.event.wait(120), outcome
        stack.stop_service(service, local_stack)  # as the pipeline begins to read the file
        assert loading.is_alive(), f"it ended before the outage: {outcome}"
        try:
            time.sleep(8)
        finally:
            stack.start_service(service, local_stack)
        loading.join(timeout=600)
    finally:
        logging.getLogger("pipelines.csv_ingest").removeHandler(reading)
    assert not loading.is_alive()
    print(f"the read met the outage: {outcome.get('error') or outcome.get('crash') or 'rode it out'}")
    assert "crash" not in outcome, outcome["crash"]  # a failure is one sentence, never a traceback

    dead = made.rows - made.valid
    if "error" in outcome:  # one sentence, and nothing loaded
        assert "\n" not in outcome["error"], outcome["error"]
        assert (
            not [t for t in bq.list_tables(dataset) if t.table_id == "taxi_trips"]
            or _count(bq, f"SELECT COUNT(*) FROM `{table}`") == 0
        )
        if not bucket.blob(blob).exists():  # the emulator kept nothing on disk
            bucket.blob(blob).upload_from_filename(made.path)
        result = csv_ingest.run(argv)
    else:
        result = outcome["result"]
    assert (result.rows_read, result.rows_loaded, result.rows_dead_lettered) == (made.rows, made.valid, dead)
    assert _count(bq, f"SELECT COUNT(*) FROM `{table}`") == made.valid
    assert _count(bq, f"SELECT COUNT(*) FROM `{table}_dead_letter`") == dead
