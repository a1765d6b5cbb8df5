"""The de-duplication memory: event ids seen in the last ``--dedup_seconds``, kept in the process.

On the DirectRunner the whole pipeline is this process, and the runner makes a new DoFn for every bundle,
so the memory lives here, one per ``CleanRideMessages`` (by its tag), not in the DoFn. A restarted
pipeline learns it again from the event ids stored in its horizon (``rebuild.py``). On Dataflow the
reader de-duplicates instead (``ReadFromPubSub(id_label=...)``); see ``CleanRideMessages``.

Ids are kept as 64-bit hashes in time buckets (a tenth of the horizon each): the current bucket is a set,
older ones sorted arrays, and a bucket is forgotten whole once it is past the horizon. That costs 8 bytes
an id (a set of the id strings cost 180: 206 MiB for the 1.2 M ids of 10 minutes at 2,000 msg/s). Two
ids share a hash with odds about n^2/2^65 (4e-8 for those 1.2 M ids). Python's string hash is salted
per process; the memory is per process too, and a restart rebuilds it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import numpy as np

BUCKETS = 10  # a horizon's worth of buckets


def hashes(ids: Iterable[str]) -> np.ndarray:
    return np.fromiter((hash(i) for i in ids), dtype=np.int64)


class SeenIds:
    """Event ids seen in the last ``horizon`` seconds (wall clock), safe to share between threads."""

    def __init__(self, horizon: float):
        self.horizon = horizon
        self.width = max(horizon / BUCKETS, 1.0)
        self._sealed: dict[int, np.ndarray] = {}  # bucket -> sorted hashes
        self._open: dict[int, set[int]] = {}  # bucket -> hashes not sorted in yet
        self._lock = threading.Lock()

    def first_sightings(self, ids: list[str]) -> list[bool]:
        """For each id, True if it was not seen within the horizon (and remember it)."""
        now = time.time()
        keys = hashes(ids)
        with self._lock:
            self._expire(now)
            known = self._known(keys)
            current = self._open.setdefault(int(now // self.width), set())
            fresh = []
            for key, seen in zip(keys.tolist(), known.tolist(), strict=True):
                new = not seen and key not in current
                if new:
                    current.add(key)
                fresh.append(new)
            return fresh

    def remember(self, ids: Iterable[str], at: np.ndarray) -> None:
        """Remember ``ids`` as seen at ``at`` (epoch seconds, one each): a restart's rebuild."""
        keys = hashes(ids)
        buckets = (np.asarray(at, dtype=np.float64) // self.width).astype(np.int64)
        with self._lock:
            for bucket in np.unique(buckets).tolist():
                self._open.setdefault(bucket, set()).update(keys[buckets == bucket].tolist())
            self._expire(time.time())

    def _known(self, keys: np.ndarray) -> np.ndarray:
        known = np.zeros(len(keys), dtype=bool)
        for bucket in list(self._open):
            if self._open[bucket] and bucket != int(time.time() // self.width):  # seal the past ones
                merged = np.fromiter(self._open.pop(bucket), dtype=np.int64)
                self._sealed[bucket] = np.union1d(self._sealed.get(bucket, merged[:0]), merged)
        for sealed in self._sealed.values():
            at = np.searchsorted(sealed, keys).clip(max=len(sealed) - 1)
            known |= sealed[at] == keys
        for pending in self._open.values():  # the current bucket's
            if pending:
                known |= np.fromiter((k in pending for k in keys.tolist()), dtype=bool, count=len(keys))
        return known

    def _expire(self, now: float) -> None:
        oldest = int((now - self.horizon) // self.width)  # buckets wholly before the horizon go
        for buckets in (self._sealed, self._open):
            for bucket in [b for b in buckets if b < oldest]:
                del buckets[bucket]

    def __len__(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._sealed.values()) + sum(len(s) for s in self._open.values())


_MEMORIES: dict[str, SeenIds] = {}  # the transform's tag -> its memory
_LOCK = threading.Lock()


def memory(tag: str, horizon: float) -> SeenIds:
    """The process's memory of the transform ``tag`` (made on first use)."""
    with _LOCK:
        return _MEMORIES.setdefault(tag, SeenIds(horizon))


def remembered() -> int:
    """Event ids the process remembers now, over every memory (the progress log shows it)."""
    with _LOCK:
        memories = list(_MEMORIES.values())
    return sum(len(m) for m in memories)
