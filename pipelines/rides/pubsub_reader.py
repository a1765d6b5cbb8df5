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
After ``stop_after`` seconds, or once :func:`stop_reading` is called (the launcher does at Ctrl-C or
SIGTERM), the reader stops pulling, emits what it has pulled, and its watermark jumps to the end of time,
so every window fires its final pane and the pipeline ends, like a Dataflow drain.

Pub/Sub out of reach (or the subscription missing) for up to ``outage_seconds`` is waited out: pulls are
tried again every second; only a longer outage fails the pipeline.

With ``rebuild`` (``rebuild.py``), a (re)started reader rebuilds the run's state from ride_events in a
thread while it pulls: no pulled message goes on before the duplicate memory holds the stored event ids;
then the open windows' seeds go on as one element (the watermark held at their start until then, and no
pane written before, ``windows.await_seeds``). If
anything was stored, the watermark is then held at the restart until the previous run's unacknowledged
messages are back (``ACK_DEADLINE`` + 10 s) and the backlog is drained: windows open at a kill are
completed, not cut by lateness the restart itself caused.

With ``topic``, the subscription is the pipeline's own on the emulator and is rotated
(``subscriptions.py``): the reader pulls every generation until the old ones are drained.

Every message pulled is counted in the run's tally (``accounting.py``) as read.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

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

from gcpipe.core import pubsub
from gcpipe.core.errors import GcpipeError
from pipelines.common.outages import through_outages
from pipelines.rides import dedup, subscriptions
from pipelines.rides.accounting import TALLY
from pipelines.rides.messages import MessageBatch, RideMessage
from pipelines.rides.rebuild import Rebuild, load_recent_ids, window_seeds
from pipelines.rides.windows import await_seeds

PULL_LIMIT = 1000  # Pub/Sub's most messages in one pull
_LOG = logging.getLogger(__name__)


class ReadMessageBatches(beam.PTransform):
    def __init__(
        self,
        subscription: str,
        batch_size: int = 10_000,
        batch_seconds: float = 0.5,
        max_outstanding: int = 20_000,
        watermark_delay: float = 2.0,
        stop_after: float | None = None,
        rebuild: Rebuild | None = None,
        memory: str | None = None,
        topic: str | None = None,
        outage_seconds: float = 120.0,
    ):
        """``memory``: the tag of the duplicate memory a rebuild fills (``dedup.memory``); ``topic``: rotate
        the subscription, the pipeline's own on the emulator (``subscriptions.py``)."""
        super().__init__()
        self.subscription, self.batch_size, self.batch_seconds = subscription, batch_size, batch_seconds
        self.max_outstanding, self.watermark_delay = max_outstanding, watermark_delay
        self.stop_after, self.rebuild, self.outage_seconds = stop_after, rebuild, outage_seconds
        self.memory, self.topic = memory, topic
        self.tag = uuid.uuid4().hex

    def expand(self, pbegin):
        return pvalue.PCollection(pbegin.pipeline, is_bounded=False)

    def get_windowing(self, unused_inputs):
        return beam.Windowing(GlobalWindows())


# -- process-wide state: the DirectRunner builds a new evaluator for every bundle ------------------

_CLIENTS: dict[str, object] = {}
_STOP = threading.Event()  # set by stop_reading: every reader drains
_OUTSTANDING: dict[str, int] = {}  # subscription -> messages pulled, not yet acknowledged
_LOCK = threading.Lock()


def _subscriber():
    with _LOCK:
        if "subscriber" not in _CLIENTS:
            from google.cloud import pubsub_v1

            _CLIENTS["subscriber"] = pubsub_v1.SubscriberClient()
        return _CLIENTS["subscriber"]


def _publisher():
    with _LOCK:
        if "publisher" not in _CLIENTS:
            from google.cloud import pubsub_v1

            _CLIENTS["publisher"] = pubsub_v1.PublisherClient()
        return _CLIENTS["publisher"]


def _count_outstanding(subscription: str, change: int) -> int:
    with _LOCK:
        _OUTSTANDING[subscription] = _OUTSTANDING.get(subscription, 0) + change
        return _OUTSTANDING[subscription]


def stop_reading() -> None:
    """Make every reader of the process stop pulling and drain (Ctrl-C or SIGTERM in the launcher)."""
    _STOP.set()


def reset_reading() -> None:
    """A new run in this process reads until it is stopped again."""
    _STOP.clear()


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
    """One ReadMessageBatches's pulling, rebuild, watermark and deadline, across the evaluator's bundles.

    A thread pulls ahead into a buffer, so the runner's one executor thread never waits on Pub/Sub: each
    poll takes what has arrived (waiting up to ``batch_seconds`` only when nothing has).
    """

    _all: dict[str, _Reader] = {}

    def __init__(self, transform: ReadMessageBatches):
        self.t = transform
        self.started = time.monotonic()
        self.watermark = Timestamp(0)
        self.buffer: list[tuple[RideMessage, str, str]] = []  # (message, subscription, ack id)
        self.arrived = threading.Condition()
        self.puller: threading.Thread | None = None
        self.done_pulling = False
        self.error: Exception | None = None
        self.subs: list[str] = [transform.subscription]  # generations, the current one last
        self.drained: set[str] = set()  # older generations pulled to the end
        self.short_pull_at: float | None = None  # the last pull of the current generation that was not full
        # the rebuild (rebuild.py): seeds to emit, ids loaded, the hold at a restart
        self.rebuilt = threading.Event()  # the ids are in: pulled messages may go on
        self.seeds = None
        self.seeded = transform.rebuild is None  # the seeds are out: the watermark may move
        self.restart_hold: float | None = None  # epoch seconds, until the previous run's leases are back

    @classmethod
    def of(cls, transform: ReadMessageBatches) -> _Reader:
        with _LOCK:
            if transform.tag not in cls._all:
                cls._all[transform.tag] = cls(transform)
            return cls._all[transform.tag]

    @property
    def stopped(self) -> bool:
        if _STOP.is_set():
            return True
        return self.t.stop_after is not None and time.monotonic() - self.started >= self.t.stop_after

    def _hold(self, oldest: float | None) -> Timestamp:
        now = time.time()
        candidate = min(oldest if oldest is not None else now, now) - self.t.watermark_delay
        if self.restart_hold is not None:
            if self._caught_up():
                _LOG.info(
                    "caught up %.0f s after the start: the previous run's unacknowledged messages are back "
                    "and the backlog is drained (%d messages read, %.0f/s); releasing the watermark",
                    time.monotonic() - self.started,
                    TALLY.accounting().read,
                    TALLY.accounting().read / (time.monotonic() - self.started),
                )
                self.restart_hold = None
            else:
                candidate = min(candidate, self.restart_hold)
        self.watermark = max(self.watermark, Timestamp.of(candidate))
        return self.watermark

    def _caught_up(self) -> bool:
        """Every lease of the killed run has expired (its messages are back) and the backlog is drained."""
        leases_back = time.monotonic() - self.started >= pubsub.ACK_DEADLINE + 10
        drained = (
            self.short_pull_at is not None and self.short_pull_at > self.started + pubsub.ACK_DEADLINE + 10
        )
        return leases_back and drained and not self.buffer and set(self.subs[:-1]) <= self.drained

    def _start(self) -> None:
        """At the first poll: the puller and, with a rebuild, the rebuild (the watermark held at its start)."""
        if self.t.topic:
            found = subscriptions.generations(_publisher(), self.t.topic, self.t.subscription)
            self.subs = found or self.subs
            if len(found) > 1:
                _LOG.info(
                    "reading %d generations of %s left by an earlier run", len(found), self.t.subscription
                )
        if self.t.rebuild:
            self.watermark = Timestamp.of(self.t.rebuild.windows_since)
            if self.t.memory:
                await_seeds(self.t.memory)
            threading.Thread(target=self._rebuild, name="Rebuild", daemon=True).start()
        else:
            self.rebuilt.set()
        self.puller = threading.Thread(target=self._pull_ahead, name="ReadMessageBatches", daemon=True)
        self.puller.start()

    def _rebuild(self) -> None:
        """Rebuild the duplicate memory (then pulled messages go on), then the windows, from what BigQuery
        holds (out of reach: waited out). No pane is written before the windows are in (``windows._Rows``)."""
        rebuild, begun = self.t.rebuild, time.monotonic()
        _LOG.info(
            "rebuilding the event ids of the last %g s and the windows since %s UTC from %s; reading Pub/Sub "
            "meanwhile",
            rebuild.dedup_seconds,
            time.strftime("%H:%M", time.gmtime(rebuild.windows_since)),
            rebuild.table,
        )
        try:
            seen = dedup.memory(self.t.memory, rebuild.dedup_seconds) if self.t.memory else None
            ids = (
                through_outages(lambda _: load_recent_ids(rebuild, seen, time.time()), "rebuilding ids", _LOG)
                if seen is not None
                else 0
            )
            ids_at = time.monotonic()
            self.rebuilt.set()  # pulled messages go on
            seeds, events = through_outages(lambda _: window_seeds(rebuild), "rebuilding the windows", _LOG)
        except Exception as err:  # surfaced by the next poll, which fails the pipeline
            self.error = err
            self.rebuilt.set()
            return
        _LOG.info(
            "rebuilt in %.1f s: %d event ids (%.1f s), then %d events in %d open minutes (%.1f s)",
            time.monotonic() - begun, ids, ids_at - begun, events, len(seeds.minutes), time.monotonic() - ids_at,
        )  # fmt: skip
        if events or ids:  # a run stored here before: its leases may still be out
            self.restart_hold = time.time() - self.t.watermark_delay
            _LOG.info(
                "holding the watermark at %s UTC until the previous run's unacknowledged messages are back "
                "(ack deadline %d s) and the backlog is drained",
                time.strftime("%H:%M:%S", time.gmtime(self.restart_hold)),
                pubsub.ACK_DEADLINE,
            )
        self.seeds = seeds  # the next poll emits them

    def poll(self) -> tuple[MessageBatch | None, Timestamp, bool]:
        """The next batch (or None), the watermark hold, and whether reading is over."""
        if self.puller is None:
            self._start()
        if self.error:
            raise self.error
        if self.seeds is not None:  # the rebuilt windows, at the watermark held at their start
            seeds, self.seeds, self.seeded = self.seeds, None, True
            return MessageBatch([], seeds=seeds), self.watermark, False
        if not self.rebuilt.is_set():  # pulling meanwhile; nothing goes on before the ids are in
            self.rebuilt.wait(timeout=self.t.batch_seconds)
            return None, self.watermark, False
        with self.arrived:
            if not self.buffer and not self.done_pulling:
                self.arrived.wait(timeout=self.t.batch_seconds)
            subscription = self.buffer[0][1] if self.buffer else None
            n = 0  # a batch is acknowledged to one subscription: take the run of the first one's messages
            while n < min(len(self.buffer), self.t.batch_size) and self.buffer[n][1] == subscription:
                n += 1
            taken, self.buffer = self.buffer[:n], self.buffer[n:]
            oldest = min((m.publish_time for m, _, _ in taken + self.buffer[:1]), default=None)
            finished = self.done_pulling and not self.buffer and self.seeded  # a drain waits for the seeds
        if self.error:
            raise self.error
        hold = self._hold(oldest) if self.seeded else self.watermark  # held until the seeds are out
        if not taken:
            return None, hold, finished
        batch = MessageBatch(
            [m for m, _, _ in taken], [ack for _, _, ack in taken], subscription=subscription
        )
        return batch, hold, finished

    # -- the puller thread ---------------------------------------------------------------------------

    def _pull_ahead(self) -> None:
        from google.api_core import exceptions

        t = self.t
        outage_since, reached = None, False
        try:
            while not self.stopped:
                room = min(PULL_LIMIT, t.max_outstanding - sum(_count_outstanding(s, 0) for s in self.subs))
                if room <= 0:  # flow control: wait for the sink to acknowledge
                    time.sleep(0.02)
                    continue
                if t.topic:
                    self._rotate()
                pulled = 0
                for subscription in [s for s in self.subs if s not in self.drained]:
                    try:  # an empty pull waits for messages until its deadline
                        response = _subscriber().pull(
                            subscription=subscription, max_messages=room, timeout=1, retry=None
                        )
                    except exceptions.DeadlineExceeded:
                        response = None
                    except (exceptions.ServiceUnavailable, exceptions.NotFound) as err:
                        # Pub/Sub unreachable, or the subscription gone since (an emulator restarted): wait
                        outage_since = outage_since or time.monotonic()
                        never_there = isinstance(err, exceptions.NotFound) and not reached
                        if never_there or time.monotonic() - outage_since > t.outage_seconds:
                            raise
                        _LOG.warning("pulling %s failed, trying again: %s", subscription, err)
                        if isinstance(err, exceptions.NotFound) and t.topic:
                            self._resubscribe(subscription)
                        time.sleep(1)
                        break
                    if outage_since is not None:
                        _LOG.info("Pub/Sub reachable again after %.0f s", time.monotonic() - outage_since)
                    outage_since, reached = None, True
                    pulled += self._take(subscription, response, room)
                if not pulled:
                    time.sleep(0.05)
        except Exception as err:  # surfaced by the next poll, which fails the pipeline
            self.error = err
        finally:
            with self.arrived:
                self.done_pulling = True
                self.arrived.notify()

    def _take(self, subscription: str, response, room: int) -> int:
        """Buffer a pull's messages; note a current generation's short pull, an older one's drain."""
        items = response.received_messages if response is not None else []
        received = [
            (
                RideMessage(
                    bytes(item.message.data),
                    dict(item.message.attributes),
                    item.message.message_id,
                    item.message.publish_time.timestamp(),
                ),
                subscription,
                item.ack_id,
            )
            for item in items
        ]
        current = self.subs[-1]
        # An earlier run's leases on an older generation expire only after the ack deadline: not drained before.
        leases_back = time.monotonic() - self.started >= pubsub.ACK_DEADLINE + 10
        if subscription == current:
            if len(received) < room:
                self.short_pull_at = time.monotonic()
        elif leases_back and all(
            m.publish_time > subscriptions.made_at(self.t.subscription, current) + 1 for m, _, _ in received
        ):
            self.drained.add(subscription)  # the rest is in the current generation too
        if received:
            _count_outstanding(subscription, len(received))
            TALLY.read(len(received))
            with self.arrived:
                self.buffer.extend(received)
                self.arrived.notify()
        return len(received)

    def _rotate(self) -> None:
        """Retire drained generations whose messages are all acknowledged; make the next one when due."""
        for old in [s for s in self.subs[:-1] if s in self.drained and not _count_outstanding(s, 0)]:
            _subscriber().delete_subscription(subscription=old)
            self.subs.remove(old)
            self.drained.discard(old)
            _LOG.info("deleted subscription %s: drained, and every message it gave acknowledged", old)
        current = self.subs[-1]
        made = max(
            subscriptions.made_at(self.t.subscription, current),
            time.time() - (time.monotonic() - self.started),
        )
        if len(self.subs) == 1 and time.time() - made >= subscriptions.ROTATE_SECONDS:
            new = subscriptions.next_generation(_subscriber(), self.t.topic, self.t.subscription, current)
            self.subs.append(new)
            _LOG.info(
                "rotating the subscription (the emulator keeps every acknowledged message): reading %s, "
                "draining %s",
                new.rsplit("/", 1)[1],
                current.rsplit("/", 1)[1],
            )

    def _resubscribe(self, subscription: str) -> None:
        """The emulator restarted and forgot our subscription: make it again (its old messages are lost)."""
        from google.api_core import exceptions

        try:
            pubsub.ensure_subscription(
                _subscriber(), subscription, pubsub.ensure_topic(_publisher(), self.t.topic)
            )
            _LOG.info("made %s again: the Pub/Sub emulator had forgotten it", subscription)
        except (exceptions.GoogleAPIError, GcpipeError):
            pass


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
        # An element, as Beam's TestStream heartbeat has: the watermark manager removes only pending bundles
        # that have elements, so an empty one stayed in its pending set for good (one a poll, ~14/s).
        again.add(GlobalWindows.windowed_value(b"", timestamp=hold))
        return TransformResult(self, bundles, [again], None, {None: hold})


# The registry's own hook for evaluators of transforms it does not know (Beam is pinned in uv.lock).
TransformEvaluatorRegistry._test_evaluators_overrides[ReadMessageBatches] = _PullEvaluator
