"""A Spark job that fails is run again: locally by ``run_local``, on Dataproc by the job's restart policy.

What may be lost: nothing. The KDD job's first attempt fails (its input has not arrived yet); the second,
after the pause, reads it and writes the whole result, replacing whatever the failed one wrote, so the
summary counts every line once. The number of attempts is bounded, and a usage error is not retried.
"""

from __future__ import annotations

import json

import pytest
from google.cloud import dataproc_v1

from gcpipe.core.config import Config, load_config
from gcpipe.datagen.kdd import write_kdd
from gcpipe.deploy import dataproc
from gcpipe.spark import jobs
from gcpipe.spark.jobs import JOBS, MAX_ATTEMPTS, RETRY_PAUSE, SparkJobError, job_args, run_local

KDD = JOBS["kdd_analysis"]


@pytest.mark.spark
@pytest.mark.slow
def test_a_failed_spark_job_is_run_again_and_the_second_attempt_counts_every_line_once(
    tmp_path, monkeypatch, capfd
):
    source = tmp_path / "landing" / "kdd.gz"  # missing on the first attempt
    arrived = []

    def input_arrives(seconds: float) -> None:  # the pause between attempts: the upstream file lands
        arrived.append((seconds, write_kdd(source, 3000, seed=5, malformed=0.01)))

    monkeypatch.setattr(jobs, "sleep", input_arrives)
    result = run_local(KDD, load_config(), ["--input", str(source), "--output", str(tmp_path / "out")])

    [(pause, manifest)] = arrived  # one failure, one pause, then success
    assert pause == RETRY_PAUSE
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["valid"]) == (manifest.rows, manifest.valid)
    assert summary["malformed"] == manifest.malformed
    log = capfd.readouterr().err
    assert f"{source.name} does not exist: nothing to read." in log  # the first attempt's one sentence
    assert f"attempt 1 of {MAX_ATTEMPTS} failed (exit 1)" in log


def test_a_usage_error_fails_at_once_without_a_retry(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "sleep", lambda _: pytest.fail("a usage error was retried"))
    args = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--bq_table", "no_project"]
    with pytest.raises(SparkJobError, match=rf"failed \(exit 2, attempt 1 of {MAX_ATTEMPTS}\)"):
        run_local(KDD, load_config(), args)


def test_on_dataproc_the_job_is_restarted_as_often_as_locally():
    """The submit plan's workflow template: Dataproc restarts the failed driver MAX_ATTEMPTS - 1 times."""
    gcp = Config(
        target="gcp",
        project="acme-data-prod",
        region="europe-west1",
        lake_bucket="acme-lake",
        staging_bucket="acme-staging",
    )
    template = dataproc.workflow_template(KDD, gcp, job_args(KDD, gcp), tag="v1")
    message = dataproc_v1.WorkflowTemplate.from_json(json.dumps(template))  # a valid request
    assert message.jobs[0].scheduling.max_failures_per_hour == MAX_ATTEMPTS - 1 == 1
