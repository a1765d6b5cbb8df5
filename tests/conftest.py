"""Shared fixtures: the local stack (session scoped, started only if not already up) and its clients."""

from __future__ import annotations

import os
import uuid

import pytest

from gcpipe import stack
from gcpipe.config import load_config

CONFIG = load_config(target="local")
# Before any Google library is imported: the metadata host is read at import time.
os.environ.update(CONFIG.emulator_env())
os.environ["GCPIPE_QUIET"] = "1"


@pytest.fixture(scope="session")
def local_stack():
    """The core local stack; stops at the end only the services this session started."""
    outcome = stack.up(CONFIG, report=lambda *_: None)
    yield CONFIG
    started = [name for name, state in outcome.items() if state == "started"]
    if started:
        stack.down(CONFIG, started, report=lambda *_: None)


@pytest.fixture(scope="session")
def bq(local_stack):
    from gcpipe.clients import bigquery_client

    return bigquery_client(local_stack)


@pytest.fixture
def dataset(bq):
    """A fresh, uniquely named BigQuery dataset in the emulator, deleted afterwards."""
    name = f"test_{uuid.uuid4().hex[:10]}"
    bq.create_dataset(name)
    yield name
    bq.delete_dataset(name, delete_contents=True, not_found_ok=True)


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for the whole test run (the JVM takes seconds to start)."""
    from spark_jobs.common import spark_session

    session = spark_session("gcpipe-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def postgres():
    """The stack's PostgreSQL (the local Cloud SQL); stops at the end only if this session started it."""
    outcome = stack.up(CONFIG, ["postgres"], report=lambda *_: None)
    yield CONFIG
    if outcome["postgres"] == "started":
        stack.down(CONFIG, ["postgres"], report=lambda *_: None)


@pytest.fixture
def database(postgres):
    """A fresh, uniquely named PostgreSQL database, dropped afterwards."""
    from gcpipe import cloudsql

    name = cloudsql.ensure_database(postgres, f"test_{uuid.uuid4().hex[:10]}")
    yield name
    cloudsql.drop_database(postgres, name)
