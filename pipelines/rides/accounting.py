"""A streaming run's accounting: messages read = events stored + duplicates dropped + dead-lettered + left.

A run here counts in the process's :data:`TALLY` as the messages go. With ``--io batched`` the reader
counts each message it pulls as read, and the BigQuery writer counts a batch as settled (its events
stored, its duplicates dropped, its malformed messages and the rows BigQuery refused dead-lettered) once
they are stored, just before it acknowledges the batch: what is read and not settled when the run ends
is left for redelivery (never acknowledged, Pub/Sub sends it again). With ``--io beam`` Beam's reader
acknowledges each message as it pulls it, and a batch is settled when it is handed to WriteToBigQuery:
what was read and not settled when the run was cancelled is lost. A Dataflow job's accounting comes
from Beam's counters (``rides`` namespace), which Dataflow adds up across workers (Beam 2.77's
streaming DirectRunner reports only each counter's last bundle, so a run here cannot use them).
"""

from __future__ import annotations

from dataclasses import dataclass

from apache_beam.metrics.metric import MetricsFilter

from pipelines.common.progress import LiveCounts

NAMESPACE = "rides"  # Beam's counters: messages, valid, duplicates, malformed, rejected


@dataclass(frozen=True)
class Accounting:
    read: int
    stored: int
    duplicates: int
    dead_lettered: int
    left: int
    left_means: str = "left for redelivery"

    def line(self, seconds: float | None = None) -> str:
        took = f", in {seconds:.0f} s" if seconds is not None else ""
        return (
            f"{self.read:,} messages read = {self.stored:,} events stored + {self.duplicates:,} duplicates "
            f"dropped + {self.dead_lettered:,} dead-lettered + {self.left:,} {self.left_means}{took}"
        )


class Tally:
    """The counts of the run in this process, added to from the pipeline's, the reader's and the writers'
    threads."""

    def __init__(self):
        self.counts = LiveCounts()

    def reset(self) -> None:
        self.counts = LiveCounts()

    def read(self, messages: int) -> None:
        self.counts.add(read=messages)

    def settled(self, events: int, duplicates: int, dead_letters: int) -> None:
        self.counts.add(stored=events, duplicates=duplicates, dead_lettered=dead_letters)

    def refused(self, events: int) -> None:
        """Events BigQuery refused after they were settled as stored (--io beam): dead letters now."""
        self.counts.add(stored=-events, dead_lettered=events)

    def accounting(self, left_means: str = "left for redelivery") -> Accounting:
        n = self.counts.snapshot()
        read, stored, duplicates, dead = (
            n.get(k, 0) for k in ("read", "stored", "duplicates", "dead_lettered")
        )
        return Accounting(read, stored, duplicates, dead, read - stored - duplicates - dead, left_means)


TALLY = Tally()


def from_counters(result, left_means: str) -> Accounting:
    """The accounting of a Dataflow job from Beam's counters (committed, else attempted)."""
    found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    n: dict[str, int] = {}
    for counter in found:
        value = counter.committed if counter.committed is not None else counter.attempted
        n[counter.key.metric.name] = n.get(counter.key.metric.name, 0) + (value or 0)
    read, valid, duplicates, malformed, rejected = (
        n.get(k, 0) for k in ("messages", "valid", "duplicates", "malformed", "rejected")
    )
    left = read - valid - duplicates - malformed
    return Accounting(read, valid - rejected, duplicates, malformed + rejected, left, left_means)
