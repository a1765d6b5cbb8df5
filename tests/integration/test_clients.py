"""Warehouse set-up shared by every loader: tables from the catalog, and drift caught at once."""

import pytest

from gcpipe.clients import ensure_table
from gcpipe.schemas import SchemaError, table_spec

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
