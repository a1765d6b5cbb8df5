"""A Spark job that fails is run again: locally by ``run_local``, on Dataproc by the job's restart policy.

What may be lost: nothing. The KDD job's first attempt fails (its input is still being copied: a gzip cut
short); the second, after the pause, reads the whole file and writes the whole result, replacing whatever
the failed one wrote, so the summary counts every line once. The number of attempts is bounded, and a
deterministic failure (a usage error, a missing input) is not retried: it would fail the same way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from google.cloud import dataproc_v1

from gcpipe.core.config import Config, load_config
from gcpipe.datagen.kdd import write_kdd
from gcpipe.deploy import dataproc
from gcpipe.spark import jobs
from gcpipe.spark.jobs import JOBS, MAX_ATTEMPTS, RETRY_PAUSE, SparkJobError, job_args, run_local
from spark_jobs.logs import USER_ERROR

KDD = JOBS["kdd_analysis"]


@pytest.mark.spark
@pytest.mark.slow
def test_a_failed_spark_job_is_run_again_and_the_second_attempt_counts_every_line_once(
    tmp_path, monkeypatch, capfd
):
    complete = tmp_path / "upstream" / "kdd.gz"
    manifest = write_kdd(complete, 3000, seed=5, malformed=0.01)
    source = tmp_path / "landing" / "kdd.gz"  # half copied on the first attempt
    source.parent.mkdir()
    source.write_bytes(complete.read_bytes()[: complete.stat().st_size // 2])
    pauses = []

    def copy_completes(seconds: float) -> None:  # the pause between attempts: the upstream copy ends
        pauses.append(seconds)
        source.write_bytes(complete.read_bytes())

    monkeypatch.setattr(jobs, "sleep", copy_completes)
    config = load_config().replace(state_dir=tmp_path / "state")
    result = run_local(KDD, config, ["--input", str(source), "--output", str(tmp_path / "out")])

    assert pauses == [RETRY_PAUSE]  # one failure, one pause, then success
    summary = json.loads(result.stdout)
    assert (summary["rows"], summary["valid"]) == (manifest.rows, manifest.valid)
    assert summary["malformed"] == manifest.malformed
    log = capfd.readouterr().err
    # the first attempt's one sentence, naming its log file, which holds the Java detail
    said = re.search(
        rf"kdd_analysis: attempt 1 of {MAX_ATTEMPTS} failed \(exit 1\): kdd_analysis failed: "
        r"java.io.EOFException: Unexpected end of input stream; the detail is in (\S+); running it again",
        log,
    )
    assert said, log
    assert "\tat org.apache" in Path(said[1]).read_text()
    assert "Traceback" not in log and "\tat " not in log
    assert len(list((tmp_path / "state" / "logs" / "spark").glob("kdd_analysis-*.log"))) == 2  # a file a run


def test_a_usage_error_fails_at_once_without_a_retry(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "sleep", lambda _: pytest.fail("a usage error was retried"))
    args = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--bq_table", "no_project"]
    with pytest.raises(
        SparkJobError, match=r"\(a usage error, exit 2: not run again, it would fail the same way\)"
    ):
        run_local(KDD, load_config(), args)


@pytest.mark.spark
def test_a_missing_input_fails_once_in_one_sentence_without_a_retry(tmp_path, monkeypatch, capfd):
    """A missing input is deterministic: the job exits USER_ERROR and run_local does not run it again."""
    monkeypatch.setattr(jobs, "sleep", lambda _: pytest.fail("a missing input was retried"))
    config = load_config().replace(state_dir=tmp_path / "state")
    missing = tmp_path / "nowhere.gz"
    with pytest.raises(SparkJobError) as failed:
        run_local(KDD, config, ["--input", str(missing), "--output", str(tmp_path / "out")])
    assert str(failed.value) == (
        f"kdd_analysis: file:{missing} does not exist: nothing to read "
        f"(a user error, exit {USER_ERROR}: not run again, it would fail the same way)."
    )
    [spark_log] = (tmp_path / "state" / "logs" / "spark").glob("kdd_analysis-*.log")  # one attempt
    assert "PATH_NOT_FOUND" in spark_log.read_text()
    terminal = capfd.readouterr().err.splitlines()
    assert terminal == [line for line in terminal if " INFO spark_jobs: " in line]  # the job's own lines only


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
