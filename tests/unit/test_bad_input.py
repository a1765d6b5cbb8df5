"""Hostile input, generated: CSV rows through csv_ingest's reading and validation, Pub/Sub payloads through
the ride message transform. Nothing crashes, and every record is either loaded (and then passes the
catalog's own check, and can be written to BigQuery) or dead-lettered with its reason: in = loaded + dead.

The end-to-end runs of a handful of such records into the BigQuery emulator are in
tests/integration/test_bad_input_end_to_end.py.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gcpipe.core.schemas import RAW_LIMIT, table_spec, to_json_row
from pipelines.csv_ingest import read_blocks
from pipelines.transforms.csv_validation import BlockValidator, read_layout
from pipelines.transforms.ride_messages import CleanRideMessages, MessageBatch, RideMessage

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values that have broken parsers before: not-numbers, overflow, dates at and past the ends of the
# calendar, injection-looking text, quotes and line breaks inside fields, huge fields, odd Unicode.
HOSTILE = [
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "1e309",
    "-1e309",
    "9" * 40,
    "+7",
    "1_000",
    "0x10",
    "-0",
    "0001-01-01 00:00:00",
    "9999-12-31 23:59:59",
    "10000-01-01 00:00:00",
    "2019-02-30 10:00:00",
    "1969-12-31 23:59:59",
    "2019-03-01T10:00:00Z",
    "03/01/2019 10:00:00 PM",
    "'; DROP TABLE taxi_trips; --",
    "`taxi`.`trips`",
    '" OR "1"="1',
    'a"b',
    "line\nbreak",
    "cr\rlf",
    "x" * 100_000,
    "\u2028",
    "é😀",
    "\x00",
    "",
    " ",
    "\t",
]
BAD_BYTES = [
    b"\xff",
    b"\xe9",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\xf8\x88\x80\x80\x80",
]  # not UTF-8 (é in latin-1 ...)

# -- CSV rows ---------------------------------------------------------------------------------------

TRIPS = table_spec("taxi_trips")
GOOD_TRIP = {
    "vendor_id": "2",
    "pickup_datetime": "2019-03-01 10:00:00",
    "dropoff_datetime": "2019-03-01 10:12:00",
    "passenger_count": "1",
    "trip_distance": "2.5",
    "pickup_longitude": "-73.98",
    "pickup_latitude": "40.75",
    "rate_code": "1",
    "store_and_fwd_flag": "N",
    "dropoff_longitude": "-73.96",
    "dropoff_latitude": "40.77",
    "payment_type": "1",
    "fare_amount": "10.5",
    "extra": "0.5",
    "mta_tax": "0.5",
    "tip_amount": "2",
    "tolls_amount": "0",
    "imp_surcharge": "0.3",
    "total_amount": "13.8",
}
assert list(GOOD_TRIP) == TRIPS.schema.names


def _csv_line(cells: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(cells)  # quotes cells holding , " CR or LF
    return out.getvalue().encode()


@st.composite
def trip_rows(draw) -> tuple[bytes, str]:
    """One CSV record and what it is: good, hostile (may load or not) or bad (must be dead-lettered)."""
    kind = draw(st.sampled_from(["good", "hostile", "hostile", "short", "long", "bytes", "blank"]))
    cells = dict(GOOD_TRIP)
    if kind == "hostile":
        for name in draw(st.lists(st.sampled_from(TRIPS.schema.names), min_size=1, max_size=3)):
            cells[name] = draw(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12)))
    values = list(cells.values())
    if kind == "short":
        del values[draw(st.integers(0, len(values) - 1))]
    elif kind == "long":
        values.append(draw(st.sampled_from(HOSTILE)))
    elif kind == "blank":
        return b"\r\n", "bad"
    line = _csv_line(values)
    if kind == "bytes":  # a byte sequence that is no UTF-8, spliced into a cell
        at = draw(st.integers(0, len(values) - 1))
        values[at] = "\x01"
        line = _csv_line(values).replace(b"\x01", draw(st.sampled_from(BAD_BYTES)))
    return line, {"good": "good", "hostile": "hostile"}.get(kind, "bad")


def _ingest_file(path: Path, block_bytes: int):
    """What csv_ingest's ValidateCsvFile does with a file: blocks read, the layout, each block validated."""
    validator, results = None, []
    for records, first in read_blocks(str(path), block_bytes):
        skip = 0
        if first:
            layout = read_layout(records.text(0), TRIPS.schema, str(path))
            validator, skip = BlockValidator(TRIPS, layout, date(2019, 3, 1)), int(layout.header)
        results.append(validator.validate(records, skip))
    return results


@FUZZ
@given(st.lists(trip_rows(), min_size=1, max_size=25), st.sampled_from([97, 1024, 1 << 20]))
def test_hostile_csv_rows_are_each_loaded_or_dead_lettered_with_a_reason(rows, block_bytes):
    header = ",".join(TRIPS.schema.names).encode() + b"\r\n"
    lines, line = {}, 2  # first physical line of each record, as a dead letter reports it
    for i, (data, _) in enumerate(rows):
        lines[line] = i
        line += data.count(b"\n")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trips.csv"
        path.write_bytes(header + b"".join(data for data, _ in rows))
        results = _ingest_file(path, block_bytes)

    loaded = sum(r.table.num_rows for r in results)
    rejected = [reject for r in results for reject in r.rejected]
    assert sum(r.records for r in results) == len(rows) == loaded + len(rejected)  # in = loaded + dead
    dead = {lines[line]: reason for line, raw, reason in rejected}  # every reject is one of the records
    assert len(dead) == len(rejected) and all(reason.strip() for reason in dead.values())
    assert all(len(raw) <= RAW_LIMIT for _, raw, _ in rejected)
    kinds = [kind for _, kind in rows]
    assert {i for i, kind in enumerate(kinds) if kind == "bad"} <= set(dead)
    assert not {i for i, kind in enumerate(kinds) if kind == "good"} & set(dead)
    check = TRIPS.validator()  # what loads passes the catalog's own row check (no NaN, no 10000-01-01)
    for result in results:
        for row in result.table.to_pylist():
            assert check.validate(row)[1] is None, row


# -- Pub/Sub payloads -------------------------------------------------------------------------------

GOOD_RIDE = {
    "ride_id": "r-1",
    "point_idx": 3,
    "latitude": 40.75,
    "longitude": -73.98,
    "timestamp": "2019-03-01T10:00:00.000Z",
    "meter_reading": 4.5,
    "meter_increment": 0.05,
    "ride_status": "enroute",
    "passenger_count": 1,
}
JSON_HOSTILE = st.one_of(
    st.sampled_from(
        [float("nan"), float("inf"), -float("inf"), 1e308, 2**64, -(2**63) - 1, True, None, [], {}]
    ),
    st.sampled_from(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "10000-01-01T00:00:00Z", "1e20"]),
    st.sampled_from([*HOSTILE, "\ud800", "pickup\x00", "x" * 300_000]),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.recursive(st.none() | st.integers(), lambda inner: st.lists(inner, max_size=3), max_leaves=8),
)


@st.composite
def payloads(draw) -> bytes:
    kind = draw(
        st.sampled_from(["good", "field", "field", "missing", "bytes", "nested", "encoding", "scalar"])
    )
    event = dict(GOOD_RIDE, ride_id=f"r-{draw(st.integers(0, 5))}")
    if kind == "field":
        event[draw(st.sampled_from([*sorted(GOOD_RIDE), "extra_field"]))] = draw(JSON_HOSTILE)
    elif kind == "missing":
        del event[draw(st.sampled_from(sorted(GOOD_RIDE)))]
    elif kind == "bytes":
        return draw(st.binary(max_size=64))
    elif kind == "nested":  # past Python's recursion limit
        depth = draw(st.sampled_from([10, 1_000, 100_000]))
        return draw(st.sampled_from(["[", '{"a":'])) * depth
    elif kind == "scalar":
        return json.dumps(draw(JSON_HOSTILE)).encode()
    text = json.dumps(event)  # allow_nan: NaN and Infinity as Python writes them
    if kind == "encoding":
        return (text[:-1] + ', "note": "café ☕"}').encode(
            draw(st.sampled_from(["utf-16", "utf-32", "cp1252"])), "replace"
        )
    return text.encode()


def _message(i: int, data, event_id: str | None) -> RideMessage:
    data = data.encode() if isinstance(data, str) else data
    return RideMessage(data, {"event_id": event_id} if event_id else {}, f"m-{i}")


@FUZZ
@given(
    st.lists(st.tuples(payloads(), st.one_of(st.none(), st.sampled_from(["e1", "e2", "e3"]))), max_size=30)
)
@example([(b"[" * 100_000, None), (b"\xff\xfe", "e1"), (b'{"ride_id": "\\ud800"}', None)])
def test_hostile_ride_messages_are_each_stored_dead_lettered_or_a_counted_duplicate(sent):
    messages = [_message(i, data, event_id) for i, (data, event_id) in enumerate(sent)]
    clean = CleanRideMessages(dedup_seconds=600)  # a fresh memory of event ids
    clean.setup()
    (batch,) = clean.process(MessageBatch(messages, [f"ack-{i}" for i in range(len(messages))]))

    assert len(batch.events) + len(batch.dead_letters) + batch.duplicates == len(messages)  # in = out
    assert batch.ack_ids == [f"ack-{i}" for i in range(len(messages))]  # every message acknowledged after
    ids = [m.attributes.get("event_id") or m.message_id for m in messages]
    assert batch.duplicates == len(ids) - len(set(ids))
    for dead in batch.dead_letters:
        assert dead["reason"].strip() and len(dead["raw"]) <= RAW_LIMIT
        json.dumps(dead).encode()  # a row BigQuery takes
    check = table_spec("ride_events").validator()
    for event in batch.events:
        assert check.validate(event)[1] is None
        json.dumps(to_json_row(event), allow_nan=False).encode()  # UTF-8, finite: BigQuery takes it
