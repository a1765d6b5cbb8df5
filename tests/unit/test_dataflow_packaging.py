"""The flex-template packaging in infra/dataflow: image layout, entry point, metadata and pinned packages.

No Docker engine runs here, so the image's layout is rebuilt as a folder from the Dockerfile's COPY lines
and its entry point is run there the way the flex-template launcher runs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

from gcpipe.core.config import PROJECT_ROOT
from gcpipe.core.schemas import load_tables
from gcpipe.deploy.naming import TEMPLATES
from gcpipe.deploy.plans import DATAFLOW_DIR
from pipelines.csv_ingest import target_config
from pipelines.transforms.pii import default_key_source

DOCKERFILE = (DATAFLOW_DIR / "Dockerfile").read_text()
WORKDIR = re.search(r"^WORKDIR (\S+)", DOCKERFILE, re.M).group(1)
COPIES = re.findall(r"^COPY (?!--from)(\S+) (\S+)", DOCKERFILE, re.M)

PROBE = """
import json, os
from gcpipe.core.schemas import load_tables

def run(argv=None, save_main_session=True):
    with open(os.environ["PROBE_OUT"], "w") as out:
        json.dump({"argv": argv, "tables": sorted(load_tables())}, out)
"""


def build_layout(root):
    """The image's /template as a folder: what the Dockerfile copies, where it copies it."""
    for source, target in COPIES:
        destination = root / target
        if (PROJECT_ROOT / source).is_dir():
            shutil.copytree(PROJECT_ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(PROJECT_ROOT / source, destination)
    return root


def launch(root, *args, **env):
    main = re.search(r"FLEX_TEMPLATE_PYTHON_PY_FILE=(\S+)", DOCKERFILE).group(1)
    assert main.startswith(WORKDIR + "/")
    return subprocess.run(
        [sys.executable, root / main.removeprefix(WORKDIR + "/"), *args],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(root), **env},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_launcher_runs_the_image_pipeline_on_the_same_image(tmp_path):
    root = build_layout(tmp_path / "template")
    (root / "pipelines" / "probe.py").write_text(PROBE)
    out = tmp_path / "probe.json"
    image = "europe-west1-docker.pkg.dev/acme/gcpipe/csv-ingest:abc"

    done = launch(
        root,
        "--input=gs://lake/a.csv",
        "--table=acme:taxi.trips",
        GCPIPE_PIPELINE="pipelines.probe",
        GCPIPE_SDK_CONTAINER_IMAGE=image,
        PROBE_OUT=str(out),
    )

    assert done.returncode == 0, done.stderr
    seen = json.loads(out.read_text())
    assert seen["argv"] == [
        "--input=gs://lake/a.csv",
        "--table=acme:taxi.trips",
        f"--sdk_container_image={image}",
        "--sdk_location=container",
    ]
    assert seen["tables"] == sorted(load_tables())  # sql/ found beside gcpipe/ in the image


def test_the_launcher_keeps_options_given_and_names_a_missing_pipeline(tmp_path):
    root = build_layout(tmp_path / "template")
    (root / "pipelines" / "probe.py").write_text(PROBE)
    out = tmp_path / "probe.json"
    done = launch(
        root,
        "--sdk_container_image=other",
        "--sdk_location=default",
        GCPIPE_PIPELINE="pipelines.probe",
        GCPIPE_SDK_CONTAINER_IMAGE="img",
        PROBE_OUT=str(out),
    )
    assert json.loads(out.read_text())["argv"] == ["--sdk_container_image=other", "--sdk_location=default"]

    done = launch(root)
    assert done.returncode == 1 and "GCPIPE_PIPELINE is not set" in done.stderr


def test_worker_requirements_pin_the_versions_of_the_lock():
    lock = {p["name"]: p["version"] for p in tomllib.loads((PROJECT_ROOT / "uv.lock").read_text())["package"]}
    pins = re.findall(
        r"^([A-Za-z0-9_.-]+)(?:\[[^\]]+\])?==(\S+)", (DATAFLOW_DIR / "requirements.txt").read_text(), re.M
    )
    assert pins and ("apache-beam", lock["apache-beam"]) in pins
    for name, version in pins:
        assert lock[name.lower()] == version, (
            f"{name}: requirements.txt {version}, uv.lock {lock[name.lower()]}"
        )
    beam = re.search(r"ARG BEAM_VERSION=(\S+)", DOCKERFILE).group(1)
    assert beam == lock["apache-beam"]


@pytest.mark.parametrize(
    ("template", "options"),
    [
        (
            "csv_ingest",
            ["input", "schema", "table", "dead_letter", "partition_date", "pii", "pii_key", "output"],
        ),
        ("taxi_streaming", ["input_subscription", "input_topic", "output_dataset", "allowed_lateness"]),
    ],
)
def test_metadata_declares_the_pipeline_options(template, options):
    assert template in TEMPLATES
    metadata = json.loads((DATAFLOW_DIR / template / "metadata.json").read_text())
    assert [p["name"] for p in metadata["parameters"]] == options
    for parameter in metadata["parameters"]:
        assert parameter["label"] and parameter["helpText"]
        for regex in parameter.get("regexes", []):
            re.compile(regex)


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        ("input", "gs://acme-lake/raw/2019-03-01/*.csv.gz", "/local/file.csv"),
        ("table", "acme-data-prod:taxi.taxi_trips", "taxi_trips"),
        ("partition_date", "2019-03-01", "01/03/2019"),
        ("input_subscription", "projects/acme-data-prod/subscriptions/rides", "rides"),
        ("allowed_lateness", "120", "2m"),
    ],
)
def test_metadata_regexes_accept_real_values_and_refuse_others(name, good, bad):
    parameters = {}
    for template in TEMPLATES:
        for p in json.loads((DATAFLOW_DIR / template / "metadata.json").read_text())["parameters"]:
            parameters[p["name"]] = p
    [regex] = parameters[name]["regexes"]
    assert re.fullmatch(regex, good) and not re.fullmatch(regex, bad)


def test_the_image_runs_the_csv_ingestion_on_the_gcp_target(monkeypatch):
    """Never the local one: its PII key would be a file made up in each container, its output a local path."""
    from apache_beam.options.pipeline_options import PipelineOptions

    image_env = dict(re.findall(r"^\s*(GCPIPE_TARGET)=(\S+)", DOCKERFILE, re.M))
    assert image_env == {"GCPIPE_TARGET": "gcp"}
    for name in ("GCPIPE_PROJECT", "GCPIPE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GCPIPE_TARGET", image_env["GCPIPE_TARGET"])
    config = target_config(PipelineOptions(["--runner=DataflowRunner", "--project=acme-prod"]))
    assert (config.target, config.project, config.emulator_env()) == ("gcp", "acme-prod", {})
    assert default_key_source(config) == "projects/acme-prod/secrets/gcpipe-pii-key/versions/latest"
