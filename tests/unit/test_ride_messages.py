"""Ride messages: redeliveries dropped on the local runner, a retried bundle kept on Dataflow; dead letters."""

import json

from gcpipe.core.schemas import RAW_LIMIT
from pipelines.transforms.bigquery_rows import rejected_row
from pipelines.transforms.ride_messages import CleanRideMessages, MessageBatch, RideMessage

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
}


def _batch() -> MessageBatch:
    messages = [
        RideMessage(json.dumps({**EVENT, "point_idx": i}).encode(), {"event_id": f"e{i}"}, f"m{i}")
        for i in range(3)
    ]
    return MessageBatch(messages, ack_ids=["a0", "a1", "a2"])


def _run(dofn: CleanRideMessages, batch: MessageBatch):
    (out,) = list(dofn.process(batch))
    return out


def test_the_local_runner_drops_a_redelivered_batch_as_duplicates():
    dofn = CleanRideMessages(dedup_seconds=600)
    dofn.setup()
    first, again = _run(dofn, _batch()), _run(dofn, _batch())
    assert (len(first.events), first.duplicates) == (3, 0)
    assert (len(again.events), again.duplicates, again.ack_ids) == (0, 3, ["a0", "a1", "a2"])


def test_without_a_process_memory_a_retried_bundle_keeps_its_events():
    dofn = CleanRideMessages(dedup_seconds=0)  # Dataflow: ReadFromPubSub(id_label=...) de-duplicates
    dofn.setup()
    first, retried = _run(dofn, _batch()), _run(dofn, _batch())
    assert [e["point_idx"] for e in retried.events] == [e["point_idx"] for e in first.events] == [0, 1, 2]
    assert retried.duplicates == 0


def test_a_row_bigquery_rejects_is_dead_lettered_like_any_message():
    row = {**EVENT, "ride_id": "x" * (2 * RAW_LIMIT), "event_id": "e9", "message_id": "m9"}
    dead = rejected_row(row, "invalid: ride_id too long")
    assert dead["reason"] == "BigQuery rejected the row: invalid: ride_id too long"
    assert len(dead["raw"]) == RAW_LIMIT and dead["raw"].startswith(
        '{"ride_id": "xxx'
    )  # bounded, like the rest
    assert (dead["message_id"], json.loads(dead["attributes"])) == ("m9", {"event_id": "e9"})
