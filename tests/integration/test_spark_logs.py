"""What a Spark job shows and keeps, on real local Spark: its own lines and one sentence on the terminal,
Spark's log (warnings, Java stack traces, what the JVM prints before log4j starts) in its log file, at the
driver log levels given in Dataproc's form; JSON lines in Cloud Logging's format on request."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time

import pytest

from gcpipe.core.config import PROJECT_ROOT
from gcpipe.datagen.kdd import write_kdd
from spark_jobs import kdd_analysis
from spark_jobs.logs import USER_ERROR, JobExit, progress, user_errors

pytestmark = pytest.mark.spark


def job(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, str]:
    """``python -m spark_jobs.kdd_analysis ARGS`` as a user runs it; (the run, its log file's text)."""
    log = tmp_path / "spark.log"
    env = {**os.environ, "GCPIPE_SPARK_LOG": str(log), "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "spark_jobs.kdd_analysis", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done, log.read_text()


def test_a_missing_input_is_one_sentence_on_the_terminal_and_the_java_detail_is_in_the_log(tmp_path):
    missing = tmp_path / "nowhere.gz"
    done, log = job(tmp_path, "--input", str(missing), "--output", str(tmp_path / "out"))
    assert done.returncode == USER_ERROR  # deterministic: gcpipe spark submit does not retry it
    terminal = done.stderr.splitlines()
    assert terminal[-1] == f"kdd_analysis: file:{missing} does not exist: nothing to read."
    assert len(terminal) <= 3, done.stderr  # the job's own lines (where its log is), then the sentence
    assert all(" INFO spark_jobs: " in line for line in terminal[:-1]), done.stderr
    for noise in ("at org.apache", "Traceback", "WARN", "log4j", "setLogLevel", "incubator"):
        assert noise not in done.stderr
    assert f"Spark's own log: {tmp_path / 'spark.log'}" in done.stderr
    # the detail is in the log file: Spark's warning with its Java stack trace, the Python traceback
    assert "java.io.FileNotFoundException" in log and "\tat org.apache." in log
    assert "Traceback" in log and "PATH_NOT_FOUND" in log
    # the default driver log levels (root=WARN, org.apache.spark=WARN): no INFO of Spark's
    assert " INFO SparkContext:" not in log and " WARN " in log


def test_json_lines_carry_severity_message_labels_and_the_driver_log_levels_apply(tmp_path):
    source = tmp_path / "kdd.gz"
    manifest = write_kdd(source, 300, seed=3, malformed=0.01)
    levels = "org.apache.spark=INFO,org.apache.spark.storage=ERROR"  # over the defaults: root=WARN, spark_jobs=INFO
    done, log = job(
        tmp_path,
        *("--input", str(source), "--output", str(tmp_path / "out")),
        *("--log_format", "json", "--driver-log-levels", levels),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == manifest.rows
    entries = [json.loads(line) for line in done.stderr.splitlines()]  # every line is one JSON object
    assert entries
    for entry in entries:
        assert entry["severity"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        assert entry["logging.googleapis.com/labels"] == {"job": "kdd_analysis"}
        assert entry["time"].endswith("Z") and entry["message"]
    messages = [e["message"] for e in entries if e["logger"] == "spark_jobs" and e["severity"] == "INFO"]
    assert any(m.startswith(f"read {manifest.rows:,} lines") for m in messages), messages
    # org.apache.spark=INFO lets Spark's INFO into the log file; org.apache.spark.storage=ERROR keeps its INFO out
    assert " INFO SparkContext: Running Spark version" in log
    assert " INFO MemoryStore:" not in log and " INFO BlockManager" not in log


def test_a_failure_in_json_ends_in_one_error_entry(tmp_path):
    done, _ = job(
        tmp_path, "--input", str(tmp_path / "none"), "--output", str(tmp_path / "o"), "--log_format=json"
    )
    assert done.returncode == USER_ERROR
    last = json.loads(done.stderr.splitlines()[-1])
    assert last["severity"] == "ERROR" and last["message"].endswith("does not exist: nothing to read.")
    assert last["logging.googleapis.com/labels"] == {"job": "kdd_analysis"}


def test_a_missing_jar_is_a_user_error_in_one_sentence(spark, capsys):
    """A class that is not on Spark's class path (the JDBC driver's jar missing) fails every attempt alike."""
    reader = spark.read.format("jdbc").options(
        url="jdbc:postgresql://127.0.0.1:1/none", dbtable="t", driver="org.postgresql.NoSuchDriver"
    )
    with pytest.raises(JobExit) as failed, user_errors("als_recommend"):
        reader.load()
    assert failed.value.code == USER_ERROR
    assert str(failed.value) == (
        "als_recommend: the class org.postgresql.NoSuchDriver is not on Spark's class path (a jar is missing): "
        "run `make setup`, which fetches PostgreSQL's JDBC driver into .jars/."
    )
    assert capsys.readouterr().err == str(failed.value) + "\n"


def test_a_path_no_file_system_reads_is_a_user_error(spark, capsys):
    """A scheme Spark has no connector for (gs:// without the GCS connector's jar) fails every attempt alike."""
    with pytest.raises(JobExit) as failed, user_errors("kdd_analysis"):
        spark.read.text("nosuch://bucket/kdd.gz").count()
    assert failed.value.code == USER_ERROR
    assert str(failed.value) == (
        'kdd_analysis: Spark cannot read or write here: No FileSystem for scheme "nosuch" (a jar is missing): '
        "run `make setup`, which fetches the jars the jobs use into .jars/, or add the jar to spark.jars."
    )


def test_malformed_driver_log_levels_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as failed:
        kdd_analysis.parse_args(["--input", "i", "--output", "o", "--driver-log-levels", "root=LOUD"])
    assert failed.value.code == 2
    assert "'root=LOUD' is not LOGGER=LEVEL" in capsys.readouterr().err


def test_a_long_stage_logs_its_progress_at_the_interval(spark, caplog):
    """Spark's console progress bar is off; the job logs its running stages' finished tasks instead."""

    def slow(rows):
        time.sleep(1.0)
        yield from rows

    with caplog.at_level(logging.INFO, logger="spark_jobs"), progress(spark, 0.3):
        assert spark.sparkContext.parallelize(range(8), 4).mapPartitions(slow).count() == 8
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("running stage ")]
    assert lines, caplog.text
    assert re.fullmatch(r"running stage \d+ \(count\): \d/4 tasks", lines[0]), lines


def test_no_java_is_a_user_error_in_one_sentence(tmp_path, monkeypatch):
    """JAVA_HOME pointing at no Java: the launcher's own complaint goes to the log file, not the terminal."""
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    done, log = job(tmp_path, "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"))
    assert done.returncode == USER_ERROR
    assert done.stderr.splitlines() == [
        f"kdd_analysis: Spark's JVM did not start (what it printed is in {tmp_path / 'spark.log'}): "
        "install Java 17 (Debian's openjdk-17-jre-headless) or point JAVA_HOME at it."
    ]
    assert "no-java/bin/java" in log
