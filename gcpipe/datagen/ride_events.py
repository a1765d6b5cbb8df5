"""Taxi ride events in the JSON format of Google's public ``taxirides-realtime`` feed.

A ride starts at a pickup hot spot, drives an L-shaped route along Manhattan's grid (rotated 29 degrees
from north) and ends at a dropoff; every point of the route is one event::

    {"ride_id": "...", "point_idx": 12, "latitude": 40.75, "longitude": -73.98,
     "timestamp": "2026-11-24T07:30:00.123456-05:00", "meter_reading": 7.31,
     "meter_increment": 0.0412, "ride_status": "enroute", "passenger_count": 2}

``RideSimulator.next_event(moment)`` advances the next of ``concurrent_rides`` rides by one point and
stamps it with ``moment``, so a publisher emits events "now" at any rate; a finished ride (its dropoff
sent) is replaced by a new one, which begins with its pickup. Rides start part-way along their routes,
as the real feed looks when one subscribes mid-stream.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from gcpipe.core.ui import progress
from gcpipe.datagen.taxi_trips import HOT_SPOTS

NEW_YORK = ZoneInfo("America/New_York")
GRID_ANGLE = math.radians(29.0)  # Manhattan's avenues run 29 degrees east of true north
MILES_PER_DEG_LAT, MILES_PER_DEG_LON = 69.0, 52.4


@dataclass
class _Ride:
    ride_id: str
    route: np.ndarray  # (points, 2): latitude, longitude
    passengers: int
    increment: float
    next_idx: int


class RideSimulator:
    def __init__(self, seed: int = 42, concurrent_rides: int = 200, points: tuple[int, int] = (20, 120)):
        self._rng = np.random.default_rng(seed)
        self._points = points
        self._weights = HOT_SPOTS[:, 2] / HOT_SPOTS[:, 2].sum()
        self._rides = [self._new_ride(mid_route=True) for _ in range(max(1, concurrent_rides))]
        self._turn = 0

    def _new_ride(self, mid_route: bool = False) -> _Ride:
        rng = self._rng
        spot = HOT_SPOTS[rng.choice(len(HOT_SPOTS), p=self._weights)]
        start = np.array([spot[0] + rng.normal(0, 0.008), spot[1] + rng.normal(0, 0.008)])
        miles = float(np.clip(rng.lognormal(math.log(1.7), 0.75), 0.2, 20.0))
        # Split the trip between one avenue leg and one street leg, each along the rotated grid.
        avenue_miles = miles * rng.uniform(0.2, 0.8)
        street_miles = miles - avenue_miles
        avenue_sign, street_sign = rng.choice([-1, 1], size=2)
        avenue = np.array(
            [math.cos(GRID_ANGLE) / MILES_PER_DEG_LAT, math.sin(GRID_ANGLE) / MILES_PER_DEG_LON]
        )
        street = np.array(
            [-math.sin(GRID_ANGLE) / MILES_PER_DEG_LAT, math.cos(GRID_ANGLE) / MILES_PER_DEG_LON]
        )
        corner = start + avenue_sign * avenue_miles * avenue
        end = corner + street_sign * street_miles * street
        n = int(rng.integers(*self._points))
        leg1 = max(2, round(n * avenue_miles / miles))
        route = np.vstack(
            [
                np.linspace(start, corner, leg1, endpoint=False),
                np.linspace(corner, end, n - leg1),
            ]
        )
        fare = 2.5 + 2.5 * miles
        return _Ride(
            ride_id=str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | int(rng.integers(0, 2**63)))),
            route=route,
            passengers=int(rng.choice([1, 2, 3, 4, 5, 6], p=[0.72, 0.14, 0.04, 0.02, 0.05, 0.03])),
            increment=(fare - 2.5) / max(1, len(route) - 1),
            next_idx=int(rng.integers(0, len(route))) if mid_route else 0,
        )

    def next_event(self, moment: datetime) -> dict:
        """The next point of the next ride, stamped ``moment`` (an aware datetime)."""
        slot = self._turn % len(self._rides)
        self._turn += 1
        ride = self._rides[slot]
        idx = ride.next_idx
        last = len(ride.route) - 1
        status = "pickup" if idx == 0 else "dropoff" if idx == last else "enroute"
        lat, lon = ride.route[idx]
        event = {
            "ride_id": ride.ride_id,
            "point_idx": idx,
            "latitude": round(float(lat), 6),
            "longitude": round(float(lon), 6),
            "timestamp": moment.astimezone(NEW_YORK).isoformat(),
            "meter_reading": round(2.5 + ride.increment * idx, 2),
            "meter_increment": round(ride.increment, 4),
            "ride_status": status,
            "passenger_count": ride.passengers,
        }
        ride.next_idx += 1
        if idx == last:
            self._rides[slot] = self._new_ride()
        return event

    def events(self, count: int, start: datetime, rate: float) -> Iterator[dict]:
        """``count`` events, ``1/rate`` seconds apart from ``start``."""
        step = timedelta(seconds=1 / rate)
        for i in range(count):
            yield self.next_event(start + i * step)


def write_ride_events(
    path: str | Path, count: int, start: datetime, rate: float = 100.0, seed: int = 42
) -> int:
    """Write ``count`` events as JSON lines; returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    simulator = RideSimulator(seed, concurrent_rides=max(10, int(rate * 4)))
    with open(path, "w") as out, progress(f"ride events -> {path.name}", count) as advance:
        for i, event in enumerate(simulator.events(count, start, rate)):
            out.write(json.dumps(event) + "\n")
            if i % 10_000 == 9_999:
                advance(10_000)
        advance(count % 10_000)
    return count
