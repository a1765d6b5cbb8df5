"""A run's progress while it runs here: counts kept in the process, logged every ``--progress_seconds``.

Beam's counters are read once a run ends; on the local runners every step runs in this process, so the
steps also add to a :class:`LiveCounts`, which a thread logs (:func:`every`) while the pipeline runs.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class LiveCounts:
    """Named counts, added to from any thread."""

    def __init__(self):
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, **counts: int) -> None:
        with self._lock:
            self._counts.update(counts)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


@contextmanager
def every(seconds: float, log: logging.Logger, describe: Callable[[], str | None]) -> Iterator[None]:
    """Log ``describe()`` every ``seconds`` (when it says something new) while the block runs; 0: never."""
    done = threading.Event()

    def loop() -> None:
        said = None
        while not done.wait(seconds):
            text = describe()
            if text and text != said:
                log.info(text)
                said = text

    thread = threading.Thread(target=loop, name="progress", daemon=True) if seconds > 0 else None
    if thread:
        thread.start()
    try:
        yield
    finally:
        done.set()
        if thread:
            thread.join()
