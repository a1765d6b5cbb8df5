"""The streaming transforms under TestStream: early, on-time, late and too-late panes; duplicates; dead letters."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream as Stream
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to, equal_to_per_window
from apache_beam.transforms.window import IntervalWindow, TimestampedValue

from pipelines.rides import geohash
from pipelines.rides.messages import (
    CleanRideMessages,
    MessageBatch,
    RideBatch,
    RideMessage,
    WindowSeeds,
    parse_message,
)
from pipelines.rides.windows import RideAggregates, area_partials, await_seeds, minute_partials
from pipelines.taxi_streaming import PipelineArgumentError, _resolve

T0 = int(datetime(2026, 1, 1, 12, 0, tzinfo=UTC).timestamp())  # a minute boundary
LATENESS, FIRING = 120, 5
MIDTOWN = (40.7549, -73.9840)


def message(
    ride: str, idx: int, status: str, at: float, passengers=1, meter=2.5, event_id=None, where=MIDTOWN
):
    payload = {
        "ride_id": ride, "point_idx": idx, "latitude": where[0], "longitude": where[1],
        "timestamp": datetime.fromtimestamp(at, UTC).isoformat(), "meter_reading": meter,
        "meter_increment": 0.1, "ride_status": status, "passenger_count": passengers,
    }  # fmt: skip
    event_id = event_id or f"{ride}:{idx}"
    return RideMessage(json.dumps(payload).encode(), {"event_id": event_id}, f"m-{event_id}-{at}", at)


def batch(*messages, at: float) -> TimestampedValue:
    return TimestampedValue(MessageBatch(list(messages)), at)


def streaming_pipeline() -> beam.Pipeline:
    return beam.Pipeline(options=PipelineOptions(runner="BundleBasedDirectRunner", streaming=True))


def the_stream() -> Stream:
    """Window [T0, T0+60): two pickups early, a dropoff on time, a late event, a too-late event.

    Processing time (0 at the start of a TestStream) is moved along with the watermark, as it goes live.
    """
    return (
        Stream()
        .advance_processing_time(T0 + 10)
        .advance_watermark_to(T0)
        .add_elements(
            [
                batch(
                    message("a", 0, "pickup", T0 + 5, passengers=2),
                    message("b", 0, "pickup", T0 + 10),
                    at=T0 + 10,
                ),
                # a redelivery of "a" (same event id, new message id) and a message that is not JSON
                batch(
                    message("a", 0, "pickup", T0 + 5, passengers=2),
                    RideMessage(b"{not json", {"event_id": "x"}, "m-x", T0 + 12),
                    at=T0 + 12,
                ),
            ]
        )
        .advance_processing_time(FIRING + 1)  # early pane: 2 pickups
        .add_elements([batch(message("a", 7, "dropoff", T0 + 50, passengers=2, meter=12.25), at=T0 + 50)])
        .advance_processing_time(FIRING + 1)  # early pane: + the dropoff
        .advance_watermark_to(T0 + 60)  # on-time pane
        .advance_processing_time(68)
        .advance_watermark_to(T0 + 90)
        .add_elements([batch(message("c", 4, "enroute", T0 + 30), at=T0 + 90)])  # late, kept
        .advance_processing_time(FIRING + 1)  # late pane
        .advance_watermark_to(T0 + 60 + LATENESS + 1)  # the window expires
        .add_elements([batch(message("d", 5, "enroute", T0 + 40), at=T0 + 200)])  # too late: dropped
        .advance_processing_time(FIRING + 1)
        .advance_watermark_to_infinity()
    )


def pane(row: dict) -> tuple:
    assert row["window_key"] == row["window_start"] == "2026-01-01T12:00:00Z"
    assert row["window_end"] == "2026-01-01T12:01:00Z"
    return (row["pane_timing"], row["pickups"], row["dropoffs"], row["passengers"], row["revenue"],
            row["active_rides"], row["events"])  # fmt: skip


def test_rides_per_minute_fires_early_on_time_and_late_and_drops_too_late_data():
    with streaming_pipeline() as p:
        rides = p | the_stream() | beam.ParDo(CleanRideMessages())
        rows, _ = rides | RideAggregates(allowed_lateness=LATENESS, firing_seconds=FIRING)
        window = IntervalWindow(T0, T0 + 60)
        assert_that(
            rows | beam.Map(pane),
            equal_to_per_window({
                window: [
                    ("EARLY", 2, 0, 3, 0.0, 2, 2),
                    ("EARLY", 2, 1, 3, 12.25, 2, 3),
                    ("ON_TIME", 2, 1, 3, 12.25, 2, 3),
                    ("LATE", 2, 1, 3, 12.25, 3, 4),  # "d" came too late: never counted
                ]
            }),
            label="panes",
        )  # fmt: skip
        reasons = rides | beam.FlatMap(lambda b: [d["reason"].split(":")[0] for d in b.dead_letters])
        assert_that(reasons, equal_to(["not JSON"]), label="dead letters")
        assert_that(rides | beam.Map(lambda b: b.duplicates), equal_to([0, 1, 0, 0, 0]), label="duplicates")


def test_pickups_by_area_slide_over_five_windows():
    uptown = (40.8116, -73.9465)
    stream = (
        Stream()
        .advance_processing_time(T0 + 10)  # processing time starts at 0: line it up with event time
        .advance_watermark_to(T0)
        .add_elements(
            [
                batch(
                    message("a", 0, "pickup", T0 + 5, passengers=2),
                    message("b", 0, "pickup", T0 + 65),
                    message("c", 0, "pickup", T0 + 70, where=uptown),
                    message("c", 1, "enroute", T0 + 71),
                    at=T0 + 70,
                ),
            ]
        )
        .advance_watermark_to_infinity()
    )
    midtown, harlem = geohash.encode(*MIDTOWN), geohash.encode(*uptown)
    with streaming_pipeline() as p:
        _, rows = p | stream | beam.ParDo(CleanRideMessages()) | RideAggregates(LATENESS, FIRING)
        expected = {}
        for start in range(T0 - 240, T0 + 120, 60):
            window = IntervalWindow(start, start + 300)
            cells = []
            if start <= T0 + 5 < start + 300:
                cells.append((midtown, 1 + (start <= T0 + 65 < start + 300), "ON_TIME"))
            elif start <= T0 + 65 < start + 300:
                cells.append((midtown, 1, "ON_TIME"))
            if start <= T0 + 70 < start + 300:
                cells.append((harlem, 1, "ON_TIME"))
            expected[window] = cells
        got = rows | beam.Map(lambda r: (r["area"], r["pickups"], r["pane_timing"]))
        assert_that(got, equal_to_per_window(expected))
    lat, lon = geohash.center(midtown)
    assert abs(lat - MIDTOWN[0]) < 0.003 and abs(lon - MIDTOWN[1]) < 0.006


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object but list"),
        (json.dumps({"ride_id": "r"}).encode(), "point_idx: REQUIRED but empty"),
    ],
)
def test_malformed_messages_get_one_reason_each(payload, reason):
    row, why = parse_message(RideMessage(payload, {}, "m1", T0))
    assert row is None and why.startswith(reason)


def test_windows_before_the_replay_horizon_are_not_written():
    """A restarted pipeline rebuilds its windows from the events since ``since``: an older window would
    hold only part of its events, so none of its panes is written (its final ones were, before)."""
    stream = (
        Stream()
        .advance_processing_time(T0 + 10)
        .advance_watermark_to(T0)
        .add_elements(
            [batch(message("a", 0, "pickup", T0 + 5), message("b", 0, "pickup", T0 + 65), at=T0 + 65)]
        )
        .advance_watermark_to_infinity()
    )
    with streaming_pipeline() as p:
        rides = p | stream | beam.ParDo(CleanRideMessages())
        minutes, areas = rides | RideAggregates(LATENESS, FIRING, since=T0 + 60)
        after = "2026-01-01T12:01:00Z"
        assert_that(minutes | beam.Map(lambda r: (r["window_start"], r["pickups"])), equal_to([(after, 1)]),
                    label="minutes")  # fmt: skip
        assert_that(areas | beam.Map(lambda r: (r["window_start"], r["pickups"])), equal_to([(after, 1)]),
                    label="areas")  # fmt: skip


def test_a_restart_s_window_seeds_and_new_events_add_up_to_the_whole_window():
    """A restarted pipeline's first element holds the stored events' partials (``rebuild.py``); the windows
    add the new events to them: counts summed, rides distinct across both."""
    stored = [
        parse_message(m)[0] for m in (message("a", 0, "pickup", T0 + 5), message("b", 0, "pickup", T0 + 8))
    ]
    stored_batch = RideBatch(stored, [])
    seeds = WindowSeeds(list(minute_partials(stored_batch)), list(area_partials(stored_batch)))
    stream = (
        Stream()
        .advance_processing_time(T0 + 10)
        .advance_watermark_to(T0)
        .add_elements([TimestampedValue(MessageBatch([], seeds=seeds), T0)])
        .add_elements(
            [
                batch(
                    message("a", 1, "dropoff", T0 + 20, meter=7.5),
                    message("c", 0, "pickup", T0 + 30),
                    at=T0 + 30,
                )
            ]
        )
        .advance_watermark_to_infinity()
    )
    with streaming_pipeline() as p:
        rides = p | stream | beam.ParDo(CleanRideMessages())
        minutes, areas = rides | RideAggregates(LATENESS, FIRING)
        final = minutes | beam.Filter(lambda r: r["pane_timing"] == "ON_TIME")
        assert_that(
            final
            | beam.Map(lambda r: (r["events"], r["pickups"], r["dropoffs"], r["revenue"], r["active_rides"])),
            equal_to([(4, 3, 1, 7.5, 3)]),
            label="minutes",
        )
        start = "2026-01-01T12:00:00Z"
        area = areas | beam.Filter(lambda r: r["pane_timing"] == "ON_TIME" and r["window_start"] == start)
        assert_that(
            area | beam.Map(lambda r: (r["pickups"], r["passengers"])), equal_to([(3, 3)]), label="areas"
        )


def _all_equal(value):
    def check(actual):
        if not actual or set(actual) != {value}:
            raise BeamAssertException(f"panes counted {actual}, each should count {value}")

    return check


def test_no_pane_is_written_before_a_restart_s_window_seeds_are_in():
    """The reader lets new events go on before the windows are rebuilt; a pane then would count only them."""
    stored = [
        parse_message(m)[0] for m in (message("a", 0, "pickup", T0 + 5), message("b", 0, "pickup", T0 + 8))
    ]
    seeds = WindowSeeds(
        list(minute_partials(RideBatch(stored, []))), list(area_partials(RideBatch(stored, [])))
    )
    tag = "restart-under-test"
    await_seeds(tag)
    stream = (
        Stream()
        .advance_processing_time(T0 + 10)
        .advance_watermark_to(T0)
        .add_elements([batch(message("c", 0, "pickup", T0 + 30), at=T0 + 30)])
        .advance_processing_time(T0 + 20)  # an early pane is due: it would hold c alone
        .add_elements([TimestampedValue(MessageBatch([], seeds=seeds), T0)])
        .advance_processing_time(T0 + 30)
        .advance_watermark_to_infinity()
    )
    with streaming_pipeline() as p:
        rides = p | stream | beam.ParDo(CleanRideMessages())
        minutes, _ = rides | RideAggregates(LATENESS, FIRING, seeded=tag)
        assert_that(minutes | beam.Map(lambda r: r["events"]), _all_equal(3))


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--batch_size", "0"], "--batch_size must be at least 1, not 0."),
        (["--allowed_lateness", "-5"], "--allowed_lateness must be at least 0, not -5.0."),
        (["--firing_seconds", "0"], "--firing_seconds must be at least 1, not 0."),
        (["--duration_seconds", "0"], "--duration_seconds must be positive, not 0.0."),
        (
            ["--replay_seconds", "60"],
            "--replay_seconds must be 0 (off) or at least 600 (the heat map's window",
        ),
    ],
)
def test_options_out_of_range_are_one_sentence(flags, error):
    with pytest.raises(PipelineArgumentError, match=re.escape(error)):
        _resolve(PipelineOptions(["--input_topic", "rides", "--output_dataset", "acme-prod:taxi", *flags]))
