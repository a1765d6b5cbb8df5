"""The Pub/Sub emulator stopped and started again under a running streaming pipeline, mid-stream: a
publisher keeps sending throughout (it waits out the outage), and the pipeline keeps pulling.

The pipeline rides out the outage (it keeps pulling, and fails only past ``outage_seconds``) and stores
what comes after it, hostile payloads included (dead-lettered with their reason, or stored as data).
What may be lost: only what Pub/Sub itself drops. The emulator keeps nothing on disk, so a restart
forgets its topics, subscriptions and the messages not yet delivered (real Pub/Sub keeps them): the
messages accepted in the moments before the stop that the pipeline had not pulled yet, and any accepted
while the topic had no subscription again. The test measures that window; everything the pipeline
pulled is stored once, and everything accepted after the restart is stored.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from google.api_core.exceptions import GoogleAPIError, NotFound

from gcpipe.core import pubsub
from gcpipe.core.clients import publisher_client, subscriber_client
from gcpipe.core.errors import GcpipeError
from gcpipe.datagen.ride_publisher import publish_rides
from gcpipe.local import stack
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
    """The events stored so far; none while the pipeline has yet to make its tables (a loaded machine may
    take longer than wait_until_reading's grace: the subscription here exists before the pipeline starts)."""
    try:
        return [r["event_id"] for r in bq.query(f"SELECT event_id FROM `{dataset}.ride_events`").result()]
    except NotFound:
        return []


class Publisher(threading.Thread):
    """Rides in one-second chunks until stopped. A publish retries through a short outage; one Pub/Sub
    refuses (it is down too long, or forgot the topic) ends its chunk, and the next waits until the topic
    and its subscription are back."""

    def __init__(self, topic: str, folder):
        super().__init__(daemon=True)
        self.topic, self.folder = topic, folder
        self.done, self.resumed = threading.Event(), threading.Event()
        self.refused: list[str] = []  # why chunks ended early

    def run(self):
        chunk = 0
        while not self.done.is_set():
            try:
                publish_rides(self.topic, 200, 200, seed=100 + chunk, manifest=self.folder / f"{chunk}.jsonl")
            except (GoogleAPIError, GcpipeError) as err:
                self.refused.append(f"{time.time():.1f} {type(err).__name__}: {str(err)[:100]}")
                self.resumed.wait(timeout=120)
            chunk += 1

    def accepted(self) -> dict[str, float]:
        """Every valid event Pub/Sub took (the manifest records a message once its publish returned)."""
        records = (json.loads(line) for path in self.folder.glob("*.jsonl") for line in path.open())
        return {r["event_id"]: r["published_at"] for r in records if r["kind"] == "valid"}


def _accepted_after(publisher: Publisher, moment: float) -> set[str]:
    return {event for event, at in publisher.accepted().items() if at > moment}


def test_the_pipeline_rides_out_a_pubsub_restart_mid_stream(bq, local_stack, tmp_path, record_property):
    project = local_stack.project
    topic, dataset = f"outage-{uuid.uuid4().hex[:8]}", f"{project}.outage_{uuid.uuid4().hex[:8]}"
    subscription = pubsub.path(project, "subscriptions", f"{topic}-sub")
    _subscribe(project, topic, subscription)
    service = stack.SERVICES["pubsub"]
    (tmp_path / "sent").mkdir()
    publisher = Publisher(topic, tmp_path / "sent")
    with running_pipeline(subscription, dataset, 140, tmp_path / "pipeline.log") as process:
        wait_until_reading(process, subscription)
        publisher.start()
        deadline = time.monotonic() + 60
        while len(_stored(bq, dataset)) < 600 and time.monotonic() < deadline:  # well under way
            time.sleep(0.5)
        try:
            stopped_at = time.time()
            stack.stop_service(service, local_stack)  # mid-stream: the publisher is sending
            time.sleep(6)  # the outage: pulls and publishes fail with UNAVAILABLE
            assert process.poll() is None, (tmp_path / "pipeline.log").read_text()[-2000:]
        finally:
            stack.start_service(service, local_stack)
        _subscribe(project, topic, subscription)  # the restarted emulator forgot them
        resubscribed_at = time.time()
        publisher.resumed.set()
        # A publish caught in the outage retries with growing pauses (4x, up to 60 s), hence the bound.
        deadline = time.monotonic() + 90
        while len(_accepted_after(publisher, resubscribed_at + 1)) < 600 and time.monotonic() < deadline:
            time.sleep(0.5)  # more rides after the restart
        publisher.done.set()
        publisher.join(timeout=30)
        client, topic_path = publisher_client(), pubsub.path(project, "topics", topic)
        for i, (data, _) in enumerate(HOSTILE):
            client.api.publish(
                topic=topic_path, messages=[{"data": data, "attributes": {"event_id": f"h{i}"}}]
            )
        finish(process, tmp_path / "pipeline.log")
    assert "failed, trying again" in (tmp_path / "pipeline.log").read_text()  # it did meet the outage

    accepted = publisher.accepted()
    assert any(stopped_at - 2 <= at <= stopped_at for at in accepted.values())  # it was mid-stream
    stored = _stored(bq, dataset)
    assert len(stored) == len(set(stored))  # nothing twice
    carried = {f"h{i}" for i, (_, reason) in enumerate(HOSTILE) if reason is None}
    assert set(stored) - carried <= set(accepted)
    lost = {event: at for event, at in accepted.items() if event not in set(stored)}
    # The loss window: what the emulator held undelivered at the stop, or took with no subscription yet.
    assert all(stopped_at - 5 <= at <= resubscribed_at + 1 for at in lost.values()), sorted(lost.values())
    after = _accepted_after(publisher, resubscribed_at + 1)
    assert len(after) >= 600 and not after - set(stored), (
        resubscribed_at,
        publisher.refused,
    )  # everything after the restart, stored
    record_property("accepted", len(accepted))
    record_property("lost_in_the_emulator_restart", len(lost))
    print(
        f"accepted {len(accepted)}, stored {len(stored) - len(carried)}, lost in the emulator's restart {len(lost)}"
    )

    dead = {
        r["attributes"]: r["reason"] for r in bq.query(f"SELECT * FROM `{dataset}.ride_dead_letter`").result()
    }
    reasons = {json.loads(attributes)["event_id"]: reason for attributes, reason in dead.items()}
    for i, (_, expected) in enumerate(HOSTILE):
        if expected:
            assert reasons[f"h{i}"].startswith(expected), reasons[f"h{i}"]
    assert len(reasons) == len(HOSTILE) - len(carried)  # in = stored + dead-lettered
