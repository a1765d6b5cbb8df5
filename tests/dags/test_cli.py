"""``gcpipe dags``, as a user runs it: the DAGs listed, one-sentence errors."""

from __future__ import annotations

import subprocess
import sys

from gcpipe.core.config import PROJECT_ROOT


def gcpipe(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gcpipe.app.cli", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_dags_list_shows_every_dag_with_its_schedule():
    done = gcpipe("dags", "list")
    assert done.returncode == 0, done.stderr[-2000:]
    for dag_id in (
        "batch_ingest",
        "spark_kdd",
        "spark_recommendations",
        "bqml_purchase",
        "taxi_streaming_ops",
    ):
        assert dag_id in done.stderr
    assert "0 2 * * *" in done.stderr


def test_dags_test_of_an_unknown_dag_is_one_sentence_naming_the_known_ones():
    done = gcpipe("dags", "test", "no_such_dag", "2019-03-01")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "error: there is no DAG 'no_such_dag' in dags/; there are: batch_ingest, bqml_purchase, spark_kdd, "
        "spark_recommendations, taxi_streaming_ops."
    )
