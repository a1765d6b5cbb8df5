import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest
from pyspark.sql import types as T

from gcpipe.core.schemas import (
    Rule,
    SchemaError,
    load_schema,
    load_tables,
    schema_names,
    table_spec,
    to_json_row,
)


def _bigquery_tree(fields):
    return [(f.name, f.field_type, f.mode, _bigquery_tree(f.fields)) for f in fields]


_SPARK_TO_BQ = {
    T.StringType: "STRING",
    T.LongType: "INTEGER",
    T.DoubleType: "FLOAT",
    T.BooleanType: "BOOLEAN",
    T.TimestampType: "TIMESTAMP",
    T.DateType: "DATE",
    T.DecimalType: "NUMERIC",
}


def _spark_tree(struct):
    out = []
    for f in struct.fields:
        data_type, mode = f.dataType, "NULLABLE" if f.nullable else "REQUIRED"
        if isinstance(data_type, T.ArrayType):
            data_type, mode = data_type.elementType, "REPEATED"
        if isinstance(data_type, T.StructType):
            out.append((f.name, "RECORD", mode, _spark_tree(data_type)))
        else:
            out.append((f.name, _SPARK_TO_BQ[type(data_type)], mode, []))
    return out


_ARROW_TO_BQ = {
    pa.string(): "STRING",
    pa.int64(): "INTEGER",
    pa.float64(): "FLOAT",
    pa.bool_(): "BOOLEAN",
    pa.timestamp("us", tz="UTC"): "TIMESTAMP",
    pa.date32(): "DATE",
}


def _arrow_tree(fields):
    out = []
    for f in fields:
        data_type, mode = f.type, "NULLABLE" if f.nullable else "REQUIRED"
        if pa.types.is_list(data_type):
            data_type, mode = data_type.value_type, "REPEATED"
        if pa.types.is_struct(data_type):
            out.append((f.name, "RECORD", mode, _arrow_tree(list(data_type))))
        else:
            out.append((f.name, _ARROW_TO_BQ[data_type], mode, []))
    return out


def test_every_schema_file_loads_and_every_catalog_table_resolves():
    assert {"taxi_trips", "ride_events", "ga_sessions", "kdd_connections", "dead_letter"} <= set(
        schema_names()
    )
    for name in schema_names():
        assert load_schema(name).fields
    tables = load_tables()
    assert tables["taxi_trips"].partition["field"] == "pickup_datetime"
    assert len(load_schema("kdd_connections").fields) == 42


def test_nested_schema_has_equivalent_bigquery_spark_and_arrow_forms():
    schema = load_schema("ga_sessions")
    expected = _bigquery_tree(schema.to_bigquery())
    assert _spark_tree(schema.to_spark()) == expected
    assert _arrow_tree(list(schema.to_arrow())) == expected
    hits = next(f for f in expected if f[0] == "hits")
    assert hits[1:3] == ("RECORD", "REPEATED")
    product = next(f for f in hits[3] if f[0] == "product")
    assert product[1:3] == ("RECORD", "REPEATED")
    # And the JSON round trip is the file itself.
    path = f"{schema.name}.json"
    assert schema.to_json() == json.loads((load_schema.__globals__["SCHEMA_DIR"] / path).read_text())


def test_validator_accepts_a_nested_row_and_types_it():
    validator = table_spec("ga_sessions").validator()
    row, reason = validator.validate(
        {
            "fullVisitorId": "123",
            "visitId": "5",
            "visitNumber": 1,
            "visitStartTime": 1470000000,
            "date": "2016-08-01",
            "totals": {"pageviews": "3", "bounces": None},
            "device": {"isMobile": "true"},
            "hits": [{"hitNumber": 1, "product": [{"productSKU": "A", "productPrice": 1990000}]}],
        }
    )
    assert reason is None
    assert row["visitId"] == 5 and row["date"] == date(2016, 8, 1)
    assert row["totals"]["pageviews"] == 3 and row["device"]["isMobile"] is True
    assert row["hits"][0]["product"][0]["productPrice"] == 1990000
    assert row["trafficSource"] is None and row["hits"][0]["page"] is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"visitId": "abc"}, "visitId: 'abc' is not a valid INTEGER"),
        ({"fullVisitorId": ""}, "fullVisitorId: REQUIRED but empty"),
        ({"date": "2016-02-30"}, "date: '2016-02-30' is not a valid DATE"),
        (
            {"hits": [{"product": [{"productPrice": "1.5"}]}]},
            "hits[0].product[0].productPrice: '1.5' is not a valid",
        ),
        ({"hits": {"hitNumber": 1}}, "hits: expected a list"),
        ({"totals": {"pageviews": True}}, "totals.pageviews: True is not a valid INTEGER"),
        ({"totals": {"nope": 1}}, "totals.nope: not a column of ga_sessions"),
        ({"extra": 1}, "extra: not a column of ga_sessions"),
    ],
)
def test_validator_rejects_with_the_path_and_the_reason(change, reason):
    base = {"fullVisitorId": "1", "visitId": 1, "visitNumber": 1, "visitStartTime": 1, "date": "2016-08-01"}
    row, got = table_spec("ga_sessions").validator().validate({**base, **change})
    assert row is None
    assert got.startswith(reason)


def test_scalar_coercions():
    validator = table_spec("taxi_trips").validator()
    good = {
        "vendor_id": "1",
        "pickup_datetime": "2019-03-01 08:00:00",
        "dropoff_datetime": "03/01/2019 08:10:00 AM",
        "passenger_count": "2",
        "trip_distance": "1.5",
        "fare_amount": "8",
        "total_amount": "10.3",
    }
    row, reason = validator.validate(good)
    assert reason is None
    assert row["pickup_datetime"] == datetime(2019, 3, 1, 8, tzinfo=UTC)
    assert row["dropoff_datetime"] == datetime(2019, 3, 1, 8, 10, tzinfo=UTC)
    assert row["trip_distance"] == 1.5 and row["passenger_count"] == 2 and row["tip_amount"] is None
    for column, value, fragment in [
        ("trip_distance", "nan", "not a finite number"),
        ("trip_distance", "inf", "not a finite number"),
        ("passenger_count", "99999999999999999999", "not a valid INTEGER"),
        ("pickup_datetime", "2019-02-30 10:00:00", "not a valid TIMESTAMP"),
        ("fare_amount", "", "REQUIRED but empty"),
    ]:
        assert fragment in validator.validate({**good, column: value})[1]


def test_rules_run_per_row_and_vectorised():
    spec = table_spec("taxi_trips")
    texts = [rule.text for rule in spec.rules]
    assert "dropoff_datetime >= pickup_datetime" in texts
    validator = spec.validator()
    base = {
        "vendor_id": "1",
        "pickup_datetime": "2019-03-01 08:00:00",
        "dropoff_datetime": "2019-03-01 08:10:00",
        "trip_distance": "1.5",
        "fare_amount": "8",
        "total_amount": "10.3",
    }
    assert validator.validate({**base, "fare_amount": "-1"})[1] == "violates rule fare_amount >= 0"
    assert (
        validator.validate({**base, "passenger_count": "12"})[1]
        == "violates rule passenger_count BETWEEN 0 AND 9"
    )
    late = {**base, "dropoff_datetime": "2019-03-01 07:00:00"}
    assert validator.validate(late)[1] == "violates rule dropoff_datetime >= pickup_datetime"
    assert validator.validate({**base, "passenger_count": ""})[1] is None  # NULL passes, as in SQL

    table = pa.table({"passenger_count": [1, 12, None, -1], "fare_amount": [1.0, 2.0, 3.0, 4.0]})
    between = Rule.parse("passenger_count BETWEEN 0 AND 9", spec.schema)
    assert between.arrow_mask(table).to_pylist() == [False, True, False, True]


@pytest.mark.parametrize(
    "text", ["fare_amount >>= 0", "nope >= 1", "fare_amount >= nope", "fare_amount >= 1x"]
)
def test_bad_rules_are_schema_errors(text):
    with pytest.raises(SchemaError):
        Rule.parse(text, load_schema("taxi_trips"))


def test_ddl_carries_types_partitioning_clustering_and_options():
    ddl = table_spec("taxi_trips").ddl("p.taxi.taxi_trips")
    assert ddl.startswith("CREATE TABLE IF NOT EXISTS `p.taxi.taxi_trips` (\n  vendor_id STRING NOT NULL,")
    assert "  passenger_count INT64,\n" in ddl
    assert "PARTITION BY TIMESTAMP_TRUNC(pickup_datetime, DAY)" in ddl
    assert "CLUSTER BY vendor_id, payment_type" in ddl
    assert (
        "partition_expiration_days" not in ddl
    )  # trips are history: BigQuery expires partitions by their day
    assert "partition_expiration_days = 30" in table_spec("ride_events").ddl("p.taxi.ride_events")
    nested = table_spec("ga_sessions").ddl("p.e.s")
    assert "PARTITION BY date\n" in nested
    assert "hits ARRAY<STRUCT<hitNumber INT64, " in nested
    assert "product ARRAY<STRUCT<productSKU STRING," in nested


def test_schema_errors_are_clear(tmp_path):
    with pytest.raises(SchemaError, match=r"no schema named 'nope'; known: .*taxi_trips"):
        load_schema("nope")
    bad = tmp_path / "bad.json"
    bad.write_text('[{"name": "a", "type": "WIDGET"}]')
    with pytest.raises(SchemaError, match="unknown type 'WIDGET'"):
        load_schema(bad)
    bad.write_text("not json")
    with pytest.raises(SchemaError, match="not valid JSON"):
        load_schema(str(tmp_path / "bad.json"))
    user = tmp_path / "mine.json"
    user.write_text(
        '[{"name": "id", "type": "INT64", "mode": "REQUIRED"}, {"name": "tags", "type": "STRING", '
        '"mode": "REPEATED"}]'
    )
    schema = load_schema(user)
    assert [f.type for f in schema.fields] == ["INTEGER", "STRING"]
    assert schema.validator().validate({"id": "7", "tags": ["a", "b"]}) == (
        {"id": 7, "tags": ["a", "b"]},
        None,
    )


def test_json_rows_serialise_typed_values():
    row = {
        "t": datetime(2019, 3, 1, tzinfo=UTC),
        "d": date(2019, 3, 1),
        "n": Decimal("1.50"),
        "l": [{"b": b"\x00"}],
    }
    assert to_json_row(row) == {
        "t": "2019-03-01T00:00:00+00:00",
        "d": "2019-03-01",
        "n": "1.50",
        "l": [{"b": "AA=="}],
    }
