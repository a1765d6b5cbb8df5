"""Ride messages, a batch to an element: de-duplicated by event id, parsed and validated against ride_events.

A batch keeps the ack ids of every message it was pulled with (duplicates and malformed ones too), so the
sink that stores the batch can acknowledge them all once it is durably handled. Elements are batches, not
messages, because the DirectRunner pays a fixed cost per element and per bundle, not per byte.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import apache_beam as beam

from gcpipe.core.schemas import RAW_LIMIT, table_spec, to_json_row
from pipelines.rides import dedup

EVENT_ID = "event_id"  # the message attribute the publisher sets; one logical event, however often sent
EVENT_TIME = "ts"  # event time in epoch milliseconds, as ReadFromPubSub(timestamp_attribute=...) reads it


@dataclass(frozen=True)
class RideMessage:
    data: bytes
    attributes: dict[str, str]
    message_id: str
    publish_time: float = 0.0  # epoch seconds

    @property
    def event_id(self) -> str:
        return self.attributes.get(EVENT_ID) or self.message_id


@dataclass
class MessageBatch:
    messages: list[RideMessage]
    ack_ids: list[str] = field(default_factory=list)  # of every message pulled, acknowledged by the sink
    duplicates: int = 0
    subscription: str | None = None  # where ``ack_ids`` go, if not the pipeline's subscription (a rotation)
    seeds: WindowSeeds | None = None  # a restart's rebuilt windows (rebuild.py): aggregated, not stored


@dataclass(frozen=True)
class WindowSeeds:
    """The partials of the events a restarted pipeline finds stored in its open windows (rebuild.py): the
    minute partials and the area partials, as ``windows.py`` makes them from new events."""

    minutes: list  # TimestampedValue((CITY, Totals), minute start)
    areas: list  # TimestampedValue((CITY, {area: [pickups, passengers]}), minute start)


@dataclass
class RideBatch:
    events: list[dict]  # typed ride_events rows
    dead_letters: list[dict]  # ride_dead_letter rows
    ack_ids: list[str] = field(default_factory=list)
    duplicates: int = 0
    seeds: WindowSeeds | None = None
    subscription: str | None = None


_VALIDATOR = table_spec("ride_events").validator()


def parse_message(message: RideMessage) -> tuple[dict | None, str | None]:
    """A typed ride_events row, or the reason the message is not one."""
    try:
        payload = json.loads(message.data)
    except (UnicodeDecodeError, ValueError) as err:
        return None, f"not JSON: {err}"
    except RecursionError:  # thousands of nested [ or {: Python's parser gives up
        return None, "not JSON: nested too deeply"
    if not isinstance(payload, dict):
        return None, f"not a JSON object but {type(payload).__name__}"
    published = datetime.fromtimestamp(message.publish_time, UTC) if message.publish_time else None
    payload.update(event_id=message.event_id, message_id=message.message_id, published_at=published)
    return _VALIDATOR.validate(payload)


def dead_letter(message: RideMessage, reason: str, received_at: datetime | None = None) -> dict:
    return {
        "raw": message.data[: RAW_LIMIT * 4].decode("utf-8", "backslashreplace")[:RAW_LIMIT],
        "reason": reason,
        "received_at": (received_at or datetime.now(UTC)).isoformat(),
        "message_id": message.message_id,
        "attributes": json.dumps(message.attributes, sort_keys=True),
    }


def event_rows(batch: RideBatch) -> list[dict]:
    """The batch's events as BigQuery JSON rows."""
    return [to_json_row(event) for event in batch.events]


class CleanRideMessages(beam.DoFn):
    """MessageBatch -> RideBatch: duplicates dropped, each message parsed and validated; every ack id kept.

    A message whose event id was seen in the last ``dedup_seconds`` is a duplicate. The memory is the
    worker process's: on the DirectRunner that is the whole pipeline. On Dataflow pass
    ``dedup_seconds=0``: ``ReadFromPubSub(id_label=EVENT_ID)`` de-duplicates across workers there, and a
    process-wide memory would take a retried bundle's events for duplicates and drop them. One DoFn,
    not two: the DirectRunner inspects every step's signature for every bundle.
    """

    def __init__(self, dedup_seconds: float = 600.0):
        self.dedup_seconds = dedup_seconds
        self.tag = uuid.uuid4().hex
        self.duplicates = beam.metrics.Metrics.counter("rides", "duplicates")
        self.malformed = beam.metrics.Metrics.counter("rides", "malformed")
        self.valid = beam.metrics.Metrics.counter("rides", "valid")

    def setup(self):
        self.seen = dedup.memory(self.tag, self.dedup_seconds)

    def process(self, batch: MessageBatch):
        ids = [m.event_id for m in batch.messages]
        fresh = self.seen.first_sightings(ids) if self.dedup_seconds > 0 else [True] * len(ids)
        events, dead = [], []
        received_at = datetime.now(UTC)
        for message, new in zip(batch.messages, fresh, strict=True):
            if not new:
                continue
            row, reason = parse_message(message)
            if row is None:
                dead.append(dead_letter(message, reason, received_at))
            else:
                events.append(row)
        duplicates = len(batch.messages) - sum(fresh)
        self.duplicates.inc(duplicates)
        self.valid.inc(len(events))
        self.malformed.inc(len(dead))
        yield RideBatch(
            events, dead, batch.ack_ids, batch.duplicates + duplicates, batch.seeds, batch.subscription
        )
