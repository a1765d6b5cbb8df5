"""A handful of hostile CSV records through the real csv_ingest pipeline into the BigQuery emulator: each
lands in the table (carried as data, byte for byte) or in the dead-letter table with its line and reason.
(The generated corpus, thousands of records, runs without services: tests/unit/test_bad_input.py.)
"""

from __future__ import annotations

import csv
import io

import pytest

from gcpipe.core.schemas import RAW_LIMIT
from pipelines import csv_ingest
from tests.unit.test_bad_input import GOOD_TRIP

pytestmark = pytest.mark.stack

# vendor_id values that must be stored exactly as written
CARRIED = ["2", "'; DROP TABLE taxi_trips; --", 'say "hi"\nthen `leave`', "é😀\u2028\t", "\\'", "x" * 70_000]
# (cells changed, the dead letter's reason)
REJECTED = [
    ({"trip_distance": "NaN"}, "trip_distance: 'NaN' is not a finite number"),
    ({"fare_amount": "inf", "vendor_id": "y" * 100_000}, "fare_amount: 'inf' is not a finite number"),
    (
        {"pickup_datetime": "10000-01-01 00:00:00"},
        "pickup_datetime: '10000-01-01 00:00:00' is not a valid TIMESTAMP",
    ),
    (
        {"pickup_datetime": "9999-12-31 23:59:59", "dropoff_datetime": "9999-12-31 23:59:59"},
        "pickup_datetime on 9999-12-31 is outside the partition 2019-03-01",
    ),
    ({"passenger_count": "9" * 40}, "passenger_count: '" + "9" * 40 + "' is not a valid INTEGER"),
]


def _line(cells: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue().encode()


def test_hostile_records_are_loaded_as_data_or_dead_lettered_with_their_reason(
    bq, local_stack, dataset, tmp_path
):
    lines = [",".join(GOOD_TRIP).encode() + b"\n"]
    lines += [_line(list({**GOOD_TRIP, "vendor_id": vendor}.values())) for vendor in CARRIED]
    lines += [_line(list({**GOOD_TRIP, **cells}.values())) for cells, _ in REJECTED]
    lines.append(_line(list(GOOD_TRIP.values())).replace(b"2", b"\xff\xfe", 1))  # not UTF-8
    lines.append(_line([*GOOD_TRIP.values(), "extra"]))
    path = tmp_path / "hostile.csv"
    path.write_bytes(b"".join(lines))
    table = f"{local_stack.project}.{dataset}.taxi_trips"

    result = csv_ingest.run(
        ["--input", str(path), "--schema", "taxi_trips", "--table", table, "--partition_date", "2019-03-01"]
    )

    dead_count = len(REJECTED) + 2
    assert (result.rows_read, result.rows_loaded, result.rows_dead_lettered) == (
        len(CARRIED) + dead_count,
        len(CARRIED),
        dead_count,
    )
    stored = [row["vendor_id"] for row in bq.query(f"SELECT vendor_id FROM `{table}`").result()]
    assert sorted(stored) == sorted(CARRIED)  # data, unchanged; the table is still there
    dead = list(bq.query(f"SELECT line, raw, reason FROM `{table}_dead_letter` ORDER BY line").result())
    first_bad = (
        2 + len(CARRIED) + 1
    )  # the header, the carried records, one more line for the embedded newline
    assert [row["line"] for row in dead] == list(range(first_bad, first_bad + dead_count))
    reasons = [row["reason"] for row in dead]
    assert reasons == [
        *(reason for _, reason in REJECTED),
        "not UTF-8: byte 0xff at character 1",
        f"{len(GOOD_TRIP) + 1} fields, expected {len(GOOD_TRIP)}",
    ]
    assert all(len(row["raw"]) <= RAW_LIMIT for row in dead) and "\\xff" in dead[-2]["raw"]
