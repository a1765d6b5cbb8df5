"""What the streaming pipeline wrote, read as the dashboard, the demo and the tests read it.

Aggregate tables hold one row per pane; the latest pane of a ``window_key`` (highest ``emitted_at``, then
``pane_index``) holds the window's whole count, since panes accumulate.
"""

from __future__ import annotations

import re
from collections import Counter

from gcpipe.core.clients import row_count
from gcpipe.core.config import validate_dataset_id

LATEST_PANE = (
    "QUALIFY ROW_NUMBER() OVER (PARTITION BY window_key ORDER BY emitted_at DESC, pane_index DESC) = 1"
)
QUOTED = re.compile(r"'[^']*'")


def _rows(client, sql: str) -> list[dict]:
    return [dict(row.items()) for row in client.query(sql).result()]


def _table(dataset: str, name: str) -> str:
    """The quoted table ``name`` of ``dataset`` (``project.dataset``), checked to be a plain name first."""
    return f"`{validate_dataset_id(dataset)}.{name}`"


def per_minute(client, dataset: str, minutes: int | None = None) -> list[dict]:
    """Latest pane of each 1-minute window (of the last ``minutes`` of event time), oldest first."""
    table = _table(dataset, "rides_per_minute")
    recent = (
        f"WHERE window_start >= TIMESTAMP_SUB((SELECT MAX(window_start) FROM {table}), "
        f"INTERVAL {int(minutes)} MINUTE)"
        if minutes
        else ""
    )
    return _rows(client, f"SELECT * FROM {table} {recent} {LATEST_PANE} ORDER BY window_start")


def by_area(client, dataset: str) -> list[dict]:
    """Latest pane of each area in the 5-minute window that ends with the latest minute of data."""
    table = _table(dataset, "rides_by_area")
    return _rows(
        client,
        f"SELECT * FROM {table} WHERE window_end = "
        f"TIMESTAMP_ADD((SELECT MAX(window_start) FROM {table}), INTERVAL 1 MINUTE) {LATEST_PANE} ORDER BY area",
    )


def reason_kind(reason: str) -> str:
    """A reason without its particulars: ``not JSON: <parser message>`` -> ``not JSON``, and
    ``fare_amount: 'abc' is not a valid FLOAT`` -> ``fare_amount: … is not a valid FLOAT``."""
    head, _, _ = reason.partition(": ")
    return head if " " in head else QUOTED.sub("…", reason)


def dead_letters(client, dataset: str, table: str = "ride_dead_letter") -> list[dict]:
    """Dead letters of ``table`` by kind of reason (``reason_kind``), most first."""
    kinds = Counter()
    for row in _rows(client, f"SELECT reason, COUNT(*) AS messages FROM {_table(dataset, table)} GROUP BY 1"):
        kinds[reason_kind(row["reason"] or "no reason")] += row["messages"]
    return [
        {"reason": reason, "messages": n}
        for reason, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def events_stored(client, dataset: str) -> int:
    return row_count(client, f"{validate_dataset_id(dataset)}.ride_events")


def landed(client, dataset: str) -> dict:
    """Totals: events stored, dead letters, and what the latest panes of the 1-minute windows add up to."""
    windows = per_minute(client, dataset)
    return {
        "events_stored": events_stored(client, dataset),
        "dead_letters": sum(row["messages"] for row in dead_letters(client, dataset)),
        "windows": len(windows),
        "events_in_windows": sum(row["events"] for row in windows),
        "pickups": sum(row["pickups"] for row in windows),
        "dropoffs": sum(row["dropoffs"] for row in windows),
        "revenue": round(sum(row["revenue"] for row in windows), 2),
    }
