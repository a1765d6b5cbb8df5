"""Every part a run needs that may be missing ends in one sentence that says what to run, and exit status 1:
never a traceback. Each test points the lookup at an empty place (a variable, or the search path
monkeypatched) and runs the command a user would; nothing is started (the failures come first)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from gcpipe.app import demo
from gcpipe.app.cli import main
from gcpipe.core.config import DEFAULT_PORTS, PROJECT_ROOT, load_config
from gcpipe.local import stack
from spark_jobs.logs import USER_ERROR


def gcpipe(capsys, *argv: str) -> tuple[int, str]:
    """``gcpipe ARGV`` in this process: its exit status and what it printed on stderr."""
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    return exited.value.code, capsys.readouterr().err


@pytest.fixture
def side_stack(tmp_path, monkeypatch):
    """A state folder of its own; ``on_free_port(service)`` moves the ports so that one is free."""
    monkeypatch.setenv("GCPIPE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("GCPIPE_TARGET", raising=False)

    def on_free_port(service: str) -> int:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        monkeypatch.setenv("GCPIPE_PORT_OFFSET", str(port - DEFAULT_PORTS[service]))
        return port

    return on_free_port


def test_the_pubsub_emulator_missing(side_stack, capsys, tmp_path, monkeypatch):
    side_stack("pubsub")
    launcher = tmp_path / "empty" / "cloud-pubsub-emulator"
    monkeypatch.setenv("GCPIPE_PUBSUB_EMULATOR", str(launcher))
    assert gcpipe(capsys, "up", "--service", "pubsub") == (
        1,
        f"error: the Pub/Sub emulator is not installed (no {launcher}): run `make setup` to install the "
        "Debian package google-cloud-cli-pubsub-emulator (or `gcloud components install pubsub-emulator`).\n",
    )


def test_the_bigquery_emulator_not_running_for_a_local_sql_run(side_stack, capsys):
    port = side_stack("bigquery")  # nothing listens there
    assert gcpipe(
        capsys, "sql", "run", "sql/ml/purchase_model_evaluate.sql", "--target", "local", "--dry-run"
    ) == (
        1,
        f"error: the BigQuery emulator (127.0.0.1:{port}) does not answer: start the local stack with "
        "`gcpipe up` (or `make up`).\n",
    )


def test_postgresql_missing(side_stack, capsys, tmp_path, monkeypatch):
    side_stack("postgres")
    monkeypatch.setattr(stack, "POSTGRES_ROOT", tmp_path / "empty")
    assert gcpipe(capsys, "up", "--service", "postgres") == (
        1,
        f"error: PostgreSQL is not installed (no {tmp_path / 'empty'}/<version>/bin/initdb): run `make setup` "
        "to install the Debian package postgresql.\n",
    )
    assert not stack.running(load_config())


def test_a_port_already_taken(side_stack, capsys):
    port = side_stack("metadata")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        assert gcpipe(capsys, "up", "--service", "metadata") == (
            1,
            f"error: port {port} for the metadata stand-in is already taken by another process; stop that "
            "process or set GCPIPE_PORT_OFFSET to move the whole stack.\n",
        )


@pytest.mark.parametrize(
    ("variables", "sentence"),
    [
        ({"GCPIPE_CHROMIUM": "{empty}/chromium"}, "{empty}/chromium not found"),
        (
            {"GCPIPE_CHROMIUM": "{empty}/chromium", "GCPIPE_CHROMEDRIVER": "{empty}/chromedriver"},
            "{empty}/chromium and {empty}/chromedriver not found",
        ),
    ],
)
def test_chromium_or_its_driver_missing_fails_a_page_test_with_the_sentence(tmp_path, variables, sentence):
    """A page test (here a stand-in that only asks for the browser) fails with the sentence, no traceback."""
    empty = tmp_path / "empty"
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_page.py").write_text("def test_page(browser):\n    pass\n")
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        **{k: v.format(empty=empty) for k, v in variables.items()},
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.browser",
            "-p",
            "no:cacheprovider",
            "-q",
            "test_page.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout
    packages = "chromium" if len(variables) == 1 else "chromium chromium-driver"
    expected = (
        f"{sentence.format(empty=empty)} (on PATH, or where GCPIPE_CHROMIUM / GCPIPE_CHROMEDRIVER point): "
        f"run `make setup` to install the Debian packages {packages}."
    )
    assert expected in done.stdout.replace("\n", ""), done.stdout
    assert "Traceback" not in done.stdout and "find_browser" not in done.stdout


# -- input files and folders a user names -------------------------------------------------------------


def test_an_sql_file_that_is_missing_a_folder_or_not_text(capsys, tmp_path):
    missing, folder, binary = tmp_path / "missing.sql", tmp_path / "folder.sql", tmp_path / "binary.sql"
    folder.mkdir()
    binary.write_bytes(b"SELECT 1;\nSELECT '\xff';\n")
    assert gcpipe(capsys, "sql", "run", str(missing)) == (1, f"error: SQL file {missing} does not exist.\n")
    assert gcpipe(capsys, "sql", "run", str(folder)) == (
        1,
        f"error: SQL file {folder} is a folder: name a file.\n",
    )
    assert gcpipe(capsys, "sql", "run", str(binary)) == (
        1,
        f"error: SQL file {binary} is not UTF-8 text: byte 0xff on line 2.\n",
    )


def test_an_sql_file_this_user_may_not_read():
    """Root reads everything: as root, the command runs as nobody (the file is root's, write-only)."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)  # noqa: S103 (the other user must reach the file to be refused it)
        path = Path(folder, "secret.sql")
        path.write_text("SELECT 1;\n")
        path.chmod(0o200)
        as_other = (
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if os.geteuid() == 0 else []
        )
        done = subprocess.run(
            [*as_other, sys.executable, "-m", "gcpipe.app.cli", "sql", "run", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=folder,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    assert (done.returncode, done.stderr) == (
        1,
        f"error: cannot read SQL file {path}: permission denied (`chmod u+r` it, or run as its owner).\n",
    )


def test_a_rentals_folder_that_is_missing_or_a_file(capsys, tmp_path):
    missing, a_file = tmp_path / "missing", tmp_path / "ratings.csv"
    a_file.write_text("1,1,5\n")
    assert gcpipe(capsys, "spark", "load-rentals", "--input", str(missing)) == (
        1,
        f"error: the rentals folder {missing} does not exist.\n",
    )
    assert gcpipe(capsys, "spark", "load-rentals", "--input", str(a_file)) == (
        1,
        f"error: the rentals folder {a_file} is a file: name the folder that holds the files.\n",
    )


def test_a_demo_stopped_by_a_missing_part_still_writes_the_report_of_what_ran(side_stack, capsys, tmp_path):
    """The demo's first stage meets a taken port: one sentence, exit status 1, and the report (the failed
    stage marked, the others not run, the tables not read: the emulator is not up)."""
    port = side_stack("metadata")
    page = tmp_path / "report.html"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        status, err = gcpipe(capsys, "demo", "--scale", "0.01", "--report", str(page))
    stages = len(demo.STAGES)
    assert (status, err.rstrip().splitlines()[-1]) == (
        1,
        f"error: stage 1/{stages} (local stack) failed: port {port} for the metadata stand-in is already taken by "
        "another process; stop that process or set GCPIPE_PORT_OFFSET to move the whole stack; the report of the "
        f"stages that ran: {page}",
    )
    text = page.read_text()
    assert "The demo stopped at stage 1, local stack: port" in text
    assert f"{stages - 1} did not run" in text and "the BigQuery emulator is not running" in text


def test_a_pinned_jar_missing_stops_a_spark_job_with_the_sentence(tmp_path):
    """The GCS connector (and the JDBC driver) come from `make setup`; a job started without them says so
    before the JVM starts, through `python -m` as through `gcpipe spark submit`."""
    env = {**os.environ, "GCPIPE_JARS_DIR": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "spark_jobs.kdd_analysis",
            "--input",
            "x.gz",
            "--output",
            str(tmp_path / "out"),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == USER_ERROR  # not retried: it would fail the same way
    assert done.stderr.strip().splitlines()[-1] == (
        "kdd_analysis: gcs-connector-4.0.4-shaded.jar (Google's Cloud Storage connector, for gs:// in Spark) "
        f"is not in {tmp_path}: run `make setup`."
    )
    assert "Traceback" not in done.stderr
