"""``gcpipe demo``: the whole platform, end to end, on the local target.

The demo is a list of stages: the stack, the warehouse's tables and the data first, then one stage per
flow of the registry (gcpipe.flows.registry), in its order, running the flow's steps, and last one DAG run
through Airflow. Each stage takes the run's context, does its work against the local stack and returns a
one-line summary of what it produced and where to look. A failed stage stops the run with its message;
the report is written all the same: the stages that ran, the one that failed (marked), those not run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import click
from rich.table import Table

from gcpipe.app import demo_report
from gcpipe.app.dashboard import queries
from gcpipe.core import pubsub
from gcpipe.core.clients import bigquery_client, ensure_table, row_count
from gcpipe.core.config import Config, load_config
from gcpipe.core.errors import GcpipeError
from gcpipe.core.schemas import load_tables
from gcpipe.core.ui import console, print_table, progress
from gcpipe.datagen.ecommerce import write_sessions
from gcpipe.datagen.kdd import write_kdd
from gcpipe.datagen.rentals import write_rentals
from gcpipe.datagen.ride_publisher import publish_rides
from gcpipe.datagen.taxi_trips import write_trips_csv
from gcpipe.flows.ecommerce import ECOMMERCE, run_ecommerce_flow
from gcpipe.flows.registry import CHECK, FLOWS, flow
from gcpipe.flows.run import run_sql_steps
from gcpipe.flows.streaming import start_pipeline, stop_pipeline, wait_until_reading
from gcpipe.local import stack
from gcpipe.spark.jobs import JOBS, cloudsql_args, job_args, run_local, stage_in_bucket
from gcpipe.warehouse import cloudsql
from pipelines import csv_ingest


@dataclass
class DemoContext:
    config: Config
    lake: Path
    scale: float = 1.0  # multiplies data sizes; tests run the demo small
    facts: dict[str, object] = field(default_factory=dict)  # what stages hand to later stages

    def rows(self, n: int) -> int:
        return max(100, int(n * self.scale))


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[DemoContext], str]


class StageFailed(Exception):
    """A stage raised: the run stops; what ran so far (``results``, the failed stage last) is reported.
    The stage's own error is the cause."""

    def __init__(self, stage: str, ctx: DemoContext, results: list):
        super().__init__(stage)
        self.stage, self.ctx, self.results = stage, ctx, results


def _stack(ctx: DemoContext) -> str:
    outcome = stack.up(ctx.config, report=lambda *_: None)
    return ", ".join(f"{name} {state}" for name, state in outcome.items())


def _warehouse(ctx: DemoContext) -> str:
    client = bigquery_client(ctx.config)
    tables = load_tables()
    for spec in tables.values():
        ensure_table(client, spec, spec.table_id(ctx.config))
    datasets = sorted({ctx.config.dataset(spec.dataset_key) for spec in tables.values()})
    return f"{len(tables)} tables from sql/schemas in datasets {', '.join(datasets)}"


def _datagen(ctx: DemoContext) -> str:
    landing = ctx.lake / "landing"
    day = date(2019, 3, 1)
    trips = write_trips_csv(
        landing / "taxi_trips" / day.isoformat() / "trips.csv", ctx.rows(200_000), malformed=0.001, start=day
    )
    kdd = write_kdd(landing / "kdd" / "kddcup.data.gz", ctx.rows(494_021), malformed=0.001)
    sessions = write_sessions(landing / "ecommerce" / "ga_sessions.jsonl.gz", ctx.rows(20_000))
    rentals = write_rentals(landing / "rentals")
    ctx.facts.update(trips=trips, kdd=kdd, sessions=sessions, rentals=rentals, trips_date=day)
    return (
        f"{trips.rows:,} taxi trips ({trips.rows - trips.valid} malformed), {kdd.rows:,} KDD connections, "
        f"{sessions.sessions:,} e-commerce sessions, {rentals.ratings:,} ratings, under {landing}"
    )


def _batch_csv(ctx: DemoContext) -> str:
    """The day's trips through the CSV ingestion pipeline, then the flow's SQL: the zones seeded, the trips placed
    in their taxi zone (GIS) by hour of pickup, checked: no trip lost or counted twice."""

    trips, day = ctx.facts["trips"], ctx.facts["trips_date"]
    table = f"{ctx.config.project}.{ctx.config.dataset('taxi')}.taxi_trips"
    result = csv_ingest.run(
        [
            "--input",
            trips.path,
            "--schema",
            "taxi_trips",
            "--table",
            table,
            "--partition_date",
            day.isoformat(),
            "--output",
            str(ctx.lake / "ingest" / "taxi_trips" / day.isoformat()),
        ]
    )
    ctx.facts["ingest"] = result
    run_sql_steps(flow("batch_csv"), ctx.config, bigquery_client(ctx.config))
    name = table.split(".", 1)[1]
    return (
        f"{result.rows_read:,} trips read = {result.rows_loaded:,} loaded into {name} + "
        f"{result.rows_dead_lettered:,} dead-lettered with their reason into {name}_dead_letter; placed in "
        f"their taxi zone by hour (ST_COVERS) into {ctx.config.dataset('taxi')}.trips_by_zone_hour, trips and "
        "revenue conserved (checked); an ARIMA_PLUS model per zone forecasts the next day's hourly pickups "
        f"into {ctx.config.dataset('taxi')}.taxi_demand_forecast"
    )


def _spark_kdd(ctx: DemoContext) -> str:
    """The landed file into the lake bucket, then the job on gs:// through the GCS connector, as on Dataproc."""
    job, bucket = JOBS["kdd_analysis"], ctx.config.bucket
    source, output = f"{bucket}/landing/kdd/kddcup.data.gz", f"{bucket}/kdd/analysis"
    stage_in_bucket(ctx.config, Path(ctx.facts["kdd"].path), source)
    args = job_args(job, ctx.config, ["--input", source, "--output", output])
    summary = json.loads(run_local(job, ctx.config, args).stdout)
    ctx.facts["kdd_analysis"] = summary
    # k-means on the connections the job loaded, then the 1 % furthest from their cluster's centre
    client = bigquery_client(ctx.config)
    run_sql_steps(flow("kdd"), ctx.config, client)
    dataset = ctx.config.dataset("kdd")
    rare = ctx.facts["rare_connections"] = row_count(
        client, f"{ctx.config.project}.{dataset}.rare_connections"
    )
    return (
        f"{summary['valid']:,} connections analysed, {sum(summary['malformed'].values())} malformed lines set "
        f"aside; attack stats in BigQuery {summary['bigquery_tables'][0]}; report: {output}/report/report.md; "
        f"k-means of 4 clusters on {dataset}.kdd_connections, {rare:,} rarest connections "
        f"(ML.DETECT_ANOMALIES) in {dataset}.rare_connections"
    )


def _spark_als(ctx: DemoContext) -> str:
    job, config = JOBS["als_recommend"], ctx.config
    # Into Cloud SQL (the local PostgreSQL), as the lab imports its CSVs.
    cloudsql.load_rentals(config, Path(ctx.facts["rentals"].ratings_path).parent)
    rentals = f"bq://{config.project}.{config.dataset('rentals')}"
    sinks = [config.jdbc_url, f"{config.bucket}/rentals/recommendations", rentals]
    args = job_args(job, config, cloudsql_args(config), [arg for sink in sinks for arg in ("--sink", sink)])
    metrics = json.loads(run_local(job, config, args).stdout)
    ctx.facts["als_recommend"] = metrics
    return (
        f"top 5 unseen accommodations for {metrics['users']} users from Cloud SQL (local PostgreSQL), RMSE "
        f"{metrics['rmse']:.2f} on held-out ratings (the mean rating: {metrics['baseline_rmse']:.2f}); written "
        f"to Cloud SQL, {config.bucket}/rentals/recommendations and BigQuery rentals.recommendations"
    )


def _ecommerce_ml(ctx: DemoContext) -> str:
    client = bigquery_client(ctx.config)
    with progress("e-commerce SQL files", len(ECOMMERCE.demo_steps())) as advance:
        flow = run_ecommerce_flow(ctx.config, ctx.facts["sessions"].path, client, lambda *_: advance())
    metrics = ctx.facts["purchase_model"] = flow.metrics
    ctx.facts["purchase_roc_curve"] = flow.roc_curve
    curves = ctx.facts["purchase_roc_curves"] = flow.results["compare_roc_curves"].rows
    ctx.facts["purchase_confusion_matrices"] = flow.results["confusion_matrices"].rows
    auc = {r["model"]: r["roc_auc"] for r in curves}
    table = Table(*metrics, title="purchase model on the later first visits (ML.EVALUATE)")
    table.add_row(*(str(v) for v in metrics.values()))
    print_table(table)
    dataset = f"{ctx.config.project}.{ctx.config.dataset('ecommerce')}"
    trained, predicted = (
        row_count(client, f"{dataset}.{t}") for t in ("purchase_training", "purchase_predictions")
    )
    checks = len(ECOMMERCE.demo_steps(CHECK))
    return (
        f"{flow.sessions:,} sessions loaded; visitor_sessions, session_funnel, top_products built; {checks} checks "
        f"passed; purchase model trained on {trained:,} first visits, on later ones ROC AUC {metrics['roc_auc']} and "
        f"recall {metrics['recall']} ({metrics['verdict']}); boosted trees beside it: ROC AUC "
        f"{auc['boosted_tree_classifier']:.4g}; {predicted:,} predictions in {dataset}.purchase_predictions"
    )


def _streaming(ctx: DemoContext) -> str:
    """About a minute of simulated rides through Pub/Sub and the streaming pipeline into BigQuery."""

    config, topic = ctx.config, "demo-rides"
    dataset = f"{config.project}.{config.dataset('taxi')}"
    seconds, rate = max(10, round(60 * ctx.scale)), 100
    log = config.state_dir / "logs" / "taxi_streaming.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    bq = bigquery_client(config)
    before = queries.landed(bq, dataset)
    live = _dashboard(config)
    process = start_pipeline(
        topic, dataset, "--duration_seconds", str(seconds + 20), "--firing_seconds", "2", log=log
    )
    try:
        wait_until_reading(
            process, pubsub.path(config.project, "subscriptions", f"{topic}-taxi-streaming"), config
        )
        sent = publish_rides(
            topic, rate, rate * seconds, duplicates=0.01, late=0.01, malformed=0.005, config=config
        )
        console.print("all sent; the pipeline stores the last rides and fires its final panes (about 20 s)")
        process.wait(timeout=seconds + 180)
    finally:
        stop_pipeline(process)  # its whole process group; nothing once it has ended
    if process.returncode:
        raise GcpipeError(f"the streaming pipeline failed: see {log}.")
    run_sql_steps(flow("streaming_rides"), config, bq)  # its freshness check
    after = queries.landed(bq, dataset)
    added = {key: after[key] - before[key] for key in ("events_stored", "dead_letters")}
    ctx.facts.update(rides=after, rides_added=added, rides_sent=sent)
    stored, dead = added["events_stored"], added["dead_letters"]
    return (
        f"{sent.sent:,} ride messages in {seconds} s -> {stored:,} events and {dead} dead letters in {dataset}, "
        f"{after['windows']} one-minute windows; {live}"
    )


def _dashboard(config) -> str:
    """Start the live dashboard as a stack service (it stays up after the demo, until `make down`)."""

    try:
        stack.up(config, ["dashboard"], report=lambda *_: None)
    except stack.StackError as err:  # the stream runs without it; say why it is missing
        console.print(f"no live dashboard: {err}", style="yellow", markup=False)
        return f"no live dashboard ({err})"
    url = stack.SERVICES["dashboard"].url(config) + "/"
    console.print(f"watch the rides arrive live: [bold]{url}[/bold]")
    return f"live dashboard at {url} (up until `make down`)"


def _dag_run(ctx: DemoContext) -> str:
    """One Airflow DAG run end to end: batch_ingest on the local target (``gcpipe dags test``), in a process
    of its own as Airflow reads its settings at import, on the day's trips landed in the stack's lake."""
    import subprocess
    import sys

    day = date(2019, 3, 2)  # a day of its own: the ingestion stage loaded the 1st
    lake = Path(ctx.config.lake)
    trips = write_trips_csv(
        lake / "landing" / "taxi_trips" / day.isoformat() / "trips.csv",
        ctx.rows(20_000),
        malformed=0.001,
        start=day,
    )
    command = [sys.executable, "-m", "gcpipe.app.cli", "dags", "test", "batch_ingest", day.isoformat()]
    log = ctx.config.state_dir / "logs" / "dag_batch_ingest.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        done = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "GCPIPE_QUIET": "1"}
        )
    if done.returncode:
        raise GcpipeError(f"the batch_ingest DAG run failed: see {log}.")
    moved = lake / "processed" / "success" / "taxi_trips" / day.isoformat() / "trips.csv"
    ctx.facts["dag_run"] = {"day": day, "moved": moved}
    return (
        f"batch_ingest for {day}: {trips.rows:,} trips sensed, ingested with Beam, zone summary built, checks "
        "passed, file moved "
        f"to {moved.parent}; the DAG's log: {log}; `make airflow` shows it in the Airflow UI"
    )


def _sentence(err: Exception) -> str:
    """An error as the clause of a sentence: its message without the final period (or its type)."""
    text = str(err).strip().rstrip(".")
    return text if isinstance(err, GcpipeError) else f"{type(err).__name__}: {text}"


# The stage of each flow of the registry; the demo runs them in the registry's order.
FLOW_STAGES: dict[str, Callable[[DemoContext], str]] = {
    "batch_csv": _batch_csv,
    "kdd": _spark_kdd,
    "recommendations": _spark_als,
    "ecommerce": _ecommerce_ml,
    "streaming_rides": _streaming,
}
STAGES: list[Stage] = [
    Stage("local stack", _stack),
    Stage("warehouse tables", _warehouse),
    Stage("generate data", _datagen),
    *(Stage(f.title, FLOW_STAGES[f.name]) for f in FLOWS),
    Stage("one DAG run end to end (Airflow)", _dag_run),
]


def run_demo(config: Config, scale: float = 1.0, lake: Path | None = None) -> tuple[DemoContext, list]:
    """Run every stage in order; return the context and (stage, seconds, summary) for each."""
    ctx = DemoContext(config, lake or Path(config.lake), scale)
    results = []
    for number, stage in enumerate(STAGES, start=1):
        console.rule(f"[bold]{number}/{len(STAGES)} {stage.name}")
        started = time.monotonic()
        try:
            summary = stage.run(ctx)
        except Exception as err:
            results.append((stage.name, time.monotonic() - started, f"{demo_report.FAILED}{_sentence(err)}"))
            raise StageFailed(stage.name, ctx, results) from err
        results.append((stage.name, time.monotonic() - started, summary))
        console.print(f"[green]done[/] in {results[-1][1]:.1f} s: {summary}")
    return ctx, results


@click.command()
@click.option(
    "--scale", default=1.0, show_default=True, help="Multiply the data sizes (0.1 for a quick look)."
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the HTML report (default: .gcpipe/demo/report.html).",
)
def demo(scale: float, report_path: Path | None) -> None:
    """Run the whole platform end to end on the local target."""
    config = load_config(target="local")
    started = time.monotonic()
    failure = None
    try:
        ctx, results = run_demo(config, scale)
    except StageFailed as failed:
        failure, ctx, results = failed, failed.ctx, failed.results
    console.rule("[bold]report")
    not_run = [stage.name for stage in STAGES[len(results) :]]
    report = demo_report.collect(
        ctx, results, time.monotonic() - started, failed=failure and failure.stage, not_run=not_run
    )
    demo_report.print_summary(report)
    page = demo_report.write_html(report, report_path or config.state_dir / "demo" / "report.html")
    if failure:
        cause = failure.__cause__
        where = f"stage {len(results)}/{len(STAGES)} ({failure.stage}) failed"
        if isinstance(cause, GcpipeError):
            raise GcpipeError(
                f"{where}: {_sentence(cause)}; the report of the stages that ran: {page}"
            ) from None
        console.print(f"[red]{where}[/]; the report of the stages that ran: {page}")
        raise cause  # not a user's error: a bug, with its traceback
    console.print(
        f"[bold green]demo finished in {time.monotonic() - started:.0f} s.[/] Report: {page} (open it in a "
        "browser; it works offline). The stack is still up "
        "(`make status`; `make down` stops it); the lake is under "
        f"{config.lake}; `source {stack.env_file(config)}` points bq/clients at the emulators."
    )
