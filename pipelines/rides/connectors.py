"""Where rides come from and where they go, in either I/O (``--io``): Pub/Sub in, BigQuery out.

* ``batched`` (the local runner): :class:`ReadMessageBatches` pulls large batches
  (``pubsub_reader.py``); :class:`StoreRideBatches` and :class:`InsertRows` hand the rows to writer
  threads, which store them and then acknowledge the messages (``bigquery_writer.py``).
* ``beam`` (Dataflow): Beam's ``ReadFromPubSub`` (one message a batch) and ``WriteToBigQuery``
  (streaming inserts; the rows BigQuery refuses become dead letters); the runner acknowledges and
  checkpoints. Beam's counters (``rides`` namespace) give a Dataflow job's accounting; run here, the
  tally does (Beam's streaming DirectRunner reports only each counter's last bundle).
"""

from __future__ import annotations

import time

import apache_beam as beam
from apache_beam.io.gcp.bigquery_tools import RetryStrategy
from apache_beam.metrics import Metrics

from gcpipe.core import pubsub
from pipelines.rides.accounting import NAMESPACE, TALLY
from pipelines.rides.bigquery_writer import InsertRows, StoreRideBatches, rejected_row
from pipelines.rides.messages import EVENT_ID, EVENT_TIME, MessageBatch, RideBatch, RideMessage, event_rows
from pipelines.rides.plan import RidePlan
from pipelines.rides.pubsub_reader import ReadMessageBatches


class ReadRides(beam.PTransform):
    """Pub/Sub -> MessageBatch elements (with ``--io batched``, a restart's rebuilt windows first).

    ``memory``: the tag of the duplicate memory the rebuild fills (``CleanRideMessages.tag``)."""

    def __init__(self, plan: RidePlan, memory: str | None = None):
        super().__init__()
        self.plan, self.memory = plan, memory

    def expand(self, pbegin):
        plan = self.plan
        if plan.io == "batched":
            return pbegin | "ReadMessageBatches" >> ReadMessageBatches(
                plan.subscription,
                batch_size=plan.batch_size,
                batch_seconds=plan.batch_seconds,
                max_outstanding=plan.max_outstanding,
                watermark_delay=plan.watermark_delay,
                stop_after=plan.duration_seconds,
                rebuild=plan.rebuild,
                memory=self.memory,
                topic=pubsub.path(plan.project, "topics", plan.topic) if plan.rotate else None,
            )
        read = beam.io.ReadFromPubSub(
            topic=None if plan.subscription else pubsub.path(plan.project, "topics", plan.topic),
            subscription=plan.subscription,
            with_attributes=True,
            timestamp_attribute=EVENT_TIME,
            id_label=EVENT_ID if plan.on_dataflow else None,  # the DirectRunner does not support it
        )
        return pbegin | "ReadFromPubSub" >> read | "AsBatches" >> beam.Map(_as_batch)


_MESSAGES = Metrics.counter(NAMESPACE, "messages")
_REJECTED = Metrics.counter(NAMESPACE, "rejected")


def _as_batch(message) -> MessageBatch:
    _MESSAGES.inc()
    TALLY.read(1)
    published = message.publish_time.timestamp() if message.publish_time else time.time()
    return MessageBatch(
        [RideMessage(message.data, dict(message.attributes or {}), message.message_id, published)]
    )


def _events(batch: RideBatch) -> list[dict]:
    """The batch's events as rows for WriteToBigQuery; the batch counted as settled here (the reader has
    acknowledged it already)."""
    TALLY.settled(len(batch.events), batch.duplicates, len(batch.dead_letters))
    return event_rows(batch)


def _rejected(_, row: dict, errors) -> dict:
    _REJECTED.inc()
    TALLY.refused(1)
    return rejected_row(row, str(errors))


def _write(table: str) -> beam.io.WriteToBigQuery:
    return beam.io.WriteToBigQuery(
        table,
        create_disposition=beam.io.BigQueryDisposition.CREATE_NEVER,
        write_disposition=beam.io.BigQueryDisposition.WRITE_APPEND,
        method=beam.io.WriteToBigQuery.Method.STREAMING_INSERTS,
        insert_retry_strategy=RetryStrategy.RETRY_ON_TRANSIENT_ERROR,
    )


class StoreRides(beam.PTransform):
    """RideBatch elements -> ride_events (each valid event once) and ride_dead_letter (malformed messages
    and the rows BigQuery refuses); with ``--io batched`` each message acknowledged once stored."""

    def __init__(self, plan: RidePlan):
        super().__init__()
        self.plan = plan

    def expand(self, rides):
        events, dead_letters = self.plan.tables["ride_events"], self.plan.tables["ride_dead_letter"]
        if self.plan.io == "batched":
            store = StoreRideBatches(events, dead_letters, self.plan.subscription, load=self.plan.load_events)
            return rides | "StoreAndAck" >> beam.ParDo(store)
        stored = rides | "Events" >> beam.FlatMap(_events) | "WriteEvents" >> _write(events)
        refused = stored.failed_rows_with_errors | "Rejected" >> beam.MapTuple(_rejected)
        malformed = rides | "DeadLetters" >> beam.FlatMap(lambda batch: batch.dead_letters)
        return (
            (malformed, refused)
            | "AllDeadLetters" >> beam.Flatten()
            | "WriteDeadLetters" >> _write(dead_letters)
        )


class WriteRows(beam.PTransform):
    """Aggregate rows (one a pane) -> their table, appended."""

    def __init__(self, plan: RidePlan, table: str):
        super().__init__()
        self.io, self.table = plan.io, plan.tables[table]

    def expand(self, rows):
        if self.io == "batched":
            return rows | "InsertRows" >> beam.ParDo(InsertRows(self.table))
        return rows | "WriteToBigQuery" >> _write(self.table)
