"""Shared fixtures: the local stack (session scoped, started only if not already up) and its clients."""

from __future__ import annotations

import logging
import os
import uuid

import pytest

from gcpipe.core.clients import bigquery_client
from gcpipe.core.config import load_config
from gcpipe.local import stack
from gcpipe.warehouse import cloudsql
from spark_jobs.common import spark_session

CONFIG = load_config(target="local")
# Before any Google library is imported: the metadata host is read at import time.
os.environ.update(CONFIG.emulator_env())
os.environ["GCPIPE_QUIET"] = "1"


@pytest.fixture(scope="session", autouse=True)
def _stack_left_as_found():
    """At the end, stop every service the session started: through a fixture, or through the code under
    test (a CLI, a DAG step or a Spark job starts what it needs)."""
    with stack.left_as_found(CONFIG):
        yield


@pytest.fixture(scope="session")
def local_stack():
    """The core local stack, started if it is not up."""
    stack.up(CONFIG, report=lambda *_: None)
    return CONFIG


@pytest.fixture(scope="session")
def bq(local_stack):
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

    session = spark_session("gcpipe-tests")
    yield session
    session.stop()
    # py4j logs its connections closing when the interpreter ends, after pytest closed the log streams
    logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def postgres():
    """The stack's PostgreSQL (the local Cloud SQL), started if it is not up."""
    stack.up(CONFIG, ["postgres"], report=lambda *_: None)
    return CONFIG


@pytest.fixture
def database(postgres):
    """A fresh, uniquely named PostgreSQL database, dropped afterwards."""

    name = cloudsql.ensure_database(postgres, f"test_{uuid.uuid4().hex[:10]}")
    yield name
    cloudsql.drop_database(postgres, name)
