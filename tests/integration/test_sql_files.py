"""Every SQL file in sql/ runs against the local emulator on small generated data, its results checked
against the same computation done in Python on the generated rows."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from google.api_core.exceptions import NotFound
from sklearn import metrics

from gcpipe.core.config import PROJECT_ROOT
from gcpipe.core.schemas import load_tables, table_spec
from gcpipe.datagen.ecommerce import write_sessions
from gcpipe.datagen.kdd import generate_connections
from gcpipe.datagen.ride_events import write_ride_events
from gcpipe.datagen.taxi_trips import generate_trips
from gcpipe.warehouse.load import load_arrow, load_json_lines
from gcpipe.warehouse.runner import CheckFailed, run_sql, run_sql_file

pytestmark = pytest.mark.stack

SQL = PROJECT_ROOT / "sql"
TRAIN = {"train_from": date(2016, 8, 1), "train_to": date(2017, 4, 30)}
LATER = (date(2017, 5, 1), date(2017, 7, 31))
EARTH_RADIUS_M = 6371008.8  # BigQuery's sphere
STEP_NAMES = {
    0: "browse",
    1: "product list",
    2: "product detail",
    3: "add to cart",
    5: "checkout",
    6: "purchase",
}


class Warehouse:
    """A fresh dataset holding every table the SQL files read, with the generated rows kept for checking."""

    def __init__(self, bq, config, tmp: Path):
        self.bq, self.name = bq, f"test_sql_{uuid.uuid4().hex[:8]}"
        bq.create_dataset(self.name)
        self.config = config.replace(datasets=dict.fromkeys(config.datasets, self.name))
        for table in ("ga_sessions", "taxi_trips", "taxi_zones", "ride_events"):
            self.run(f"ddl/{table}.sql")
        write_sessions(tmp / "sessions.jsonl.gz", 2500, seed=7)
        self.sessions = [json.loads(line) for line in _lines(tmp / "sessions.jsonl.gz")]
        assert load_json_lines(bq, tmp / "sessions.jsonl.gz", self.table("ga_sessions")) == len(self.sessions)
        self.trips = generate_trips(np.random.default_rng(3), 3000, date(2019, 3, 1))
        assert load_arrow(bq, self.trips, table_spec("taxi_trips").schema, self.table("taxi_trips")) == 3000
        write_ride_events(tmp / "rides.jsonl", 4000, datetime(2019, 3, 1, 8, tzinfo=UTC), rate=20)
        self.rides = [json.loads(line) for line in (tmp / "rides.jsonl").read_text().splitlines()]
        assert load_json_lines(bq, tmp / "rides.jsonl", self.table("ride_events")) == 4000

    def table(self, name: str) -> str:
        return f"{self.config.project}.{self.name}.{name}"

    def run(self, path: str, **params):
        return run_sql_file(SQL / path, params, config=self.config, client=self.bq)

    def run_sql(self, sql: str):
        """Ad-hoc SQL through gcpipe's runner (so ML.* calls run locally), {ds} naming the dataset."""
        sql = sql.replace("{ds}", f"`{self.config.project}.{self.name}`")
        return run_sql(sql, {}, config=self.config, client=self.bq, source="test.sql")

    def rows(self, sql: str) -> list[dict]:
        return [
            dict(r.items())
            for r in self.bq.query(sql.replace("{ds}", f"`{self.config.project}.{self.name}`")).result()
        ]


def _lines(path: Path) -> list[str]:
    import gzip

    return gzip.open(path, "rt").read().splitlines()


@pytest.fixture(scope="module")
def wh(bq, local_stack, tmp_path_factory):
    warehouse = Warehouse(bq, local_stack, tmp_path_factory.mktemp("sql_files"))
    yield warehouse
    bq.delete_dataset(warehouse.name, delete_contents=True, not_found_ok=True)


# -- DDL and seeds -------------------------------------------------------------------------------


def _tree(fields) -> list:
    return [(f.name, f.field_type, f.mode, _tree(f.fields)) for f in fields]


def test_every_ddl_file_creates_its_catalog_table(bq, local_stack):
    name = f"test_ddl_{uuid.uuid4().hex[:8]}"
    bq.create_dataset(name)
    config = local_stack.replace(datasets=dict.fromkeys(local_stack.datasets, name))
    try:
        for spec in load_tables().values():
            result = run_sql_file(SQL / "ddl" / f"{spec.name}.sql", config=config, client=bq)
            assert result.statements[0].statement_type == "CREATE_TABLE"
            table = bq.get_table(f"{config.project}.{name}.{spec.name}")
            assert _tree(table.schema) == _tree(spec.schema.to_bigquery()), spec.name
            if spec.partition and table.time_partitioning is None:
                # The emulator records PARTITION BY TIMESTAMP_TRUNC(...) only with a partition option.
                assert "PARTITION BY TIMESTAMP_TRUNC" in spec.ddl("p.d.t") and not spec.partition.get(
                    "expiration_days"
                )
            elif spec.partition:  # (the emulator names the field only for DATE columns; BigQuery for all)
                assert table.time_partitioning.field in (spec.partition["field"], None)
                assert table.time_partitioning.type_ == spec.partition["granularity"]
                days = spec.partition.get("expiration_days")
                assert table.time_partitioning.expiration_ms == (days * 86_400_000 if days else None)
        ga = bq.get_table(f"{config.project}.{name}.ga_sessions")
        assert ga.time_partitioning.field == "date"
        hits = next(f for f in ga.schema if f.name == "hits")
        assert (hits.field_type, hits.mode) == ("RECORD", "REPEATED")
    finally:
        bq.delete_dataset(name, delete_contents=True, not_found_ok=True)


def _zones(wh) -> dict[int, tuple]:
    """zone_id -> (zone, borough, west, east, south, north), read back from the table's polygons."""
    out = {}
    for row in wh.rows("SELECT zone_id, zone, borough, zone_wkt AS wkt FROM {ds}.taxi_zones"):
        points = [tuple(map(float, p.split())) for p in re.findall(r"-?[\d.]+ -?[\d.]+", row["wkt"])]
        lons, lats = zip(*points, strict=True)
        out[row["zone_id"]] = (row["zone"], row["borough"], min(lons), max(lons), min(lats), max(lats))
    return out


def _zone_of(zones, lon, lat) -> int | None:
    inside = [zid for zid, (_, _, w, e, s, n) in zones.items() if w <= lon <= e and s <= lat <= n]
    return min(inside) if inside else None


def test_taxi_zones_seed_is_idempotent_and_zones_do_not_overlap(wh):
    wh.run("seeds/taxi_zones.sql")
    wh.run("seeds/taxi_zones.sql")
    zones = _zones(wh)
    assert len(zones) == 10
    assert {z[1] for z in zones.values()} == {"Manhattan", "Brooklyn", "Queens"}
    overlaps = wh.rows(
        """SELECT COUNT(*) AS n FROM {ds}.taxi_zones AS a JOIN {ds}.taxi_zones AS b ON a.zone_id < b.zone_id
           AND ST_AREA(ST_INTERSECTION(ST_GEOGFROMTEXT(a.zone_wkt), ST_GEOGFROMTEXT(b.zone_wkt))) > 1"""
    )
    assert overlaps == [{"n": 0}]


# -- transforms ----------------------------------------------------------------------------------


def test_visitor_sessions_nests_every_session_in_visit_order(wh):
    wh.run("transforms/visitor_sessions.sql")
    rows = {r["fullVisitorId"]: r for r in wh.rows("SELECT * FROM {ds}.visitor_sessions")}
    by_visitor = defaultdict(list)
    for s in wh.sessions:
        by_visitor[s["fullVisitorId"]].append(s)
    assert set(rows) == set(by_visitor)
    for visitor, sessions in by_visitor.items():
        row = rows[visitor]
        assert row["visits"] == len(sessions) == len(row["sessions"])
        assert [s["visitNumber"] for s in row["sessions"]] == sorted(s["visitNumber"] for s in sessions)
        revenue = sum(s["totals"]["transactionRevenue"] or 0 for s in sessions)
        assert row["revenue_usd"] == pytest.approx(round(revenue / 1e6, 2))
        first = min(sessions, key=lambda s: s["visitNumber"])
        assert row["sessions"][0]["hits"] == len(first["hits"])
        assert row["sessions"][0]["deviceCategory"] == first["device"]["deviceCategory"]


def test_session_funnel_reads_hits_and_the_visitors_history(wh):
    wh.run("transforms/session_funnel.sql")
    rows = {(r["fullVisitorId"], r["visitId"]): r for r in wh.rows("SELECT * FROM {ds}.session_funnel")}
    assert len(rows) == len(wh.sessions)
    by_visitor = defaultdict(list)
    for s in wh.sessions:
        by_visitor[s["fullVisitorId"]].append(s)
    for sessions in by_visitor.values():
        sessions.sort(key=lambda s: s["visitNumber"])
        furthest_before = None
        for i, s in enumerate(sessions):
            row = rows[(s["fullVisitorId"], s["visitId"])]
            furthest = max(int(h["eCommerceAction"]["action_type"]) for h in s["hits"])
            assert row["funnel"]["furthest_step"] == furthest
            assert row["furthest_step_name"] == STEP_NAMES[furthest]
            assert row["funnel"]["pages"] == sum(h["type"] == "PAGE" for h in s["hits"])
            assert row["funnel"]["add_to_cart_hits"] == sum(
                h["eCommerceAction"]["action_type"] == "3" for h in s["hits"]
            )
            assert row["funnel"]["seconds_to_last_hit"] == pytest.approx(
                max(h["time"] for h in s["hits"]) / 1000
            )
            assert row["channelGrouping"] == s["channelGrouping"]
            assert row["visitor_sessions"] == len(sessions)
            assert row["furthest_step_before"] == furthest_before
            previous = date.fromisoformat(sessions[i - 1]["date"]) if i else None
            assert row["previous_visit_date"] == previous
            assert row["days_since_previous_visit"] == (
                (date.fromisoformat(s["date"]) - previous).days if i else None
            )
            furthest_before = furthest if furthest_before is None else max(furthest_before, furthest)


def test_top_products_keeps_the_best_sellers_of_each_category(wh):
    wh.run("transforms/top_products.sql", top_n=2)
    per_product = defaultdict(lambda: {"detail_views": 0, "add_to_carts": 0, "units_sold": 0, "revenue": 0})
    names = defaultdict(set)
    for s in wh.sessions:
        for h in s["hits"]:
            action = h["eCommerceAction"]["action_type"]
            for p in h["product"]:
                totals = per_product[p["v2ProductCategory"], p["productSKU"]]
                names[p["productSKU"]].add(p["v2ProductName"])
                totals["detail_views"] += action == "2"
                totals["add_to_carts"] += action == "3"
                if action == "6":
                    totals["units_sold"] += p["productQuantity"]
                    totals["revenue"] += p["productPrice"] * p["productQuantity"]
    expected = {}
    for (category, sku), totals in per_product.items():
        rank = 1 + sum(
            other["revenue"] > totals["revenue"] for (c, _), other in per_product.items() if c == category
        )
        if rank <= 2:  # RANK(): ties share a rank, so a category may keep more than two
            revenue_usd = round(totals["revenue"] / 1e6, 2)
            expected[category, sku] = (
                totals["detail_views"],
                totals["add_to_carts"],
                totals["units_sold"],
                revenue_usd,
                rank,
            )
    rows = wh.rows("SELECT * FROM {ds}.top_products")
    got = {
        (r["category"], r["sku"]): (
            r["detail_views"],
            r["add_to_carts"],
            r["units_sold"],
            r["revenue_usd"],
            r["rank_in_category"],
        )
        for r in rows
    }
    assert got == expected and len({c for c, _ in got}) > 3
    assert all(r["product"] in names[r["sku"]] for r in rows)


def test_taxi_trips_by_zone_hour_places_every_trip_in_its_zone(wh):
    wh.run("seeds/taxi_zones.sql")
    wh.run("transforms/taxi_trips_by_zone_hour.sql")
    zones = _zones(wh)
    expected_trips, expected_revenue = Counter(), Counter()
    trips = wh.trips.to_pydict()
    for lon, lat, pickup, total in zip(
        trips["pickup_longitude"],
        trips["pickup_latitude"],
        trips["pickup_datetime"],
        trips["total_amount"],
        strict=True,
    ):
        zone = _zone_of(zones, lon, lat)
        key = (zones[zone][0] if zone else "Outside the zones", pickup.hour)
        expected_trips[key] += 1
        expected_revenue[key] += total
    rows = wh.rows("SELECT * FROM {ds}.trips_by_zone_hour")
    assert {(r["zone"], r["hour"]): r["trips"] for r in rows} == dict(expected_trips)
    for r in rows:
        assert r["revenue"] == pytest.approx(expected_revenue[(r["zone"], r["hour"])], abs=0.01)
    midtown = sum(r["trips"] for r in rows if r["zone"] == "Midtown")
    assert midtown > 0.15 * 3000  # the generator's busiest hot spot
    wh.run("checks/trips_by_zone_hour_row_counts.sql")  # passes: nothing lost or doubled


def test_taxi_demand_is_an_arima_plus_model_per_zone_forecasting_the_next_day(wh):
    wh.run("seeds/taxi_zones.sql")
    trained = wh.run("ml/taxi_demand_model.sql")
    assert [s.statement_type for s in trained.statements] == ["CREATE_TABLE_AS_SELECT", "CREATE_MODEL"]
    zones = _zones(wh)
    counts = Counter()
    trips = wh.trips.to_pydict()
    for lon, lat, pickup in zip(
        trips["pickup_longitude"], trips["pickup_latitude"], trips["pickup_datetime"], strict=True
    ):
        zone = _zone_of(zones, lon, lat)
        counts[(zones[zone][0] if zone else "Outside the zones", pickup.replace(minute=0, second=0))] += 1
    names = {zone for zone, _ in counts}
    first, last = min(h for _, h in counts), max(h for _, h in counts)
    hours = [first + timedelta(hours=i) for i in range(int((last - first).total_seconds() // 3600) + 1)]
    # every zone on the same hourly grid, an hour without a pickup counted 0
    grid = wh.rows("SELECT * FROM {ds}.pickups_by_zone_hour")
    got = {(r["zone"], r["pickup_hour"].replace(tzinfo=None)): r["pickups"] for r in grid}
    assert got == {(z, h): counts.get((z, h), 0) for z in names for h in hours}

    wh.run("ml/taxi_demand_forecast.sql")
    forecast = wh.rows("SELECT * FROM {ds}.taxi_demand_forecast ORDER BY zone, forecast_timestamp")
    by_zone = defaultdict(list)
    for r in forecast:
        by_zone[r["zone"]].append(r)
    assert set(by_zone) == names
    for zone, rows in by_zone.items():
        assert [r["forecast_timestamp"].replace(tzinfo=None) for r in rows] == [
            last + timedelta(hours=i + 1) for i in range(24)
        ], zone
        for r in rows:
            assert r["confidence_level"] == 0.9 and r["standard_error"] >= 0
            assert (
                r["prediction_interval_lower_bound"]
                <= r["forecast_value"]
                <= r["prediction_interval_upper_bound"]
            )
    # the busiest zone's forecast is on the scale of its history
    busiest = max(names, key=lambda z: sum(counts[(z, h)] for h in hours))
    mean = sum(counts[(busiest, h)] for h in hours) / len(hours)
    assert 0.2 * mean < np.mean([r["forecast_value"] for r in by_zone[busiest]]) < 5 * mean


def _metres(lon1, lat1, lon2, lat2) -> float:
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def test_pickups_within_a_radius_of_a_point(wh):
    point = {"longitude": -73.9840, "latitude": 40.7549, "radius_m": 600.0}
    rows = wh.run("transforms/taxi_pickups_near_point.sql", **point).rows
    trips = wh.trips.to_pydict()
    distances = sorted(
        _metres(lon, lat, point["longitude"], point["latitude"])
        for lon, lat in zip(trips["pickup_longitude"], trips["pickup_latitude"], strict=True)
    )
    expected = [round(d, 1) for d in distances if d <= point["radius_m"]]
    assert len(rows) == len(expected) > 50
    assert [r["metres_away"] for r in rows] == pytest.approx(expected, abs=0.2)


def test_ride_pickups_by_zone_polygon(wh):
    wh.run("seeds/taxi_zones.sql")
    rows = wh.run("transforms/ride_pickups_by_zone.sql").rows
    zones = _zones(wh)
    pickups = Counter()
    for event in wh.rides:
        zone = _zone_of(zones, event["longitude"], event["latitude"])
        if event["ride_status"] == "pickup" and zone:
            pickups[zones[zone][0]] += 1
    assert {r["zone"]: r["pickups"] for r in rows} == dict(pickups)
    assert [r["pickups"] for r in rows] == sorted((r["pickups"] for r in rows), reverse=True)
    midtown = next(r for r in rows if r["zone"] == "Midtown")
    assert midtown["zone_centre"].startswith("POINT") and midtown["zone_km2"] == pytest.approx(9.3, abs=0.3)


# -- BigQuery ML ---------------------------------------------------------------------------------


def _first_visits(wh) -> dict[str, dict]:
    bought_later = {
        s["fullVisitorId"] for s in wh.sessions if s["totals"]["transactions"] and s["visitNumber"] > 1
    }
    return {
        s["fullVisitorId"]: {**s, "label": int(s["fullVisitorId"] in bought_later)}
        for s in wh.sessions
        if s["totals"]["newVisits"] == 1
    }


def test_purchase_features_are_first_visits_with_the_lab_features(wh):
    wh.run("ml/purchase_features.sql")
    rows = {r["fullVisitorId"]: r for r in wh.rows("SELECT * FROM {ds}.purchase_features")}
    first = _first_visits(wh)
    assert set(rows) == set(first)
    for visitor, s in first.items():
        row = rows[visitor]
        assert row["will_buy_on_return_visit"] == s["label"]
        assert row["latest_ecommerce_progress"] == max(
            int(h["eCommerceAction"]["action_type"]) for h in s["hits"]
        )
        assert row["bounces"] == (s["totals"]["bounces"] or 0)
        assert row["time_on_site"] == (s["totals"]["timeOnSite"] or 0)
        assert row["pageviews"] == (s["totals"]["pageviews"] or 0)
        assert (row["visitId"], row["date"]) == (s["visitId"], date.fromisoformat(s["date"]))
        source = s["trafficSource"]
        assert (row["source"], row["medium"], row["channel_grouping"]) == (
            source["source"],
            source["medium"],
            s["channelGrouping"],
        )
        assert (row["device_category"], row["country"]) == (
            s["device"]["deviceCategory"],
            s["geoNetwork"]["country"] or "",
        )


def test_purchase_model_trains_evaluates_predicts_and_explains(wh):
    wh.run("ml/purchase_features.sql")
    dry = run_sql_file(SQL / "ml/purchase_model.sql", TRAIN, config=wh.config, client=wh.bq, dry_run=True)
    assert dry.statements[0].message == (
        "valid (2 statements; 1 read what the file creates, so only their syntax was checked)"
    )
    with pytest.raises(NotFound):  # a dry run trains nothing
        wh.bq.get_model(f"{wh.config.project}.{wh.name}.purchase_model")
    trained = wh.run("ml/purchase_model.sql", **TRAIN)
    assert [s.statement_type for s in trained.statements] == ["CREATE_TABLE_AS_SELECT", "CREATE_MODEL"]
    training_rows = wh.rows("SELECT COUNT(*) AS n FROM {ds}.purchase_training")[0]["n"]
    first = _first_visits(wh)
    assert training_rows == sum(
        TRAIN["train_from"] <= date.fromisoformat(s["date"]) <= TRAIN["train_to"] for s in first.values()
    )
    held = round(training_rows * 0.2)  # AUTO_SPLIT between 500 and 50,000 rows
    assert f"{training_rows - held:,} training rows" in trained.statements[1].message
    model = wh.bq.get_model(f"{wh.config.project}.{wh.name}.purchase_model")
    assert model.model_type == "LOGISTIC_REGRESSION" or model.model_type.lower() == "logistic_reg"

    window = {"eval_from": LATER[0], "eval_to": LATER[1]}
    dry = run_sql_file(
        SQL / "ml/purchase_model_evaluate.sql", window, config=wh.config, client=wh.bq, dry_run=True
    )
    assert dry.statements[0].message == "valid (1 statement)"
    evaluation = wh.run("ml/purchase_model_evaluate.sql", **window).rows
    predictions = wh.run("ml/purchase_predictions.sql", predict_from=LATER[0], predict_to=LATER[1])
    scored = wh.rows("SELECT * FROM {ds}.purchase_predictions")
    later = [s for s in first.values() if LATER[0] <= date.fromisoformat(s["date"]) <= LATER[1]]
    assert predictions.statements[0].statement_type == "CREATE_TABLE_AS_SELECT" and len(scored) == len(later)
    y = np.array([r["actual"] for r in scored])
    p = np.array([r["purchase_probability"] for r in scored])
    assert all(
        r["predicted_will_buy_on_return_visit"] == int(r["purchase_probability"] > 0.5) for r in scored
    )
    [row] = evaluation
    assert row["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, p), abs=1e-4)
    assert row["accuracy"] == pytest.approx(metrics.accuracy_score(y, p > 0.5), abs=1e-4)
    assert row["log_loss"] == pytest.approx(metrics.log_loss(y, p), abs=1e-4)
    assert row["roc_auc"] > 0.8 and row["model_quality"] in ("fair", "good")
    # Buyers are rare: the model ranks them well, yet the 0.5 threshold flags few; the verdict says both.
    assert row["recall"] < 0.4
    assert row["verdict"] == "ranks buyers well; misses most buyers at threshold 0.5 (a lower one finds more)"

    roc_file = SQL / "ml/purchase_model_roc_curve.sql"
    dry = run_sql_file(roc_file, window, config=wh.config, client=wh.bq, dry_run=True)
    assert dry.statements[0].message == "valid (1 statement)"
    curve = wh.run("ml/purchase_model_roc_curve.sql", **window).rows
    thresholds = [r["threshold"] for r in curve]
    assert thresholds == sorted(thresholds, reverse=True) and 20 < len(curve) <= 101
    assert thresholds[0] == pytest.approx(p.max()) and thresholds[-1] == pytest.approx(p.min())
    for r in curve:  # the probabilities in the table and the curve's: computed apart, equal but for rounding
        predicted = p > r["threshold"]
        near = np.isclose(p, r["threshold"], rtol=0, atol=1e-9)
        assert abs(r["true_positives"] - np.sum(predicted & (y == 1))) <= np.sum(near & (y == 1))
        assert abs(r["false_positives"] - np.sum(predicted & (y == 0))) <= np.sum(near & (y == 0))
        assert r["true_positives"] + r["false_negatives"] == y.sum()
        assert r["false_positives"] + r["true_negatives"] == len(y) - y.sum()

    weights = wh.run("ml/purchase_model_weights.sql").rows
    numeric = {r["feature"] for r in weights if r["category"] is None}
    assert numeric == {"latest_ecommerce_progress", "bounces", "time_on_site", "pageviews"}
    assert {r["category"] for r in weights if r["feature"] == "device_category"} == {
        "desktop",
        "mobile",
        "tablet",
    }
    assert [abs(r["weight"]) for r in weights] == sorted((abs(r["weight"]) for r in weights), reverse=True)

    info = {r["input"]: r for r in wh.run("ml/purchase_model_feature_info.sql").rows}
    assert list(info) == sorted(info) and len(info) == 9
    pages = [r["pageviews"] for r in wh.rows("SELECT pageviews FROM {ds}.purchase_training")]
    assert info["pageviews"]["mean"] == pytest.approx(np.mean(pages)) and info["pageviews"]["max"] == max(
        pages
    )
    assert info["device_category"]["category_count"] == 3 and info["device_category"]["mean"] is None

    iterations = wh.run("ml/purchase_model_training_info.sql").rows
    assert [r["iteration"] for r in iterations] == list(range(len(iterations))) and len(iterations) <= 20
    losses = [r["loss"] for r in iterations]
    assert losses == sorted(losses, reverse=True) and all(r["eval_loss"] is not None for r in iterations)


def test_purchase_tree_model_beside_the_logistic_one_roc_curves_and_confusion_matrices(wh):
    wh.run("ml/purchase_features.sql")
    wh.run("ml/purchase_model.sql", **TRAIN)
    trained = wh.run("ml/purchase_tree_model.sql")
    assert trained.statements[0].statement_type == "CREATE_MODEL"
    window = {"eval_from": LATER[0], "eval_to": LATER[1]}
    later = f"""(SELECT * EXCEPT (fullVisitorId, visitId, date) FROM {{ds}}.purchase_features
                 WHERE date BETWEEN '{LATER[0]}' AND '{LATER[1]}')"""
    scored = {}
    for name in ("purchase_model", "purchase_tree_model"):
        rows = wh.run_sql(
            f"""SELECT will_buy_on_return_visit AS y,
                  (SELECT p.prob FROM UNNEST(predicted_will_buy_on_return_visit_probs) AS p WHERE p.label = 1) AS p
                FROM ML.PREDICT(MODEL {{ds}}.{name}, {later})"""
        ).rows
        scored[name] = (np.array([r["y"] for r in rows]), np.array([r["p"] for r in rows]))

    curves = defaultdict(list)
    for r in wh.run("ml/purchase_models_roc_curves.sql", **window).rows:
        curves[r["model"]].append(r)
    assert set(curves) == {"logistic_reg", "boosted_tree_classifier"}
    for model, name in (
        ("logistic_reg", "purchase_model"),
        ("boosted_tree_classifier", "purchase_tree_model"),
    ):
        curve = curves[model]
        assert [r["threshold"] for r in curve] == sorted((r["threshold"] for r in curve), reverse=True)
        y, p = scored[name]
        # the curve's area is the model's ROC AUC on the same rows (the curve samples the thresholds)
        fpr, tpr = (
            [0.0] + [r["false_positive_rate"] for r in curve] + [1.0],
            [0.0] + [r["recall"] for r in curve] + [1.0],
        )
        assert np.trapezoid(tpr, fpr) == pytest.approx(metrics.roc_auc_score(y, p), abs=0.02)
        # each row carries its model's ROC AUC (ML.EVALUATE's) on the same visits: the area, unsampled
        assert [r["roc_auc"] for r in curve] == pytest.approx([metrics.roc_auc_score(y, p)] * len(curve))
    tree_auc = metrics.roc_auc_score(*scored["purchase_tree_model"])
    assert tree_auc > 0.75  # the trees learn the generator's buyers too

    matrices = defaultdict(dict)
    for r in wh.run("ml/purchase_models_confusion_matrices.sql", **window).rows:
        matrices[r["model"]][r["expected_label"]] = (r["_0"], r["_1"])
    for model, name in (
        ("logistic_reg", "purchase_model"),
        ("boosted_tree_classifier", "purchase_tree_model"),
    ):
        y, p = scored[name]
        expected = metrics.confusion_matrix(y, (p > 0.5).astype(int), labels=[0, 1])
        assert matrices[model] == {"0": tuple(expected[0]), "1": tuple(expected[1])}, model


def test_kdd_connections_cluster_by_traffic_and_the_rarest_are_flagged(wh):
    wh.run("ddl/kdd_connections.sql")
    connections = generate_connections(np.random.default_rng(5), 3000)
    table = wh.table("kdd_connections")
    assert load_arrow(wh.bq, connections, table_spec("kdd_connections").schema, table) == 3000
    trained = wh.run("ml/kdd_connection_clusters.sql")
    assert trained.statements[0].statement_type == "CREATE_MODEL"
    assert "(kmeans)" in trained.statements[0].message
    wh.run("ml/kdd_rare_connections.sql")
    rare = wh.rows("SELECT * FROM {ds}.rare_connections")
    # contamination 0.01: the threshold is the training rows' 99th percentile of normalized distance
    assert 20 <= len(rare) <= 40 and all(r["normalized_distance"] > 0 for r in rare)
    labels = Counter(connections.column("label").to_pylist())
    share = {label: n / 3000 for label, n in labels.items()}
    # the flagged connections are of rarer kinds than connections are on average
    assert np.mean([share[r["label"]] for r in rare]) < np.mean([share[label] for label in labels.elements()])


# -- data quality checks -------------------------------------------------------------------------


CHECKS = {
    "checks/ga_sessions_unique_visits.sql": {},
    "checks/ga_sessions_not_null.sql": {},
    "checks/ga_sessions_accepted_values.sql": {},
    "checks/visitor_sessions_row_counts.sql": {},
    "checks/ga_sessions_freshness.sql": {"as_of": date(2017, 8, 2), "max_age_days": 5},
    "checks/trips_by_zone_hour_row_counts.sql": {},
}


def test_checks_pass_on_clean_data_and_name_what_breaks(wh):
    wh.run("seeds/taxi_zones.sql")
    wh.run("transforms/visitor_sessions.sql")
    wh.run("transforms/taxi_trips_by_zone_hour.sql")
    for path, params in CHECKS.items():
        result = wh.run(path, **params)
        assert result.rows and all(r["failures"] == 0 for r in result.rows), path

    # Break the data: a session loaded twice (so also one the denormalised table lacks), a NULL where a
    # value is required, values outside the accepted lists, a trip deleted after the summary was built.
    wh.bq.query(
        f"""INSERT INTO `{wh.table("ga_sessions")}` SELECT * FROM `{wh.table("ga_sessions")}` LIMIT 1"""
    ).result()
    wh.bq.query(f"""INSERT INTO `{wh.table("ga_sessions")}`
        (fullVisitorId, visitId, visitNumber, visitStartTime, date, channelGrouping, device)
        VALUES ('x', 1, 1, 1, DATE '2017-07-31', 'Carrier Pigeon', STRUCT('b', 'o', FALSE, 'fridge'))""").result()
    trips = wh.table("taxi_trips")
    (dearest,) = wh.bq.query(f"SELECT MAX(total_amount) AS amount FROM `{trips}`").result()
    wh.bq.query(f"DELETE FROM `{trips}` WHERE total_amount = {dearest.amount!r}").result()
    missing_cents = round(dearest.amount * 100)
    expected = {
        "ga_sessions_unique_visits": "check ga_sessions.unique_visit failed: 1 offending row",
        "ga_sessions_not_null": "check ga_sessions.totals_pageviews_not_null failed: 1 offending row",
        "ga_sessions_accepted_values": "check ga_sessions.channelGrouping_accepted failed: 1 offending row; "
        "check ga_sessions.deviceCategory_accepted failed: 1 offending row",
        "visitor_sessions_row_counts": "check visitor_sessions.sessions_conserved failed: 2 sessions; "
        "check visitor_sessions.visitors_conserved failed: 1 visitor",
        "ga_sessions_freshness": "check ga_sessions.freshness failed: 10 days",
        "trips_by_zone_hour_row_counts": "check trips_by_zone_hour.trips_conserved failed: 1 trip; "
        f"check trips_by_zone_hour.revenue_conserved failed: {missing_cents:,} cents",
    }
    late = {**CHECKS, "checks/ga_sessions_freshness.sql": {"as_of": date(2017, 8, 15), "max_age_days": 5}}
    for name, message in expected.items():
        path = f"checks/{name}.sql"
        with pytest.raises(CheckFailed, match=rf"^{re.escape(str(SQL / path))}:\d+: {re.escape(message)}\.$"):
            wh.run(path, **late[path])


def test_every_sql_file_is_run_by_these_tests():
    """sql/ddl runs file by file above (globbed); every other SQL file is named in this module."""
    source = Path(__file__).read_text()
    missing = [
        str(p.relative_to(SQL))
        for p in SQL.rglob("*.sql")
        if p.parent.name != "ddl" and f'"{p.relative_to(SQL)}"' not in source
    ]
    assert not missing, f"SQL files no test runs: {missing}"


def test_the_dag_gates_pass_on_good_data_and_name_what_breaks(wh):
    """The checks the Airflow DAGs gate on: the day's taxi load, the model's ROC AUC, streaming freshness."""
    for table in ("taxi_trips_dead_letter", "rides_per_minute"):
        wh.run(f"ddl/{table}.sql")
    day = {"partition_date": "2019-03-01", "max_dead_letter_percent": "1.0"}  # as an Airflow run sends them
    assert [r["failures"] for r in wh.run("checks/taxi_trips_day_loaded.sql", **day).rows] == [0, 0]
    wh.bq.query(f"""INSERT INTO `{wh.table("taxi_trips_dead_letter")}` (source, line, raw, reason, loaded_at,
        partition_date) SELECT 'trips.csv', n, 'x', 'bad fare', CURRENT_TIMESTAMP(), DATE '2019-03-01'
        FROM UNNEST(GENERATE_ARRAY(1, 40)) AS n""").result()  # 40 of 3,040 rejected: 30 allowed at 1 %
    day_loaded = SQL / "checks/taxi_trips_day_loaded.sql"
    with pytest.raises(CheckFailed, match=r"check taxi_trips\.dead_letter_rate failed: 10 dead letters\.$"):
        wh.run("checks/taxi_trips_day_loaded.sql", **day)
    with pytest.raises(
        CheckFailed, match=rf"^{re.escape(str(day_loaded))}:\d+: check taxi_trips\.day_loaded failed"
    ):
        wh.run("checks/taxi_trips_day_loaded.sql", partition_date="2019-03-09", max_dead_letter_percent=1.0)

    wh.run("ml/purchase_features.sql")
    wh.run("ml/purchase_model.sql", **TRAIN)
    window = {"eval_from": LATER[0], "eval_to": LATER[1]}
    assert wh.run("checks/purchase_model_roc_auc.sql", **window, min_roc_auc="0.6").rows[0]["failures"] == 0
    with pytest.raises(
        CheckFailed, match=r"check purchase_model\.roc_auc_at_least_the_minimum failed: 1 offending"
    ):
        wh.run("checks/purchase_model_roc_auc.sql", **window, min_roc_auc=0.999)

    freshness = "checks/rides_per_minute_freshness.sql"
    with pytest.raises(CheckFailed, match=r"check rides_per_minute\.freshness failed: 1 minute\.$"):
        wh.run(freshness, max_age_minutes=10)  # nothing arrived yet: stale
    wh.bq.query(f"""INSERT INTO `{wh.table("rides_per_minute")}` (window_start, window_end, pickups, dropoffs,
        passengers, revenue, active_rides, events, pane_timing, pane_index, window_key, emitted_at)
        VALUES (CURRENT_TIMESTAMP(), CURRENT_TIMESTAMP(), 1, 0, 1, 1.0, 1, 1, 'EARLY', 0, 'k',
                TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1800 SECOND))""").result()
    # Exactly 30 minutes: the emulator's TIMESTAMP_DIFF counts minute boundaries crossed, BigQuery whole
    # minutes elapsed; they agree on a whole number of minutes (30.25 minutes was 30 or 31 by the clock).
    with pytest.raises(CheckFailed, match=r"check rides_per_minute\.freshness failed: 20 minutes\.$"):
        wh.run(freshness, max_age_minutes=10)  # the newest pane is 30 minutes old
    assert wh.run(freshness, max_age_minutes=45).rows[0]["failures"] == 0
