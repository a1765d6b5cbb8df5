"""Batch CSV ingestion: ``python -m pipelines.csv_ingest`` against the per-line way, and DuckDB as the ceiling.

* ours: generated TLC trips (0.1% malformed, every kind) through the pipeline on the DirectRunner to
  validated Parquet files + dead letters, at 100k, 1M and 4M rows; whole commands (interpreter and
  Beam start-up included), and the pipeline's own time (``run``, as the command reports it);
  the 1M-row figure is the fastest of three runs (the baseline, over a minute long, runs once);
* baseline, same run, same runner: the lab's per-line pipeline, ``ReadFromText`` + ``csv.reader`` + a
  dict per row checked by the catalog's row validator, valid rows and dead letters written as JSON lines;
* ceiling: DuckDB's ``read_csv`` of the same file with the schema's types into Parquet, bad rows to its
  rejects table (no rules checked, blank lines skipped silently);
* the same 1M rows into the BigQuery emulator (load jobs, partition replaced).
"""

from __future__ import annotations

import re
import shutil
import sys

from gcpipe.app.bench import BenchContext, Figure, measure
from gcpipe.datagen.taxi_trips import write_trips_csv
from gcpipe.local import stack

BASELINE = """
import csv, json, sys, time
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from gcpipe.core.schemas import table_spec, to_json_row

source, output = sys.argv[1], sys.argv[2]
spec = table_spec("taxi_trips")
names, validator = spec.schema.names, spec.validator()

def parse(line):
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return beam.pvalue.TaggedOutput("dead", {"raw": repr(line), "reason": "not UTF-8"})
    cells = next(csv.reader([text]), [])
    if len(cells) != len(names):
        return beam.pvalue.TaggedOutput("dead", {"raw": text, "reason": "wrong column count"})
    row, reason = validator.validate(dict(zip(names, cells)))
    if reason:
        return beam.pvalue.TaggedOutput("dead", {"raw": text, "reason": reason})
    return to_json_row(row)

started = time.perf_counter()
options = PipelineOptions(["--runner=DirectRunner", "--update_compatibility_version=2.77.0"])
with beam.Pipeline(options=options) as p:
    lines = p | beam.io.ReadFromText(source, skip_header_lines=1, coder=beam.coders.BytesCoder())
    out = lines | beam.Map(parse).with_outputs("dead", main="valid")
    out.valid | "JsonValid" >> beam.Map(json.dumps) | "WriteValid" >> beam.io.WriteToText(output + "/valid")
    out.dead | "JsonDead" >> beam.Map(json.dumps) | "WriteDead" >> beam.io.WriteToText(output + "/dead")
print(f"in {time.perf_counter() - started:.2f} s")
"""

DUCKDB = """
import sys, duckdb
from gcpipe.core.schemas import load_schema
types = {"STRING": "VARCHAR", "INTEGER": "BIGINT", "FLOAT": "DOUBLE", "TIMESTAMP": "TIMESTAMP"}
columns = {f.name: types[f.type] for f in load_schema("taxi_trips").fields}
con = duckdb.connect()
con.execute(
    f"COPY (SELECT * FROM read_csv('{sys.argv[1]}', header=true, columns={columns}, store_rejects=true)) "
    f"TO '{sys.argv[2]}' (FORMAT parquet)"
)
con.execute(f"COPY reject_errors TO '{sys.argv[2]}.rejects.parquet' (FORMAT parquet)")
"""

GOAL_RATE, GOAL_RATIO = 150_000, 4.0


def _trips(ctx: BenchContext, rows: int) -> str:
    path = ctx.workdir / f"trips-{rows}.csv"
    if not path.exists():
        write_trips_csv(path, rows, seed=42, malformed=0.001)
    return str(path)


def _ours(ctx: BenchContext, path: str, *extra: str):
    shutil.rmtree(ctx.workdir / "csv_ingest_out", ignore_errors=True)  # each run writes a folder of its own
    command = [
        sys.executable,
        "-m",
        "pipelines.csv_ingest",
        "--input",
        path,
        "--schema",
        "taxi_trips",
        "--partition_date",
        "2019-03-01",
        "--output",
        str(ctx.workdir / "csv_ingest_out"),
        *extra,
    ]
    return measure(command)


def _pipeline_seconds(stdout: str) -> float:
    return float(re.findall(r"in ([\d.]+) s", stdout)[-1])


def run(ctx: BenchContext) -> list[Figure]:
    figures = []
    rows = ctx.size(1_000_000, 20_000)
    path = _trips(ctx, rows)
    # The fastest of three (a few seconds each): other work on a shared machine only ever slows a run down.
    ours = min((_ours(ctx, path) for _ in range(3)), key=lambda m: m.seconds)
    baseline = measure([sys.executable, "-c", BASELINE, path, str(ctx.workdir / "csv_ingest_baseline")])
    rate, base_rate = rows / ours.seconds, rows / baseline.seconds
    figures.append(
        Figure(
            f"{rows:,} trips -> Parquet + dead letters (whole command, best of 3)",
            rate,
            "rows/s",
            baseline=base_rate,
            baseline_name="per-line ReadFromText + csv.reader + dict",
            goal=f">= {GOAL_RATE:,} rows/s and >= {GOAL_RATIO:.0f}x",
            met=rate >= GOAL_RATE and rate / base_rate >= GOAL_RATIO,
            peak_memory_mb=ours.peak_memory_mb,
        )
    )
    figures.append(
        Figure(
            f"{rows:,} trips, pipeline time (start-up excluded)",
            rows / _pipeline_seconds(ours.stdout),
            "rows/s",
            baseline=rows / _pipeline_seconds(baseline.stdout),
            baseline_name="per-line pipeline, same measure",
        )
    )
    duck = measure([sys.executable, "-c", DUCKDB, path, str(ctx.workdir / "duckdb.parquet")])
    figures.append(
        Figure(
            f"{rows:,} trips vs the ceiling, DuckDB read_csv",
            rate,
            "rows/s",
            baseline=rows / duck.seconds,
            baseline_name="DuckDB read_csv (types only, no rules)",
            peak_memory_mb=duck.peak_memory_mb,
        )
    )
    for size in (ctx.size(100_000, 5_000), ctx.size(4_000_000, 50_000)):
        scaled = _ours(ctx, _trips(ctx, size))
        figures.append(
            Figure(
                f"scaling: {size:,} trips (whole command)",
                size / scaled.seconds,
                "rows/s",
                peak_memory_mb=scaled.peak_memory_mb,
                note=f"pipeline {_pipeline_seconds(scaled.stdout):.1f} s",
            )
        )
    figures.append(_into_bigquery(ctx, path, rows))
    return figures


def _into_bigquery(ctx: BenchContext, path: str, rows: int) -> Figure:
    outcome = stack.up(ctx.config, ["metadata", "bigquery"], report=lambda *_: None)
    try:
        table = f"{ctx.config.project}.{ctx.config.dataset('taxi')}.bench_taxi_trips"
        loaded = _ours(ctx, path, "--table", table)
    finally:
        started = [name for name, state in outcome.items() if state == "started"]
        if started:
            stack.down(ctx.config, started, report=lambda *_: None)
    return Figure(
        f"{rows:,} trips -> BigQuery emulator, partition replaced",
        rows / loaded.seconds,
        "rows/s",
        peak_memory_mb=loaded.peak_memory_mb,
    )
