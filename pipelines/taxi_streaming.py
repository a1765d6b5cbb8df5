"""Streaming taxi rides: Pub/Sub -> validated, de-duplicated events and event-time aggregates in BigQuery.

Reads ride events in the public ``taxirides-realtime`` JSON format and writes, in ``--output_dataset``:
``ride_events`` (every valid event once), ``ride_dead_letter`` (malformed messages, with the raw payload
and the reason), ``rides_per_minute`` (1-minute windows) and ``rides_by_area`` (pickups per geohash
area, 5-minute windows sliding every minute). Panes fire early every ``--firing_seconds``, on time at the
watermark, and late for data up to ``--allowed_lateness`` seconds behind; the latest pane of a
``window_key`` (highest ``emitted_at``) holds the window's whole count.

Locally (the DirectRunner's streaming engine, BundleBasedDirectRunner; the local stack from ``make up``)::

    python -m pipelines.taxi_streaming --input_topic rides --output_dataset taxi --duration_seconds 60

On Dataflow (Beam's own Pub/Sub source, which de-duplicates on the ``event_id`` attribute)::

    python -m pipelines.taxi_streaming --runner DataflowRunner --streaming --project P --region R \\
        --temp_location gs://BUCKET/tmp --input_subscription rides-sub --output_dataset taxi --io beam

``--io batched`` (the default here) pulls large batches and acknowledges each message only after its
batch is stored; ``--io beam`` uses ReadFromPubSub and WriteToBigQuery (the runner acknowledges).
``--duration_seconds``, Ctrl-C or SIGTERM end a local run with a drain: the reader stops pulling, every
window fires its final pane, what was read is stored (a second Ctrl-C stops at once). The run's last line
is its accounting: messages read = events stored + duplicates dropped + dead-lettered + left for
redelivery.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    TestOptions,
)

from gcpipe.core import pubsub
from gcpipe.core.clients import ensure_table
from gcpipe.core.config import validate_dataset_id
from gcpipe.core.errors import GcpipeError
from gcpipe.core.schemas import table_spec
from pipelines.common import launcher
from pipelines.common.launcher import target_config
from pipelines.common.options import help_parser, parse_options
from pipelines.common.progress import every
from pipelines.common.runners import choose_runner, runner_help
from pipelines.rides import dedup, subscriptions
from pipelines.rides.accounting import TALLY, Accounting, from_counters
from pipelines.rides.bigquery_writer import flush
from pipelines.rides.connectors import ReadRides, StoreRides, WriteRows
from pipelines.rides.messages import CleanRideMessages
from pipelines.rides.options import PipelineArgumentError, RideOptions, check_ranges
from pipelines.rides.plan import TABLES, RidePlan
from pipelines.rides.pubsub_reader import reset_reading, stop_reading
from pipelines.rides.windows import RideAggregates

__all__ = ["TABLES", "PipelineArgumentError", "build_parser", "build_pipeline", "run"]
_LOG = logging.getLogger("pipelines.taxi_streaming")


def build_parser() -> argparse.ArgumentParser:
    """What ``--help`` prints: every option with its meaning and default."""
    return help_parser("pipelines.taxi_streaming", __doc__, [RideOptions], runner_help(streaming=True))


def build_pipeline(p: beam.Pipeline, plan: RidePlan) -> None:
    """Pub/Sub -> clean (de-duplicate, validate) -> stored events and dead letters, and event-time
    aggregates per minute and per area -> BigQuery."""
    clean = CleanRideMessages(plan.dedup_seconds)
    rides = p | "Read" >> ReadRides(plan, clean.tag) | "Clean" >> beam.ParDo(clean)
    per_minute, by_area = rides | "Aggregate" >> RideAggregates(
        plan.allowed_lateness, plan.firing_seconds, plan.area_firing_seconds, plan.since, clean.tag
    )
    rides | "Store" >> StoreRides(plan)
    per_minute | "WritePerMinute" >> WriteRows(plan, "rides_per_minute")
    by_area | "WriteByArea" >> WriteRows(plan, "rides_by_area")


def _resolve(options: PipelineOptions) -> tuple[RideOptions, str, dict[str, str]]:
    """The options checked, the runner chosen (and ``--io`` for it); the project and the output tables."""
    ride = options.view_as(RideOptions)
    if not (ride.input_topic or ride.input_subscription):
        raise PipelineArgumentError("give --input_topic or --input_subscription.")
    if not ride.output_dataset:
        raise PipelineArgumentError("give --output_dataset (a dataset, or project:dataset).")
    cloud = options.view_as(GoogleCloudOptions)
    project = cloud.project or os.environ.get("GOOGLE_CLOUD_PROJECT")
    dataset = ride.output_dataset
    if ":" in dataset or "." in dataset:
        project, dataset = dataset.replace(":", ".").split(".", 1)
    if not project:
        raise PipelineArgumentError("give --project (or set GOOGLE_CLOUD_PROJECT).")
    validate_dataset_id(f"{project}.{dataset}", "--output_dataset")
    check_ranges(ride)
    cloud.project = project
    options.view_as(StandardOptions).streaming = True
    runner = choose_runner(options, streaming=True)
    _LOG.info("runner %s (%s)", runner.runner, runner.reason)
    if ride.io is None:
        ride.io = "beam" if runner.on_dataflow else "batched"
    return ride, project, {name: f"{project}.{dataset}.{name}" for name in TABLES}


def prepare(project: str, ride: RideOptions, tables: dict[str, str]) -> str | None:
    """Create the tables (DDL from the catalog) and, for a topic, a durable subscription; return it."""
    from google.cloud import bigquery, pubsub_v1

    client = bigquery.Client(project=project)
    for name, table_id in tables.items():
        ensure_table(client, table_spec(name), table_id)
    if ride.input_subscription:
        return pubsub.path(project, "subscriptions", ride.input_subscription)
    if ride.io == "beam":
        return None  # ReadFromPubSub makes its own subscription to the topic
    publisher = pubsub_v1.PublisherClient()
    topic = pubsub.ensure_topic(publisher, pubsub.path(project, "topics", ride.input_topic))
    subscription = pubsub.path(project, "subscriptions", topic.rsplit("/", 1)[1] + "-taxi-streaming")
    if subscriptions.generations(publisher, topic, subscription):  # an earlier run's, maybe rotated since
        return subscription
    return pubsub.ensure_subscription(pubsub_v1.SubscriberClient(), subscription, topic)


def run(argv: list[str] | None = None, save_main_session: bool = True) -> Accounting | None:
    """Run the pipeline until it drains (or, on Dataflow, until its job ends); return its accounting."""
    options = parse_options(argv, [RideOptions], build_parser())
    launch = launcher.apply_log_level(options)
    target = target_config(options)
    target.apply_env()  # the local target's emulators; nothing on gcp
    ride, project, tables = _resolve(options)
    on_dataflow = options.view_as(StandardOptions).runner == "DataflowRunner"
    options.view_as(SetupOptions).save_main_session = save_main_session
    subscription = prepare(project, ride, tables)
    plan = RidePlan.of(
        ride, project, tables, subscription, on_dataflow, time.time(), emulated=target.is_local
    )
    _describe(plan)

    TALLY.reset()
    reset_reading()
    p = beam.Pipeline(options=options)
    build_pipeline(p, plan)
    started = time.monotonic()
    result = p.run()
    if on_dataflow:
        if options.view_as(TestOptions).dry_run:
            _LOG.info("a dry run (--dry_run): the Dataflow job was built and not submitted")
            return None
        return _report(_wait_on_dataflow(result, plan), started)
    return _report(_wait_here(result, plan, launch.progress_seconds, started), started)


class PipelineFailed(GcpipeError):
    """The pipeline stopped on an error (Beam has logged its trace)."""


def _wait_on_dataflow(result, plan: RidePlan) -> Accounting:
    """The job runs on Google Cloud: wait for its end, or cancel it after ``--duration_seconds``."""
    if plan.duration_seconds:
        time.sleep(plan.duration_seconds)
        result.cancel()
    else:
        result.wait_until_finish()
    return from_counters(result, "not stored when the job ended")


def _wait_here(result, plan: RidePlan, progress_seconds: float, started: float) -> Accounting:
    """Until the local run ends: it drains after ``--duration_seconds`` or at the first Ctrl-C or SIGTERM
    (with --io beam, whose reader cannot drain, it is cancelled then); a second signal stops it at once."""
    with _stopped_by_signals() as stop, every(progress_seconds, _LOG, _progress()):
        try:
            if plan.io == "batched":
                _until_finished(result)
                flush()  # the rows still with the writer threads, and their acknowledgements
            else:
                failed: list[Exception] = []
                waiter = threading.Thread(target=_until_finished, args=(result, failed, stop), daemon=True)
                waiter.start()
                stop.wait(plan.duration_seconds)  # the time, a signal, or the pipeline's end
                if failed:
                    raise failed[0]
                result.cancel()
        except KeyboardInterrupt:  # the second signal
            result.cancel()
            _report(_accounting(plan), started)
            raise SystemExit(130) from None
    return _accounting(plan)


def _until_finished(result, failed: list | None = None, ended: threading.Event | None = None) -> None:
    """Wait for the pipeline's end; its error as one sentence (into ``failed`` if given)."""
    try:
        result.wait_until_finish()
    except Exception as err:  # Beam has logged the trace; the user needs the sentence
        error = PipelineFailed(f"the pipeline failed: {str(err).splitlines()[0] if str(err) else repr(err)}")
        if failed is None:
            raise error from err
        failed.append(error)
    finally:
        if ended:
            ended.set()


def _accounting(plan: RidePlan) -> Accounting:
    """The run's accounting here, from the process's tally."""
    if plan.io == "batched":
        return TALLY.accounting()
    return TALLY.accounting("read, not stored: Beam's reader had acknowledged them")


def _report(accounting: Accounting, started: float) -> Accounting:
    if not accounting.read:
        _LOG.warning("no message arrived: is anything publishing to the topic the subscription reads?")
    launcher.report(accounting.line(time.monotonic() - started))
    return accounting


def _describe(plan: RidePlan) -> None:
    """What the run reads and writes, and until when, logged before it starts."""
    source = plan.subscription or f"a subscription ReadFromPubSub makes for {plan.topic}"
    how = (
        f"batches of up to {plan.batch_size:,}, each message acknowledged once stored"
        if plan.io == "batched"
        else "ReadFromPubSub, which acknowledges each message as it reads it"
    )
    _LOG.info("reading %s (--io %s: %s)", source, plan.io, how)
    _LOG.info("writing %s in %s", ", ".join(plan.tables), plan.tables["ride_events"].rsplit(".", 1)[0])
    if not plan.on_dataflow:
        until = f"for {plan.duration_seconds:g} s" if plan.duration_seconds else "until Ctrl-C or SIGTERM"
        end = "draining" if plan.io == "batched" else "cancelled (Beam's reader cannot drain)"
        _LOG.info("running %s, then %s (a second Ctrl-C stops at once)", until, end)


def _progress():
    """The progress line, from the process's tally."""

    def describe() -> str:
        n = TALLY.accounting()
        return (
            f"so far {n.read:,} messages read: {n.stored:,} events stored, {n.duplicates:,} duplicates "
            f"dropped, {n.dead_lettered:,} dead-lettered, {n.left:,} in flight; "
            f"{dedup.remembered():,} event ids remembered"
        )

    return describe


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[threading.Event]:
    """While the block runs, the first Ctrl-C or SIGTERM drains the run (the reader stops pulling; with
    --io beam, the event yielded is set) and a second raises KeyboardInterrupt (stop at once)."""
    stop = threading.Event()

    def handle(signum, _frame) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        _LOG.warning(
            "%s: draining (no more reading; the final panes fire and what was read is stored); "
            "Ctrl-C again stops at once",
            signal.Signals(signum).name,
        )
        stop.set()
        stop_reading()

    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield stop
        return
    before = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> None:
    launcher.main(run, argv)


if __name__ == "__main__":
    main()
