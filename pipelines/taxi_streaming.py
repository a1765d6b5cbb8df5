"""Streaming taxi rides: Pub/Sub -> validated, de-duplicated events and event-time aggregates in BigQuery.

Reads ride events in the public ``taxirides-realtime`` JSON format and writes, in ``--output_dataset``:
``ride_events`` (every valid event once), ``ride_dead_letter`` (malformed messages, with the raw payload
and the reason), ``rides_per_minute`` (1-minute windows) and ``rides_by_area`` (pickups per geohash
area, 5-minute windows sliding every minute). Panes fire early every ``--firing_seconds``, on time at the
watermark, and late for data up to ``--allowed_lateness`` seconds behind; the latest pane of a
``window_key`` (highest ``emitted_at``) holds the window's whole count.

Locally (BundleBasedDirectRunner; ``source .gcpipe/env`` or run it through ``gcpipe``)::

    python -m pipelines.taxi_streaming --input_topic rides --output_dataset taxi --duration_seconds 60

On Dataflow (Beam's own Pub/Sub source, which de-duplicates on the ``event_id`` attribute)::

    python -m pipelines.taxi_streaming --runner DataflowRunner --streaming --project P --region R \\
        --temp_location gs://BUCKET/tmp --input_subscription rides-sub --output_dataset taxi --io beam

``--io batched`` (the default on the DirectRunner) pulls large batches and acknowledges each message only
after its batch is stored; ``--io beam`` uses ReadFromPubSub and WriteToBigQuery (the runner acknowledges).
``--duration_seconds`` bounds a local run: the reader stops pulling, every window fires its final pane,
and the pipeline ends (a drain).
"""

from __future__ import annotations

import logging
import os
import time

import apache_beam as beam
from apache_beam.io.gcp.bigquery_tools import RetryStrategy
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions

from gcpipe.core import pubsub
from gcpipe.core.clients import ensure_table
from gcpipe.core.config import load_config, validate_dataset_id
from gcpipe.core.errors import GcpipeError
from gcpipe.core.schemas import table_spec
from pipelines.transforms.bigquery_rows import InsertRows, StoreRideBatches, flush, rejected_row
from pipelines.transforms.pubsub_batches import ReadMessageBatches, Replay
from pipelines.transforms.ride_messages import (
    EVENT_ID,
    EVENT_TIME,
    CleanRideMessages,
    MessageBatch,
    RideMessage,
    event_rows,
)
from pipelines.transforms.ride_windows import AREA_WINDOW, MINUTE, RideAggregates

TABLES = ("ride_events", "ride_dead_letter", "rides_per_minute", "rides_by_area")
DIRECT_RUNNERS = ("BundleBasedDirectRunner", "DirectRunner", None)


class RideOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--input_topic", help="Topic to read (a subscription is made for it).")
        source.add_argument("--input_subscription", help="Subscription to read.")
        parser.add_argument("--output_dataset", help="BigQuery dataset (or project:dataset) to write.")
        parser.add_argument(
            "--allowed_lateness", type=float, default=300, help="Seconds late data still counts."
        )
        parser.add_argument("--firing_seconds", type=int, default=3, help="Early/late panes every N seconds.")
        parser.add_argument(
            "--area_firing_seconds", type=int, default=10, help="Early/late heat-map panes every N seconds."
        )
        parser.add_argument("--duration_seconds", type=float, default=None, help="Run this long, then drain.")
        parser.add_argument("--io", choices=("batched", "beam"), default=None, help="Pub/Sub + BigQuery I/O.")
        parser.add_argument(
            "--events_write_method",
            choices=("load_jobs", "streaming_inserts"),
            default="load_jobs",
            help="ride_events with --io batched: micro-batch load jobs (the emulator) or insertAll (BigQuery).",
        )
        parser.add_argument(
            "--dedup_seconds", type=float, default=600, help="How long event ids are remembered."
        )
        parser.add_argument(
            "--watermark_delay", type=float, default=2.0, help="Event-to-publish slack (batched)."
        )
        parser.add_argument(
            "--batch_seconds", type=float, default=0.5, help="Longest pull per batch (batched)."
        )
        parser.add_argument(
            "--batch_size", type=int, default=10_000, help="Most messages per batch (batched)."
        )
        parser.add_argument("--max_outstanding", type=int, default=20_000, help="Flow control (batched).")
        parser.add_argument(
            "--replay_seconds",
            type=float,
            default=None,
            help="At start, re-aggregate stored events this recent (at least and by default: the heat map's "
            "window + lateness; 0: off).",
        )


class PipelineArgumentError(GcpipeError):
    pass


def _resolve(options: PipelineOptions) -> tuple[RideOptions, str, dict[str, str]]:
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
    _check_ranges(ride)
    cloud.project = project
    standard = options.view_as(StandardOptions)
    standard.streaming = True
    standard.runner = standard.runner or "BundleBasedDirectRunner"  # the plain DirectRunner tries Prism first
    if ride.io is None:
        ride.io = "batched" if standard.runner in DIRECT_RUNNERS else "beam"
    return ride, project, {name: f"{project}.{dataset}.{name}" for name in TABLES}


def _check_ranges(ride: RideOptions) -> None:
    at_least = {
        "--allowed_lateness": (ride.allowed_lateness, 0),
        "--firing_seconds": (ride.firing_seconds, 1),
        "--area_firing_seconds": (ride.area_firing_seconds, 1),
        "--dedup_seconds": (ride.dedup_seconds, 0),
        "--watermark_delay": (ride.watermark_delay, 0),
        "--batch_size": (ride.batch_size, 1),
        "--max_outstanding": (ride.max_outstanding, 1),
        "--batch_seconds": (ride.batch_seconds, 0.01),
    }
    for flag, (value, low) in at_least.items():
        if not value >= low:  # NaN too
            raise PipelineArgumentError(f"{flag} must be at least {low}, not {value}.")
    if ride.duration_seconds is not None and not ride.duration_seconds > 0:
        raise PipelineArgumentError(f"--duration_seconds must be positive, not {ride.duration_seconds}.")
    horizon = AREA_WINDOW + ride.allowed_lateness
    if ride.replay_seconds and not ride.replay_seconds >= horizon:
        raise PipelineArgumentError(
            f"--replay_seconds must be 0 (off) or at least {horizon:g} (the heat map's window plus "
            "--allowed_lateness): a shorter replay would rebuild windows that can still change from part "
            "of their events."
        )


def replay_since(ride: RideOptions, now: float) -> float | None:
    """Where a (re)started pipeline's replay begins: a minute boundary, so its windows are whole."""
    seconds = AREA_WINDOW + ride.allowed_lateness if ride.replay_seconds is None else ride.replay_seconds
    return (now - seconds) // MINUTE * MINUTE if seconds > 0 else None


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
    topic = pubsub.ensure_topic(pubsub_v1.PublisherClient(), pubsub.path(project, "topics", ride.input_topic))
    subscription = pubsub.path(project, "subscriptions", topic.rsplit("/", 1)[1] + "-taxi-streaming")
    return pubsub.ensure_subscription(pubsub_v1.SubscriberClient(), subscription, topic)


def _as_batch(message) -> MessageBatch:
    published = message.publish_time.timestamp() if message.publish_time else time.time()
    return MessageBatch(
        [RideMessage(message.data, dict(message.attributes or {}), message.message_id, published)]
    )


def build(
    p: beam.Pipeline, ride: RideOptions, project: str, tables: dict[str, str], subscription: str | None
):
    since = replay_since(ride, time.time()) if ride.io == "batched" else None
    if ride.io == "batched":
        batches = p | "Read" >> ReadMessageBatches(
            subscription,
            batch_size=ride.batch_size,
            batch_seconds=ride.batch_seconds,
            max_outstanding=ride.max_outstanding,
            watermark_delay=ride.watermark_delay,
            stop_after=ride.duration_seconds,
            replay=Replay(tables["ride_events"], since) if since is not None else None,
        )
    on_dataflow = p.options.view_as(StandardOptions).runner not in DIRECT_RUNNERS
    if ride.io == "beam":
        read = beam.io.ReadFromPubSub(
            topic=None if subscription else pubsub.path(project, "topics", ride.input_topic),
            subscription=subscription,
            with_attributes=True,
            timestamp_attribute=EVENT_TIME,
            id_label=EVENT_ID if on_dataflow else None,  # the DirectRunner does not support it
        )
        batches = p | "Read" >> read | "AsBatches" >> beam.Map(_as_batch)

    # On Dataflow the reader de-duplicates by id_label itself, and a per-worker memory would drop the
    # messages of retried bundles; the DirectRunner has no id_label and retries nothing: remember here.
    dedup_seconds = 0 if on_dataflow else ride.dedup_seconds
    rides = batches | "Clean" >> beam.ParDo(CleanRideMessages(dedup_seconds))
    per_minute, by_area = rides | "Aggregate" >> RideAggregates(
        ride.allowed_lateness, ride.firing_seconds, ride.area_firing_seconds, since
    )
    if ride.io == "batched":
        rides | "StoreAndAck" >> beam.ParDo(
            StoreRideBatches(
                tables["ride_events"],
                tables["ride_dead_letter"],
                subscription,
                load=ride.events_write_method == "load_jobs",
            )
        )
        per_minute | "WritePerMinute" >> beam.ParDo(InsertRows(tables["rides_per_minute"]))
        by_area | "WriteByArea" >> beam.ParDo(InsertRows(tables["rides_by_area"]))
        return

    def write(table):
        return beam.io.WriteToBigQuery(
            table,
            create_disposition=beam.io.BigQueryDisposition.CREATE_NEVER,
            write_disposition=beam.io.BigQueryDisposition.WRITE_APPEND,
            method=beam.io.WriteToBigQuery.Method.STREAMING_INSERTS,
            insert_retry_strategy=RetryStrategy.RETRY_ON_TRANSIENT_ERROR,
        )

    stored = rides | "Events" >> beam.FlatMap(event_rows) | "WriteEvents" >> write(tables["ride_events"])
    rejected = stored.failed_rows_with_errors | "Rejected" >> beam.MapTuple(
        lambda _, row, errors: rejected_row(row, str(errors))
    )
    dead = rides | "DeadLetters" >> beam.FlatMap(lambda batch: batch.dead_letters)
    (
        (dead, rejected)
        | "AllDeadLetters" >> beam.Flatten()
        | "WriteDeadLetters" >> write(tables["ride_dead_letter"])
    )
    per_minute | "WritePerMinute" >> write(tables["rides_per_minute"])
    by_area | "WriteByArea" >> write(tables["rides_by_area"])


def run(argv: list[str] | None = None, save_main_session: bool = True):
    options = PipelineOptions(argv)
    ride, project, tables = _resolve(options)
    subscription = prepare(project, ride, tables)
    p = beam.Pipeline(options=options)
    build(p, ride, project, tables, subscription)
    result = p.run()
    if ride.duration_seconds and ride.io == "beam":  # Beam's reader cannot drain: stop it after the time
        time.sleep(ride.duration_seconds)
        result.cancel()
        return result
    result.wait_until_finish()
    flush()  # the rows still with the writer thread, and their acknowledgements
    return result


def main(argv: list[str] | None = None) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    load_config().apply_env()  # the local target's emulators; nothing on gcp
    try:
        run(argv)
    except GcpipeError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
