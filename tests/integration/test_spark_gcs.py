"""Spark on gs:// as on Dataproc: Google's GCS connector against the local storage emulator.

The KDD job reads a gzip object of the lake bucket and writes Parquet, CSV and its report back; the Python
storage client lists what it wrote and Spark reads it back. Bad input on gs:// ends in one sentence.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from gcpipe.core.clients import storage_client
from gcpipe.core.config import PROJECT_ROOT
from gcpipe.datagen.kdd import write_kdd
from spark_jobs import kdd_analysis
from spark_jobs.logs import USER_ERROR

pytestmark = [pytest.mark.stack, pytest.mark.spark]


@pytest.fixture
def bucket(local_stack):
    return storage_client(local_stack).bucket(local_stack.lake_bucket)


def run_job(config, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "spark_jobs.kdd_analysis", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **config.emulator_env(), **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_kdd_job_reads_and_writes_the_lake_bucket_through_the_connector(
    spark, local_stack, bucket, tmp_path
):
    manifest = write_kdd(tmp_path / "kdd.gz", 3_000, seed=5, malformed=0.01)
    bucket.blob("tests/gcs/kdd.gz").upload_from_filename(manifest.path)
    output = f"{local_stack.bucket}/tests/gcs/out"

    summary = kdd_analysis.analyse(spark, f"{local_stack.bucket}/tests/gcs/kdd.gz", output, None)

    assert (summary["valid"], summary["malformed"]) == (manifest.valid, manifest.malformed)
    names = {blob.name.removeprefix("tests/gcs/out/") for blob in bucket.list_blobs(prefix="tests/gcs/out/")}
    assert {"attack_stats.parquet", "attack_stats.csv", "summary.json", "report/report.md"} <= names
    assert any(name.startswith("malformed/part-") for name in names)  # written by Spark's committer
    assert not [name for name in names if "_temporary" in name]  # the commit left nothing half-written
    assert (
        json.loads(bucket.blob("tests/gcs/out/summary.json").download_as_bytes())["valid"] == manifest.valid
    )
    # read back by Spark, through the connector, as by the Python client
    stats = spark.read.parquet(f"{output}/attack_stats.parquet")
    assert stats.groupBy().sum("connections").first()[0] == manifest.valid
    local = tmp_path / "stats.parquet"
    local.write_bytes(bucket.blob("tests/gcs/out/attack_stats.parquet").download_as_bytes())
    assert sum(pq.read_table(local).column("connections").to_pylist()) == manifest.valid
    errors = spark.read.json(f"{output}/malformed")
    assert errors.count() == sum(manifest.malformed.values())


def test_bad_input_on_gs_ends_in_one_sentence(local_stack, bucket, tmp_path):
    bucket.blob("tests/gcs/not-gzip.gz").upload_from_string(b"this is not gzip data\n" * 100)
    cases = {  # (exit status: a user error is not retried; an unreadable file may be whole on a later try)
        "gs://gcpipe-lake/tests/gcs/missing.gz": (
            USER_ERROR,
            "kdd_analysis: gs://gcpipe-lake/tests/gcs/missing.gz does not exist",
        ),
        "gs://no-such-bucket-gcpipe/kdd.gz": (
            USER_ERROR,
            "kdd_analysis: gs://no-such-bucket-gcpipe/kdd.gz does not exist",
        ),
        "gs://gcpipe-lake/tests/gcs/not-gzip.gz": (
            1,
            "kdd_analysis failed: java.io.IOException: not a gzip file",
        ),
    }
    for uri, (status, sentence) in cases.items():
        done = run_job(local_stack, "--input", uri, "--output", f"{local_stack.bucket}/tests/gcs/bad")
        assert done.returncode == status, done.stderr[-2000:]
        assert done.stderr.splitlines()[-1].startswith(sentence), done.stderr[-2000:]
        assert "at org.apache" not in done.stderr and "Traceback" not in done.stderr


def test_a_stopped_storage_emulator_is_named_at_once(local_stack):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{probe.getsockname()[1]}"
    bucket = local_stack.bucket
    done = run_job(
        local_stack, "--input", f"{bucket}/kdd.gz", "--output", f"{bucket}/out", STORAGE_EMULATOR_HOST=down
    )
    assert done.returncode == 1
    assert (
        f"the storage emulator at {down} (STORAGE_EMULATOR_HOST) does not answer" in done.stderr
        and "`gcpipe up`" in done.stderr
    )
    assert "at org.apache" not in done.stderr  # the JVM never started
