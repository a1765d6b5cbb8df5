"""csv_ingest end to end on the local stack: BigQuery loads, partition replacement, PII, gs:// input."""

import csv
import hashlib
import hmac
import json
import os
import uuid
from datetime import date

import pytest

from gcpipe.core.clients import storage_client
from gcpipe.core.schemas import SCHEMA_DIR, table_spec
from gcpipe.datagen.taxi_trips import write_trips_csv
from pipelines import csv_ingest

pytestmark = pytest.mark.stack


def _count(bq, table: str, where: str = "TRUE") -> int:
    return next(iter(bq.query(f"SELECT COUNT(*) FROM `{table}` WHERE {where}").result()))[0]


def day_args(path: str, table: str, day: str = "2019-03-01") -> list[str]:
    """csv_ingest's arguments for one day's taxi trips file into ``table``."""
    return ["--input", path, "--schema", "taxi_trips", "--table", table, "--partition_date", day]


def _ingest(*argv: str) -> csv_ingest.IngestResult:
    return csv_ingest.run(list(argv))


def test_load_replaces_only_its_partition_and_reruns_leave_the_same_table(bq, local_stack, dataset, tmp_path):
    table = f"{local_stack.project}.{dataset}.taxi_trips"
    day1 = write_trips_csv(tmp_path / "d1.csv", 2000, seed=1, malformed=0.01, start=date(2019, 3, 1))
    day2 = write_trips_csv(tmp_path / "d2.csv", 1500, seed=2, malformed=0.01, start=date(2019, 3, 2))
    first = _ingest(
        "--input", day1.path, "--schema", "taxi_trips", "--table", table, "--partition_date", "2019-03-01"
    )
    assert (first.rows_read, first.rows_loaded, first.rows_dead_lettered) == (2000, day1.valid, 20)
    _ingest(
        "--input",
        day2.path,
        "--schema",
        "taxi_trips",
        "--table",
        table.replace(".", ":", 1),
        "--partition_date",
        "2019-03-02",
    )
    again = _ingest(
        "--input", day1.path, "--schema", "taxi_trips", "--table", table, "--partition_date", "2019-03-01"
    )
    assert again.rows_loaded == day1.valid
    assert _count(bq, table, "DATE(pickup_datetime) = '2019-03-01'") == day1.valid  # no duplicates
    assert _count(bq, table, "DATE(pickup_datetime) = '2019-03-02'") == day2.valid  # untouched
    dead = f"{table}_dead_letter"
    assert _count(bq, dead, "partition_date = '2019-03-01'") == 20
    assert _count(bq, dead) == 20 + 15
    reasons = {row[0] for row in bq.query(f"SELECT reason FROM `{dead}` WHERE line IS NOT NULL").result()}
    assert "blank line" in reasons and "fare_amount: REQUIRED but empty" in reasons
    assert {t.table_id for t in bq.list_tables(dataset)} == {
        "taxi_trips",
        "taxi_trips_dead_letter",
    }  # no staging
    # created from the catalog's DDL (PARTITION BY TIMESTAMP_TRUNC(pickup_datetime, DAY), which the emulator
    # does not record without a partition option): its columns, its description
    created = bq.get_table(table)
    assert created.description == table_spec("taxi_trips").description
    assert [f.name for f in created.schema] == table_spec("taxi_trips").schema.names


def test_a_day_s_file_with_rows_of_another_day_dead_letters_them(bq, local_stack, dataset, tmp_path):
    table = f"{local_stack.project}.{dataset}.taxi_trips"
    two_days = write_trips_csv(tmp_path / "t.csv", 1000, seed=3, start=date(2019, 3, 1), days=2)
    result = _ingest(
        "--input", two_days.path, "--schema", "taxi_trips", "--table", table, "--partition_date", "2019-03-01"
    )
    on_day = _count(bq, table)
    assert 300 < on_day < 700 and result.rows_dead_lettered == 1000 - on_day
    assert (
        _count(bq, f"{table}_dead_letter", "reason LIKE '%outside the partition 2019-03-01'") == 1000 - on_day
    )


def test_pii_never_lands_in_clear(bq, local_stack, dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("GCPIPE_PII_KEY", "test-key-" + uuid.uuid4().hex)
    schema = tmp_path / "customers.json"
    schema.write_text(
        json.dumps(
            [
                {"name": "email", "type": "STRING", "mode": "REQUIRED"},
                {"name": "name", "type": "STRING", "mode": "NULLABLE"},
                {"name": "signed_up", "type": "TIMESTAMP", "mode": "REQUIRED"},
                {"name": "orders", "type": "INTEGER", "mode": "NULLABLE"},
            ]
        )
    )
    people = [(f"person{i}@example.com", f"Person Number{i}") for i in range(40)]
    rows = [[email, name, f"2019-03-01 10:{i:02d}:00", str(i)] for i, (email, name) in enumerate(people)]
    rows[3][3] = "three"  # bad number
    rows[5] = rows[5][:3]  # wrong column count
    rows[7][2] = "2019-03-01 99:00:00"  # bad timestamp
    rows[9][0] = ""  # REQUIRED missing
    path = tmp_path / "customers.csv"
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "name", "signed_up", "orders"])
        writer.writerows(rows)
    with open(path, "ab") as out:
        out.write(b"\xffperson99@example.com,Person Number99,2019-03-01 11:00:00,1\n")  # undecodable
    table = f"{local_stack.project}.{dataset}.customers"
    result = _ingest(
        "--input",
        str(path),
        "--schema",
        str(schema),
        "--table",
        table,
        "--partition_date",
        "2019-03-01",
        "--pii",
        "email,name:mask",
    )
    assert (result.rows_read, result.rows_loaded, result.rows_dead_lettered) == (41, 36, 5)

    landed = [
        json.dumps(list(row.values()), default=str)
        for name in (table, f"{table}_dead_letter")
        for row in bq.query(f"SELECT * FROM `{name}`").result()
    ]
    assert len(landed) == 41
    everything = "\n".join(landed)
    assert "@example.com" not in everything and "Person Number" not in everything
    key = os.environ["GCPIPE_PII_KEY"].encode()
    expected = hmac.new(key, b"person0@example.com", hashlib.sha256).hexdigest()
    assert _count(bq, table, f"email = '{expected}' AND name = '##########ber0'") == 1


def test_your_own_schema_reruns_without_duplicates_and_a_copy_of_a_catalog_schema_keeps_its_rules(
    bq, local_stack, dataset, tmp_path
):
    schema = tmp_path / "visits.json"
    schema.write_text(
        json.dumps([{"name": "page", "type": "STRING"}, {"name": "visited_at", "type": "TIMESTAMP"}])
    )
    path = tmp_path / "visits.csv"
    path.write_text("page,visited_at\n/a,2019-03-01 10:00:00\n/b,\n/c,2019-03-02 11:00:00\n")
    table = f"{local_stack.project}.{dataset}.visits"
    for _ in range(2):  # no --partition_date: the load replaces the days its rows cover
        result = _ingest("--input", str(path), "--schema", str(schema), "--table", table)
        assert (result.rows_loaded, result.rows_dead_lettered) == (2, 1)
    assert _count(bq, table) == 2 and _count(bq, f"{table}_dead_letter") == 1  # the same table after a re-run
    [reason] = [r["reason"] for r in bq.query(f"SELECT reason FROM `{table}_dead_letter`").result()]
    assert reason == "visited_at is empty: the row belongs to no partition"

    # taxi_trips as `bq show --schema` would give it back: no descriptions, the same columns.
    stripped = [
        {k: v for k, v in f.items() if k != "description"}
        for f in json.loads((SCHEMA_DIR / "taxi_trips.json").read_text())
    ]
    (tmp_path / "trips_schema.json").write_text(json.dumps(stripped))
    trips = write_trips_csv(tmp_path / "trips.csv", 500, seed=9, malformed=0.02)
    result = _ingest(
        "--input",
        trips.path,
        "--schema",
        str(tmp_path / "trips_schema.json"),
        "--table",
        f"{local_stack.project}.{dataset}.trips",
        "--partition_date",
        "2019-03-01",
    )
    assert result.rows_dead_lettered == sum(trips.malformed.values())  # the catalog's rules applied


def test_a_gs_glob_and_a_gs_schema_through_the_storage_emulator(bq, local_stack, dataset, tmp_path):
    bucket = storage_client(local_stack).bucket(local_stack.lake_bucket)
    prefix = f"landing/test-{uuid.uuid4().hex[:8]}"
    manifests = []
    for i, name in enumerate(["a.csv", "b.csv.gz"]):
        manifest = write_trips_csv(tmp_path / name, 500, seed=10 + i, malformed=0.02)
        bucket.blob(f"{prefix}/{name}").upload_from_filename(manifest.path)
        manifests.append(manifest)
    bucket.blob(f"{prefix}/schema/trips.json").upload_from_filename(str(SCHEMA_DIR / "taxi_trips.json"))
    table = f"{local_stack.project}.{dataset}.taxi_trips"
    schema = (
        f"gs://{local_stack.lake_bucket}/{prefix}/schema/trips.json"  # the catalog's columns: its rules too
    )
    result = _ingest(
        "--input",
        f"gs://{local_stack.lake_bucket}/{prefix}/*.csv*",
        "--schema",
        schema,
        "--table",
        table,
        "--partition_date",
        "2019-03-01",
    )
    assert result.rows_read == 1000 and result.rows_loaded == sum(m.valid for m in manifests) == _count(
        bq, table
    )
    sources = {row[0] for row in bq.query(f"SELECT DISTINCT source FROM `{table}_dead_letter`").result()}
    assert sources == {f"gs://{local_stack.lake_bucket}/{prefix}/{name}" for name in ["a.csv", "b.csv.gz"]}
