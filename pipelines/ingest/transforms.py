"""The CSV ingestion's steps, as the graph names them: validate the files, write valid rows and dead letters
as Parquet, load both into BigQuery."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from gcpipe.core.schemas import TableSpec, load_schema
from pipelines.common.progress import LiveCounts
from pipelines.ingest.accounting import COUNTERS, NAMESPACE
from pipelines.ingest.bigquery_load import LoadAndReplace
from pipelines.ingest.files import read_blocks
from pipelines.ingest.options import BLOCK_MB
from pipelines.ingest.pii import PiiPolicy
from pipelines.ingest.plan import IngestPlan
from pipelines.ingest.validation import BlockValidator, Layout, read_layout

LIVE = LiveCounts()  # rows validated in this process so far: the progress log of a run here
_LOG = logging.getLogger(__name__)


class ValidateCsvFile(beam.DoFn):
    """A CSV file -> blocks of valid rows (pyarrow tables, PII protected) + tagged dead letters."""

    DEAD_LETTER = "dead_letter"

    def __init__(
        self,
        spec: TableSpec,
        partition_date: date | None = None,
        pii: PiiPolicy | None = None,
        loaded_at: datetime | None = None,
        block_bytes: int = BLOCK_MB << 20,
    ):
        self.spec, self.partition_date, self.block_bytes = spec, partition_date, block_bytes
        self.pii = pii or PiiPolicy({})
        self.loaded_at = loaded_at or datetime.now(UTC)
        self.counters = {name: Metrics.counter(NAMESPACE, name) for name in COUNTERS[:3]}

    def process(self, path: str):
        # Blocks are split in order (each starts where the last record of the one before ended) and
        # validated on a thread per core: pyarrow and numpy release the GIL, so the cores share the work.
        threads = max(1, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            pending: deque = deque()
            for block, (records, first) in enumerate(read_blocks(path, self.block_bytes)):
                skip = 0
                if first:
                    if not len(records):
                        return
                    layout = read_layout(records.text(0), self.spec.schema, path)
                    validator = BlockValidator(self.spec, layout, self.partition_date)
                    skip = int(layout.header)
                pending.append((block, pool.submit(validator.validate, records, skip)))
                while len(pending) > threads:
                    yield from self._emit(path, layout, *pending.popleft())
            while pending:
                yield from self._emit(path, layout, *pending.popleft())
        _LOG.debug("validated %s", path)

    def _emit(self, path: str, layout: Layout, block: int, future):
        result = future.result()
        self.counters["rows_read"].inc(result.records)
        self.counters["rows_valid"].inc(result.table.num_rows)
        self.counters["rows_dead_lettered"].inc(len(result.rejected))
        LIVE.add(rows_read=result.records, rows_dead_lettered=len(result.rejected))
        if result.table.num_rows:
            yield path, block, self.pii.apply(result.table) if self.pii else result.table
        for line, raw, reason in result.rejected:
            yield beam.pvalue.TaggedOutput(
                self.DEAD_LETTER, self._dead_letter(path, line, raw, reason, layout)
            )

    def _dead_letter(self, path: str, line: int, raw: str, reason: str, layout: Layout) -> dict:
        if self.pii:
            protected = self.pii.raw(raw, layout.columns)
            reason = self.pii.reason(reason) + (
                "" if protected is not None else " (raw withheld: it holds PII)"
            )
            raw = protected
        return {
            "source": path,
            "line": line,
            "raw": raw,
            "reason": reason,
            "loaded_at": self.loaded_at,
            "partition_date": self.partition_date,
        }


class ValidateCsv(beam.PTransform):
    """File paths -> ``valid`` ((path, block, pyarrow table) per block) and ``dead_letter`` (dicts)."""

    def __init__(self, spec: TableSpec, **options):
        super().__init__()
        self.spec, self.options = spec, options

    def expand(self, paths):
        return paths | "Validate" >> beam.ParDo(ValidateCsvFile(self.spec, **self.options)).with_outputs(
            ValidateCsvFile.DEAD_LETTER, main="valid"
        )


class WriteParquet(beam.DoFn):
    """Writes pyarrow tables under ``directory``; yields the file paths (names derived from the input)."""

    def __init__(self, directory: str, schema: pa.Schema):
        self.directory, self.schema = directory.rstrip("/"), schema

    def process(self, item):
        name, table = item
        path = f"{self.directory}/{name}.parquet"
        with FileSystems.create(path) as out:
            pq.write_table(table.cast(self.schema), out)
        yield path


def _block_name(item) -> tuple[str, pa.Table]:
    path, block, table = item
    return f"{hashlib.sha1(path.encode()).hexdigest()[:12]}-{block:05d}", table  # noqa: S324 (a name, not security)


def _dead_letter_table(batch: list[dict], schema: pa.Schema) -> tuple[str, pa.Table]:
    return f"dead-letter-{uuid.uuid4().hex[:12]}", pa.Table.from_pylist(batch, schema=schema)


class WriteValidFiles(beam.PTransform):
    """Validated blocks -> one Parquet file each under ``directory``; the files' paths."""

    def __init__(self, directory: str, spec: TableSpec):
        super().__init__()
        self.directory, self.spec = directory, spec

    def expand(self, blocks):
        return (
            blocks
            | "NameBlocks" >> beam.Map(_block_name)
            | "WriteValid" >> beam.ParDo(WriteParquet(self.directory, self.spec.schema.to_arrow()))
        )


class WriteDeadLetterFiles(beam.PTransform):
    """Dead letters -> Parquet files of up to 100,000 each under ``directory``; the files' paths."""

    def __init__(self, directory: str):
        super().__init__()
        self.directory = directory

    def expand(self, dead_letters):
        schema = load_schema("dead_letter").to_arrow()
        return (
            dead_letters
            | "BatchDeadLetters" >> beam.BatchElements(min_batch_size=10_000, max_batch_size=100_000)
            | "DeadLetterTables" >> beam.Map(_dead_letter_table, schema)
            | "WriteDeadLetters" >> beam.ParDo(WriteParquet(self.directory, schema))
        )


class LoadBigQuery(beam.PTransform):
    """(valid files, dead-letter files) -> both tables of ``plan`` loaded once every file is written (load
    jobs, the partition or the days replaced in one transaction); the rows loaded."""

    def __init__(self, plan: IngestPlan):
        super().__init__()
        self.load = LoadAndReplace(
            plan.table, plan.spec, plan.dead_letter, plan.dead_spec, plan.partition_date, plan.sources
        )

    def expand(self, files):
        valid_files, dead_files = files
        return (
            valid_files.pipeline
            | "Once" >> beam.Create([None])
            | "LoadAndReplace"
            >> beam.ParDo(self.load, beam.pvalue.AsList(valid_files), beam.pvalue.AsList(dead_files))
        )
