"""Batch CSV ingestion: CSV files in a bucket (or a folder) to BigQuery, validated, with dead letters.

Each file is read in blocks of a few tens of MB; a block is split into records, parsed by pyarrow and
typed and validated with Arrow compute (``pipelines/transforms/csv_validation.py``); only the rows that
fail are checked one by one, for their exact reason. Valid rows go to Parquet files, PII columns
protected first; rejected rows become dead letters (source, line, raw, reason). A last step loads both
into BigQuery with load jobs and replaces the partition, so a re-run leaves the same table. At the end
the run reports its accounting from Beam's counters: rows read = rows loaded + rows dead-lettered.

Locally (DirectRunner, the local stack from ``make up``)::

    python -m pipelines.csv_ingest \\
        --input '.gcpipe/lake/landing/taxi_trips/2019-03-01/*.csv' --schema taxi_trips \\
        --table gcpipe-local.taxi.taxi_trips --partition_date 2019-03-01 --pii vendor_id:mask

On Dataflow (the same code; input, output and the PII key in the cloud), as the flex template
``infra/dataflow`` builds (``make run-gcp JOB=csv_ingest ARGS="--input=... --schema=... --table=..."``), or
directly with the workers on that image::

    python -m pipelines.csv_ingest \\
        --input 'gs://acme-lake/landing/taxi_trips/2019-03-01/*.csv.gz' --schema taxi_trips \\
        --table acme-data-prod:taxi.taxi_trips --partition_date 2019-03-01 \\
        --runner DataflowRunner --project acme-data-prod --region europe-west1 \\
        --temp_location gs://acme-data-prod-staging/tmp --output gs://acme-data-prod-staging/ingest \\
        --sdk_container_image europe-west1-docker.pkg.dev/acme-data-prod/gcpipe/csv-ingest:latest \\
        --sdk_location container

There the PII key comes from Secret Manager (``--pii_key``; by default
``projects/<project>/secrets/gcpipe-pii-key/versions/latest``).
Without ``--table`` the run stops at the validated Parquet files and dead letters under ``--output``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import logging
import os
import sys
import tempfile
import time
import uuid
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
)

from gcpipe.core.config import Config, load_config, validate_table_id
from gcpipe.core.errors import GcpipeError
from gcpipe.core.schemas import TableSpec, load_schema, load_tables
from pipelines.transforms.bigquery_load import LoadAndReplace
from pipelines.transforms.csv_records import BOM, split_records
from pipelines.transforms.csv_validation import BlockValidator, Layout, check_csv_schema, read_layout
from pipelines.transforms.pii import PiiPolicy, default_key_source

BLOCK_MB = 32
COUNTERS = ("rows_read", "rows_valid", "rows_dead_lettered", "rows_loaded", "dead_letters_loaded")


class IngestError(GcpipeError):
    """An ingestion that cannot start or whose records do not add up."""


# -- reading and validating ------------------------------------------------------------------------


@contextmanager
def _open(path: str):
    """``path`` on any file system, unzipped if its name ends in .gz. Python's gzip, not Beam's: a
    truncated or corrupt file raises instead of ending early."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        if not path.endswith(".gz"):
            yield raw
            return
        with gzip.GzipFile(fileobj=raw) as unzipped:
            yield unzipped


def read_blocks(path: str, block_bytes: int):
    """(records, is the first block) for each block of ``path``: any file system, gzip by its name."""
    with _open(path) as stream:
        carry, line, first = b"", 1, True
        while True:
            try:
                block = stream.read(block_bytes)
            except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
                raise IngestError(f"{path} cannot be read whole after line {line}: {err}.") from None
            data = carry + block
            if first and data.startswith(BOM):
                data = data[len(BOM) :]
            records = split_records(data, line, final=not block)
            if len(records) or not block:
                yield records, first
                first = False
            carry, line = data[records.consumed :], line + records.newlines
            if not block:
                return


def first_record(path: str) -> str | None:
    """The first record of a file (its header, if it has one), or None for an empty file."""
    for records, _ in read_blocks(path, 1 << 20):
        return records.text(0) if len(records) else None
    return None


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
        self.counters = {name: Metrics.counter("csv_ingest", name) for name in COUNTERS[:3]}

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

    def _emit(self, path: str, layout: Layout, block: int, future):
        result = future.result()
        self.counters["rows_read"].inc(result.records)
        self.counters["rows_valid"].inc(result.table.num_rows)
        self.counters["rows_dead_lettered"].inc(len(result.rejected))
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


def _dead_letter_tables(batch: list[dict], schema: pa.Schema) -> tuple[str, pa.Table]:
    return f"dead-letter-{uuid.uuid4().hex[:12]}", pa.Table.from_pylist(batch, schema=schema)


# -- the pipeline ----------------------------------------------------------------------------------


@dataclass
class IngestResult:
    rows_read: int
    rows_valid: int
    rows_dead_lettered: int
    rows_loaded: int | None  # None when no table was named
    output: str
    table: str | None
    seconds: float

    def summary(self) -> str:
        target = f"loaded into {self.table}" if self.table else f"written to {self.output}"
        return (
            f"{self.rows_read:,} rows read = {self.rows_valid:,} valid ({target}) + "
            f"{self.rows_dead_lettered:,} dead-lettered, in {self.seconds:.1f} s"
        )


def parse_table_id(text: str, default_project: str) -> str:
    """``project:dataset.table``, ``project.dataset.table`` or ``dataset.table`` -> ``project.dataset.table``."""
    parts = text.replace(":", ".", 1).split(".")
    if len(parts) == 2:
        parts = [default_project, *parts]
    if len(parts) != 3:
        raise IngestError(f"--table {text}: write project:dataset.table or project.dataset.table.")
    return validate_table_id(".".join(parts))


def fetch_schema(schema: str) -> str:
    """A schema name or local path as it is; a ``gs://`` schema file copied into a temporary folder first."""
    if "://" not in schema:
        return schema
    local = os.path.join(tempfile.mkdtemp(prefix="csv_ingest_schema_"), os.path.basename(schema))
    try:
        with FileSystems.open(schema) as source, open(local, "wb") as out:
            out.write(source.read())
    except Exception as err:  # Beam's file systems raise several kinds; the user needs the sentence
        raise IngestError(f"--schema {schema} could not be read: {err}.") from None
    return local


def table_layout(schema_name: str, table_name: str) -> TableSpec:
    """The catalog's layout and rules for the schema, or for a schema of the user's: partition by day on
    its first TIMESTAMP or DATE column, no rules."""
    schema = load_schema(schema_name)
    check_csv_schema(schema)
    for spec in load_tables().values():
        if _shape(spec.schema.fields) == _shape(schema.fields):  # the catalog's columns, whatever the file
            return dataclasses.replace(spec, name=table_name)
    moment = next((f.name for f in schema.fields if f.type in ("TIMESTAMP", "DATE") and not f.repeated), None)
    partition = {"field": moment, "granularity": "DAY"} if moment else None
    return TableSpec(
        table_name,
        "",
        schema,
        description=f"Loaded from CSV by csv_ingest ({schema.name}).",
        partition=partition,
    )


def _shape(fields) -> tuple:
    """Names, types and modes: what makes two schemas the same table (descriptions do not; a schema
    exported with `bq show --schema` may have lost them)."""
    return tuple((f.name, f.type, f.mode, _shape(f.fields)) for f in fields)


def match_inputs(pattern: str) -> list[str]:
    """Every file the pattern names (a path, a glob, gs://...), or one sentence saying there are none."""
    if "://" not in pattern:
        pattern = os.path.abspath(pattern)  # dead letters name their source by a path that works anywhere
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as err:  # Beam raises BeamIOError with nested details
        raise IngestError(f"--input {pattern} could not be listed: {err}.") from None
    paths = sorted(m.path for m in matched)
    if not paths:
        raise IngestError(f"--input {pattern} matches no file.")
    return paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--input", required=True, help="A file, glob or gs:// pattern (.gz files are unzipped)."
    )
    parser.add_argument(
        "--schema", required=True, help="A name from sql/schemas/, or a BigQuery JSON schema file."
    )
    parser.add_argument(
        "--table", help="project:dataset.table or project.dataset.table; omit to write files only."
    )
    parser.add_argument(
        "--dead_letter", help="The table for rejected records (default: <table>_dead_letter)."
    )
    parser.add_argument("--partition_date", help="YYYY-MM-DD: the load replaces that day's partition.")
    parser.add_argument(
        "--pii", default="", help="Columns to protect: col[:hash|mask|redact],... (hash by default)."
    )
    parser.add_argument(
        "--pii_key",
        help="Where the HMAC key lives: a file, or a secret reference (file:PATH, env:NAME, "
        "projects/P/secrets/S/versions/V).",
    )
    parser.add_argument(
        "--output", help="Where validated Parquet files and dead letters go (default: in the lake)."
    )
    parser.add_argument(
        "--block_mb", type=int, default=BLOCK_MB, help="Bytes of CSV validated at once, in MB."
    )
    return parser


def run(argv: list[str] | None = None, save_main_session: bool = True) -> IngestResult:
    """Run the ingestion; return its accounting, checked: rows read = valid (= loaded) + dead-lettered."""
    args, beam_args = build_parser().parse_known_args(argv)
    if args.block_mb < 1:
        raise IngestError(f"--block_mb must be at least 1, not {args.block_mb}.")
    options = pipeline_options(beam_args, save_main_session)
    config = target_config(options)
    config.apply_env()  # on the local target, clients and Beam's file systems reach the emulators
    try:
        partition_date = date.fromisoformat(args.partition_date) if args.partition_date else None
    except ValueError:
        raise IngestError(f"--partition_date {args.partition_date}: write it as YYYY-MM-DD.") from None
    table = parse_table_id(args.table, config.project) if args.table else None
    schema = fetch_schema(args.schema)
    spec = table_layout(schema, table.split(".")[-1] if table else load_schema(schema).name)
    if partition_date and not spec.partition:
        raise IngestError(
            f"--partition_date needs a partitioned table, but schema {spec.schema.name} has no TIMESTAMP or "
            "DATE column: leave it out and the load replaces the whole table."
        )
    pii = PiiPolicy.parse(args.pii, spec.schema, args.pii_key or default_key_source(config), config.is_local)
    sources = match_inputs(args.input)
    for source in sources:  # a file whose columns do not fit the schema stops the run before anything runs
        header = first_record(source)
        if header is not None:
            read_layout(header, spec.schema, source)
    started = datetime.now(UTC)
    run_id = started.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    if not (args.output or config.is_local or config.lake_bucket):
        raise IngestError(
            "give --output (a gs:// folder) or set GCPIPE_LAKE_BUCKET: the gcp target has no lake."
        )
    output = args.output or f"{config.lake}/ingest/{spec.name}/{partition_date or 'all'}"
    output = f"{output.rstrip('/')}/{run_id}"  # a folder per run: files of an earlier run are never loaded

    clock = time.perf_counter()
    with beam.Pipeline(options=options) as pipeline:
        validated = (
            pipeline
            | "Files" >> beam.Create(sources)
            | "Spread" >> beam.Reshuffle()
            | "ValidateCsv"
            >> ValidateCsv(
                spec,
                partition_date=partition_date,
                pii=pii,
                loaded_at=started,
                block_bytes=args.block_mb << 20,
            )
        )
        valid_files = (
            validated.valid
            | "NameBlocks" >> beam.Map(_block_name)
            | "WriteValid" >> beam.ParDo(WriteParquet(f"{output}/valid", spec.schema.to_arrow()))
        )
        dead_schema = load_schema("dead_letter").to_arrow()
        dead_files = (
            validated.dead_letter
            | "BatchDeadLetters" >> beam.BatchElements(min_batch_size=10_000, max_batch_size=100_000)
            | "DeadLetterTables" >> beam.Map(_dead_letter_tables, dead_schema)
            | "WriteDeadLetters" >> beam.ParDo(WriteParquet(f"{output}/dead_letter", dead_schema))
        )
        if table:
            dead_letter = (
                parse_table_id(args.dead_letter, config.project)
                if args.dead_letter
                else f"{table}_dead_letter"
            )
            dead_spec = table_layout("dead_letter", dead_letter.split(".")[-1])
            (
                pipeline
                | "Once" >> beam.Create([None])
                | "LoadBigQuery"
                >> beam.ParDo(
                    LoadAndReplace(table, spec, dead_letter, dead_spec, partition_date, sources),
                    beam.pvalue.AsList(valid_files),
                    beam.pvalue.AsList(dead_files),
                )
            )
    counts = _counters(pipeline.result)
    result = IngestResult(
        counts["rows_read"],
        counts["rows_valid"],
        counts["rows_dead_lettered"],
        counts["rows_loaded"] if table else None,
        output,
        table,
        time.perf_counter() - clock,
    )
    landed = (result.rows_loaded, counts["dead_letters_loaded"])
    if result.rows_read != result.rows_valid + result.rows_dead_lettered or (
        table and landed != (result.rows_valid, result.rows_dead_lettered)
    ):
        raise IngestError(
            f"records do not add up: {result.summary()}; {landed[0]} rows and {landed[1]} dead letters landed."
        )
    logging.getLogger(__name__).info(result.summary())
    return result


def target_config(options: PipelineOptions) -> Config:
    """The target's settings (the flex template's image sets GCPIPE_TARGET=gcp), the project --project's."""
    project = options.view_as(GoogleCloudOptions).project
    return load_config(project=project) if project else load_config()


def pipeline_options(beam_args: list[str], save_main_session: bool) -> PipelineOptions:
    options = PipelineOptions(beam_args)
    runner = options.view_as(StandardOptions).runner
    if runner in (None, "DirectRunner") and not options.get_all_options()["update_compatibility_version"]:
        # The DirectRunner would first try Prism, a binary it downloads; pipelines with this option skip it.
        options = PipelineOptions([*beam_args, f"--update_compatibility_version={beam.__version__}"])
    options.view_as(SetupOptions).save_main_session = save_main_session
    return options


def _counters(result) -> dict[str, int]:
    found = result.metrics().query(MetricsFilter().with_namespace("csv_ingest"))["counters"]
    totals = dict.fromkeys(COUNTERS, 0)
    for counter in found:
        totals[counter.key.metric.name] += (
            counter.committed if counter.committed is not None else counter.attempted
        )
    return totals


def main(argv: list[str] | None = None) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    try:
        result = run(argv)
    except GcpipeError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    print(result.summary())


if __name__ == "__main__":
    main()
