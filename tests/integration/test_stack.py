"""The local stack: lifecycle, failures a user meets, and the real clients against each emulator."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from gcpipe.core.clients import publisher_client, storage_client, subscriber_client
from gcpipe.core.config import load_config
from gcpipe.core.schemas import load_tables
from gcpipe.local import stack

pytestmark = pytest.mark.stack
QUIET = {"report": lambda *_: None}


@pytest.fixture
def side_config(tmp_path):
    """A second stack beside the session's: its own state folder, and ports 1000 above."""
    base = load_config(target="local")
    config = base.replace(state_dir=tmp_path / "state", port_offset=base.port_offset + 1000)
    yield config
    stack.down(config, **QUIET)  # whatever a failed test left running


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if text in cmdline and stack._alive(int(entry)):
                pids.append(int(entry))
    return pids


def test_up_down_up_leaves_nothing_behind(side_config):
    first = stack.up(side_config, **QUIET)
    assert first == dict.fromkeys(stack.CORE_SERVICES, "started")
    states = {s.name: s.state for s in stack.status(side_config)}
    assert all(states[name] == "healthy" for name in stack.CORE_SERVICES)
    pids = {s.name: s.pid for s in stack.status(side_config)}

    assert stack.up(side_config, **QUIET) == dict.fromkeys(stack.CORE_SERVICES, "running")
    assert {s.name: s.pid for s in stack.status(side_config)} == pids  # nothing restarted
    env_text = stack.env_file(side_config).read_text()
    assert f"export PUBSUB_EMULATOR_HOST=127.0.0.1:{side_config.port('pubsub')}" in env_text
    assert f"export BIGQUERY_EMULATOR_HOST=http://127.0.0.1:{side_config.port('bigquery')}" in env_text
    assert f"export STORAGE_EMULATOR_HOST=http://127.0.0.1:{side_config.port('gcs')}" in env_text

    assert stack.down(side_config, **QUIET) == dict.fromkeys(stack.CORE_SERVICES, "stopped")
    assert all(s.state == "stopped" for s in stack.status(side_config))
    assert not [pid for pid in pids.values() if stack._alive(pid)]
    assert (
        _processes_mentioning(str(side_config.state_dir)) == []
    )  # no child (e.g. the emulators' JVM) survives
    assert not any(
        stack._port_open(side_config.port(key)) for key in ("pubsub", "bigquery", "gcs", "metadata")
    )

    assert stack.up(side_config, **QUIET) == dict.fromkeys(stack.CORE_SERVICES, "started")
    stack.down(side_config, **QUIET)
    assert stack.down(side_config, **QUIET) == dict.fromkeys(stack.CORE_SERVICES, "not running")


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (IPv4 and IPv6), from /proc/net."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


# 127.0.0.1, ::1 and ::ffff:127.0.0.1 (the JVM's IPv4-mapped form), as /proc/net writes them
LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def test_every_service_listens_on_loopback_only(local_stack):
    for key in ("metadata", "pubsub", "bigquery", "bigquery_grpc", "gcs"):
        addresses = _listening_addresses(local_stack.port(key))
        assert addresses and addresses <= LOOPBACK, (key, addresses)


def test_local_spark_listens_on_loopback_only(spark):
    env = spark.sparkContext._jsc.sc().env()
    ports = {
        "driver": int(spark.conf.get("spark.driver.port")),
        "block manager": env.blockManager().blockManagerId().port(),
    }
    for what, port in ports.items():
        addresses = _listening_addresses(port)
        assert addresses and addresses <= LOOPBACK, (what, addresses)


def test_a_taken_port_is_one_clear_sentence(side_config):
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the port may be in TIME_WAIT
        squatter.bind(("127.0.0.1", side_config.port("gcs")))
        squatter.listen()
        with pytest.raises(stack.StackError) as err:
            stack.up(side_config, ["metadata", "gcs"], **QUIET)
    assert str(err.value) == (
        f"port {side_config.port('gcs')} for the Cloud Storage emulator is already taken by another process; "
        "stop that process or set GCPIPE_PORT_OFFSET to move the whole stack."
    )
    assert stack.status(side_config)[0].state == "stopped"  # what this call started was stopped again


def test_a_missing_emulator_says_how_to_install_it(side_config, monkeypatch):
    monkeypatch.setenv("GCPIPE_PUBSUB_EMULATOR", "/nonexistent/cloud-pubsub-emulator")
    with pytest.raises(stack.StackError, match="install the Debian package google-cloud-cli-pubsub-emulator"):
        stack.up(side_config, ["pubsub"], **QUIET)


def test_the_cli_prints_the_sentence_not_a_traceback(tmp_path, side_config):
    env = {
        **os.environ,
        "GCPIPE_PUBSUB_EMULATOR": "/nonexistent/cloud-pubsub-emulator",
        "GCPIPE_STATE_DIR": str(tmp_path),
        "GCPIPE_PORT_OFFSET": str(side_config.port_offset),
    }
    result = subprocess.run(
        [sys.executable, "-m", "gcpipe.app.cli", "up", "--service", "pubsub"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: the Pub/Sub emulator is not installed")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_credentials_resolve_at_once_in_a_new_process(local_stack):
    code = "import google.auth; creds, project = google.auth.default(); print(project)"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **local_stack.emulator_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == local_stack.project
    assert time.monotonic() - started < 15  # without the stand-in this retries for ~25 s, then waits on OAuth


def _tree(fields) -> list:
    return [(f.name, f.field_type, f.mode, _tree(f.fields)) for f in fields]


def test_bigquery_round_trip_with_tables_from_the_catalog_ddl(bq, dataset, local_stack):
    for spec in load_tables().values():
        table_id = f"{local_stack.project}.{dataset}.{spec.name}"
        bq.query(spec.ddl(table_id)).result()
        fetched = bq.get_table(table_id)
        assert _tree(fetched.schema) == _tree(spec.schema.to_bigquery()), spec.name
        if spec.partition and (fetched.time_partitioning or spec.partition.get("expiration_days")):
            # (the emulator records PARTITION BY TIMESTAMP_TRUNC(...) only with a partition option)
            assert fetched.time_partitioning.type_ == spec.partition["granularity"]

    table_id = f"{local_stack.project}.{dataset}.ratings"
    assert bq.insert_rows_json(table_id, [{"user_id": 1, "acco_id": 2, "rating": 5}]) == []
    rows = list(bq.query(f"SELECT user_id, acco_id, rating FROM `{table_id}`").result())
    assert [tuple(r.values()) for r in rows] == [(1, 2, 5)]


def test_storage_round_trip(local_stack):
    client = storage_client(local_stack)
    bucket = client.bucket(local_stack.lake_bucket)
    name = f"tests/{uuid.uuid4().hex}/hello.txt"
    bucket.blob(name).upload_from_string("hello, lake")
    assert bucket.blob(name).download_as_text() == "hello, lake"
    assert name in [blob.name for blob in client.list_blobs(local_stack.lake_bucket, prefix="tests/")]
    bucket.blob(name).delete()


def test_pubsub_round_trip(local_stack):
    publisher, subscriber = publisher_client(local_stack), subscriber_client(local_stack)
    suffix = uuid.uuid4().hex[:8]
    topic = publisher.topic_path(local_stack.project, f"t-{suffix}")
    subscription = subscriber.subscription_path(local_stack.project, f"s-{suffix}")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)
    ids = [
        publisher.publish(topic, f"ride {i}".encode(), ride_id=str(i)).result(timeout=30) for i in range(3)
    ]
    received = []
    deadline = time.monotonic() + 30
    while len(received) < 3 and time.monotonic() < deadline:
        response = subscriber.pull(subscription=subscription, max_messages=10, timeout=10)
        received += response.received_messages
        if response.received_messages:
            subscriber.acknowledge(
                subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
            )
    assert sorted(m.message.message_id for m in received) == sorted(ids)
    assert sorted((m.message.data, m.message.attributes["ride_id"]) for m in received) == [
        (b"ride 0", "0"),
        (b"ride 1", "1"),
        (b"ride 2", "2"),
    ]
    subscriber.delete_subscription(subscription=subscription)
    publisher.delete_topic(topic=topic)


def test_left_as_found_stops_only_what_the_block_started(side_config):
    stack.up(side_config, ["metadata"], **QUIET)
    with stack.left_as_found(side_config):
        stack.up(side_config, ["metadata", "gcs"], **QUIET)  # as a CLI or a job under test would
        assert stack.running(side_config) == {"metadata", "gcs"}
    assert stack.running(side_config) == {"metadata"}  # running before the block: left running
