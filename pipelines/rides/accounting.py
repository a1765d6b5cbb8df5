"""A streaming run's accounting: messages read = events stored + duplicates dropped + dead-lettered + left.

With ``--io batched`` (the local runner) the run's :data:`TALLY` counts as the messages go: the reader
counts each message it pulls as read; the BigQuery writer counts a batch as settled (its events stored,
its duplicates dropped, its malformed messages and the rows BigQuery refused dead-lettered) once they are
stored, just before it acknowledges the batch. What is read and not settled when the run ends is left
for redelivery: it was never acknowledged, so Pub/Sub sends it again. With ``--io beam`` Beam's reader
acknowledges each message as it pulls it, and the counts come from Beam's counters (``rides``
namespace) once the run ends; what was in flight when it was cancelled is not stored.
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
    """The counts of the run in this process (``--io batched``), from the reader's and the writer's threads."""

    def __init__(self):
        self.counts = LiveCounts()

    def reset(self) -> None:
        self.counts = LiveCounts()

    def read(self, messages: int) -> None:
        self.counts.add(read=messages)

    def settled(self, events: int, duplicates: int, dead_letters: int) -> None:
        self.counts.add(stored=events, duplicates=duplicates, dead_lettered=dead_letters)

    def accounting(self) -> Accounting:
        n = self.counts.snapshot()
        read, stored, duplicates, dead = (
            n.get(k, 0) for k in ("read", "stored", "duplicates", "dead_lettered")
        )
        return Accounting(read, stored, duplicates, dead, read - stored - duplicates - dead)


TALLY = Tally()


def from_counters(result, left_means: str = "in flight when it stopped, not stored") -> Accounting:
    """The accounting of an ``--io beam`` run from Beam's counters (committed, else attempted)."""
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
