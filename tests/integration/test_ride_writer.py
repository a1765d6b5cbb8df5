"""The streaming pipeline's BigQuery writer against the emulator: what BigQuery refuses goes to the dead
letters with its reason, the rest is stored, and a refused row with nowhere to go stops the writer."""

import pytest

from gcpipe.core.clients import ensure_table
from gcpipe.core.schemas import table_spec
from pipelines.transforms.bigquery_rows import Job, RowsRejected, _Writer

pytestmark = pytest.mark.stack

EVENT = {
    "ride_id": "r1",
    "point_idx": 0,
    "latitude": 40.75,
    "longitude": -73.98,
    "timestamp": "2026-01-01T10:00:00+00:00",
    "meter_reading": 2.5,
    "meter_increment": 0.04,
    "ride_status": "pickup",
    "passenger_count": 1,
    "event_id": "e1",
    "message_id": "m1",
}


def test_refused_rows_are_dead_lettered_with_their_reason_and_the_rest_stored(bq, dataset):
    events, dead = (f"{bq.project}.{dataset}.{name}" for name in ("ride_events", "ride_dead_letter"))
    for table in (events, dead):
        ensure_table(bq, table_spec(table.rsplit(".", 1)[1]), table)
    refused = {**EVENT, "passenger_count": "two", "event_id": "e2", "message_id": "m2"}
    writer = _Writer("test")
    writer.submit(Job(events, [EVENT], dead_letter_table=dead))
    writer.submit(Job(events, [refused, {**EVENT, "event_id": "e3"}], dead_letter_table=dead))
    writer.flush()

    stored = sorted(row["event_id"] for row in bq.query(f"SELECT event_id FROM `{events}`").result())
    assert stored == ["e1", "e3"]
    [letter] = bq.query(f"SELECT * FROM `{dead}`").result()
    assert letter["reason"].startswith("BigQuery rejected the row: ") and letter["message_id"] == "m2"
    assert '"passenger_count": "two"' in letter["raw"]

    writer.submit(Job(events, [refused]))  # no dead-letter table: the writer stops, the pipeline with it
    with pytest.raises(RowsRejected, match=r"1 rows rejected by .*ride_events"):
        writer.flush()
