"""Cloud SQL helpers that need no server: JDBC URLs and PostgreSQL DDL from the one schema definition."""

from __future__ import annotations

import pytest

from gcpipe.core.schemas import load_schema
from gcpipe.warehouse.cloudsql import CloudSqlError, JdbcTarget, create_table_sql


def test_jdbc_urls():
    assert JdbcTarget.parse("jdbc:postgresql://10.0.0.3:5432/rentals") == JdbcTarget(
        "10.0.0.3", 5432, "rentals"
    )
    assert JdbcTarget.parse("jdbc:postgresql://db/rentals") == JdbcTarget("db", 5432, "rentals")
    with pytest.raises(CloudSqlError, match="is not a PostgreSQL JDBC URL"):
        JdbcTarget.parse("jdbc:mysql://db/rentals")


def test_tables_are_created_from_the_schemas():
    assert create_table_sql(load_schema("ratings"), "ratings") == (
        "CREATE TABLE IF NOT EXISTS ratings (user_id BIGINT NOT NULL, acco_id BIGINT NOT NULL, rating BIGINT NOT NULL)"
    )
    ddl = create_table_sql(load_schema("recommendations"), "recommendations")
    assert "prediction DOUBLE PRECISION NOT NULL, generated_at TIMESTAMPTZ NOT NULL)" in ddl
    with pytest.raises(CloudSqlError, match="has no PostgreSQL form"):
        create_table_sql(load_schema("ga_sessions"), "ga_sessions")
