"""Warehouse set-up shared by every loader: tables from the catalog, and drift caught at once."""

import pytest

from gcpipe.core.clients import ensure_table, row_count
from gcpipe.core.config import ConfigError
from gcpipe.core.schemas import SchemaError, table_spec

pytestmark = pytest.mark.stack


def test_ensure_table_creates_once_and_names_a_drifted_schema(bq, dataset):
    spec = table_spec("ratings")
    ensure_table(bq, spec, f"{dataset}.ratings")
    ensure_table(bq, spec, f"{bq.project}.{dataset}.ratings")  # again: nothing to do
    assert [f.name for f in bq.get_table(f"{dataset}.ratings").schema] == ["user_id", "acco_id", "rating"]
    assert {d.dataset_id for d in bq.list_datasets()} >= {dataset} and "ratings" not in {
        d.dataset_id for d in bq.list_datasets()
    }

    bq.query(f"CREATE TABLE `{dataset}.old_ratings` (user_id INT64 NOT NULL, rating INT64 NOT NULL)").result()
    with pytest.raises(SchemaError, match=r"old_ratings exists with columns that differ .*\(acco_id\)"):
        ensure_table(bq, spec, f"{dataset}.old_ratings")


def test_row_count_follows_dml_and_refuses_a_hostile_name(bq, dataset):
    table = f"{bq.project}.{dataset}.ratings"
    ensure_table(bq, table_spec("ratings"), table)
    bq.query(f"INSERT INTO `{table}` VALUES (1, 10, 5), (1, 11, 4), (2, 10, 3)").result()
    bq.query(f"DELETE FROM `{table}` WHERE user_id = 2").result()
    assert row_count(bq, table) == 2
    with pytest.raises(ConfigError, match="is not a table id"):
        row_count(bq, f"{table}` WHERE TRUE; DROP TABLE `{table}")
    assert row_count(bq, table) == 2
