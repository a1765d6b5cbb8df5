"""Read Pub/Sub in large batches on the DirectRunner, acknowledging each message only after it is stored.

The DirectRunner reads ``ReadFromPubSub`` 10 messages a bundle and acknowledges them as soon as they are
pulled, so it tops out near 1,000 messages/s and loses whatever was in flight when the process dies.
``ReadMessageBatches`` is a root transform the DirectRunner evaluates with :class:`_PullEvaluator`
(registered in its evaluator registry on import). A thread pulls ahead (1,000 messages a pull) into a
buffer; each evaluation emits what has arrived, up to ``batch_size`` messages, as one
:class:`MessageBatch` (waiting up to ``batch_seconds`` when nothing has), so batches grow when the
pipeline is busy. Nothing is acknowledged here: the sink calls :func:`acknowledge` once the batch's rows
are in BigQuery. Pulling pauses while ``max_outstanding`` messages await that (flow control), so a slow
sink never lets ack deadlines lapse.

The output watermark is the oldest publish time pulled (the wall clock when idle), less
``watermark_delay``: how far an event's time may trail its publish time and still count as on time.
After ``stop_after`` seconds the reader stops pulling and its watermark jumps to the end of time, so
every window fires its final pane and the pipeline ends, like a Dataflow drain.

Pub/Sub out of reach (or the subscription missing) for up to ``outage_seconds`` is waited out: pulls are
tried again every second; only a longer outage fails the pipeline.

With ``replay``, the first evaluations emit the events stored in ride_events since ``replay.since`` (in
batches of ``batch_size``), flagged ``replayed``: they rebuild the open windows and the de-duplication
memory after a restart, and are not stored again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.runners.direct.transform_evaluator import (
    TransformEvaluatorRegistry,
    TransformResult,
    _TransformEvaluator,
)
from apache_beam.runners.direct.watermark_manager import WatermarkManager
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.timestamp import Timestamp

from gcpipe.core.schemas import to_json_row
from pipelines.transforms.ride_messages import EVENT_ID, MessageBatch, RideMessage

PULL_LIMIT = 1000  # Pub/Sub's most messages in one pull
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replay:
    table: str  # project.dataset.ride_events
    since: float  # epoch seconds, a minute boundary: events from then on are aggregated again


class ReadMessageBatches(beam.PTransform):
    def __init__(
        self,
        subscription: str,
        batch_size: int = 10_000,
        batch_seconds: float = 0.5,
        max_outstanding: int = 20_000,
        watermark_delay: float = 2.0,
        stop_after: float | None = None,
        replay: Replay | None = None,
        outage_seconds: float = 120.0,
    ):
        super().__init__()
        self.subscription, self.batch_size, self.batch_seconds = subscription, batch_size, batch_seconds
        self.max_outstanding, self.watermark_delay = max_outstanding, watermark_delay
        self.stop_after, self.replay, self.outage_seconds = stop_after, replay, outage_seconds
        self.tag = uuid.uuid4().hex

    def expand(self, pbegin):
        return pvalue.PCollection(pbegin.pipeline, is_bounded=False)

    def get_windowing(self, unused_inputs):
        return beam.Windowing(GlobalWindows())


# -- process-wide state: the DirectRunner builds a new evaluator for every bundle ------------------

_CLIENTS: dict[str, object] = {}
_OUTSTANDING: dict[str, int] = {}  # subscription -> messages pulled, not yet acknowledged
_LOCK = threading.Lock()


def _subscriber():
    with _LOCK:
        if "subscriber" not in _CLIENTS:
            from google.cloud import pubsub_v1

            _CLIENTS["subscriber"] = pubsub_v1.SubscriberClient()
        return _CLIENTS["subscriber"]


def _count_outstanding(subscription: str, change: int) -> int:
    with _LOCK:
        _OUTSTANDING[subscription] = _OUTSTANDING.get(subscription, 0) + change
        return _OUTSTANDING[subscription]


def acknowledge(subscription: str, ack_ids: list[str]) -> None:
    """Acknowledge stored messages (in requests of at most 2,500 ids, Pub/Sub's limit).

    The rows are stored already: an acknowledgement Pub/Sub does not take (it is unreachable past the
    client's own retries, or forgot the ids) only means the messages come again, and the de-duplication
    drops them. So it is logged, not fatal.
    """
    from google.api_core import exceptions

    client = _subscriber()
    try:
        for i in range(0, len(ack_ids), 2500):
            client.acknowledge(subscription=subscription, ack_ids=ack_ids[i : i + 2500])
    except (exceptions.ServiceUnavailable, exceptions.NotFound, exceptions.InvalidArgument) as err:
        _LOG.warning("%d stored messages not acknowledged (they will come again): %s", len(ack_ids), err)
    finally:
        _count_outstanding(subscription, -len(ack_ids))


class _Reader:
    """One ReadMessageBatches's pulling, watermark and deadline, across the evaluator's bundles.

    A thread pulls ahead into a buffer, so the runner's one executor thread never waits on Pub/Sub: each
    poll takes what has arrived (waiting up to ``batch_seconds`` only when nothing has).
    """

    _all: dict[str, _Reader] = {}

    def __init__(self, transform: ReadMessageBatches):
        self.t = transform
        self.started = time.monotonic()
        self.watermark = Timestamp(0)
        self.replay_pending = transform.replay is not None
        self.replaying: list[RideMessage] = []
        self.buffer: list[tuple[RideMessage, str]] = []
        self.arrived = threading.Condition()
        self.puller: threading.Thread | None = None
        self.done_pulling = False
        self.error: Exception | None = None

    @classmethod
    def of(cls, transform: ReadMessageBatches) -> _Reader:
        with _LOCK:
            if transform.tag not in cls._all:
                cls._all[transform.tag] = cls(transform)
            return cls._all[transform.tag]

    @property
    def stopped(self) -> bool:
        return self.t.stop_after is not None and time.monotonic() - self.started >= self.t.stop_after

    def _hold(self, oldest: float | None) -> Timestamp:
        now = time.time()
        candidate = Timestamp.of(min(oldest if oldest is not None else now, now) - self.t.watermark_delay)
        self.watermark = max(self.watermark, candidate)
        return self.watermark

    def poll(self) -> tuple[MessageBatch | None, Timestamp, bool]:
        """The next batch (or None), the watermark hold, and whether reading is over."""
        if self.replay_pending:  # held at the replay's start until every replayed event is out
            self.replay_pending = False
            self.replaying = replay_events(self.t.replay)
            self.watermark = Timestamp.of(self.t.replay.since)
        if self.replaying:
            taken, self.replaying = self.replaying[: self.t.batch_size], self.replaying[self.t.batch_size :]
            return MessageBatch(taken, replayed=True), self.watermark, False
        if self.puller is None:
            self.puller = threading.Thread(target=self._pull_ahead, name="ReadMessageBatches", daemon=True)
            self.puller.start()
        with self.arrived:
            if not self.buffer and not self.done_pulling:
                self.arrived.wait(timeout=self.t.batch_seconds)
            taken, self.buffer = self.buffer[: self.t.batch_size], self.buffer[self.t.batch_size :]
            oldest = min((m.publish_time for m, _ in taken + self.buffer[:1]), default=None)
            finished = self.done_pulling and not self.buffer
        if self.error:
            raise self.error
        hold = self._hold(oldest)
        if not taken:
            return None, hold, finished
        return MessageBatch([m for m, _ in taken], [ack for _, ack in taken]), hold, finished

    def _pull_ahead(self) -> None:
        from google.api_core import exceptions

        t = self.t
        outage_since, reached = None, False
        try:
            while not self.stopped:
                room = min(PULL_LIMIT, t.max_outstanding - _count_outstanding(t.subscription, 0))
                if room <= 0:  # flow control: wait for the sink to acknowledge
                    time.sleep(0.02)
                    continue
                try:  # an empty pull waits for messages until its deadline
                    response = _subscriber().pull(
                        subscription=t.subscription, max_messages=room, timeout=1, retry=None
                    )
                except exceptions.DeadlineExceeded:
                    continue
                except (exceptions.ServiceUnavailable, exceptions.NotFound) as err:
                    # Pub/Sub unreachable, or the subscription gone since (an emulator restarted): wait
                    outage_since = outage_since or time.monotonic()
                    never_there = isinstance(err, exceptions.NotFound) and not reached
                    if never_there or time.monotonic() - outage_since > t.outage_seconds:
                        raise
                    _LOG.warning("pulling %s failed, trying again: %s", t.subscription, err)
                    time.sleep(1)
                    continue
                outage_since, reached = None, True
                received = [
                    (
                        RideMessage(
                            bytes(item.message.data),
                            dict(item.message.attributes),
                            item.message.message_id,
                            item.message.publish_time.timestamp(),
                        ),
                        item.ack_id,
                    )
                    for item in response.received_messages
                ]
                if received:
                    _count_outstanding(t.subscription, len(received))
                    with self.arrived:
                        self.buffer.extend(received)
                        self.arrived.notify()
                elif not response.received_messages:
                    time.sleep(0.05)
        except Exception as err:  # surfaced by the next poll, which fails the pipeline
            self.error = err
        finally:
            with self.arrived:
                self.done_pulling = True
                self.arrived.notify()


def replay_events(replay: Replay) -> list[RideMessage]:
    """The events stored since ``replay.since``, as messages again."""
    from google.cloud import bigquery

    client = _CLIENTS.get("bigquery") or _CLIENTS.setdefault("bigquery", bigquery.Client())
    query = f"SELECT * FROM `{replay.table}` WHERE timestamp >= @since"
    since = datetime.fromtimestamp(replay.since, UTC)
    config = bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter("since", "TIMESTAMP", since)]
    )
    messages = []
    for row in client.query(query, job_config=config).result():
        event = to_json_row(dict(row.items()))
        event_id, message_id = event.pop("event_id"), event.pop("message_id")
        messages.append(
            RideMessage(
                json.dumps(event).encode(), {EVENT_ID: event_id}, message_id, row["timestamp"].timestamp()
            )
        )
    return messages


class _PullEvaluator(_TransformEvaluator):
    """The DirectRunner's evaluation of ReadMessageBatches: one poll a bundle, rescheduled until stopped."""

    def start_bundle(self):
        pass

    def process_element(self, element):
        pass

    def finish_bundle(self) -> TransformResult:
        batch, hold, finished = _Reader.of(self._applied_ptransform.transform).poll()
        bundles = []
        if batch:
            bundle = self._evaluation_context.create_bundle(next(iter(self._outputs)))
            bundle.output(GlobalWindows.windowed_value(batch, timestamp=hold))
            bundles.append(bundle)
        if finished:  # stopped and emptied: release the hold, so the watermark goes to the end of time
            return TransformResult(self, bundles, [], None, {None: WatermarkManager.WATERMARK_POS_INF})
        again = self._evaluation_context.create_bundle(
            pvalue.PBegin(self._applied_ptransform.transform.pipeline)
        )
        return TransformResult(self, bundles, [again], None, {None: hold})


# The registry's own hook for evaluators of transforms it does not know (Beam is pinned in uv.lock).
TransformEvaluatorRegistry._test_evaluators_overrides[ReadMessageBatches] = _PullEvaluator
