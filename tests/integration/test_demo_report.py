"""The demo's report reads the warehouse: real counts, dead letters by kind of reason, missing tables shown
as missing; and its page fetches nothing."""

from dataclasses import replace

import pytest

from gcpipe.app import demo_report
from gcpipe.app.dashboard.queries import reason_kind
from gcpipe.app.demo import DemoContext
from gcpipe.core.clients import ensure_table
from gcpipe.core.schemas import table_spec

pytestmark = pytest.mark.stack

RIDE_REASONS = [
    "not JSON: Expecting value: line 1 column 1 (char 0)",
    "not JSON: Unterminated string starting at: line 1 column 12 (char 11)",
    "passenger_count: 'two' is not a valid INTEGER",
]
TRIP_REASONS = [
    "fare_amount: 'abc' is not a valid FLOAT",
    "fare_amount: '1.2.3' is not a valid FLOAT",
    "blank line",
]


def test_reason_kinds_drop_the_particulars_and_keep_the_rule():
    assert [reason_kind(r) for r in RIDE_REASONS] == [
        "not JSON",
        "not JSON",
        "passenger_count: … is not a valid INTEGER",
    ]
    rule = "violates rule ride_status IN ('pickup', 'enroute', 'dropoff')"
    assert reason_kind(rule) == rule
    assert reason_kind("18 fields, expected 19") == "18 fields, expected 19"


def test_the_report_shows_the_warehouses_rows_and_dead_letters(local_stack, bq, dataset, tmp_path):
    config = replace(
        local_stack, datasets=dict.fromkeys(local_stack.datasets, dataset)
    )  # every key: one dataset
    for name, reasons, required in (  # the REQUIRED columns besides the reason
        ("ride_dead_letter", RIDE_REASONS, {"received_at": "CURRENT_TIMESTAMP()"}),
        ("taxi_trips_dead_letter", TRIP_REASONS, {"source": "'test'", "loaded_at": "CURRENT_TIMESTAMP()"}),
    ):
        ensure_table(bq, table_spec(name), f"{dataset}.{name}")
        values = ", ".join(f"({reason!r}, {', '.join(required.values())})" for reason in reasons)
        bq.query(f"INSERT INTO `{dataset}.{name}` (reason, {', '.join(required)}) VALUES {values}").result()
    ensure_table(bq, table_spec("taxi_trips"), f"{dataset}.taxi_trips")
    ctx = DemoContext(
        config, tmp_path, facts={"kdd_analysis": {"malformed": {"few_fields": 2, "bad_number": 0}}}
    )

    report = demo_report.collect(ctx, [("a stage", 1.5, "made things")], 2.0, client=bq)

    written = {
        f"{dataset}.taxi_trips": 0,
        f"{dataset}.taxi_trips_dead_letter": 3,
        f"{dataset}.ride_dead_letter": 3,
    }
    assert report.row_counts == {
        f"{dataset}.{name}": written.get(f"{dataset}.{name}") for _, name in demo_report.KEY_TABLES
    }  # the tables no stage wrote: None, shown as "-"
    assert report.dead_letters == {
        f"CSV ingestion ({dataset}.taxi_trips_dead_letter)": [
            {"reason": "fare_amount: … is not a valid FLOAT", "messages": 2},
            {"reason": "blank line", "messages": 1},
        ],
        f"streaming rides ({dataset}.ride_dead_letter)": [
            {"reason": "not JSON", "messages": 2},
            {"reason": "passenger_count: … is not a valid INTEGER", "messages": 1},
        ],
        "Spark KDD (malformed lines, in the lake)": [{"reason": "few_fields", "messages": 2}],
    }
    assert (report.trips_by_hour, report.kdd_categories, report.rides_per_minute) == ([], [], [])

    page = demo_report.render_html(report)
    assert f"<td>{dataset}.ride_dead_letter</td><td>3</td>" in page
    assert f"<td>{dataset}.recommendations</td><td>-</td>" in page
    assert "<td>not JSON</td><td>2</td>" in page
