"""A fresh BigQuery dataset for local BigQuery ML tests: tables loaded from Arrow, SQL run through gcpipe's
runner, the models' artefacts read back."""

from __future__ import annotations

import io
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from google.cloud import bigquery

from gcpipe.warehouse.bqml.local import ModelStore
from gcpipe.warehouse.bqml.sql import ModelRef
from gcpipe.warehouse.runner import run_sql


class Warehouse:
    """A fresh dataset: tables loaded from Arrow, SQL run through gcpipe's runner ({ds} names the dataset)."""

    def __init__(self, bq, config):
        self.bq, self.name, self.config = bq, f"test_bqml_{uuid.uuid4().hex[:8]}", config
        bq.create_dataset(self.name)

    def load(self, name: str, table: pa.Table) -> None:
        kinds = {pa.int64(): "INT64", pa.float64(): "FLOAT64", pa.string(): "STRING", pa.bool_(): "BOOL"}
        schema = [
            bigquery.SchemaField(f.name, "TIMESTAMP" if pa.types.is_timestamp(f.type) else kinds[f.type])
            for f in table.schema
        ]
        table_id = f"{self.config.project}.{self.name}.{name}"
        self.bq.create_table(bigquery.Table(table_id, schema=schema))
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        buffer.seek(0)
        job = bigquery.LoadJobConfig(source_format="PARQUET", schema=schema)
        self.bq.load_table_from_file(buffer, table_id, job_config=job).result()

    def run(self, sql: str, **params):
        sql = sql.replace("{ds}", f"`{self.config.project}.{self.name}`")
        return run_sql(sql, params, config=self.config, client=self.bq, source="test.sql")

    def rows(self, sql: str, **params) -> list[dict]:
        return self.run(sql, **params).rows

    def model(self, name: str):
        return ModelStore(self.config.state_dir / "models").load(
            ModelRef(self.config.project, self.name, name)
        )[0]

    def drop(self) -> None:
        """The dataset and the models trained in it."""
        self.bq.delete_dataset(self.name, delete_contents=True, not_found_ok=True)
        for path in (self.config.state_dir / "models" / self.config.project / self.name).glob("*.json"):
            path.unlink()


def schema_of(result) -> list[tuple]:
    """(name, type, mode, [(field, type)]) of each column of a run's last result."""
    fields = result.statements[-1].schema
    return [(f.name, f.field_type, f.mode, [(g.name, g.field_type) for g in f.fields]) for f in fields]
