"""NYC TLC yellow-taxi trip CSVs: realistic, seeded, with an optional mix of malformed rows.

Columns are those of ``sql/schemas/taxi_trips.json`` (the names of BigQuery's public
``nyc-tlc.yellow.trips``), in that order, with a header. Pickups cluster around Manhattan hot spots and
the airports, follow the city's daily rhythm, and fares follow the TLC meter (USD 2.50 flag drop, 2.50
a mile, 0.50 a slow minute, JFK flat fare), so downstream aggregates look like the real thing.

``malformed`` is the fraction of data lines to spoil. They are spread evenly over these kinds
(``MALFORMED_KINDS``), each a way real files go wrong:

* ``wrong_column_count``: a field missing or one too many;
* ``bad_number``: a numeric cell that is not a number (``1.2.3``, ``abc``);
* ``bad_timestamp``: a pickup time that is no time (``2019-02-30 25:61:00``);
* ``required_missing``: an empty REQUIRED cell (fare_amount);
* ``rule_violation``: typed fine but breaks a table rule (negative fare, dropoff before pickup,
  passenger_count 15);
* ``undecodable_bytes``: bytes that are not UTF-8;
* ``blank_line``: an empty line.

``write_trips_csv`` returns the ground truth: data lines written, valid lines, and the count per
malformed kind.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from gcpipe.core.schemas import load_schema
from gcpipe.datagen.lines import write_lines

MALFORMED_KINDS = (
    "wrong_column_count",
    "bad_number",
    "bad_timestamp",
    "required_missing",
    "rule_violation",
    "undecodable_bytes",
    "blank_line",
)
CHUNK_ROWS = 100_000

# (latitude, longitude, weight, is_airport): where NYC yellow-cab pickups concentrate.
HOT_SPOTS = np.array(
    [
        (40.7549, -73.9840, 0.28, 0),  # Midtown
        (40.7736, -73.9566, 0.14, 0),  # Upper East Side
        (40.7870, -73.9754, 0.10, 0),  # Upper West Side
        (40.7370, -74.0005, 0.15, 0),  # Chelsea / Village
        (40.7090, -74.0090, 0.09, 0),  # Financial District
        (40.8116, -73.9465, 0.05, 0),  # Harlem
        (40.6860, -73.9770, 0.05, 0),  # Brooklyn
        (40.6413, -73.7781, 0.07, 1),  # JFK
        (40.7769, -73.8740, 0.07, 1),  # LaGuardia
    ]
)
# Share of a day's pickups per hour (00..23), after the TLC's published hourly profile.
HOURLY = np.array(
    [
        3.2,
        2.3,
        1.7,
        1.2,
        0.9,
        0.9,
        2.0,
        3.6,
        4.6,
        4.7,
        4.5,
        4.6,
        4.9,
        4.9,
        5.2,
        5.1,
        4.7,
        5.5,
        6.4,
        6.4,
        5.9,
        5.6,
        5.3,
        4.5,
    ]
)
SPEED_MPH = np.where((np.arange(24) >= 7) & (np.arange(24) <= 19), 8.0, 13.0)


@dataclass
class TripsManifest:
    path: str
    seed: int
    rows: int  # data lines written, header excluded, malformed included
    valid: int
    malformed: dict[str, int] = field(default_factory=dict)


def generate_trips(rng: np.random.Generator, n: int, start: date, days: int = 1) -> pa.Table:
    """``n`` valid trips with pickups over ``days`` days from ``start``, as a table of the schema's columns."""
    spot = rng.choice(len(HOT_SPOTS), size=n, p=HOT_SPOTS[:, 2] / HOT_SPOTS[:, 2].sum())
    airport = HOT_SPOTS[spot, 3] == 1
    pickup_lat = HOT_SPOTS[spot, 0] + rng.normal(0, 0.008, n)
    pickup_lon = HOT_SPOTS[spot, 1] + rng.normal(0, 0.008, n)

    hour = rng.choice(24, size=n, p=HOURLY / HOURLY.sum())
    seconds = rng.integers(0, days, n) * 86_400 + hour * 3600 + rng.integers(0, 3600, n)
    pickup = np.datetime64(start.isoformat(), "s") + seconds.astype("timedelta64[s]")

    distance = np.where(airport, rng.normal(15.0, 3.0, n), rng.lognormal(np.log(1.7), 0.75, n))
    distance = np.round(np.clip(distance, 0.1, 60.0), 2)
    minutes = distance / SPEED_MPH[hour] * 60 * rng.lognormal(0, 0.25, n) + 1
    dropoff = pickup + (minutes * 60).astype("timedelta64[s]")

    bearing = rng.uniform(0, 2 * np.pi, n)
    crow_miles = distance / 1.3  # the street grid makes trips ~30% longer than the straight line
    dropoff_lat = pickup_lat + crow_miles / 69.0 * np.cos(bearing)
    dropoff_lon = pickup_lon + crow_miles / 52.4 * np.sin(bearing)

    jfk = spot == 7
    fare = np.where(jfk, 52.0, np.round((2.5 + 2.5 * distance + 0.5 * 0.3 * minutes) * 2) / 2)
    weekday = (pickup.astype("datetime64[D]").view("int64") - 4) % 7 < 5  # 1970-01-01 was a Thursday
    extra = np.where((hour >= 20) | (hour < 6), 0.5, np.where(weekday & (hour >= 16), 1.0, 0.0))
    tolls = np.where(rng.random(n) < np.where(airport, 0.35, 0.03), 5.76, 0.0)
    payment = rng.choice(["1", "2", "3", "4"], size=n, p=[0.68, 0.30, 0.01, 0.01])
    tip = np.where(payment == "1", np.round(fare * rng.uniform(0.1, 0.25, n), 2), 0.0)
    total = np.round(fare + extra + 0.5 + tip + tolls + 0.3, 2)
    passengers = rng.choice([0, 1, 2, 3, 4, 5, 6], size=n, p=[0.02, 0.70, 0.14, 0.04, 0.02, 0.05, 0.03])

    columns = {
        "vendor_id": rng.choice(["1", "2"], size=n, p=[0.45, 0.55]),
        "pickup_datetime": pickup,
        "dropoff_datetime": dropoff,
        "passenger_count": passengers,
        "trip_distance": distance,
        "pickup_longitude": np.round(pickup_lon, 6),
        "pickup_latitude": np.round(pickup_lat, 6),
        "rate_code": np.where(jfk, "2", "1"),
        "store_and_fwd_flag": np.where(rng.random(n) < 0.01, "Y", "N"),
        "dropoff_longitude": np.round(dropoff_lon, 6),
        "dropoff_latitude": np.round(dropoff_lat, 6),
        "payment_type": payment,
        "fare_amount": fare,
        "extra": extra,
        "mta_tax": np.full(n, 0.5),
        "tip_amount": tip,
        "tolls_amount": tolls,
        "imp_surcharge": np.full(n, 0.3),
        "total_amount": total,
    }
    assert list(columns) == load_schema("taxi_trips").names
    return pa.table(columns)


def _csv_lines(table: pa.Table) -> list[bytes]:
    """The table as CSV data lines (no header), timestamps written the way TLC files write them."""
    for name in ("pickup_datetime", "dropoff_datetime"):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pc.strftime(table[name], "%Y-%m-%d %H:%M:%S"))
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return buffer.getvalue().splitlines()


def _spoil(line: bytes, kind: str, rng: np.random.Generator) -> bytes:
    cells = line.split(b",")
    variant = int(rng.integers(0, 3))
    if kind == "wrong_column_count":
        cells = cells[:-1] if variant else [*cells, b"extra"]
    elif kind == "bad_number":
        cells[[4, 12, 3][variant]] = [b"1.2.3", b"abc", b"two"][variant]
    elif kind == "bad_timestamp":
        cells[1] = [b"2019-02-30 25:61:00", b"yesterday", b"2019-13-01 10:00:00"][variant]
    elif kind == "required_missing":
        cells[12] = b""
    elif kind == "rule_violation":
        if variant == 0:
            cells[12] = b"-" + cells[12]
        elif variant == 1:
            cells[1], cells[2] = cells[2], cells[1]  # trips last a minute or more, so dropoff < pickup
        else:
            cells[3] = b"15"
    elif kind == "undecodable_bytes":
        cells[0] = b"\xff\xfe" + cells[0]
    elif kind == "blank_line":
        return b""
    return b",".join(cells)


def write_trips_csv(
    path: str | Path,
    rows: int,
    seed: int = 42,
    malformed: float = 0.0,
    start: date = date(2019, 3, 1),
    days: int = 1,
) -> TripsManifest:
    """Write ``rows`` data lines (gzip if the name ends in .gz) and return the ground truth."""
    rng = np.random.default_rng(seed)
    counts = write_lines(
        path,
        rows,
        rng,
        malformed,
        MALFORMED_KINDS,
        make_chunk=lambda n, _: _csv_lines(generate_trips(rng, n, start, days)),
        spoil=_spoil,
        chunk_rows=CHUNK_ROWS,
        label="taxi trips",
        header=",".join(load_schema("taxi_trips").names).encode(),
    )
    return TripsManifest(str(path), seed, rows, rows - sum(counts.values()), counts)
