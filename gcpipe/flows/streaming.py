"""The streaming rides flow as a local process: start ``python -m pipelines.taxi_streaming`` in a session of
its own, wait until it reads, stop its whole process group. The demo, the benchmarks, the local DAG step and
the tests run the pipeline through these.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from gcpipe.core.clients import subscriber_client
from gcpipe.core.config import PROJECT_ROOT, Config
from gcpipe.core.errors import GcpipeError


def start_pipeline(source: str, dataset: str, *options: str, log: str | Path) -> subprocess.Popen:
    """``python -m pipelines.taxi_streaming`` in a process (and session) of its own, its output in ``log``."""
    flag = "--input_subscription" if "/subscriptions/" in source else "--input_topic"
    command = [
        sys.executable,
        "-m",
        "pipelines.taxi_streaming",
        flag,
        source,
        "--output_dataset",
        dataset,
        *options,
    ]
    with open(log, "w") as out:  # the child keeps its own handle
        return subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )


def stop_pipeline(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGKILL the pipeline's whole process group (its own session: ``start_pipeline``), then reap it.

    The group, not the process: nothing the pipeline started outlives it. Harmless once it has ended.
    """
    with contextlib.suppress(ProcessLookupError):  # the group is gone already
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=timeout)


def wait_until_reading(
    process: subprocess.Popen, subscription: str, config: Config | None = None, timeout: float = 120
) -> None:
    """Return once the pipeline has made its subscription (and its tables) and begun to pull."""

    client = subscriber_client(config)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise GcpipeError(f"the streaming pipeline exited with status {process.returncode}: see its log.")
        if not _made(client, subscription):
            time.sleep(0.5)
            continue
        time.sleep(3)  # Beam starts its runner after the subscription is made
        return
    raise GcpipeError(f"the streaming pipeline did not start reading within {timeout:.0f} s.")


def _made(client, subscription: str) -> bool:
    """The subscription exists, or a later generation of it (a pipeline rotates its own on the emulator:
    ``pipelines/rides/subscriptions.py``)."""
    project, generation = subscription.split("/")[1], re.compile(re.escape(subscription) + r"(-\d{10})?")
    return any(generation.fullmatch(s.name) for s in client.list_subscriptions(project=f"projects/{project}"))
