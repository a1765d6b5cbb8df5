"""The window replay: at start, the events stored in ride_events since a minute boundary, read back.

A (re)started pipeline replays the last ``--replay_seconds`` (at least and by default the heat map's window
plus ``--allowed_lateness``) of stored events before it reads Pub/Sub: they rebuild the windows still
open and the de-duplication memory, and are not stored again (``MessageBatch.replayed``). Windows that
start before the replay are not written again (``windows._Rows``): they would hold part of their events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from gcpipe.core.schemas import to_json_row
from pipelines.rides.messages import EVENT_ID, RideMessage
from pipelines.rides.windows import AREA_WINDOW, MINUTE


@dataclass(frozen=True)
class Replay:
    table: str  # project.dataset.ride_events
    since: float  # epoch seconds, a minute boundary: events from then on are aggregated again


def replay_since(allowed_lateness: float, replay_seconds: float | None, now: float) -> float | None:
    """Where a (re)started pipeline's replay begins: a minute boundary, so its windows are whole; None: off."""
    seconds = AREA_WINDOW + allowed_lateness if replay_seconds is None else replay_seconds
    return (now - seconds) // MINUTE * MINUTE if seconds > 0 else None


def replay_events(replay: Replay) -> list[RideMessage]:
    """The events stored since ``replay.since``, as messages again."""
    from google.cloud import bigquery

    client = bigquery.Client()
    query = f"SELECT * FROM `{replay.table}` WHERE timestamp >= @since"
    since = datetime.fromtimestamp(replay.since, UTC)
    config = bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter("since", "TIMESTAMP", since)]
    )
    messages = []
    for row in client.query(query, job_config=config).result():
        event = to_json_row(dict(row.items()))
        event_id, message_id = event.pop("event_id"), event.pop("message_id")
        messages.append(
            RideMessage(
                json.dumps(event).encode(), {EVENT_ID: event_id}, message_id, row["timestamp"].timestamp()
            )
        )
    return messages
