"""Run the streaming pipeline as its own process, as a user would, for the tests that need it live."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from gcpipe.config import PROJECT_ROOT


def start_pipeline(
    topic_or_subscription: str, dataset: str, duration: float, *extra: str
) -> subprocess.Popen:
    source = "--input_subscription" if "/subscriptions/" in topic_or_subscription else "--input_topic"
    command = [
        sys.executable, "-m", "pipelines.taxi_streaming", source, topic_or_subscription,
        "--output_dataset", dataset, "--duration_seconds", str(duration),
        "--allowed_lateness", "600", "--firing_seconds", "2", *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_reading(process: subprocess.Popen, subscription: str, timeout: float = 90) -> None:
    """Until the pipeline made its subscription and started pulling (its tables exist by then)."""
    from gcpipe.clients import subscriber_client

    client = subscriber_client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            client.get_subscription(subscription=subscription)
            time.sleep(3)  # Beam's start-up after the subscription is made
            return
        except Exception:
            time.sleep(0.5)
    pytest.fail("the pipeline did not start reading in time")


def finish(process: subprocess.Popen, timeout: float = 180) -> None:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
