"""Streaming taxi rides: sustained throughput into BigQuery, and publish-to-queryable latency.

* throughput: a backlog of messages waits in a subscription; the pipeline (its own process, on the local
  emulators) drains it into ``ride_events``; the rate is the slope of the stored count between 10% and
  90% of the backlog. Baseline, same run: the same pipeline with Beam's own I/O (``--io beam``:
  ReadFromPubSub on the DirectRunner, WriteToBigQuery streaming inserts), over a smaller backlog.
* latency: rides published live at the real feed's rate (3,000 messages/s) while a poller reads the
  latest pane of each 1-minute window every half second; the i-th event published into a window is
  queryable once that window's ``events`` reaches i. p50/p95 of (queryable - published), and the same
  for the raw events in ``ride_events``.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from google.api_core.exceptions import NotFound

from gcpipe.app.bench import BenchContext, Figure, _tree_rss_mb
from gcpipe.app.dashboard.queries import LATEST_PANE
from gcpipe.core import pubsub
from gcpipe.core.clients import bigquery_client, publisher_client, row_count, subscriber_client
from gcpipe.core.errors import GcpipeError
from gcpipe.core.ui import console
from gcpipe.datagen.ride_publisher import publish_rides
from gcpipe.flows.streaming import start_pipeline, stop_pipeline, wait_until_reading
from gcpipe.local.stack import up

FEED_RATE = 3000


def _pipeline(ctx: BenchContext, source: str, dataset: str, *options: str) -> subprocess.Popen:
    log = ctx.workdir / f"taxi_streaming-{dataset.rsplit('.', 1)[1]}.log"
    return start_pipeline(source, dataset, *options, log=log)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _drain_rate(ctx: BenchContext, bq, io: str, backlog: int, limit: float) -> tuple[float, float]:
    """Messages/s stored while draining a backlog of ``backlog`` messages, and the peak memory (MiB)."""

    name = f"bench-{io}-{uuid.uuid4().hex[:6]}"
    project = ctx.config.project
    topic = pubsub.ensure_topic(publisher_client(ctx.config), pubsub.path(project, "topics", name))
    subscription = pubsub.ensure_subscription(
        subscriber_client(ctx.config), pubsub.path(project, "subscriptions", name), topic
    )
    publish_rides(name, rate=50_000, count=backlog, seed=1, config=ctx.config)
    dataset = f"{project}.bench_{name.replace('-', '_')}"
    process = _pipeline(ctx, subscription, dataset, "--io", io)
    marks: dict[float, float] = {}
    peak, started = 0.0, time.monotonic()
    try:
        while time.monotonic() - started < limit and len(marks) < 2:
            if process.poll() is not None:
                raise GcpipeError(f"the {io} pipeline stopped early: see its log in {ctx.workdir}.")
            peak = max(peak, _tree_rss_mb(process.pid))
            try:
                stored = row_count(bq, f"{dataset}.ride_events")
            except NotFound:  # the pipeline has not made its tables yet
                stored = 0
            for share in (0.1, 0.9):
                if share not in marks and stored >= share * backlog:
                    marks[share] = (time.monotonic(), stored)
            time.sleep(0.5)
    finally:
        stop_pipeline(process)
        bq.delete_dataset(dataset.split(".", 1)[1], delete_contents=True, not_found_ok=True)
    if 0.1 not in marks:
        raise GcpipeError(f"the {io} pipeline stored under 10% of {backlog} messages in {limit:.0f} s.")
    (t0, n0), (t1, n1) = marks[0.1], marks.get(0.9, (time.monotonic(), stored))
    return (n1 - n0) / (t1 - t0), peak


def _latency(ctx: BenchContext, bq, rate: float, seconds: float) -> dict:
    """Publish live at ``rate`` for ``seconds``; publish-to-queryable latencies of aggregates and raw rows."""
    name = f"bench-live-{uuid.uuid4().hex[:6]}"
    project = ctx.config.project
    dataset = f"{project}.bench_{name.replace('-', '_')}"
    manifest = ctx.workdir / f"{name}.jsonl"
    process = _pipeline(ctx, name, dataset, "--firing_seconds", "2", "--duration_seconds", str(seconds + 60))
    try:
        wait_until_reading(
            process, pubsub.path(project, "subscriptions", f"{name}-taxi-streaming"), ctx.config
        )
    except GcpipeError:
        stop_pipeline(process)
        raise
    polls: list[tuple[float, dict[str, int], int]] = []
    peak = [0.0]
    stop = threading.Event()

    def poll():
        query = f"SELECT window_key, events FROM `{dataset}.rides_per_minute` {LATEST_PANE}"
        while not stop.is_set():
            windows = {row["window_key"]: row["events"] for row in bq.query(query).result()}
            stored = row_count(bq, f"{dataset}.ride_events")
            polls.append((time.time(), windows, stored))
            peak[0] = max(peak[0], _tree_rss_mb(process.pid))
            time.sleep(0.5)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    cpu_before = _cpu_seconds(process.pid)
    try:
        summary = publish_rides(
            name, rate=rate, count=int(rate * seconds), seed=3, manifest=manifest, config=ctx.config
        )
        ended = time.monotonic()
        while time.monotonic() < ended + 90 and (not polls or polls[-1][2] < summary.sent):
            time.sleep(0.5)
        catch_up = time.monotonic() - ended  # how far behind the pipeline was when publishing stopped
        while time.monotonic() < ended + 90 and sum(polls[-1][1].values()) < summary.sent:
            time.sleep(0.5)  # and until the aggregates hold every event too
        cpu = _cpu_seconds(process.pid) - cpu_before
    finally:
        stop.set()
        poller.join()
        stop_pipeline(process)
        bq.delete_dataset(dataset.split(".", 1)[1], delete_contents=True, not_found_ok=True)
    return {
        **_latencies(manifest, polls),
        "publish_rate": summary.achieved_rate,
        "peak_mb": peak[0],
        "cpu_ms_per_1000": 1000 * cpu / summary.sent * 1000,
        "catch_up": catch_up,
    }


def _latencies(manifest, polls) -> dict:
    by_window: dict[str, list[float]] = defaultdict(list)
    published = []
    for line in Path(manifest).read_text().splitlines():
        record = json.loads(line)
        event = json.loads(record["data"])
        start = int(datetime.fromisoformat(event["timestamp"]).timestamp() // 60 * 60)
        by_window[datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")].append(
            record["published_at"]
        )
        published.append(record["published_at"])
    aggregate, raw, missing = [], [], 0
    for key, times in by_window.items():
        times.sort()
        seen = [(t, windows.get(key, 0)) for t, windows, _ in polls]
        j = 0
        for i, sent in enumerate(times, start=1):
            while j < len(seen) and seen[j][1] < i:
                j += 1
            if j == len(seen):
                missing += len(times) - i + 1
                break
            aggregate.append(max(0.0, seen[j][0] - sent))
    published.sort()
    j = 0
    for i, sent in enumerate(published, start=1):
        while j < len(polls) and polls[j][2] < i:
            j += 1
        if j == len(polls):
            break
        raw.append(max(0.0, polls[j][0] - sent))
    percentile = lambda values, q: float(np.percentile(values, q)) if values else float("nan")  # noqa: E731
    return {
        "aggregate_p50": percentile(aggregate, 50),
        "aggregate_p95": percentile(aggregate, 95),
        "raw_p50": percentile(raw, 50),
        "raw_p95": percentile(raw, 95),
        "unseen": missing,
        "events": len(published),
    }


def run(ctx: BenchContext) -> list[Figure]:
    up(ctx.config, report=lambda *_: None)
    ctx.config.apply_env()
    bq = bigquery_client(ctx.config)
    backlog = ctx.size(60_000, 6_000)
    console.print(f"throughput: draining {backlog:,} messages (gcpipe batched I/O)")
    ours, ours_mb = _drain_rate(ctx, bq, "batched", backlog, limit=300)
    console.print("throughput baseline: Beam's ReadFromPubSub + WriteToBigQuery")
    base, _ = _drain_rate(ctx, bq, "beam", ctx.size(6_000, 2_000), limit=ctx.size(90, 40))
    rate, seconds = ctx.size(FEED_RATE, 500), ctx.size(60, 15)
    console.print(f"latency: {rate:,} messages/s for {seconds} s")
    live = _latency(ctx, bq, rate, seconds)
    note = (
        f"publisher reached {live['publish_rate']:,.0f} msg/s; every event stored {live['catch_up']:.0f} s after "
        f"the last was published; {live['unseen']:,} of {live['events']:,} events not seen in an aggregate"
    )
    return [
        Figure(
            "throughput: Pub/Sub backlog -> BigQuery",
            ours,
            "msg/s",
            baseline=base,
            baseline_name="ReadFromPubSub + WriteToBigQuery",
            goal=f">= {FEED_RATE:,} msg/s",
            met=ours >= FEED_RATE,
            peak_memory_mb=ours_mb,
        ),
        Figure(
            f"latency p50, publish -> aggregate, {rate:,} msg/s live",
            live["aggregate_p50"],
            "s",
            higher_is_better=False,
            note=note,
            peak_memory_mb=live["peak_mb"],
        ),
        Figure(
            f"latency p95, publish -> aggregate, {rate:,} msg/s live",
            live["aggregate_p95"],
            "s",
            goal="< 10 s",
            met=live["aggregate_p95"] < 10 and not live["unseen"],
            higher_is_better=False,
            note=note,
        ),
        Figure(
            f"latency p95, publish -> ride_events row, {rate:,} msg/s live",
            live["raw_p95"],
            "s",
            higher_is_better=False,
        ),
        Figure(
            "pipeline CPU per 1,000 messages (live run)",
            live["cpu_ms_per_1000"],
            "ms",
            higher_is_better=False,
            note="one core's worth of this pipeline process alone: 1e6 / this figure messages/s",
        ),
    ]
