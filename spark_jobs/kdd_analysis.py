"""KDD Cup 99 intrusion analysis: the Dataproc lab's analysis and more, on Spark's DataFrame API.

    python -m spark_jobs.kdd_analysis --input kddcup.data_10_percent.gz --output /tmp/kdd    # local[*]
    gcpipe spark submit kdd_analysis --target gcp    # a job-specific Dataproc cluster (infra/dataproc)

``--input`` is a file, folder or glob (local or ``gs://``; plain or gzip) of lines with the 42 columns
of ``sql/schemas/kdd_connections.json``. A line that does not fit (wrong column count, text in a numeric
column, an empty field, a value outside the range its rule in sql/tables.json sets) is counted and written
to ``malformed/`` with its reason: it never fails the job and never reaches the aggregates. The ranges
bound the summed columns by 2^32 - 1, so a hostile value cannot overflow a sum (Spark's ANSI mode would
fail the job) nor dwarf the real traffic in a mean.

One pass over the data reduces the valid connections to a row per (protocol_type, service, label) with
counts and sums. Every aggregate is an exact roll-up of that table, whose size is bounded by the number of
protocols, services and labels, not by the data, so the driver finishes the work:

* ``connections_by_protocol`` and ``attack_stats`` (per protocol and state, attack or not: count, mean
  src_bytes, dst_bytes and duration, totals of failed logins, compromised, file creations, su attempts
  and root accesses), as the lab computed them;
* ``connections_by_label`` and ``connections_by_category`` (dos, probe, r2l, u2r, normal);
* ``top_attacked_services``.

``--output`` (a folder URI) receives each aggregate as Parquet and CSV, ``malformed/`` (JSON lines of
the dead-letter schema), ``report/`` (report.md and PNG charts) and ``summary.json``. ``--bq_table
PROJECT.DATASET.TABLE`` also loads attack_stats into TABLE, the other aggregates beside it, under their
names in sql/tables.json, and the valid connections themselves, one row each, into ``kdd_connections``
(what the k-means model of sql/ml/kdd_connection_clusters.sql learns from).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import UTC, datetime

from gcpipe.core.config import ConfigError
from gcpipe.core.kdd import ATTACK_CATEGORY, MALFORMED_KINDS, UNKNOWN_CATEGORY
from spark_jobs import kdd_report
from spark_jobs.common import (
    arrow_table,
    bigquery_id,
    catalog_rules,
    job_schema,
    load_bigquery,
    log,
    remove,
    require_storage,
    spark_session,
    write_dead_letters,
    write_json,
    write_table,
)
from spark_jobs.logs import add_options, progress, setup_logging, user_errors

# The aggregates: output and table name -> schema in sql/schemas.
AGGREGATES = {
    "attack_stats": "kdd_attack_stats",
    "connections_by_protocol": "kdd_connections_by_protocol",
    "connections_by_label": "kdd_connections_by_label",
    "connections_by_category": "kdd_connections_by_category",
    "top_attacked_services": "kdd_top_attacked_services",
}
# Summed per (protocol_type, service, label); attack_stats reports them as means or totals.
SUMMED = (
    "src_bytes",
    "dst_bytes",
    "duration",
    "num_failed_logins",
    "num_compromised",
    "num_file_creations",
    "su_attempted",
    "num_root",
)
TOP_SERVICES = 10


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kdd_analysis", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="File, folder or glob of KDD lines (local or gs://).")
    parser.add_argument("--output", required=True, help="Folder URI for the results (local or gs://).")
    parser.add_argument("--bq_table", help="PROJECT.DATASET.TABLE: load the aggregates into BigQuery.")
    add_options(parser)
    args = parser.parse_args(argv)
    if args.bq_table:
        try:  # before the analysis, not after it
            bigquery_id(args.bq_table, 3)
        except ConfigError as err:
            parser.error(f"--bq_table: {err}")
    return args


def parse_connections(lines, schema, rules=()):
    """Each text line (``value``) as the schema's typed columns, plus ``raw`` and ``malformed``: NULL, or
    how the line fails (the last way: a typed value breaks one of ``rules``). Other columns of ``lines``
    pass through.

    In three projections, so the line is split once and each cell cast once (the optimizer keeps a
    projection apart when merging it would repeat an expensive expression).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    passed_on = [c for c in lines.columns if c != "value"]
    split = lines.select(F.col("value").alias("raw"), F.split("value", ",", -1).alias("_cells"), *passed_on)
    cells = [F.get("_cells", index) for index in range(len(schema.fields))]
    typed = split.select(
        "*",
        *[
            (cell if isinstance(f.dataType, StringType) else cell.try_cast(f.dataType)).alias(f.name)
            for cell, f in zip(cells, schema.fields, strict=True)
        ],
    )
    fits = F.size("_cells") == len(schema.fields)
    for field in schema.fields:
        column = F.col(field.name)
        fits = fits & ((column != "") if isinstance(field.dataType, StringType) else column.isNotNull())
    in_range = F.lit(True)
    for rule in rules:
        in_range = in_range & F.expr(rule.text)
    # The whole-line test appears once: the code Spark generates for 42 casts is near the size the JVM
    # still compiles, and a second copy of it made the job a third slower. A value a rule refuses is
    # out of range; one that is no number leaves its rule NULL, so it falls through to non_numeric.
    malformed = (  # CASE stops at the first match: the later tests run for the few bad lines only
        F.when(fits & in_range, F.lit(None))
        .when(F.size("_cells") != len(schema.fields), F.lit("wrong_column_count"))
        .when(F.array_contains("_cells", ""), F.lit("empty_field"))
        .when(~in_range, F.lit("out_of_range"))
        .otherwise(F.lit("non_numeric"))
    )
    return typed.select("raw", malformed.alias("malformed"), *schema.fieldNames(), *passed_on)


def malformed_reason(schema, rules=()):
    """The reason a parsed malformed line is rejected: its kind and the first column (or count) at fault."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    cells = F.split("raw", ",", -1)
    empty, non_numeric = [], []
    for index, field in enumerate(schema.fields):
        cell = F.get(cells, index)
        empty.append(F.when(cell == "", F.lit(field.name)))
        if not isinstance(field.dataType, StringType):
            quoted = F.concat(F.lit(f"{field.name}='"), cell, F.lit("'"))
            non_numeric.append(F.when(cell.try_cast(field.dataType).isNull(), quoted))
    count = F.concat(F.size(cells).cast("string"), F.lit(f" fields, expected {len(schema.fields)}"))
    broken = [
        F.when(
            ~F.expr(rule.text),
            F.concat(
                F.lit(f"{rule.column}="),
                F.col(rule.column).cast("string"),
                F.lit(f" violates rule {rule.text}"),
            ),
        )
        for rule in rules
    ]
    detail = (
        F.when(F.col("malformed") == "wrong_column_count", count)
        .when(F.col("malformed") == "empty_field", F.coalesce(*empty))
        .when(F.col("malformed") == "non_numeric", F.coalesce(*non_numeric))
        .otherwise(F.coalesce(*broken, F.lit("")))
    )
    return F.concat(F.col("malformed"), F.lit(": "), detail)


def fine_aggregate(connections):
    """The one pass over the data: counts and sums per (protocol_type, service, label) of the valid lines.

    Malformed lines form groups of their own, keyed by kind, raw text and source (NULL for valid lines),
    so the same pass counts them and keeps them for the dead letters; a filter on the parsed lines would
    be pushed below the parsing and evaluated there at great cost.
    """
    from pyspark.sql import functions as F

    valid = F.col("malformed").isNull()
    keys = [F.col("malformed")]
    keys += [F.when(valid, F.col(c)).alias(c) for c in ("protocol_type", "service", "label")]
    keys += [F.when(~valid, F.col(c)).alias(c) for c in ("raw", "source")]
    sums = [F.sum(F.when(valid, F.col(c))).alias(c) for c in SUMMED]
    return connections.groupBy(*keys).agg(F.count(F.lit(1)).alias("connections"), *sums)


def roll_up(rows: list[dict]) -> dict:
    """Every aggregate (pandas frames keyed by name in AGGREGATES) from the fine aggregate's valid rows."""
    import numpy as np
    import pandas as pd

    fine = pd.DataFrame([row for row in rows if row["malformed"] is None])
    if fine.empty:
        fine = pd.DataFrame(columns=["protocol_type", "service", "label", "connections", *SUMMED])
    fine = fine.astype({"connections": "int64", **dict.fromkeys(SUMMED, "int64")})
    fine["attack_category"] = fine["label"].str.rstrip(".").map(ATTACK_CATEGORY).fillna(UNKNOWN_CATEGORY)
    fine["state"] = np.where(fine["attack_category"] == "normal", "no attack", "attack")
    total = fine["connections"].sum()

    def counts(by: list[str]) -> pd.DataFrame:
        frame = fine.groupby(by, as_index=False)["connections"].sum()
        frame["share"] = frame["connections"] / total
        return frame.sort_values(
            ["connections", *by], ascending=[False, *[True] * len(by)], ignore_index=True
        )

    per_state = fine.groupby(["protocol_type", "state"], as_index=False)[["connections", *SUMMED]].sum()
    attack_stats = pd.DataFrame(
        {
            "protocol_type": per_state["protocol_type"],
            "state": per_state["state"],
            "connections": per_state["connections"],
            "mean_src_bytes": per_state["src_bytes"] / per_state["connections"],
            "mean_dst_bytes": per_state["dst_bytes"] / per_state["connections"],
            "mean_duration": per_state["duration"] / per_state["connections"],
            "total_failed_logins": per_state["num_failed_logins"],
            "total_compromised": per_state["num_compromised"],
            "total_file_creations": per_state["num_file_creations"],
            "total_root_attempts": per_state["su_attempted"],
            "total_root_accesses": per_state["num_root"],
        }
    )
    attack_stats = attack_stats.sort_values(
        ["connections", "protocol_type", "state"], ascending=[False, True, True], ignore_index=True
    )

    by_category = counts(["attack_category"])
    by_category["labels"] = by_category["attack_category"].map(
        fine.groupby("attack_category")["label"].nunique()
    )

    attacks = fine[fine["state"] == "attack"]
    per_category = attacks.groupby(["service", "attack_category"], as_index=False)["connections"].sum()
    services = (
        per_category.sort_values(["connections", "attack_category"], ascending=[False, True])
        .groupby("service", as_index=False)
        .agg(attacks=("connections", "sum"), top_category=("attack_category", "first"))
    )
    services["connections"] = services["service"].map(fine.groupby("service")["connections"].sum())
    services["attack_share"] = services["attacks"] / services["connections"]
    top = services.sort_values(["attacks", "service"], ascending=[False, True], ignore_index=True)
    top = top.head(TOP_SERVICES)
    top.insert(0, "rank", range(1, len(top) + 1))
    return {
        "attack_stats": attack_stats,
        "connections_by_protocol": counts(["protocol_type"]),
        "connections_by_label": counts(["label", "attack_category"]),
        "connections_by_category": by_category,
        "top_attacked_services": top,
    }


def write_malformed(groups, schema, rules, output: str) -> None:
    """The malformed lines, one dead letter each with its reason, in ``output/malformed/``."""
    from pyspark.sql import functions as F

    lines = groups.filter(F.col("malformed").isNotNull()).select(
        F.col("raw").alias("value"), "source", "connections"
    )
    parsed = parse_connections(lines, schema, rules)  # typed again (few lines): the reasons name values
    letters = parsed.select(
        "source",
        "raw",
        malformed_reason(schema, rules).alias("reason"),
        F.explode(F.array_repeat(F.lit(1), F.col("connections").cast("int"))),  # one per occurrence
    )
    write_dead_letters(letters, f"{output.rstrip('/')}/malformed")


def valid_connections(parsed, schema):
    """The valid connections of ``parsed`` (parse_connections' frame) as one Arrow table on the driver.

    A second read of the input: a filter on ``malformed`` would be pushed below the parsing and re-split
    each line for every column, so every line comes to the driver with its kind and the filter runs
    there, on Arrow.
    """
    import pyarrow.compute as pc

    table = parsed.select("malformed", *schema.names).toArrow()
    table = table.filter(pc.is_null(table["malformed"])).select(schema.names)
    return table.cast(schema.to_arrow())


def analyse(spark, input_uri: str, output: str, bq_table: str | None = None) -> dict:
    """Run the analysis; return the summary (also written to ``output/summary.json``)."""
    from pyspark.sql import functions as F

    started = time.monotonic()
    table_schema = job_schema("kdd_connections")
    schema, rules = table_schema.to_spark(), catalog_rules("kdd_connections", table_schema)
    log.info("reading %s (one pass: parse, check, aggregate)", input_uri)
    lines = spark.read.text(input_uri).withColumn("source", F.col("_metadata.file_path"))
    parsed = parse_connections(lines, schema, rules)
    groups = fine_aggregate(parsed).cache()  # small: read twice below
    kinds = groups.groupBy("malformed").agg(F.sum("connections").alias("lines")).collect()
    malformed = dict.fromkeys(MALFORMED_KINDS, 0) | {
        r["malformed"]: r["lines"] for r in kinds if r["malformed"]
    }
    valid = next((r["lines"] for r in kinds if r["malformed"] is None), 0)
    log.info(
        "read %s lines: %s valid, %s malformed",
        f"{valid + sum(malformed.values()):,}",
        f"{valid:,}",
        malformed,
    )

    if sum(malformed.values()):
        write_malformed(groups, schema, rules, output)
    else:
        remove(output, "malformed")
    rows = [
        row.asDict() for row in groups.filter(F.col("malformed").isNull()).drop("raw", "source").collect()
    ]
    groups.unpersist()
    schemas = {name: job_schema(schema) for name, schema in AGGREGATES.items()}
    frames = {name: frame[schemas[name].names] for name, frame in roll_up(rows).items()}
    tables = {name: arrow_table(frame, schemas[name]) for name, frame in frames.items()}
    written = [uri for name, table in tables.items() for uri in write_table(output, name, table)]
    written += kdd_report.write_report(output, frames, valid, malformed)
    log.info("wrote %d files under %s", len(written), output)
    loaded = []
    if bq_table:
        project, dataset, main_table = bigquery_id(bq_table, 3)
        for name, table in tables.items():
            table_id = f"{project}.{dataset}.{main_table if name == 'attack_stats' else name}"
            loaded.append(load_bigquery(table, table_id, schemas[name]))
        load_started = time.monotonic()
        connections = valid_connections(parsed, table_schema)
        loaded.append(load_bigquery(connections, f"{project}.{dataset}.kdd_connections", table_schema))
        log.info(
            "loaded %s connections into kdd_connections in %.1f s",
            f"{connections.num_rows:,}",
            time.monotonic() - load_started,
        )
        log.info("loaded %d tables into BigQuery: %s", len(loaded), ", ".join(loaded))
    summary = {
        "input": input_uri,
        "output": output,
        "rows": valid + sum(malformed.values()),
        "valid": valid,
        "malformed": malformed,
        "aggregates": {name: table.num_rows for name, table in tables.items()},
        "bigquery_tables": loaded,
        "files": written,
        "seconds": round(time.monotonic() - started, 2),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json(output, "summary.json", summary)
    return summary


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    setup_logging("kdd_analysis", args)
    threading.Thread(target=kdd_report.warm_up, daemon=True).start()  # while the JVM starts
    with user_errors("kdd_analysis"):
        require_storage("kdd_analysis", args.input, args.output)
        spark = spark_session("kdd_analysis")
        with progress(spark, args.progress_seconds):
            summary = analyse(spark, args.input, args.output, args.bq_table)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
