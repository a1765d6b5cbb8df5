"""Foundation benchmarks: `make setup` from a fresh clone, and vectorised data generation.

* setup: a fresh clone of HEAD, `make setup` from the warm package cache (goal: under 6 minutes on this
  2-core machine), then again (idempotent: nothing to do).
* taxi trips: generating a 1,000,000-row TLC CSV, against the straightforward per-row way (a Python
  loop over ``random`` and ``csv.writer``) writing the same columns.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from gcpipe.app.bench import BenchContext, Figure, measure
from gcpipe.core.config import PROJECT_ROOT

BASELINE = """
import csv, random, sys, datetime as dt
rows, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(42)
start = dt.datetime(2019, 3, 1)
with open(path, "w", newline="") as out:
    w = csv.writer(out)
    w.writerow(["vendor_id", "pickup_datetime", "dropoff_datetime", "passenger_count", "trip_distance",
                "pickup_longitude", "pickup_latitude", "rate_code", "store_and_fwd_flag", "dropoff_longitude",
                "dropoff_latitude", "payment_type", "fare_amount", "extra", "mta_tax", "tip_amount",
                "tolls_amount", "imp_surcharge", "total_amount"])
    for _ in range(rows):
        pickup = start + dt.timedelta(seconds=rng.randrange(86400))
        distance = round(rng.lognormvariate(0.53, 0.75), 2)
        minutes = distance / 8 * 60 + 1
        fare = round((2.5 + 2.5 * distance + 0.15 * minutes) * 2) / 2
        tip = round(fare * rng.uniform(0.1, 0.25), 2)
        w.writerow([rng.choice("12"), pickup.strftime("%Y-%m-%d %H:%M:%S"),
                    (pickup + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S"), rng.randint(1, 6),
                    distance, round(-73.98 + rng.gauss(0, 0.01), 6), round(40.75 + rng.gauss(0, 0.01), 6), "1",
                    "N", round(-73.98 + rng.gauss(0, 0.02), 6), round(40.75 + rng.gauss(0, 0.02), 6), "1", fare,
                    0.5, 0.5, tip, 0, 0.3, round(fare + 1.3 + tip, 2)])
"""


def run(ctx: BenchContext) -> list[Figure]:
    figures = []
    clone = ctx.workdir / "fresh-clone"
    shutil.rmtree(clone, ignore_errors=True)
    subprocess.run(["git", "clone", "--quiet", str(PROJECT_ROOT), str(clone)], check=True)
    first = measure(["make", "-C", str(clone), "setup"])
    again = measure(["make", "-C", str(clone), "setup"])
    shutil.rmtree(clone, ignore_errors=True)
    figures.append(
        Figure(
            "make setup, fresh clone, warm package cache",
            first.seconds,
            "s",
            goal="< 360 s",
            met=first.seconds < 360,
            higher_is_better=False,
        )
    )
    figures.append(
        Figure(
            "make setup again (idempotent)",
            again.seconds,
            "s",
            goal="< 10 s",
            met=again.seconds < 10,
            higher_is_better=False,
        )
    )

    rows = ctx.size(1_000_000, 50_000)
    ours = measure(
        [
            sys.executable,
            "-m",
            "gcpipe.app.cli",
            "datagen",
            "taxi-trips",
            "--rows",
            str(rows),
            "--output",
            str(ctx.workdir / "trips.csv"),
        ]
    )
    baseline = measure([sys.executable, "-c", BASELINE, str(rows), str(ctx.workdir / "trips-baseline.csv")])
    figures.append(
        Figure(
            f"datagen: taxi trips CSV, {rows:,} rows",
            rows / ours.seconds,
            "rows/s",
            baseline=rows / baseline.seconds,
            baseline_name="per-row random + csv.writer",
            peak_memory_mb=ours.peak_memory_mb,
        )
    )
    return figures
