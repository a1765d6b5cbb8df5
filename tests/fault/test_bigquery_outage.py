"""The BigQuery emulator stopped and started again while a pipeline writes: the streaming pipeline mid-stream,
the CSV pipeline mid-load.

Streaming: the writer waits the outage out (its client's retries cut short, so it logs and tries again
every 2 s); a write whose answer was lost may have landed, so before trying again it drops the events and
dead letters BigQuery holds already. Meanwhile the reader stops pulling once its unacknowledged messages
reach ``max_outstanding``. Nothing is lost (a message is acknowledged only once stored), nothing is stored
twice, every malformed message is dead-lettered once, and the windows equal the ground truth.

CSV: the load stages its files in a table, then one transaction replaces the partition. The emulator
keeps its tables on disk, so a load that meets the outage either rides it out (the client's own retries)
or fails with one sentence and leaves the table as it was; run again, it leaves every row once.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from datetime import date

import pytest
from google.api_core.exceptions import GoogleAPIError, NotFound

from gcpipe.core import pubsub
from gcpipe.core.clients import publisher_client, subscriber_client
from gcpipe.core.errors import GcpipeError
from gcpipe.datagen.ride_publisher import MALFORMED_KINDS, publish_rides
from gcpipe.datagen.taxi_trips import write_trips_csv
from gcpipe.local import stack
from pipelines import csv_ingest
from tests.integration.test_csv_ingest import day_args
from tests.integration.test_taxi_streaming import expected_minutes, landed_minutes, read_manifests
from tests.rides_pipeline import finish, running_pipeline, wait_until_reading

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def _query(bq, sql: str, limit: float = 120) -> list:
    """Rows of ``sql``, waiting for the emulator to answer again (it may be restarting)."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return list(bq.query(sql).result())
        except NotFound:
            return []
        except (GoogleAPIError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _stored(bq, dataset: str) -> int:
    rows = _query(bq, f"SELECT COUNT(*) AS n FROM `{dataset}.ride_events`")
    return rows[0]["n"] if rows else 0


def _restart_bigquery(config) -> None:
    service = stack.SERVICES["bigquery"]
    try:
        stack.stop_service(service, config)
        time.sleep(8)  # the outage: every write fails to connect
    finally:
        stack.start_service(service, config)


def test_the_streaming_pipeline_rides_out_a_bigquery_restart_mid_stream(bq, local_stack, tmp_path):
    project = local_stack.project
    topic, dataset = f"bqdown-{uuid.uuid4().hex[:8]}", f"{project}.bqdown_{uuid.uuid4().hex[:8]}"
    topic_path = pubsub.ensure_topic(publisher_client(), pubsub.path(project, "topics", topic))
    subscription = pubsub.path(project, "subscriptions", f"{topic}-sub")
    pubsub.ensure_subscription(subscriber_client(), subscription, topic_path)
    manifest = tmp_path / "sent.jsonl"
    publisher = threading.Thread(
        target=publish_rides,
        args=(topic, 300, 12_000),
        kwargs={"duplicates": 0.02, "malformed": 0.02, "seed": 21, "manifest": manifest},
    )
    log = tmp_path / "pipeline.log"
    with running_pipeline(subscription, dataset, 150, log) as process:
        wait_until_reading(process, subscription)
        publisher.start()
        deadline = time.monotonic() + 90
        while _stored(bq, dataset) < 2000 and time.monotonic() < deadline:  # well under way
            time.sleep(0.5)
        before = _stored(bq, dataset)
        _restart_bigquery(local_stack)  # mid-stream: the publisher is sending, the writer writing
        assert process.poll() is None, log.read_text()[-3000:]
        publisher.join()
        finish(process, log)

    text = log.read_text()
    assert "BigQuery unreachable" in text and "BigQuery reachable again" in text  # it met the outage
    records = read_manifests(manifest)
    events = {r["event_id"]: json.loads(r["data"]) for r in records if r["kind"] in ("valid", "late")}
    malformed = {r["event_id"] for r in records if r["kind"] in MALFORMED_KINDS}
    stored = Counter(r["event_id"] for r in _query(bq, f"SELECT event_id FROM `{dataset}.ride_events`"))
    assert 2000 <= before < len(events)  # the outage came mid-stream
    assert set(stored) == set(events)  # nothing lost
    assert max(stored.values()) == 1  # nothing twice
    dead = Counter(
        json.loads(r["attributes"])["event_id"]
        for r in _query(bq, f"SELECT attributes FROM `{dataset}.ride_dead_letter`")
    )
    assert set(dead) == malformed and max(dead.values()) == 1  # each malformed message dead-lettered once
    assert landed_minutes(bq, dataset) == expected_minutes(list(events.values()))


def _count(bq, sql: str) -> int:
    return _query(bq, sql)[0][0]


def _staging(bq, dataset: str) -> list[str]:
    try:
        return [t.table_id for t in bq.list_tables(dataset) if "__staging_" in t.table_id]
    except (GoogleAPIError, OSError):
        return []


def test_the_csv_load_meets_a_bigquery_restart_and_leaves_each_row_once(bq, local_stack, dataset, tmp_path):
    made = write_trips_csv(tmp_path / "trips.csv", 60_000, seed=5, malformed=0.01, start=date(2019, 3, 1))
    table = f"{local_stack.project}.{dataset}.taxi_trips"
    argv = day_args(made.path, table)
    outcome: dict = {}

    def ingest():
        try:
            outcome["result"] = csv_ingest.run(argv)
        except GcpipeError as err:
            outcome["error"] = str(err)

    loading = threading.Thread(target=ingest, daemon=True)
    loading.start()
    deadline = time.monotonic() + 120
    while not _staging(bq, dataset) and loading.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert loading.is_alive(), f"it ended before the outage: {outcome}"
    _restart_bigquery(local_stack)  # mid-load: the rows are being staged
    loading.join(timeout=600)
    assert not loading.is_alive()

    print(f"the load met the outage: {outcome.get('error', 'rode it out')}")
    dead = made.rows - made.valid
    count = f"SELECT COUNT(*) FROM `{table}`"
    if "error" in outcome:  # one sentence, and the table as it was: nothing half-written
        assert "\n" not in outcome["error"] and outcome["error"].endswith("."), outcome["error"]
        assert _query(bq, count) == [] or _count(bq, count) == 0
        result = csv_ingest.run(argv)  # run again
    else:
        result = outcome["result"]
    assert (result.rows_read, result.rows_loaded, result.rows_dead_lettered) == (made.rows, made.valid, dead)
    assert _count(bq, count) == made.valid  # nothing missing, nothing twice
    distinct = f"SELECT COUNT(*) FROM (SELECT DISTINCT TO_JSON_STRING(t) FROM `{table}` AS t)"
    assert _count(bq, distinct) == made.valid
    assert _count(bq, f"SELECT COUNT(*) FROM `{table}_dead_letter`") == dead
