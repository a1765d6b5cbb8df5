"""The README's shell blocks work as written, copied line by line into a fresh shell.

Every ```bash block is classified below by its first line: the quick local ones run here, in bash with a
new shell's environment (no venv on PATH), from a copy of the checkout (links to its files) with a
state folder and ports of their own, so the session's stack is left alone; each other block says why
it does not run here. Every command of every block must name a program a fresh shell finds.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from datetime import date

import pytest

from gcpipe.core.config import PROJECT_ROOT, load_config
from gcpipe.datagen.taxi_trips import write_trips_csv
from gcpipe.local import stack

pytestmark = [pytest.mark.stack, pytest.mark.slow]
README = PROJECT_ROOT / "README.md"
RUNS = None
# A block's first line (its start) -> None: the test runs it; else why it does not.
BLOCKS = {
    "make setup && make demo": "the whole set-up, demo and suite: CI runs exactly these (.ci/run)",
    "make up          # or": RUNS,
    "make up\n": RUNS,  # csv_ingest on the day's files (the demo lands them; here 2,000 generated rows)
    ".venv/bin/gcpipe datagen taxi-trips": RUNS,
    "make up && source .gcpipe/env": (
        "a pipeline that runs until Ctrl-C, a minute of publishing and a foreground server "
        "(tests/e2e/test_dashboard.py runs the same parts)"
    ),
    ".venv/bin/python -m pipelines.taxi_streaming --runner DataflowRunner": "Google Cloud (Dataflow)",
    ".venv/bin/gcpipe sql run sql/transforms/top_products.sql": (
        "reads the e-commerce tables and the model the demo makes, and a BigQuery dry run on gcp "
        "(tests/integration/test_sql_files.py runs every file)"
    ),
    ".venv/bin/gcpipe spark submit kdd_analysis": "Spark jobs of minutes on the demo's data, and Dataproc dry runs",
    ".venv/bin/gcpipe up && source .gcpipe/env": RUNS,  # Spark on gs:// of the local bucket
    "make airflow": "a foreground server; the DAG runs need the demo's files (tests/dags/ runs them)",
    "DRY_RUN=1 GCPIPE_PROJECT=acme-data-prod": RUNS,
    "gcloud auth login": "Google Cloud (an interactive login)",
    "make run-gcp JOB=csv_ingest": "Google Cloud (Dataflow, Dataproc)",
    "make test": "the whole suite, and benchmarks of minutes",
    "make soak": "a benchmark of 5 to 30 minutes (tests/fault/ and test_taxi_streaming.py run its parts)",
}
# What a fresh shell finds: the shell's own words, make, the Google Cloud CLI, Terraform, the venv's programs.
FOUND = {"make", "source", "gcloud", "terraform"}


def bash_blocks() -> list[str]:
    """Every ```bash block of the README (indented ones too), without the fences' indentation."""
    blocks = re.findall(r"^( *)```bash\n(.*?)^\1```", README.read_text(), flags=re.S | re.M)
    return [re.sub(rf"^{indent}", "", body, flags=re.M) for indent, body in blocks]


def classify(block: str) -> str:
    keys = [key for key in BLOCKS if block.startswith(key)]
    assert len(keys) == 1, f"classify this README block in BLOCKS (run it or say why not):\n{block}"
    return keys[0]


def commands(block: str) -> list[list[str]]:
    """The commands of a block: continuation lines joined, comments dropped, split at lines, && ; & |."""
    found = []
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current = []
        for word in [*lexer, ";"]:
            if set(word) <= set(";&|"):
                found += [current] if current else []
                current = []
            else:
                current.append(word)
    return found


def test_every_block_is_classified_and_names_programs_a_fresh_shell_finds():
    blocks = bash_blocks()
    assert {classify(block) for block in blocks} == set(BLOCKS)  # and none of BLOCKS is stale
    for block in blocks:
        for command in commands(block):
            program = next(word for word in command if not re.fullmatch(r"[A-Z_]+=.*", word))
            assert program in FOUND or program.startswith(".venv/bin/"), f"{program!r} in:\n{block}"


@pytest.fixture
def checkout(tmp_path):
    """A copy of the checkout (links to its top-level files) whose .gcpipe/ is new: its own stack."""
    copy = tmp_path / "gcpipe"
    copy.mkdir()
    for entry in PROJECT_ROOT.iterdir():
        if entry.name != ".gcpipe":
            (copy / entry.name).symlink_to(entry)
    base = load_config(target="local")
    config = base.replace(state_dir=copy / ".gcpipe", port_offset=base.port_offset + 2000)
    yield copy, config
    stack.down(config, report=lambda *_: None)  # whatever a failed block left running


def fresh_shell(config) -> dict[str, str]:
    """A new login's environment: no venv on PATH, nothing of gcpipe but where its stack lives."""
    path = ":".join(p for p in os.environ["PATH"].split(":") if ".venv" not in p)
    return {
        "PATH": path,
        "HOME": os.environ["HOME"],
        "LANG": "C.UTF-8",
        "GCPIPE_STATE_DIR": str(config.state_dir),
        "GCPIPE_PORT_OFFSET": str(config.port_offset),
    }


def test_the_quick_local_blocks_run_as_written(checkout):
    copy, config = checkout
    # The csv_ingest block reads the day's files that `make demo` lands.
    day = config.state_dir / "lake" / "landing" / "taxi_trips" / "2019-03-01"
    day.mkdir(parents=True)
    write_trips_csv(day / "trips.csv", 2000, 7, 0.01, date(2019, 3, 1), 1)
    for block in bash_blocks():
        if BLOCKS[classify(block)] is not RUNS:
            continue
        done = subprocess.run(
            ["bash", "-e"],
            input=block,
            cwd=copy,
            env=fresh_shell(config),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{block}\nstdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
