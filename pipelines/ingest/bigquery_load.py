"""Load Parquet files into BigQuery and replace a partition (or the days loaded) atomically, as a DoFn.

Load jobs are free on BigQuery and fast on the emulator. Files land in a staging table first; one
multi-statement transaction then deletes what the load replaces and inserts the staged rows, so a
failure leaves the table as it was and a re-run of the same input leaves the same table. (Partition
decorators, ``table$20190301``, would do it in one load on BigQuery, but the emulator lacks them, and
the same code runs on both.) ``gs://`` files load by URI; local files are uploaded. The transaction's
values (the day, the source files) are escaped literals (``string_literal``), not query parameters: the
emulator drops parameters inside a script; table names are checked (``validate_table_id``) first.

BigQuery out of reach mid-load (the emulator restarting; it forgets its jobs, so a job being waited on is
"not found" once it is back) is waited out: the replacement starts again with a new staging table, which
is safe because a replacement is whole or not at all (up to two minutes, then the error stands).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import apache_beam as beam
from apache_beam.metrics import Metrics

from gcpipe.core.clients import ensure_table, row_count
from gcpipe.core.config import validate_table_id
from gcpipe.core.schemas import TableSpec
from gcpipe.warehouse.params import string_literal
from pipelines.common.outages import through_outages
from pipelines.ingest.accounting import NAMESPACE

_LOG = logging.getLogger(__name__)


def replace_script(target: str, staging: str | None, spec: TableSpec, where: str) -> str:
    """The transaction that deletes ``where`` from ``target`` and inserts the staged rows."""
    validate_table_id(target)
    if staging:
        validate_table_id(staging)
    columns = ", ".join(f"`{name}`" for name in spec.schema.names)  # quoted: a column may be a keyword
    statements = [f"DELETE FROM `{target}` WHERE {where};"]
    if staging:
        statements.append(f"INSERT INTO `{target}` ({columns}) SELECT {columns} FROM `{staging}`;")
    return "\n".join(["BEGIN TRANSACTION;", *statements, "COMMIT TRANSACTION;"])


def partition_filter(spec: TableSpec, partition_date: date | None, staging: str | None) -> str:
    """What a load replaces: the partition date, else the days the staged rows cover (else the table)."""
    field = (spec.partition or {}).get("field")
    if not field:
        return "TRUE"
    day = f"`{field}`" if spec.schema.field(field).type == "DATE" else f"DATE(`{field}`)"
    if partition_date:
        return f"{day} = {string_literal(partition_date.isoformat())}"
    if not staging:
        return "FALSE"
    return f"{day} IN (SELECT DISTINCT {day} FROM `{staging}`)"


class LoadAndReplace(beam.DoFn):
    """Given the lists of valid-row and dead-letter Parquet files, load both tables; yield rows loaded."""

    def __init__(
        self,
        table: str,
        spec: TableSpec,
        dead_letter: str,
        dead_spec: TableSpec,
        partition_date: date | None,
        sources: list[str],
    ):
        self.table, self.spec, self.partition_date = table, spec, partition_date
        self.dead_letter, self.dead_spec, self.sources = dead_letter, dead_spec, sources
        self.loaded = Metrics.counter(NAMESPACE, "rows_loaded")
        self.dead_loaded = Metrics.counter(NAMESPACE, "dead_letters_loaded")

    def process(self, _, valid_files: list[str], dead_files: list[str]):
        from google.cloud import bigquery

        # From the environment, not gcpipe's config: on Dataflow workers that is BigQuery itself, locally
        # the emulator (BIGQUERY_EMULATOR_HOST and the metadata stand-in, which run() sets).
        client = bigquery.Client(project=self.table.split(".")[0])
        ensure_table(client, self.spec, self.table)
        ensure_table(client, self.dead_spec, self.dead_letter)
        rows = self._replace(
            client,
            self.table,
            self.spec,
            valid_files,
            lambda staged: partition_filter(self.spec, self.partition_date, staged),
        )
        self.loaded.inc(rows)
        sources = ", ".join(string_literal(source) for source in self.sources)
        day = string_literal(self.partition_date.isoformat()) if self.partition_date else None
        where = f"source IN ({sources}) AND partition_date " + (f"= {day}" if day else "IS NULL")
        self.dead_loaded.inc(
            self._replace(client, self.dead_letter, self.dead_spec, dead_files, lambda _: where)
        )
        yield rows

    def _replace(
        self, client, target: str, spec: TableSpec, files: list[str], where: Callable[[str | None], str]
    ) -> int:
        """``_replace_once``, started again while BigQuery is out of reach (``pipelines/common/outages.py``)."""
        return through_outages(
            lambda _: self._replace_once(client, target, spec, files, where), f"loading {target}", _LOG
        )

    def _replace_once(
        self, client, target: str, spec: TableSpec, files: list[str], where: Callable[[str | None], str]
    ) -> int:
        from google.api_core.exceptions import GoogleAPIError
        from google.cloud import bigquery

        staging = f"{target}__staging_{uuid.uuid4().hex[:12]}" if files else None
        try:
            if staging:
                table = bigquery.Table(staging, schema=spec.schema.to_bigquery())
                table.expires = datetime.now(UTC) + timedelta(days=1)  # gone even if this worker dies
                client.create_table(table)
                config = bigquery.LoadJobConfig(
                    source_format=bigquery.SourceFormat.PARQUET,
                    schema=spec.schema.to_bigquery(),
                    write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
                )
                if all(f.startswith("gs://") for f in files):
                    client.load_table_from_uri(files, staging, job_config=config).result()
                else:
                    for path in files:
                        with open(path, "rb") as handle:
                            client.load_table_from_file(handle, staging, job_config=config).result()
            client.query(replace_script(target, staging, spec, where(staging))).result()
            if not staging:
                return 0
            return row_count(client, staging)
        finally:
            if staging:
                try:
                    client.delete_table(staging, not_found_ok=True)
                except (GoogleAPIError, OSError) as err:  # out of reach: it expires in a day
                    _LOG.warning("staging table %s left behind (it expires in a day): %s", staging, err)
