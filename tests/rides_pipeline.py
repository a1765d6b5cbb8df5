"""Run the streaming pipeline as its own process, as a user would, for the tests that need it live."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gcpipe.flows import streaming


def start_pipeline(
    source: str, dataset: str, duration: float | None, log: Path, *more: str
) -> subprocess.Popen:
    """``duration`` None: until it is stopped; ``more``: further options (a runner, say)."""
    options = ("--allowed_lateness", "600", "--firing_seconds", "2", *more)
    if duration is not None:
        options = ("--duration_seconds", str(duration), *options)
    return streaming.start_pipeline(source, dataset, *options, log=log)


@contextmanager
def running_pipeline(
    source: str, dataset: str, duration: float | None, log: Path, *more: str
) -> Iterator[subprocess.Popen]:
    """``start_pipeline``, and on the way out (a failed assertion too) kill its whole process group:
    a failed test never leaves a pipeline behind to pull from the next test's subscriptions."""
    process = start_pipeline(source, dataset, duration, log, *more)
    try:
        yield process
    finally:
        streaming.stop_pipeline(process)


def wait_until_reading(process: subprocess.Popen, subscription: str) -> None:
    streaming.wait_until_reading(process, subscription, timeout=90)


def finish(process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    """Wait for the bounded run to drain and end; its log tells why if it failed."""
    process.wait(timeout=timeout)
    assert process.returncode == 0, log.read_text()[-3000:]
