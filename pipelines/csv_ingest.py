"""Batch CSV ingestion: CSV files in a bucket (or a folder) to BigQuery, validated, with dead letters.

Each file is read in blocks of a few tens of MB; a block is split into records, parsed by pyarrow and
typed and validated with Arrow compute (pipelines/ingest/validation.py); only the rows that fail are
checked one by one, for their exact reason. Valid rows go to Parquet files, PII columns protected first;
rejected rows become dead letters (source, line, raw, reason). A last step loads both into BigQuery with
load jobs and replaces the partition, so a re-run leaves the same table. At the end the run reports its
accounting from Beam's counters: rows read = rows loaded + rows dead-lettered.

Locally (the DirectRunner's batch engine, the local stack from ``make up``)::

    python -m pipelines.csv_ingest \\
        --input '.gcpipe/lake/landing/taxi_trips/2019-03-01/*.csv' --schema taxi_trips \\
        --table gcpipe-local.taxi.taxi_trips --partition_date 2019-03-01 --pii vendor_id:mask

On Dataflow (the same code; input, output and the PII key in the cloud), as the flex template
infra/dataflow builds (``make run-gcp JOB=csv_ingest ARGS="--input=... --schema=... --table=..."``), or
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
import logging
import time

import apache_beam as beam
from apache_beam.options.pipeline_options import SetupOptions, TestOptions

from pipelines.common import launcher
from pipelines.common.launcher import target_config
from pipelines.common.options import help_parser, parse_options
from pipelines.common.progress import every
from pipelines.common.runners import choose_runner, runner_help
from pipelines.ingest import IngestError
from pipelines.ingest.accounting import IngestResult, account
from pipelines.ingest.files import match_inputs, total_bytes
from pipelines.ingest.options import CsvIngestOptions
from pipelines.ingest.plan import IngestPlan, parse_table_id, plan_ingest
from pipelines.ingest.transforms import LIVE, LoadBigQuery, ValidateCsv, WriteDeadLetterFiles, WriteValidFiles

__all__ = [
    "IngestError",
    "IngestResult",
    "build_parser",
    "build_pipeline",
    "match_inputs",
    "parse_table_id",
    "run",
    "target_config",
]
_LOG = logging.getLogger("pipelines.csv_ingest")


def build_parser() -> argparse.ArgumentParser:
    """What ``--help`` prints: every option with its meaning and default."""
    return help_parser("pipelines.csv_ingest", __doc__, [CsvIngestOptions], runner_help(streaming=False))


def build_pipeline(p: beam.Pipeline, plan: IngestPlan) -> None:
    """Files -> validated blocks and dead letters -> Parquet files -> BigQuery (when a table is named)."""
    validated = (
        p
        | "Files" >> beam.Create(plan.sources)
        | "Spread" >> beam.Reshuffle()
        | "ValidateCsv"
        >> ValidateCsv(
            plan.spec,
            partition_date=plan.partition_date,
            pii=plan.pii,
            loaded_at=plan.started,
            block_bytes=plan.block_bytes,
        )
    )
    valid_files = validated.valid | "WriteValidFiles" >> WriteValidFiles(f"{plan.output}/valid", plan.spec)
    dead_files = validated.dead_letter | "WriteDeadLetterFiles" >> WriteDeadLetterFiles(
        f"{plan.output}/dead_letter"
    )
    if plan.table:
        (valid_files, dead_files) | "LoadBigQuery" >> LoadBigQuery(plan)


def run(argv: list[str] | None = None, save_main_session: bool = True) -> IngestResult | None:
    """Run the ingestion; return its accounting, checked: rows read = valid (= loaded) + dead-lettered."""
    options = parse_options(argv, [CsvIngestOptions], build_parser())
    launch = launcher.apply_log_level(options)
    runner = choose_runner(options, streaming=False)
    options.view_as(SetupOptions).save_main_session = save_main_session
    config = target_config(options)
    config.apply_env()  # on the local target, clients and Beam's file systems reach the emulators
    plan = plan_ingest(options.view_as(CsvIngestOptions), config)
    _LOG.info("runner %s (%s)", runner.runner, runner.reason)
    _describe(plan)

    clock = time.perf_counter()
    progress = _progress(LIVE.snapshot())
    seconds = 0 if runner.on_dataflow else launch.progress_seconds
    with every(seconds, _LOG, progress), beam.Pipeline(options=options) as p:
        build_pipeline(p, plan)
    if runner.on_dataflow and options.view_as(TestOptions).dry_run:
        _LOG.info("a dry run (--dry_run): the Dataflow job was built and not submitted")
        return None
    result = account(p.result, plan.output, plan.table, time.perf_counter() - clock)
    launcher.report(result.summary())
    return result


def _describe(plan: IngestPlan) -> None:
    """What the run reads and writes, logged before it starts."""
    size = total_bytes(plan.sources) / 1e6
    protected = ", ".join(f"{column}:{method}" for column, method in plan.pii.methods.items())
    protected = f", PII protected: {protected}" if protected else ""
    _LOG.info(
        "reading %d file(s), %.1f MB, as %s%s", len(plan.sources), size, plan.spec.schema.name, protected
    )
    _LOG.info("valid rows and dead letters as Parquet under %s", plan.output)
    if plan.table:
        what = f"the partition {plan.partition_date}" if plan.partition_date else "the days the rows cover"
        _LOG.info("then loading %s and %s, replacing %s", plan.table, plan.dead_letter, what)


def _progress(before: dict[str, int]):
    """The progress line of this run (the live counts less what earlier runs in this process added)."""

    def describe() -> str | None:
        now = LIVE.snapshot()
        read, dead = (now.get(name, 0) - before.get(name, 0) for name in ("rows_read", "rows_dead_lettered"))
        return f"{read:,} rows validated so far, {dead:,} dead-lettered" if read else None

    return describe


def main(argv: list[str] | None = None) -> None:
    launcher.main(run, argv)


if __name__ == "__main__":
    main()
