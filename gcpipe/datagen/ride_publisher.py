"""``gcpipe rides publish``: simulated taxi rides, published to Pub/Sub in real time, with a ground truth.

Every message is one point of a ride in the public ``taxirides-realtime`` JSON format, stamped "now"
(the DirectRunner's watermark follows the wall clock), with two attributes: ``event_id`` (the same for
every copy of one event, the key the pipeline de-duplicates on) and ``ts`` (event time, epoch ms). At
chosen fractions it also sends duplicates (an earlier event sent again), late events (event time
``late_minutes`` behind) and malformed messages of five kinds. The summary says what was sent; the
manifest (JSON lines, one a message) is the ground truth tests compute expected aggregates from.
"""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from gcpipe.core import pubsub
from gcpipe.core.clients import publisher_client
from gcpipe.core.config import Config, load_config
from gcpipe.core.errors import GcpipeError
from gcpipe.core.ui import progress
from gcpipe.datagen.ride_events import RideSimulator

MALFORMED_KINDS = ("not_json", "missing_field", "bad_type", "bad_value", "bad_status")
PUBLISH_LIMIT = 1000  # Pub/Sub's most messages in one publish request


@dataclass
class PublishSummary:
    topic: str
    rate: float
    sent: int = 0  # messages, every kind
    valid: int = 0  # events stamped now
    late: int = 0  # events stamped late_minutes ago
    duplicates: int = 0  # copies of events already sent
    malformed: dict[str, int] = field(default_factory=dict)
    started_at: str = ""
    seconds: float = 0.0
    achieved_rate: float = 0.0
    manifest: str | None = None


def _spoil(event: dict, kind: str) -> bytes:
    spoiled = dict(event)
    if kind == "not_json":
        return json.dumps(event).encode()[:-7]
    if kind == "missing_field":
        del spoiled["ride_id"]
    elif kind == "bad_type":
        spoiled["passenger_count"] = "two"
    elif kind == "bad_value":
        spoiled["meter_reading"] = -abs(event["meter_reading"]) - 1
    elif kind == "bad_status":
        spoiled["ride_status"] = "parked"
    return json.dumps(spoiled).encode()


class RidePublisher:
    """Chooses each message (valid, late, duplicate or malformed) and builds it; seeded, so repeatable."""

    def __init__(self, rate: float, duplicates=0.0, late=0.0, malformed=0.0, late_minutes=3.0, seed=None):
        if min(duplicates, late, malformed) < 0 or duplicates + late + malformed > 1:
            raise GcpipeError(
                "the duplicate, late and malformed fractions must be >= 0 and add up to at most 1."
            )
        self.rng = np.random.default_rng(seed)
        self.simulator = RideSimulator(int(self.rng.integers(2**31)), concurrent_rides=max(10, int(rate * 4)))
        self.cuts = np.cumsum([malformed, duplicates, late])
        self.late_by = timedelta(minutes=late_minutes)
        self.recent: deque[tuple[bytes, dict]] = deque(maxlen=1000)
        self.kinds: Counter[str] = Counter()

    def next_message(self, now: datetime) -> tuple[str, bytes, dict[str, str]]:
        draw = self.rng.random()
        if draw < self.cuts[0]:
            kind = MALFORMED_KINDS[int(self.rng.integers(len(MALFORMED_KINDS)))]
            event = self.simulator.next_event(now)
            attributes = {"event_id": f"bad-{event['ride_id']}:{event['point_idx']}", "ts": _ms(now)}
            self.kinds[kind] += 1
            return kind, _spoil(event, kind), attributes
        if draw < self.cuts[1] and self.recent:
            data, attributes = self.recent[int(self.rng.integers(len(self.recent)))]
            self.kinds["duplicate"] += 1
            return "duplicate", data, attributes
        kind, moment = ("late", now - self.late_by) if self.cuts[1] <= draw < self.cuts[2] else ("valid", now)
        event = self.simulator.next_event(moment)
        data = json.dumps(event).encode()
        attributes = {"event_id": f"{event['ride_id']}:{event['point_idx']}", "ts": _ms(moment)}
        self.recent.append((data, attributes))
        self.kinds[kind] += 1
        return kind, data, attributes


def _ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def publish_rides(
    topic: str,
    rate: float,
    count: int,
    *,
    duplicates: float = 0.0,
    late: float = 0.0,
    malformed: float = 0.0,
    late_minutes: float = 3.0,
    seed: int | None = None,
    manifest: str | Path | None = None,
    config: Config | None = None,
) -> PublishSummary:
    """Publish ``count`` messages at ``rate`` a second to ``topic`` (created if missing)."""
    from google.pubsub_v1 import PubsubMessage

    if rate <= 0 or count < 0:
        raise GcpipeError("the rate must be positive and the count at least 0.")
    config = config or load_config()
    client = publisher_client(config)
    topic = pubsub.ensure_topic(client, pubsub.path(config.project, "topics", topic))
    chooser = RidePublisher(rate, duplicates, late, malformed, late_minutes, seed)
    summary = PublishSummary(
        topic, rate, started_at=datetime.now(UTC).isoformat(), manifest=str(manifest or "")
    )
    out = open(manifest, "w") if manifest else None  # noqa: SIM115 (closed below)
    started = time.monotonic()
    try:
        with progress(f"rides -> {topic.rsplit('/', 1)[1]}", count) as advance:
            while summary.sent < count:
                due = min(count, int((time.monotonic() - started) * rate) + 1)
                if due <= summary.sent:
                    time.sleep(max(0.0, (summary.sent + 1) / rate - (time.monotonic() - started)))
                    continue
                now = datetime.now(UTC)
                chosen = [chooser.next_message(now) for _ in range(min(due - summary.sent, PUBLISH_LIMIT))]
                client.api.publish(
                    topic=topic,
                    messages=[PubsubMessage(data=data, attributes=attrs) for _, data, attrs in chosen],
                )
                if out:
                    published = time.time()
                    for kind, data, attrs in chosen:
                        record = {"kind": kind, "published_at": published, **attrs, "data": data.decode()}
                        out.write(json.dumps(record) + "\n")
                summary.sent += len(chosen)
                advance(len(chosen))
    finally:
        if out:
            out.close()
    summary.seconds = round(time.monotonic() - started, 3)
    summary.achieved_rate = round(summary.sent / summary.seconds, 1) if summary.seconds else 0.0
    kinds = chooser.kinds
    summary.valid, summary.late, summary.duplicates = kinds["valid"], kinds["late"], kinds["duplicate"]
    summary.malformed = {kind: kinds[kind] for kind in MALFORMED_KINDS if kinds[kind]}
    return summary
