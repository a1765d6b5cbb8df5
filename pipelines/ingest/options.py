"""The CSV ingestion's options, declared once: Beam reads them, ``--help`` lists them, and the flex
template's ``infra/dataflow/csv_ingest/metadata.json`` declares them with the same help text."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

BLOCK_MB = 32


class CsvIngestOptions(PipelineOptions):
    """What to ingest and where it goes"""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument(
            "--input",
            help="A file, glob or gs:// pattern of CSV files, plain or gzip (by the .gz name). "
            "Example: gs://my-lake/raw/taxi/2019-03-01/*.csv.gz",
        )
        parser.add_argument(
            "--schema",
            help="A schema name from sql/schemas/ (e.g. taxi_trips), or the path (gs:// too) of a BigQuery "
            "JSON schema file.",
        )
        parser.add_argument(
            "--table",
            help="The BigQuery table, project:dataset.table or project.dataset.table, made from the catalog "
            "if missing; without it the run stops at the validated files.",
        )
        parser.add_argument(
            "--dead_letter",
            help="The BigQuery table of rejected records (default: <table>_dead_letter).",
        )
        parser.add_argument(
            "--partition_date",
            help="YYYY-MM-DD: the load replaces that day's partition, so a rerun gives the same table "
            "(rows of other days are dead-lettered); without it, the days the rows cover.",
        )
        parser.add_argument(
            "--pii",
            default="",
            help="Columns to protect before they land, comma-separated, each col[:hash|mask|redact] "
            "(hash: HMAC-SHA256 keyed by pii_key; mask: # but the last 4 characters; redact: NULL).",
        )
        parser.add_argument(
            "--pii_key",
            help="Where the HMAC key lives: a file, file:PATH, env:NAME or projects/P/secrets/S/versions/V "
            "(default: $GCPIPE_PII_KEY, else .gcpipe/secrets/pii.key locally, the project's gcpipe-pii-key "
            "secret, latest version, on gcp).",
        )
        parser.add_argument(
            "--output",
            help="A folder (gs:// on Dataflow) for the validated Parquet files and the dead letters before "
            "they load (default: under the lake bucket).",
        )
        parser.add_argument("--block_mb", type=int, default=BLOCK_MB, help="MB of CSV validated at once.")
