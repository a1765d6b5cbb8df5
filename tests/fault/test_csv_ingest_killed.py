"""CSV ingestion killed with SIGKILL mid-run, then run again: every row once, in the table or the dead letters.

What may be lost: nothing. A killed run changes the tables only inside its one transaction (delete the
partition, insert the staged rows), so they hold either the previous load or the new one; the re-run
replaces the partition. What may be left behind: the killed run's staging table (it never reached its
``finally``); it carries a one-day expiry for BigQuery to delete (the emulator keeps no expiry, so
locally it stays until the dataset goes). The test measures both.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date

import pytest

from gcpipe.core.config import PROJECT_ROOT
from gcpipe.datagen.taxi_trips import write_trips_csv
from gcpipe.flows.streaming import stop_pipeline
from pipelines import csv_ingest
from tests.integration.test_csv_ingest import day_args

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def _count(bq, sql: str) -> int:
    return next(iter(bq.query(sql).result()))[0]


def _staging_tables(bq, dataset: str) -> list[str]:
    return [t.table_id for t in bq.list_tables(dataset) if "__staging_" in t.table_id]


def test_a_run_killed_while_loading_then_run_again_leaves_each_row_once(bq, local_stack, dataset, tmp_path):
    made = write_trips_csv(tmp_path / "trips.csv", 60_000, seed=9, malformed=0.01, start=date(2019, 3, 1))
    table = f"{local_stack.project}.{dataset}.taxi_trips"
    argv = day_args(made.path, table)
    log = (tmp_path / "killed.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.csv_ingest", *argv],
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:  # kill it at its most delicate moment: rows staged in BigQuery, the transaction not yet run
        deadline = time.monotonic() + 120
        while not _staging_tables(bq, dataset) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, (
            f"it ended before it was killed: {(tmp_path / 'killed.log').read_text()}"
        )
    finally:
        stop_pipeline(process)
    left_behind = _staging_tables(bq, dataset)

    result = csv_ingest.run(argv)

    dead = made.rows - made.valid
    assert (result.rows_read, result.rows_loaded, result.rows_dead_lettered) == (made.rows, made.valid, dead)
    assert _count(bq, f"SELECT COUNT(*) FROM `{table}`") == made.valid  # nothing missing, nothing twice
    distinct_rows = f"SELECT COUNT(*) FROM (SELECT DISTINCT TO_JSON_STRING(t) FROM `{table}` AS t)"
    assert _count(bq, distinct_rows) == made.valid  # (the generated trips are all different)
    assert _count(bq, f"SELECT COUNT(*) FROM `{table}_dead_letter`") == dead
    assert _count(bq, f"SELECT COUNT(DISTINCT line) FROM `{table}_dead_letter`") == dead
    # Measured: what the killed run left is its staging table, and only that (the re-run cleaned its own).
    assert len(left_behind) == 1 and _staging_tables(bq, dataset) == left_behind
