"""Airflow for the DAG tests: a home of its own under the state folder (SQLite), set before Airflow is
imported (it reads its settings then), and the DAGs of dags/ parsed for either target."""

from __future__ import annotations

import os
from contextlib import contextmanager

import pytest

from gcpipe.orchestration.airflow_home import load_dags, migrate_database, use_local_airflow
from tests.conftest import CONFIG

use_local_airflow(CONFIG, CONFIG.state_dir / "airflow-tests")

PROJECT, REGION, LAKE, TAG = "acme-data-prod", "europe-west1", "acme-data-prod-lake", "abc123"
GCP_ENV = {
    "GCPIPE_IMAGE_TAG": TAG,  # the deployed version: its images and Spark code
    "GCPIPE_TARGET": "gcp",
    "GCPIPE_PROJECT": PROJECT,
    "GCPIPE_REGION": REGION,
    "GCPIPE_LAKE_BUCKET": LAKE,
    "GCPIPE_STAGING_BUCKET": "acme-data-prod-staging",
}


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's SQLite database, migrated once a session (idempotent: seconds the first time)."""
    migrate_database()


@contextmanager
def target(name: str, **env: str):
    """The environment the DAG files read their target from, for the ``with`` block."""
    values = {**(GCP_ENV if name == "gcp" else {"GCPIPE_TARGET": "local"}), **env}
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def parse(name: str = "local", **env: str) -> dict:
    """Every DAG of dags/, by id, as the target ``name`` builds it."""

    with target(name, **env):
        return load_dags()
