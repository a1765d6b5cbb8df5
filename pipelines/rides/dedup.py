"""The de-duplication memory: event ids seen in the last ``--dedup_seconds``, kept in the process.

On the DirectRunner the whole pipeline is this process, and the runner makes a new DoFn for every bundle,
so the memory lives here, one per ``CleanRideMessages`` (by its tag), not in the DoFn. A restarted
pipeline learns it again from its replay (``replay.py``): the replayed events pass through the same
memory. On Dataflow the reader de-duplicates instead (``ReadFromPubSub(id_label=...)``); see
``CleanRideMessages``.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class SeenIds:
    """Event ids seen in the last ``horizon`` seconds (processing time), safe to share between threads."""

    def __init__(self, horizon: float):
        self.horizon = horizon
        self._ids: set[str] = set()
        self._order: deque[tuple[float, str]] = deque()
        self._lock = threading.Lock()

    def first_sightings(self, ids: list[str]) -> list[bool]:
        """For each id, True if it was not seen within the horizon (and remember it)."""
        now = time.monotonic()
        with self._lock:
            while self._order and self._order[0][0] < now - self.horizon:
                self._ids.discard(self._order.popleft()[1])
            fresh = []
            for event_id in ids:
                new = event_id not in self._ids
                if new:
                    self._ids.add(event_id)
                    self._order.append((now, event_id))
                fresh.append(new)
            return fresh

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)


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
