"""The Spark jobs against real services: Cloud SQL over JDBC (the stack's PostgreSQL) and BigQuery (the emulator)."""

from __future__ import annotations

import csv
from contextlib import closing

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from gcpipe.core.schemas import load_schema
from gcpipe.datagen.kdd import write_kdd
from gcpipe.datagen.rentals import write_rentals
from gcpipe.warehouse import cloudsql
from spark_jobs import als_recommend, kdd_analysis
from spark_jobs.common import load_bigquery

pytestmark = [pytest.mark.stack, pytest.mark.spark]


def recommend(spark, *argv: str) -> dict:
    return als_recommend.run(spark, als_recommend.parse_args(list(argv)))


def parquet_rows(path, *keys: str) -> list[tuple]:
    return sorted(tuple(row[k] for k in keys) for row in pq.read_table(path).to_pylist())


def test_als_reads_cloud_sql_and_writes_back_over_jdbc(spark, postgres, database, tmp_path):
    config = postgres.replace(jdbc_url=postgres.jdbc_url.rsplit("/", 1)[0] + f"/{database}")
    manifest = write_rentals(tmp_path / "rentals")
    assert cloudsql.load_rentals(config, tmp_path / "rentals") == {
        "accommodations": manifest.accommodations,
        "ratings": manifest.ratings,
    }
    metrics = recommend(
        spark,
        "--source",
        config.jdbc_url,
        "--sink",
        config.jdbc_url,
        "--sink",
        str(tmp_path / "lake"),
        "--jdbc_user",
        config.jdbc_user,
        "--jdbc_password_secret",
        config.jdbc_password_secret,
    )
    assert metrics["ratings"] == manifest.ratings and metrics["users"] == manifest.users
    with closing(cloudsql.connect(config)) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT user_id, acco_id, rank, prediction FROM recommendations")
        from_sql = sorted(cursor.fetchall())
    assert len(from_sql) == 5 * manifest.users
    expected = parquet_rows(
        tmp_path / "lake" / "recommendations.parquet", "user_id", "acco_id", "rank", "prediction"
    )
    assert from_sql == expected
    # Run again: the table is replaced (truncated), not appended to.
    recommend(
        spark,
        "--source",
        config.jdbc_url,
        "--sink",
        config.jdbc_url,
        "--jdbc_user",
        config.jdbc_user,
        "--jdbc_password_secret",
        config.jdbc_password_secret,
        "--rejected",
        str(tmp_path / "rejected"),
    )
    with closing(cloudsql.connect(config)) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM recommendations")
        assert cursor.fetchone()[0] == 5 * manifest.users


def test_a_wrong_password_is_refused_by_the_server(postgres, database, tmp_path, monkeypatch):
    monkeypatch.setenv("WRONG_PASSWORD", "not-it")
    config = postgres.replace(jdbc_password_secret="env:WRONG_PASSWORD")  # noqa: S106 (a reference)
    with pytest.raises(cloudsql.CloudSqlError, match="password authentication failed"):
        cloudsql.connect(config, database)


def test_kdd_aggregates_and_connections_load_into_bigquery(spark, bq, dataset, tmp_path):
    manifest = write_kdd(tmp_path / "kdd.gz", 5_000, seed=3, malformed=0.01)
    table = f"{bq.project}.{dataset}.attack_stats"
    summary = kdd_analysis.analyse(spark, manifest.path, str(tmp_path / "out"), table)
    assert summary["bigquery_tables"] == [
        table,
        *(f"{bq.project}.{dataset}.{name}" for name in list(kdd_analysis.AGGREGATES)[1:]),
        f"{bq.project}.{dataset}.kdd_connections",
    ]
    for name in kdd_analysis.AGGREGATES:
        loaded = sorted(tuple(row.values()) for row in bq.query(f"SELECT * FROM `{dataset}.{name}`").result())
        written = sorted(
            tuple(row.values()) for row in pq.read_table(tmp_path / "out" / f"{name}.parquet").to_pylist()
        )
        assert loaded == written, name
    totals = bq.query(f"SELECT SUM(connections) AS n FROM `{dataset}.connections_by_label`").result()
    assert next(iter(totals))["n"] == manifest.valid
    # the valid connections themselves, one row each, the malformed lines left out
    labels = bq.query(f"SELECT label, COUNT(*) AS n FROM `{dataset}.kdd_connections` GROUP BY label").result()
    assert {row["label"]: row["n"] for row in labels} == manifest.labels


def test_als_reads_and_writes_bigquery(spark, bq, dataset, tmp_path):
    manifest = write_rentals(tmp_path / "rentals", users=30)
    for table in ("accommodations", "ratings"):
        schema = load_schema(table)
        rows = pacsv.read_csv(
            tmp_path / "rentals" / f"{table}.csv",
            read_options=pacsv.ReadOptions(column_names=schema.names),
            convert_options=pacsv.ConvertOptions(column_types=schema.to_arrow()),
        )
        load_bigquery(rows.cast(schema.to_arrow()), f"{bq.project}.{dataset}.{table}", schema)
    metrics = recommend(
        spark,
        "--source",
        f"bq://{bq.project}.{dataset}",
        "--sink",
        f"bq://{bq.project}.{dataset}",
        "--rejected",
        str(tmp_path / "rejected"),
    )
    assert metrics["ratings"] == manifest.ratings and metrics["accommodations"] == manifest.accommodations
    result = bq.query(
        f"SELECT user_id, COUNT(*) AS n, MIN(`rank`) AS lo, MAX(`rank`) AS hi "
        f"FROM `{dataset}.recommendations` GROUP BY user_id"
    ).result()
    per_user = {row["user_id"]: (row["n"], row["lo"], row["hi"]) for row in result}
    with open(manifest.ratings_path) as ratings:
        users = {int(user) for user, _, _ in csv.reader(ratings)}
    assert per_user == dict.fromkeys(users, (5, 1, 5))
