import csv
import gzip
import hashlib
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gcpipe.core.schemas import load_schema, table_spec
from gcpipe.datagen import kdd, taxi_trips
from gcpipe.datagen.ecommerce import write_sessions
from gcpipe.datagen.rentals import write_rentals
from gcpipe.datagen.ride_events import RideSimulator


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _line_reasons(path):
    """Validate every data line of a trips CSV with the schema validator; return the reasons."""
    validator = table_spec("taxi_trips").validator()
    names = load_schema("taxi_trips").names
    reasons = []
    with open(path, "rb") as handle:
        assert handle.readline().decode().strip().split(",") == names
        for raw in handle:
            line = raw.rstrip(b"\n")
            if not line:
                reasons.append("blank line")
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                reasons.append("not UTF-8")
                continue
            cells = next(csv.reader([text]))
            if len(cells) != len(names):
                reasons.append("column count")
                continue
            reasons.append(validator.validate(dict(zip(names, cells, strict=True)))[1])
    return reasons


def test_taxi_trips_are_deterministic_for_a_seed(tmp_path):
    a, b, c = (tmp_path / name for name in ("a.csv", "b.csv", "c.csv"))
    taxi_trips.write_trips_csv(a, 3000, seed=7, malformed=0.01)
    taxi_trips.write_trips_csv(b, 3000, seed=7, malformed=0.01)
    taxi_trips.write_trips_csv(c, 3000, seed=8, malformed=0.01)
    assert _digest(a) == _digest(b) != _digest(c)


def test_taxi_trips_carry_the_documented_malformed_mix(tmp_path):
    path = tmp_path / "trips.csv"
    manifest = taxi_trips.write_trips_csv(path, 7000, seed=3, malformed=0.01)
    assert manifest.rows == 7000 and manifest.valid == 6930
    assert set(manifest.malformed) == set(taxi_trips.MALFORMED_KINDS)
    assert sorted(manifest.malformed.values()) == [10] * 7  # spread evenly over the seven kinds
    reasons = _line_reasons(path)
    assert len(reasons) == 7000
    assert reasons.count(None) == manifest.valid  # every clean line is valid, every spoiled one is not
    counted = Counter(r.split(":")[0] if ":" in (r or "") else r for r in reasons if r)
    assert counted["blank line"] == manifest.malformed["blank_line"]
    assert counted["not UTF-8"] == manifest.malformed["undecodable_bytes"]
    assert counted["column count"] == manifest.malformed["wrong_column_count"]
    assert counted["fare_amount"] >= manifest.malformed["required_missing"]


def test_taxi_trips_look_like_nyc(tmp_path):
    path = tmp_path / "trips.csv.gz"
    taxi_trips.write_trips_csv(path, 5000, seed=1)
    with gzip.open(path, "rt") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 5000
    lat = sorted(float(r["pickup_latitude"]) for r in rows)
    assert 40.70 < lat[len(lat) // 2] < 40.80  # median pickup in Manhattan
    fares = [float(r["fare_amount"]) for r in rows]
    assert 8 < sum(fares) / len(fares) < 20
    assert all(r["pickup_datetime"].startswith("2019-03-01") for r in rows)


def test_ride_events_follow_rides_from_pickup_to_dropoff():
    simulator = RideSimulator(seed=5, concurrent_rides=3, points=(5, 8))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = list(simulator.events(200, start, rate=10))
    validator = table_spec("ride_events").validator()
    assert all(validator.validate(e)[1] is None for e in events)
    assert events[1]["timestamp"] == "2025-12-31T19:00:00.100000-05:00"  # New York time, like the feed
    by_ride = {}
    for e in events:
        by_ride.setdefault(e["ride_id"], []).append(e)
    completed = [
        r for r in by_ride.values() if r[0]["ride_status"] == "pickup" and r[-1]["ride_status"] == "dropoff"
    ]
    assert len(completed) >= 10
    for ride in completed:
        assert [e["point_idx"] for e in ride] == list(range(len(ride)))
        assert ride[-1]["meter_reading"] > ride[0]["meter_reading"] == 2.5
        assert {e["ride_status"] for e in ride[1:-1]} <= {"enroute"}
    again = list(RideSimulator(seed=5, concurrent_rides=3, points=(5, 8)).events(200, start, rate=10))
    assert again == events


def test_kdd_has_the_real_label_mix_and_the_malformed_kinds(tmp_path):
    path = tmp_path / "kdd.csv"
    manifest = kdd.write_kdd(path, 20_000, seed=2, malformed=0.003)
    assert manifest.valid == 19_940 and sum(manifest.malformed.values()) == 60
    assert set(manifest.malformed.values()) == {15}
    share = {label: n / manifest.valid for label, n in manifest.labels.items()}
    assert (
        0.54 < share["smurf."] < 0.60 and 0.19 < share["neptune."] < 0.24 and 0.17 < share["normal."] < 0.22
    )
    validator = table_spec("kdd_connections").validator()
    names = load_schema("kdd_connections").names
    lines = path.read_text().splitlines()
    assert len(lines) == 20_000
    valid = [
        line
        for line in lines
        if validator.validate(dict(zip(names, line.split(","), strict=False)))[1] is None
        and line.count(",") == 41
    ]
    assert len(valid) == manifest.valid
    categories = Counter(kdd.ATTACK_CATEGORY[line.rsplit(",", 1)[1].rstrip(".")] for line in valid)
    assert {"normal", "dos", "probe", "r2l"} <= set(categories)
    assert categories["dos"] > categories["normal"] > categories["probe"] > categories["r2l"]


def test_ecommerce_sessions_fit_the_schema_and_carry_a_learnable_label(tmp_path):
    path = tmp_path / "sessions.jsonl"
    manifest = write_sessions(path, 3000, seed=4)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == manifest.sessions > manifest.visitors == 3000
    validator = table_spec("ga_sessions").validator()
    assert all(validator.validate(row)[1] is None for row in rows)
    assert 0.02 < manifest.buyers_on_return / manifest.visitors < 0.10
    first = {r["fullVisitorId"]: r for r in rows if r["visitNumber"] == 1}
    buyers = {r["fullVisitorId"] for r in rows if r["visitNumber"] > 1 and r["totals"]["transactions"]}
    bounced = [v for v, r in first.items() if r["totals"]["bounces"]]
    engaged = [
        v for v, r in first.items() if max(int(h["eCommerceAction"]["action_type"]) for h in r["hits"]) >= 3
    ]
    rate = lambda group: sum(v in buyers for v in group) / len(group)  # noqa: E731
    assert rate(engaged) > 3 * rate(bounced)  # the first visit predicts buying back


def test_kdd_sessions_and_rentals_are_deterministic_for_a_seed(tmp_path):
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        folder = tmp_path / name
        folder.mkdir()
        kdd.write_kdd(folder / "kdd.csv", 2000, seed=seed, malformed=0.01)
        write_sessions(folder / "sessions.jsonl", 300, seed=seed)
        write_rentals(folder / "rentals", accommodations=20, users=8, seed=seed)
        runs[name] = {p.relative_to(folder): _digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    assert len(runs["a"]) >= 4 and runs["a"] == runs["b"]
    assert all(runs["a"][file] != runs["c"][file] for file in runs["a"])  # another seed, other data


@pytest.mark.parametrize("seed", [1, 2])
def test_rentals_have_unrated_items_to_recommend(tmp_path, seed):
    manifest = write_rentals(tmp_path, accommodations=40, users=10, seed=seed)
    ratings = [
        tuple(map(int, row)) for row in csv.reader(Path(manifest.ratings_path).read_text().splitlines())
    ]
    assert len(ratings) == manifest.ratings
    assert all(1 <= r <= 5 for _, _, r in ratings)
    per_user = Counter(user for user, _, _ in ratings)
    assert all(5 <= n <= 35 for n in per_user.values())
    accommodations = list(csv.reader(Path(manifest.accommodations_path).read_text().splitlines()))
    assert len(accommodations) == 40 and all(len(row) == 7 for row in accommodations)
