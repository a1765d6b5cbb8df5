"""Bulk loads into BigQuery tables with load jobs: the fast path, in the emulator and in BigQuery alike.

Files are sent uncompressed (the emulator cannot read a gzip upload; BigQuery does not need it). Each
load replaces the table's rows unless ``append`` is set, and returns the rows the table then holds (the
emulator does not report a load job's ``output_rows``).
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gcpipe.core.schemas import Schema


def _load(
    client, stream, table_id: str, source_format: str, append: bool, schema: Schema | None = None
) -> int:
    from google.cloud import bigquery

    disposition = (
        bigquery.WriteDisposition.WRITE_APPEND if append else bigquery.WriteDisposition.WRITE_TRUNCATE
    )
    config = bigquery.LoadJobConfig(source_format=source_format, write_disposition=disposition)
    if schema is not None:
        config.schema = schema.to_bigquery()
    client.load_table_from_file(stream, table_id, job_config=config).result()
    return client.get_table(table_id).num_rows


def load_json_lines(client, path: str | Path, table_id: str, append: bool = False) -> int:
    """Load a JSON-lines file (``.gz`` too) into an existing table."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        return _load(client, stream, table_id, "NEWLINE_DELIMITED_JSON", append)


def load_arrow(client, table: pa.Table, schema: Schema, table_id: str, append: bool = False) -> int:
    """Load an Arrow table (cast to the schema's Arrow form) through a Parquet load job.

    The job carries the schema, so BigQuery creates a missing table with it (the emulator needs the
    table to exist: create it from the catalog first, `gcpipe.core.clients.ensure_table`).
    """
    buffer = io.BytesIO()
    pq.write_table(table.select(schema.names).cast(schema.to_arrow()), buffer)
    buffer.seek(0)
    return _load(client, buffer, table_id, "PARQUET", append, schema)
