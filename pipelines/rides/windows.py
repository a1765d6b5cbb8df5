"""Event-time aggregates of ride events: rides per 1-minute window, pickups per area in sliding windows.

Each batch of events is first summed per minute of event time (one partial per minute, stamped with the
minute's start): every event of a minute falls in the same fixed and sliding windows, so windowing the
partials is windowing the events, and the streaming GroupByKey (which keeps every value of an open window
and re-combines them at each firing) holds a few partials a batch instead of thousands of events.

Panes fire early every ``firing_seconds`` of processing time, on time when the watermark passes the end of
the window, and late (again every ``firing_seconds``) for data up to ``allowed_lateness`` behind; panes
accumulate, so the latest pane of a window (highest ``emitted_at``) holds its whole count.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger
from apache_beam.transforms.window import FixedWindows, SlidingWindows, TimestampedValue
from apache_beam.utils.timestamp import Duration
from apache_beam.utils.windowed_value import PaneInfoTiming

from pipelines.rides import geohash
from pipelines.rides.dedup import hashes
from pipelines.rides.messages import RideBatch

MINUTE = 60
AREA_WINDOW, AREA_PERIOD = 300, 60
_AWAITING_SEEDS: set[str] = set()  # the rebuilds (by tag) whose window seeds are not in the windows yet
AREA_PRECISION = 6
CITY = "nyc"  # the one key of the per-minute totals


_NO_RIDES = np.zeros(0, dtype=np.int64)


def await_seeds(tag: str) -> None:
    """No pane of the pipeline ``tag`` is written until its restart's window seeds have gone into the
    windows (``_Partials``): a pane before would count only the events since the restart."""
    _AWAITING_SEEDS.add(tag)


@dataclass
class Totals:
    """What one minute (or window) of events adds up to. ``rides``: the distinct rides, as sorted 64-bit
    hashes of their ids (8 bytes a ride, and no reference that keeps a parsed event alive: the streaming
    GroupByKey keeps every partial of an open window)."""

    events: int = 0
    pickups: int = 0
    dropoffs: int = 0
    passengers: int = 0
    revenue_cents: int = 0  # whole cents, so sums do not depend on the order of addition
    rides: np.ndarray = field(default_factory=lambda: _NO_RIDES)

    @classmethod
    def of(cls, events: list[dict]) -> Totals:
        totals = cls(events=len(events), rides=np.unique(hashes(e["ride_id"] for e in events)))
        for event in events:
            if event["ride_status"] == "pickup":
                totals.pickups += 1
                totals.passengers += event["passenger_count"]
            elif event["ride_status"] == "dropoff":
                totals.dropoffs += 1
                totals.revenue_cents += round(event["meter_reading"] * 100)
        return totals

    def merge(self, other: Totals) -> Totals:
        self.events += other.events
        self.pickups += other.pickups
        self.dropoffs += other.dropoffs
        self.passengers += other.passengers
        self.revenue_cents += other.revenue_cents
        self.rides = np.union1d(self.rides, other.rides)
        return self


class SumTotals(beam.CombineFn):
    # Accumulators are fresh objects: the inputs stay untouched, as accumulating panes re-read them.
    def create_accumulator(self) -> Totals:
        return Totals()

    def add_input(self, accumulator: Totals, element: Totals) -> Totals:
        return accumulator.merge(element)

    def merge_accumulators(self, accumulators) -> Totals:
        total = Totals()
        for accumulator in accumulators:
            total.merge(accumulator)
        return total

    def extract_output(self, accumulator: Totals) -> Totals:
        return accumulator


def _minute(event: dict) -> int:
    seconds = event["timestamp"].timestamp()
    return int(seconds // MINUTE * MINUTE)


def minute_partials(batch: RideBatch):
    """(CITY, Totals) per minute of event time in the batch, stamped with the minute's start."""
    by_minute: dict[int, list[dict]] = defaultdict(list)
    for event in batch.events:
        by_minute[_minute(event)].append(event)
    for minute, events in by_minute.items():
        yield TimestampedValue((CITY, Totals.of(events)), minute)


def area_partials(batch: RideBatch):
    """(CITY, {area: [pickups, passengers]}) per minute of event time in the batch, stamped with its start.

    One key for the whole city, not one per area: the runner keeps a trigger, timers and state for every
    key and window, and hundreds of area keys cost it more than the counting does.
    """
    by_minute: dict[int, dict[str, list[int]]] = defaultdict(dict)
    for event in batch.events:
        if event["ride_status"] == "pickup":
            area = geohash.encode(event["latitude"], event["longitude"], AREA_PRECISION)
            pair = by_minute[_minute(event)].setdefault(area, [0, 0])
            pair[0] += 1
            pair[1] += event["passenger_count"]
    for minute, areas in by_minute.items():
        yield TimestampedValue((CITY, areas), minute)


class SumAreas(beam.CombineFn):
    # As SumTotals: fresh accumulators, inputs untouched.
    def create_accumulator(self) -> dict[str, list[int]]:
        return {}

    def add_input(self, accumulator, element):
        for area, (pickups, passengers) in element.items():
            pair = accumulator.setdefault(area, [0, 0])
            pair[0] += pickups
            pair[1] += passengers
        return accumulator

    def merge_accumulators(self, accumulators):
        total: dict[str, list[int]] = {}
        for accumulator in accumulators:
            self.add_input(total, accumulator)
        return total

    def extract_output(self, accumulator):
        return accumulator


def windowing(window_fn, allowed_lateness: float, firing_seconds: float) -> beam.WindowInto:
    every = trigger.AfterProcessingTime(
        int(firing_seconds)
    )  # whole seconds: the runner API keeps no fraction
    return beam.WindowInto(
        window_fn,
        trigger=trigger.AfterWatermark(early=every, late=every),
        accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
        allowed_lateness=Duration(seconds=allowed_lateness),
    )


class _Rows(beam.DoFn):
    """A pane's rows, unless its window starts before ``since``: a restarted pipeline rebuilds its windows
    from the events stored since then (``rebuild.py``), so an older window's count would be partial, and that
    window's final panes were written before the restart (``since`` lies window + lateness back)."""

    def __init__(self, since: float | None = None, seeded: str | None = None):
        self.since, self.seeded = since, seeded
        self.skipped = Metrics.counter("taxi_streaming", "panes_before_replay_skipped")

    def process(self, element, window=beam.DoFn.WindowParam, pane=beam.DoFn.PaneInfoParam):
        if self.since is not None and window.start < self.since:
            self.skipped.inc()
            return
        if self.seeded in _AWAITING_SEEDS:  # an early pane (the watermark is held): the next one has all
            return
        yield from self.rows(element, window, pane)

    def rows(self, element, window, pane):
        raise NotImplementedError


def pane_fields(window, pane, key_suffix: str = "") -> dict:
    start = window.start.to_rfc3339()
    return {
        "window_start": start,
        "window_end": window.end.to_rfc3339(),
        "pane_timing": PaneInfoTiming.to_string(pane.timing),
        "pane_index": pane.index,
        "window_key": start + key_suffix,
        "emitted_at": datetime.now(UTC).isoformat(),
    }


class PerMinuteRow(_Rows):
    def rows(self, element, window, pane):
        _, totals = element
        yield {
            **pane_fields(window, pane),
            "pickups": totals.pickups,
            "dropoffs": totals.dropoffs,
            "passengers": totals.passengers,
            "revenue": totals.revenue_cents / 100,
            "active_rides": len(totals.rides),
            "events": totals.events,
        }


class AreaRows(_Rows):
    """One row per area of the pane."""

    def rows(self, element, window, pane):
        _, areas = element
        for area, (pickups, passengers) in sorted(areas.items()):
            latitude, longitude = geohash.center(area)
            yield {
                **pane_fields(window, pane, "/" + area),
                "area": area,
                "center_latitude": round(latitude, 6),
                "center_longitude": round(longitude, 6),
                "pickups": pickups,
                "passengers": passengers,
            }


class _Partials(beam.DoFn):
    """One step for both partials: the DirectRunner pays per step and per bundle. A restart's window seeds
    (``rebuild.py``: the stored events' partials, computed in the warehouse) go on as they are."""

    def __init__(self, seeded: str | None = None):
        self.seeded = seeded

    def process(self, batch: RideBatch):
        minutes, areas = (
            (batch.seeds.minutes, batch.seeds.areas)
            if batch.seeds
            else (minute_partials(batch), area_partials(batch))
        )
        yield from minutes
        for partial in areas:
            yield beam.pvalue.TaggedOutput("areas", partial)
        if batch.seeds:
            _AWAITING_SEEDS.discard(self.seeded)


class RideAggregates(beam.PTransform):
    """RideBatch -> (rides_per_minute rows, rides_by_area rows), one row a pane.

    Per minute: 1-minute fixed windows. By area: pickups per geohash area, 5-minute windows sliding every
    minute; each of their panes holds every area of the window, so they may fire less often
    (``area_firing_seconds``). ``since``: where a restarted pipeline's rebuilt windows begin (see ``_Rows``);
    ``seeded``: the tag its reader rebuilds under (``await_seeds``).
    """

    def __init__(
        self,
        allowed_lateness: float,
        firing_seconds: float,
        area_firing_seconds: float | None = None,
        since: float | None = None,
        seeded: str | None = None,
    ):
        super().__init__()
        self.allowed_lateness, self.firing_seconds = allowed_lateness, firing_seconds
        self.area_firing_seconds = area_firing_seconds or firing_seconds
        self.since, self.seeded = since, seeded

    def expand(self, batches):
        partials = batches | "Partials" >> beam.ParDo(_Partials(self.seeded)).with_outputs(
            "areas", main="minutes"
        )
        lateness, firing = self.allowed_lateness, self.firing_seconds
        per_minute = (
            partials.minutes
            | "WindowMinutes" >> windowing(FixedWindows(MINUTE), lateness, firing)
            | "SumMinutes" >> beam.CombinePerKey(SumTotals())
            | "MinuteRows" >> beam.ParDo(PerMinuteRow(self.since, self.seeded))
        )
        by_area = (
            partials.areas
            | "WindowAreas"
            >> windowing(SlidingWindows(AREA_WINDOW, AREA_PERIOD), lateness, self.area_firing_seconds)
            | "SumAreas" >> beam.CombinePerKey(SumAreas())
            | "AreaRows" >> beam.ParDo(AreaRows(self.since, self.seeded))
        )
        return per_minute, by_area
