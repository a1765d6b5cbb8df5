"""The streaming pipeline under every runner name a Beam user types, on the emulators, with published rides.

Each local name stores every published ride and the run's last line is its accounting, which adds up
to what was published; Ctrl-C or SIGTERM drains a run the same way; ``DataflowRunner`` hands the same
graph, with Beam's Pub/Sub and BigQuery I/O, to Dataflow (the request Beam builds, not sent). The names
that cannot run it here (Prism, the FnApiRunner) stop at once: tests/unit/test_pipeline_launch.py.
"""

from __future__ import annotations

import re
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from gcpipe.core import pubsub
from gcpipe.core.clients import subscriber_client
from gcpipe.datagen.ride_publisher import publish_rides
from pipelines import taxi_streaming
from tests.dataflow_jobs import keep_dataflow_jobs
from tests.integration.test_taxi_streaming import read_manifests, stored_count
from tests.rides_pipeline import finish, running_pipeline, wait_until_reading

pytestmark = [pytest.mark.stack, pytest.mark.slow]

RUNNERS = [
    [],
    ["--runner", "DirectRunner"],
    ["--runner=DirectRunner"],
    ["--runner", "direct"],
    ["--runner", "SwitchingDirectRunner"],
    ["--runner", "BundleBasedDirectRunner"],
]
ACCOUNTING = re.compile(
    r"([\d,]+) messages read = ([\d,]+) events stored \+ ([\d,]+) duplicates dropped \+ ([\d,]+) "
    r"dead-lettered \+ ([\d,]+) left for redelivery, in \d+ s"
)


def accounting(log: Path) -> tuple[int, ...]:
    """The run's last line, its accounting, as numbers: read, stored, duplicates, dead-lettered, left."""
    last = log.read_text().rstrip("\n").splitlines()[-1]
    match = ACCOUNTING.fullmatch(last)
    assert match, f"the last line is not the accounting: {last!r}"
    return tuple(int(n.replace(",", "")) for n in match.groups())


def table_count(bq, dataset: str, table: str) -> int:
    return next(iter(bq.query(f"SELECT COUNT(*) AS n FROM `{dataset}.{table}`").result()))["n"]


@pytest.mark.parametrize("runner", RUNNERS, ids=lambda argv: " ".join(argv) or "no --runner")
def test_each_local_runner_name_reads_the_subscription_and_stores_every_ride(
    bq, local_stack, runner, tmp_path
):
    topic = f"runner-{uuid.uuid4().hex[:8]}"
    dataset = f"{bq.project}.runner_{uuid.uuid4().hex[:8]}"
    log = tmp_path / "pipeline.log"
    with running_pipeline(topic, dataset, 20, log, *runner) as process:
        wait_until_reading(process, pubsub.path(bq.project, "subscriptions", f"{topic}-taxi-streaming"))
        sent = publish_rides(
            topic, rate=300, count=300, duplicates=0.05, malformed=0.03, seed=5, manifest=tmp_path / "m.jsonl"
        )
        finish(process, log)

    published = read_manifests(tmp_path / "m.jsonl")
    kinds = Counter(r["kind"] for r in published)
    events = {r["event_id"] for r in published if r["kind"] == "valid"}
    stored = [row["event_id"] for row in bq.query(f"SELECT event_id FROM `{dataset}.ride_events`").result()]
    assert sorted(stored) == sorted(events)  # every ride once
    malformed = sent.sent - len(events) - kinds["duplicate"]
    assert malformed > 0 and table_count(bq, dataset, "ride_dead_letter") == malformed
    assert accounting(log) == (sent.sent, len(events), kinds["duplicate"], malformed, 0)
    assert "runner BundleBasedDirectRunner (" in log.read_text()  # and why, at INFO


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_drains_the_run_and_it_ends_with_its_accounting(bq, local_stack, stop, tmp_path):
    """Stopped mid-stream: what it read is stored and acknowledged, the rest waits in the subscription."""

    topic = f"drain-{uuid.uuid4().hex[:8]}"
    dataset = f"{bq.project}.drain_{uuid.uuid4().hex[:8]}"
    subscription = pubsub.path(bq.project, "subscriptions", f"{topic}-taxi-streaming")
    log = tmp_path / "pipeline.log"
    with running_pipeline(topic, dataset, None, log) as process:
        wait_until_reading(process, subscription)
        sent = publish_rides(topic, rate=2000, count=2000, seed=9)
        deadline = time.monotonic() + 60
        while stored_count(bq, dataset) < 100 and time.monotonic() < deadline:  # well under way
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        process.send_signal(stop)
        finish(process, log, timeout=60)

    read, stored, duplicates, dead, left = accounting(log)
    assert left == 0 and read == stored + duplicates + dead and stored >= 100
    assert table_count(bq, dataset, "ride_events") == stored
    assert f"{stop.name}: draining" in log.read_text()
    remaining, client = 0, subscriber_client()
    while pulled := client.pull(subscription=subscription, max_messages=1000, timeout=10).received_messages:
        remaining += len(pulled)
        client.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in pulled])
    assert read + remaining == sent.sent  # nothing lost: what it did not read is still there


def test_on_dataflow_the_same_graph_reads_with_beam_s_pubsub_source(bq, local_stack, monkeypatch):
    """``--runner DataflowRunner`` (``--dry_run=True``: the job request built, not sent): a streaming job, Beam's
    Pub/Sub source de-duplicating on event_id with event time from ts, the tables made before it starts."""
    from apache_beam.portability.api import beam_runner_api_pb2

    jobs = keep_dataflow_jobs(monkeypatch)
    dataset = f"dataflow_{uuid.uuid4().hex[:8]}"
    subscription = f"projects/{bq.project}/subscriptions/rides"
    assert (
        taxi_streaming.run(
            [
                "--runner",
                "DataflowRunner",
                "--project",
                bq.project,
                "--region",
                "europe-west1",
                "--temp_location",
                "gs://acme-staging/tmp",
                "--sdk_location",
                "container",
                "--dry_run=True",
                "--input_subscription",
                subscription,
                "--output_dataset",
                f"{bq.project}:{dataset}",
            ],
            save_main_session=False,
        )
        is None
    )
    [job] = jobs
    assert job.proto.type.name == "JOB_TYPE_STREAMING"
    transforms = job.proto_pipeline.components.transforms.values()
    [read] = [t for t in transforms if t.spec.urn == "beam:transform:pubsub_read:v1"]
    payload = beam_runner_api_pb2.PubSubReadPayload.FromString(read.spec.payload)
    assert (payload.subscription, payload.id_attribute, payload.timestamp_attribute) == (
        subscription,
        "event_id",
        "ts",
    )
    steps = {t.unique_name for t in transforms}
    assert {
        "Read/ReadFromPubSub",
        "Clean",
        "Aggregate",
        "Store/WriteEvents",
        "Store/WriteDeadLetters",
        "WritePerMinute/WriteToBigQuery",
        "WriteByArea/WriteToBigQuery",
    } <= steps
    assert sorted(t.table_id for t in bq.list_tables(dataset)) == sorted(taxi_streaming.TABLES)
    bq.delete_dataset(dataset, delete_contents=True)
