"""Hostile values given on the command line, as a user would type them, against the BigQuery emulator:
a value (``--param``) is carried as data; a name (``--table``, ``--dataset``) is refused with one sentence
before any SQL is sent. Either way the tables are as they were.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gcpipe.core.config import PROJECT_ROOT

pytestmark = pytest.mark.stack

HOSTILE = [
    "x'; DROP TABLE people; --",
    "`people`",
    "a\nb",
    'say "hi"',
    "\\'",
    "robert'); DELETE FROM people; --",
]


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )


def _one_sentence(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith("."), stderr
    assert "Traceback" not in stderr
    return lines[0]


def _names(bq, table: str) -> list[str]:
    return sorted(row["name"] for row in bq.query(f"SELECT name FROM `{table}`").result())


def test_hostile_values_and_names_on_the_command_line(bq, local_stack, dataset, tmp_path):
    table = f"{local_stack.project}.{dataset}.people"
    bq.query(f"CREATE TABLE `{table}` AS SELECT 'alice' AS name UNION ALL SELECT 'bob'").result()
    query = tmp_path / "echo.sql"
    query.write_text(
        f"SELECT @a AS a, @b AS b, @c AS c, @d AS d, @e AS e, @f AS f,\n"
        f"  (SELECT COUNT(*) FROM `{{{{ project }}}}.{dataset}.people` WHERE name IN (@a, @b, @c, @d, @e, @f)) AS hits"
    )
    params = [
        arg for name, value in zip("abcdef", HOSTILE, strict=True) for arg in ("--param", f"{name}={value}")
    ]
    ran = _run("-m", "gcpipe.app.cli", "sql", "run", str(query), *params, "--format", "json")
    assert ran.returncode == 0, ran.stderr
    [row] = json.loads(ran.stdout)["statements"][-1]["rows"]
    assert [row[name] for name in "abcdef"] == HOSTILE and row["hits"] == 0  # data, compared as data

    name = "taxi`; DROP TABLE people; --"
    ingest = _run(
        "-m",
        "pipelines.csv_ingest",
        "--input",
        str(query),
        "--schema",
        "taxi_trips",
        "--table",
        f"{local_stack.project}:{dataset}.{name}",
    )
    assert ingest.returncode == 1
    assert "is not a table id" in _one_sentence(ingest.stderr)
    dashboard = _run("-m", "gcpipe.app.cli", "dashboard", "--dataset", f"{dataset}\n; DROP TABLE people")
    assert dashboard.returncode == 1
    assert "is not a dataset id" in _one_sentence(dashboard.stderr)

    assert _names(bq, table) == ["alice", "bob"]
    assert [t.table_id for t in bq.list_tables(dataset)] == ["people"]
