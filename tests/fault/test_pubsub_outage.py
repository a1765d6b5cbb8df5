"""The Pub/Sub emulator stopped and started again under a running streaming pipeline.

The pipeline rides out the outage (it keeps pulling, and fails only past ``outage_seconds``) and stores
what is published after it, hostile payloads included (dead-lettered with their reason, or stored as
data). What may be lost: what Pub/Sub itself drops. The emulator keeps nothing on disk, so a restart
forgets its topics, subscriptions and undelivered messages (real Pub/Sub keeps them); here every message
published before the stop had been stored, and the test measures the loss across the outage: none.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from gcpipe import pubsub, stack
from gcpipe.clients import publisher_client, subscriber_client
from gcpipe.rides import publish_rides
from tests.rides_pipeline import finish, running_pipeline, wait_until_reading
from tests.unit.test_bad_input import GOOD_RIDE

pytestmark = [pytest.mark.stack, pytest.mark.slow]

# (payload, where it must end: the reason's beginning, or None for stored as data)
HOSTILE = [
    (b"\xff\xfe not json", "not JSON"),
    (b"[" * 100_000, "not JSON: nested too deeply"),
    (b"{" + b"x" * 300_000, "not JSON"),
    (json.dumps({**GOOD_RIDE, "meter_reading": float("nan")}).encode(), "meter_reading: nan is not a finite"),
    (json.dumps({**GOOD_RIDE, "ride_id": "\ud800"}).encode(), "ride_id: "),
    (json.dumps({**GOOD_RIDE, "timestamp": "10000-01-01T00:00:00Z"}).encode(), "timestamp: "),
    (json.dumps({**GOOD_RIDE, "ride_id": "'; DROP TABLE ride_events; --`"}).encode(), None),
]


def _subscribe(project: str, topic: str, subscription: str) -> None:
    topic_path = pubsub.ensure_topic(publisher_client(), pubsub.path(project, "topics", topic))
    pubsub.ensure_subscription(subscriber_client(), subscription, topic_path)


def _stored(bq, dataset: str) -> list[str]:
    return [r["event_id"] for r in bq.query(f"SELECT event_id FROM `{dataset}.ride_events`").result()]


def test_the_pipeline_rides_out_a_pubsub_restart_and_stores_every_message_once(bq, local_stack, tmp_path):
    project = local_stack.project
    topic, dataset = f"outage-{uuid.uuid4().hex[:8]}", f"{project}.outage_{uuid.uuid4().hex[:8]}"
    subscription = pubsub.path(project, "subscriptions", f"{topic}-sub")
    _subscribe(project, topic, subscription)
    service = stack.SERVICES["pubsub"]
    with running_pipeline(subscription, dataset, 50, tmp_path / "pipeline.log") as process:
        wait_until_reading(process, subscription)
        before = publish_rides(topic, 400, 800, seed=31, manifest=tmp_path / "before.jsonl")
        deadline = time.monotonic() + 60
        while len(_stored(bq, dataset)) < before.valid and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(_stored(bq, dataset)) == before.valid  # all of it stored before the outage begins
        try:
            stack.stop_service(service, local_stack)
            time.sleep(6)  # the outage: pulls fail with UNAVAILABLE
            assert process.poll() is None, (tmp_path / "pipeline.log").read_text()[-2000:]
        finally:
            stack.start_service(service, local_stack)
        _subscribe(project, topic, subscription)  # the restarted emulator forgot them
        after = publish_rides(topic, 400, 800, seed=32, manifest=tmp_path / "after.jsonl")
        publisher = publisher_client()
        topic_path = pubsub.path(project, "topics", topic)
        for i, (data, _) in enumerate(HOSTILE):
            publisher.api.publish(
                topic=topic_path, messages=[{"data": data, "attributes": {"event_id": f"h{i}"}}]
            )
        finish(process, tmp_path / "pipeline.log")
    assert "failed, trying again" in (tmp_path / "pipeline.log").read_text()  # it did meet the outage

    manifest = [
        json.loads(line) for name in ("before", "after") for line in (tmp_path / f"{name}.jsonl").open()
    ]
    sent = {r["event_id"] for r in manifest if r["kind"] == "valid"}
    stored = _stored(bq, dataset)
    assert len(stored) == len(set(stored))  # nothing twice
    carried = {f"h{i}" for i, (_, reason) in enumerate(HOSTILE) if reason is None}
    assert set(stored) == sent | carried  # nothing lost across the outage
    assert before.valid + after.valid == len(sent)
    dead = {
        r["attributes"]: r["reason"] for r in bq.query(f"SELECT * FROM `{dataset}.ride_dead_letter`").result()
    }
    reasons = {json.loads(attributes)["event_id"]: reason for attributes, reason in dead.items()}
    for i, (_, expected) in enumerate(HOSTILE):
        if expected:
            assert reasons[f"h{i}"].startswith(expected), reasons[f"h{i}"]
    assert len(reasons) == len(HOSTILE) - len(carried)  # in = stored + dead-lettered
