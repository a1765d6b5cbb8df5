"""The options resolved into what a run does, checked before anything runs: the files, the schema and its
table layout, the PII policy, the tables and the output folder. Each wrong option is one sentence."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

from gcpipe.core.config import Config, validate_table_id
from gcpipe.core.schemas import TableSpec, load_schema, load_tables
from pipelines.ingest import IngestError
from pipelines.ingest.files import fetch_schema, first_record, match_inputs
from pipelines.ingest.options import CsvIngestOptions
from pipelines.ingest.pii import PiiPolicy, default_key_source
from pipelines.ingest.validation import check_csv_schema, read_layout


@dataclass(frozen=True)
class IngestPlan:
    sources: list[str]  # every file to read
    spec: TableSpec  # the schema, its rules and the table's layout (partitioning)
    partition_date: date | None
    pii: PiiPolicy
    output: str  # this run's folder of validated Parquet files and dead letters
    started: datetime  # the dead letters' loaded_at
    block_bytes: int
    table: str | None = None  # project.dataset.table; None: files only
    dead_letter: str | None = None
    dead_spec: TableSpec | None = None


def parse_table_id(text: str, default_project: str) -> str:
    """``project:dataset.table``, ``project.dataset.table`` or ``dataset.table`` -> ``project.dataset.table``."""
    parts = text.replace(":", ".", 1).split(".")
    if len(parts) == 2:
        parts = [default_project, *parts]
    if len(parts) != 3:
        raise IngestError(f"--table {text}: write project:dataset.table or project.dataset.table.")
    return validate_table_id(".".join(parts))


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


def plan_ingest(options: CsvIngestOptions, config: Config) -> IngestPlan:
    """What the run does, every option checked (the files' headers too) before anything runs."""
    if not options.input:
        raise IngestError("give --input: a file, glob or gs:// pattern of CSV files.")
    if not options.schema:
        raise IngestError("give --schema: a name from sql/schemas/, or a BigQuery JSON schema file.")
    if options.block_mb < 1:
        raise IngestError(f"--block_mb must be at least 1, not {options.block_mb}.")
    try:
        partition_date = date.fromisoformat(options.partition_date) if options.partition_date else None
    except ValueError:
        raise IngestError(f"--partition_date {options.partition_date}: write it as YYYY-MM-DD.") from None
    table = parse_table_id(options.table, config.project) if options.table else None
    schema = fetch_schema(options.schema)
    spec = table_layout(schema, table.split(".")[-1] if table else load_schema(schema).name)
    if partition_date and not spec.partition:
        raise IngestError(
            f"--partition_date needs a partitioned table, but schema {spec.schema.name} has no TIMESTAMP or "
            "DATE column: leave it out and the load replaces the whole table."
        )
    key = options.pii_key or default_key_source(config)
    pii = PiiPolicy.parse(options.pii, spec.schema, key, config.is_local)
    sources = match_inputs(options.input)
    for source in sources:  # a file whose columns do not fit the schema stops the run before anything runs
        header = first_record(source)
        if header is not None:
            read_layout(header, spec.schema, source)
    if not (options.output or config.is_local or config.lake_bucket):
        raise IngestError(
            "give --output (a gs:// folder) or set GCPIPE_LAKE_BUCKET: the gcp target has no lake."
        )
    started = datetime.now(UTC)
    run_id = started.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    output = options.output or f"{config.lake}/ingest/{spec.name}/{partition_date or 'all'}"
    plan = IngestPlan(
        sources,
        spec,
        partition_date,
        pii,
        output=f"{output.rstrip('/')}/{run_id}",  # a folder per run: an earlier run's files are never loaded
        started=started,
        block_bytes=options.block_mb << 20,
    )
    if not table:
        return plan
    dead_letter = (
        parse_table_id(options.dead_letter, config.project) if options.dead_letter else f"{table}_dead_letter"
    )
    dead_spec = table_layout("dead_letter", dead_letter.split(".")[-1])
    return dataclasses.replace(plan, table=table, dead_letter=dead_letter, dead_spec=dead_spec)
