"""``spark-submit spark_jobs/<job>.py`` from an activated venv does what ``python -m spark_jobs.<job>`` does:
the door Spark users know, on the same input, gives the same summary and the same outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gcpipe.core.config import PROJECT_ROOT
from gcpipe.datagen.kdd import write_kdd

pytestmark = [pytest.mark.spark]


def test_spark_submit_runs_the_kdd_job_as_python_m_does(tmp_path):
    manifest = write_kdd(tmp_path / "kdd.gz", 2_000, seed=9, malformed=0.01)
    venv = Path(sys.executable).parent
    activated = {**os.environ, "PATH": f"{venv}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv.parent)}
    doors = {
        "python_m": ["python", "-m", "spark_jobs.kdd_analysis"],
        "spark_submit": ["spark-submit", "spark_jobs/kdd_analysis.py"],
    }
    summaries, files = {}, {}
    for door, command in doors.items():
        output = tmp_path / door
        done = subprocess.run(
            [*command, "--input", manifest.path, "--output", str(output)],
            cwd=PROJECT_ROOT,
            env=activated,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        # spark-submit's Python runner passes the job's stderr to stdout: the summary is the JSON line
        [line] = [line for line in done.stdout.splitlines() if line.startswith('{"input"')]
        summary = json.loads(line)
        summaries[door] = {key: summary[key] for key in ("rows", "valid", "malformed", "aggregates")}
        files[door] = sorted(path.relative_to(output).as_posix() for path in output.rglob("*.csv"))
    assert summaries["spark_submit"] == summaries["python_m"]
    assert summaries["python_m"]["valid"] == manifest.valid
    assert summaries["python_m"]["malformed"] == manifest.malformed
    assert files["spark_submit"] == files["python_m"] and "attack_stats.csv" in files["python_m"]
