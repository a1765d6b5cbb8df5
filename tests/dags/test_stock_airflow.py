"""The DAG files parse with Airflow's own tools, as a data engineer (or Composer's and Astronomer's samples)
checks them: the stock CLI (`airflow dags list --local`, `airflow dags list-import-errors --local`, no
bundle flag) and a plain `DagBag(dag_folder=...)`, each in a fresh process with a fresh AIRFLOW_HOME that
knows nothing of gcpipe; for both targets from dags/, and from the folder `gcpipe deploy bundle`
assembles for Composer (the gcp target from its gcpipe.toml; Composer puts that folder on sys.path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gcpipe.core.config import PROJECT_ROOT
from tests.dags.conftest import GCP_ENV
from tests.dags.test_dag_integrity import DAG_IDS

pytestmark = pytest.mark.slow
AIRFLOW = str(PROJECT_ROOT / ".venv" / "bin" / "airflow")
WAIT_FOR_FILES = {"local": "PythonSensor", "gcp": "GCSObjectsWithPrefixExistenceSensor"}  # batch_ingest's
DAGBAG = """
import json, sys
from airflow.models import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "import_errors": bag.import_errors, "dag_ids": sorted(bag.dags),
    "wait_for_files": type(bag.dags["batch_ingest"].get_task("wait_for_files")).__name__,
    "gcpipe": sys.modules["gcpipe"].__file__,
}))
"""


@pytest.fixture(scope="module")
def fresh_airflow(tmp_path_factory):
    """The environment of a new shell: no AIRFLOW_* or GCPIPE_* settings (the DAG tests' own are set in
    this process), AIRFLOW_HOME a new folder whose database `airflow db migrate` made."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "GCPIPE_"))}
    env |= {
        "AIRFLOW_HOME": str(tmp_path_factory.mktemp("airflow-home")),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    done = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return env


@pytest.fixture(scope="module")
def composer_bundle(tmp_path_factory):
    """What `gcpipe deploy bundle` assembles for Composer's dags/ folder (gcp settings from the variables)."""
    out = tmp_path_factory.mktemp("composer") / "dags"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GCPIPE_")}, **GCP_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "gcpipe.app.cli", "deploy", "bundle", f"--output={out}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert 'target = "gcp"' in (out / "gcpipe.toml").read_text()
    return out


def where(name: str, fresh_airflow: dict, bundle=None) -> tuple[dict, str, Path]:
    """The environment, the DAGs folder and the working folder of one case: dags/ for a target, from the
    project root; or the Composer bundle, from elsewhere (nothing of the checkout on sys.path)."""
    if name == "bundle":  # no GCPIPE_* variables: the bundle's gcpipe.toml says gcp
        env = {**fresh_airflow, "AIRFLOW__CORE__DAGS_FOLDER": str(bundle), "PYTHONPATH": str(bundle)}
        return env, str(bundle), bundle.parent
    target = GCP_ENV if name == "gcp" else {"GCPIPE_TARGET": "local"}
    return {**fresh_airflow, **target, "AIRFLOW__CORE__DAGS_FOLDER": "dags"}, "dags", PROJECT_ROOT


def stock(command: list[str], env: dict, cwd: Path) -> list[dict]:
    """An `airflow ...` command's JSON output (its last line: Airflow logs its warnings on stdout too)."""
    done = subprocess.run(
        [AIRFLOW, *command, "-o", "json"], env=env, capture_output=True, text=True, timeout=300, cwd=cwd
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", ["local", "gcp", "bundle"])
def test_the_stock_cli_lists_the_five_dags_and_no_import_errors(case, fresh_airflow, request):
    bundle = request.getfixturevalue("composer_bundle") if case == "bundle" else None
    env, folder, cwd = where(case, fresh_airflow, bundle)
    assert stock(["dags", "list-import-errors", "--local"], env, cwd) == []
    listed = stock(["dags", "list", "--local"], env, cwd)
    assert {dag["dag_id"] for dag in listed} == DAG_IDS
    assert {dag["fileloc"] for dag in listed} == {f"{folder}/{dag_id}.py" for dag_id in DAG_IDS}


@pytest.mark.parametrize("case", ["local", "gcp", "bundle"])
def test_a_plain_dagbag_loads_the_five_dags_for_the_target(case, fresh_airflow, request):
    bundle = request.getfixturevalue("composer_bundle") if case == "bundle" else None
    env, folder, cwd = where(case, fresh_airflow, bundle)
    done = subprocess.run(
        [sys.executable, "-c", DAGBAG, folder], env=env, capture_output=True, text=True, timeout=300, cwd=cwd
    )
    assert done.returncode == 0, done.stderr[-2000:]
    bag = json.loads(done.stdout.strip().splitlines()[-1])
    assert bag["import_errors"] == {} and set(bag["dag_ids"]) == DAG_IDS
    assert bag["wait_for_files"] == WAIT_FOR_FILES["local" if case == "local" else "gcp"]
    # From the bundle, the DAGs run the bundle's own copy of gcpipe (Composer has no other).
    home = bundle if case == "bundle" else PROJECT_ROOT
    assert bag["gcpipe"] == str(home / "gcpipe" / "__init__.py")
