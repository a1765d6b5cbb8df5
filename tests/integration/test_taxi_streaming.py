"""The streaming pipeline over the real emulators: what lands in BigQuery equals what was published.

The expected aggregates are computed here, from the publisher's manifest (every message it sent), with
code of their own; the pipeline's are read back from BigQuery (latest pane of each window).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.api_core.exceptions import NotFound

from gcpipe.app.dashboard import queries
from gcpipe.core import pubsub
from gcpipe.core.clients import ensure_table, publisher_client, subscriber_client
from gcpipe.core.schemas import table_spec
from gcpipe.datagen.ride_publisher import publish_rides
from pipelines.rides import geohash
from tests.rides_pipeline import finish, running_pipeline, wait_until_reading

pytestmark = [pytest.mark.stack, pytest.mark.slow]

MIDTOWN = (40.7549, -73.9840)
REASON_OF_KIND = {
    "not_json": "not JSON",
    "missing_field": "ride_id: REQUIRED but empty",
    "bad_type": "passenger_count: 'two' is not a valid INTEGER",
    "bad_value": "violates rule meter_reading >= 0",
    "bad_status": "violates rule ride_status IN ('pickup', 'enroute', 'dropoff')",
}


@pytest.fixture
def topic(local_stack):
    return f"rides-{uuid.uuid4().hex[:8]}"


def stored_count(bq, dataset: str) -> int:
    try:
        return next(iter(bq.query(f"SELECT COUNT(*) AS n FROM `{dataset}.ride_events`").result()))["n"]
    except NotFound:  # the pipeline has not made its tables yet
        return 0


def read_manifests(*paths) -> list[dict]:
    return [json.loads(line) for path in paths for line in Path(path).read_text().splitlines()]


def expected_minutes(events: list[dict]) -> dict[float, tuple]:
    """Per 1-minute window of event time: events, pickups, dropoffs, passengers, revenue, rides."""
    windows = defaultdict(list)
    for event in events:
        windows[datetime.fromisoformat(event["timestamp"]).timestamp() // 60 * 60].append(event)
    return {
        start: (
            len(group),
            sum(e["ride_status"] == "pickup" for e in group),
            sum(e["ride_status"] == "dropoff" for e in group),
            sum(e["passenger_count"] for e in group if e["ride_status"] == "pickup"),
            round(sum(e["meter_reading"] for e in group if e["ride_status"] == "dropoff"), 2),
            len({e["ride_id"] for e in group}),
        )
        for start, group in windows.items()
    }


def landed_minutes(bq, dataset: str) -> dict[float, tuple]:
    return {
        row["window_start"].timestamp(): (
            row["events"],
            row["pickups"],
            row["dropoffs"],
            row["passengers"],
            round(row["revenue"], 2),
            row["active_rides"],
        )
        for row in queries.per_minute(bq, dataset)
    }


def test_aggregates_in_bigquery_equal_the_ground_truth(bq, topic, tmp_path):
    dataset = f"{bq.project}.rides_{uuid.uuid4().hex[:8]}"
    with running_pipeline(topic, dataset, 35, tmp_path / "pipeline.log") as process:
        wait_until_reading(process, pubsub.path(bq.project, "subscriptions", f"{topic}-taxi-streaming"))
        main = publish_rides(
            topic,
            rate=300,
            count=3000,
            duplicates=0.03,
            late=0.03,
            malformed=0.02,
            late_minutes=3,
            seed=7,
            manifest=tmp_path / "main.jsonl",
        )
        too_late = publish_rides(
            topic, rate=100, count=40, late=1.0, late_minutes=60, seed=8, manifest=tmp_path / "too_late.jsonl"
        )
        finish(process, tmp_path / "pipeline.log")

    published = read_manifests(tmp_path / "main.jsonl")
    late_ones = read_manifests(tmp_path / "too_late.jsonl")
    events = {r["event_id"]: json.loads(r["data"]) for r in published if r["kind"] in ("valid", "late")}
    too_late_events = {r["event_id"]: json.loads(r["data"]) for r in late_ones}
    kinds = Counter(r["kind"] for r in published)
    assert kinds["duplicate"] > 50 and kinds["late"] > 50 and sum(kinds[k] for k in REASON_OF_KIND) > 30

    # Every event once in ride_events, every malformed message in the dead letters with its reason.
    stored = [row["event_id"] for row in bq.query(f"SELECT event_id FROM `{dataset}.ride_events`").result()]
    assert len(stored) == len(set(stored)) == len(events) + len(too_late_events)
    assert set(stored) == set(events) | set(too_late_events)
    reasons = Counter(
        row["reason"] for row in bq.query(f"SELECT reason FROM `{dataset}.ride_dead_letter`").result()
    )
    expected_reasons = Counter()
    for kind in REASON_OF_KIND:
        expected_reasons[REASON_OF_KIND[kind]] += kinds[kind]
    folded = Counter()
    for reason, n in reasons.items():
        folded["not JSON" if reason.startswith("not JSON") else reason] += n
    assert folded == expected_reasons
    # Nothing unaccounted for: sent = stored + dead-lettered + duplicates dropped.
    assert main.sent + too_late.sent == len(stored) + sum(reasons.values()) + kinds["duplicate"]

    # The 1-minute windows: on-time and late-within-lateness events counted, too-late ones never.
    assert landed_minutes(bq, dataset) == expected_minutes(list(events.values()))

    # The heat map's sliding windows: pickups per area, every window each pickup falls in.
    expected_areas = Counter()
    for event in events.values():
        if event["ride_status"] == "pickup":
            minute = datetime.fromisoformat(event["timestamp"]).timestamp() // 60 * 60
            area = geohash.encode(event["latitude"], event["longitude"])
            for start in range(int(minute) - 240, int(minute) + 60, 60):
                expected_areas[start, area] += 1
    rows = bq.query(f"SELECT * FROM `{dataset}.rides_by_area` {queries.LATEST_PANE}").result()
    assert {(int(r["window_start"].timestamp()), r["area"]): r["pickups"] for r in rows} == expected_areas

    # All acknowledged: the subscription has nothing left.

    subscription = pubsub.path(bq.project, "subscriptions", f"{topic}-taxi-streaming")
    assert (
        not subscriber_client().pull(subscription=subscription, max_messages=10, timeout=5).received_messages
    )


def test_a_pipeline_killed_mid_stream_loses_no_acknowledged_message(bq, topic, tmp_path):
    """SIGKILL mid-stream, start again: every event stored once, and the windows rebuilt from ride_events.

    What may be lost: nothing (a message is acknowledged only once stored; the rest comes again). What may
    be stored twice: an event later than --replay_seconds that was stored but not yet acknowledged at the
    kill (README, Delivery); this test's events are all on time, so it measures zero of both.
    """

    project = bq.project
    dataset = f"{project}.restart_{uuid.uuid4().hex[:8]}"
    topic_path = pubsub.ensure_topic(publisher_client(), pubsub.path(project, "topics", topic))
    subscription = pubsub.path(project, "subscriptions", f"{topic}-sub")
    # A short ack deadline, so what the killed pipeline had pulled comes back within the test.
    subscriber_client().create_subscription(name=subscription, topic=topic_path, ack_deadline_seconds=10)

    publisher = threading.Thread(
        target=publish_rides,
        args=(topic, 200, 4000),
        kwargs={"duplicates": 0.02, "seed": 11, "manifest": tmp_path / "m.jsonl"},
    )
    with running_pipeline(subscription, dataset, 120, tmp_path / "first.log") as first:
        wait_until_reading(first, subscription)
        publisher.start()
        deadline = time.monotonic() + 90
        while stored_count(bq, dataset) < 300 and time.monotonic() < deadline:  # until well under way
            time.sleep(0.5)
        # mid-stream: whatever it pulled and had not stored is unacknowledged
    assert 300 <= stored_count(bq, dataset) < 4000  # it was killed mid-stream
    with running_pipeline(subscription, dataset, 40, tmp_path / "second.log") as second:
        publisher.join()
        finish(second, tmp_path / "second.log")

    published = read_manifests(tmp_path / "m.jsonl")
    events = {r["event_id"]: json.loads(r["data"]) for r in published if r["kind"] == "valid"}
    stored = [row["event_id"] for row in bq.query(f"SELECT event_id FROM `{dataset}.ride_events`").result()]
    assert set(stored) == set(events)  # nothing lost
    assert len(stored) == len(set(stored))  # nothing stored twice: the restart re-learnt the stored ids
    assert landed_minutes(bq, dataset) == expected_minutes(list(events.values()))


def _wait_for(log: Path, text: str, process, limit: float = 150) -> None:
    deadline = time.monotonic() + limit
    while text not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)


def test_a_kill_after_a_subscription_rotation_keeps_every_window_exact(bq, topic, tmp_path):
    """The pipeline's own subscription (--input_topic) is rotated every minute on the emulator; SIGKILLed
    after a rotation, started again: it reads every generation left, rebuilds its windows and duplicate
    memory from the warehouse, holds the watermark until the killed run's messages are back, and every
    window (late events too) equals the ground truth: as a run without the kill."""
    dataset = f"{bq.project}.rotate_{uuid.uuid4().hex[:8]}"
    manifest = tmp_path / "m.jsonl"
    publisher = threading.Thread(
        target=publish_rides,
        args=(topic, 200, 20_000),
        kwargs={"duplicates": 0.02, "late": 0.05, "malformed": 0.01, "seed": 13, "manifest": manifest},
    )
    base = pubsub.path(bq.project, "subscriptions", f"{topic}-taxi-streaming")
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with running_pipeline(topic, dataset, None, first_log, "--allowed_lateness", "300") as first:
        wait_until_reading(first, base)
        publisher.start()
        _wait_for(first_log, "deleted subscription", first)  # a rotation done: the first generation gone
        time.sleep(5)
    with running_pipeline(topic, dataset, 120, second_log, "--allowed_lateness", "300") as second:
        publisher.join()
        finish(second, second_log)

    assert "rotating the subscription" in first_log.read_text()
    text = second_log.read_text()
    for said in ("rebuilt in", "holding the watermark", "caught up"):
        assert said in text, text[-3000:]
    records = read_manifests(manifest)
    events = {r["event_id"]: json.loads(r["data"]) for r in records if r["kind"] in ("valid", "late")}
    stored = Counter(
        r["event_id"] for r in bq.query(f"SELECT event_id FROM `{dataset}.ride_events`").result()
    )
    assert set(stored) == set(events) and max(stored.values()) == 1  # nothing lost, nothing twice
    malformed = {r["event_id"] for r in records if r["kind"] in REASON_OF_KIND}
    dead = Counter(
        json.loads(r["attributes"])["event_id"]
        for r in bq.query(f"SELECT attributes FROM `{dataset}.ride_dead_letter`").result()
    )
    assert set(dead) == malformed and max(dead.values()) == 1
    assert landed_minutes(bq, dataset) == expected_minutes(list(events.values()))


def test_a_restart_rewrites_only_windows_its_replay_holds_whole(bq, topic, tmp_path):
    """Stored events reach back past the replay horizon (window + lateness, 15 minutes here): the restarted
    pipeline rebuilds the windows from the events since a minute boundary, and writes no pane for a window
    that starts earlier (it would hold only part of its events, and replace that window's final count)."""

    dataset = f"{bq.project}.replay_{uuid.uuid4().hex[:8]}"
    bq.create_dataset(dataset)
    ensure_table(bq, table_spec("ride_events"), f"{dataset}.ride_events")
    started = time.time()
    events = [
        {
            "ride_id": f"r{i}",
            "point_idx": 0,
            "latitude": MIDTOWN[0],
            "longitude": MIDTOWN[1],
            "timestamp": datetime.fromtimestamp(started - 1200 + 10 * i, UTC).isoformat(),
            "meter_reading": 3.5,
            "meter_increment": 0.1,
            "ride_status": "pickup",
            "passenger_count": 1,
            "event_id": f"r{i}:0",
            "message_id": f"m{i}",
        }
        for i in range(114)  # one pickup every 10 s, from 20 minutes ago to a minute ago
    ]
    assert not bq.insert_rows_json(f"{dataset}.ride_events", events)
    topic_path = pubsub.ensure_topic(publisher_client(), pubsub.path(bq.project, "topics", topic))
    subscription = pubsub.path(bq.project, "subscriptions", f"{topic}-sub")
    subscriber_client().create_subscription(name=subscription, topic=topic_path)

    with running_pipeline(subscription, dataset, 10, tmp_path / "pipeline.log") as process:
        finish(process, tmp_path / "pipeline.log")

    minute_of = {e["event_id"]: datetime.fromisoformat(e["timestamp"]).timestamp() // 60 * 60 for e in events}
    per_minute = Counter(minute_of.values())
    landed = {start: counts[0] for start, counts in landed_minutes(bq, dataset).items()}
    horizon = (started - 900) // 60 * 60  # the pipeline started after `started`: its horizon is here or later
    assert landed and min(landed) >= horizon and max(landed) == max(per_minute)
    assert all(landed[start] == per_minute[start] for start in landed)  # whole windows only
    rows = bq.query(f"SELECT * FROM `{dataset}.rides_by_area` {queries.LATEST_PANE}").result()
    for row in rows:
        start = row["window_start"].timestamp()
        assert start >= min(landed)
        assert row["pickups"] == sum(per_minute[m] for m in per_minute if start <= m < start + 300)
