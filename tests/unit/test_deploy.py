"""gcpipe deploy and the Makefile's deployment targets.

Google Cloud cannot be reached here, so `gcloud` and `terraform` are stand-ins on PATH that record the
exact argv they were called with (and answer like the real tools where a step reads the answer). The
dry runs must call neither; the real runs must call exactly the printed plan, in order.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from gcpipe.core.config import PROJECT_ROOT, Config, load_config
from gcpipe.core.schemas import load_tables
from gcpipe.deploy.dataproc import submit_plan
from gcpipe.deploy.naming import NAMES_FILE, TEMPLATES, Deployment, deployed_tag, git, toml_dumps
from gcpipe.deploy.plans import dags_plan, infra_plan, make_bundle, run_plan, templates_plan
from gcpipe.deploy.steps import DeployError, render
from gcpipe.orchestration.gcp_requests import dataproc_batch, dataproc_job
from gcpipe.spark.jobs import JOBS, job_args

PROJECT, REGION, TAG = "acme-data-prod", "europe-west1", "abc123"
NAMES = json.loads(NAMES_FILE.read_text())

FAKE = textwrap.dedent(
    f"""\
    #!{sys.executable}
    # A stand-in for gcloud/terraform: records its argv, answers like the real tool where gcpipe reads it.
    import json, os, sys
    tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps([tool, *args]) + "\\n")
    if tool == "terraform" and "output" in args:
        print(open(os.environ["FAKE_OUTPUTS"]).read())
    if args[:3] == ["storage", "buckets", "describe"]:
        sys.exit(1)  # the state bucket does not exist yet
    if args[:3] == ["composer", "environments", "update"]:
        sys.exit("ERROR: (gcloud.composer.environments.update) INVALID_ARGUMENT: No change in configuration.")
    """
)


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    """Stand-ins for gcloud and terraform first on PATH, an empty gcpipe.toml, a state dir of our own."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("gcloud", "terraform"):
        (bin_dir / tool).write_text(FAKE)
        (bin_dir / tool).chmod(0o755)
    log = tmp_path / "calls.jsonl"
    config = tmp_path / "gcpipe.toml"
    config.write_text("port_offset = 800\n\n[local]\nlake_bucket = 'my-local-lake'\n")
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "project": {"value": PROJECT},
                "region": {"value": REGION},
                "lake_bucket": {"value": f"{PROJECT}-lake"},
                "staging_bucket": {"value": f"{PROJECT}-staging"},
                "composer_environment": {"value": "gcpipe"},
                "datasets": {
                    "value": {"taxi": "taxi", "ecommerce": "ecommerce", "kdd": "kdd", "rentals": "rentals"}
                },
            }
        )
    )
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(log),
        "FAKE_OUTPUTS": str(outputs),
        "GCPIPE_CONFIG": str(config),
        "GCPIPE_STATE_DIR": str(tmp_path / "state"),
        "GCPIPE_PROJECT": PROJECT,
        "GCPIPE_REGION": REGION,
        "GCPIPE_IMAGE_TAG": TAG,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DRY_RUN", raising=False)

    class Cloud:
        calls_file, config_file, state_dir = log, config, tmp_path / "state"

        @staticmethod
        def calls() -> list[list[str]]:
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return Cloud


def gcpipe(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "gcpipe.app.cli", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert not check or done.returncode == 0, done.stderr
    return done


def commands(script: str) -> list[list[str]]:
    """The command lines of a printed plan (comments, here-documents and set-up lines left out)."""
    out, in_heredoc = [], False
    for line in script.splitlines():
        if in_heredoc:
            in_heredoc = line != "EOF"
            continue
        if "<<'EOF'" in line:
            in_heredoc = True
            continue
        if line and not line.startswith(("#", "set -", "cd ")):
            out.append(shlex.split(line.split(" >/dev/null 2>&1 || ")[-1].split(" > ")[0]))
    return out


def deployment() -> Deployment:
    return Deployment.from_config("prod", TAG)


# -- the dry run of the whole sequence, through make -------------------------------------------------


def test_make_dry_run_prints_a_complete_coherent_sequence_and_calls_nothing(cloud):
    done = subprocess.run(
        ["make", "-s", "deploy-infra", "build-templates", "deploy-dags", "DRY_RUN=1"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert cloud.calls() == []  # nothing was called
    lines = commands(done.stdout)
    tools = [" ".join(line[:3]) for line in lines]
    assert tools == [
        "gcloud services enable",
        "gcloud storage buckets",  # create the state bucket
        "gcloud storage buckets",  # versioning
        "terraform -chdir=infra/terraform init",
        "terraform -chdir=infra/terraform plan",
        "terraform -chdir=infra/terraform apply",
        "terraform -chdir=infra/terraform output",
        "gcpipe deploy config",
        *["gcloud builds submit", "gcloud dataflow flex-template"] * len(TEMPLATES),
        "gcloud composer environments",  # PyPI packages
        "gcpipe spark package",  # the Spark jobs' code, staged before the DAGs that run it
        "gcloud storage cp",
        "gcpipe deploy bundle",
        *["gcloud composer environments"]
        * (
            2
            + sum((PROJECT_ROOT / n).is_dir() for n in ("gcpipe", "pipelines", "spark_jobs", "sql", "infra"))
            + len(list((PROJECT_ROOT / "dags").glob("*.py")))
        ),
    ]
    text = done.stdout
    # One project, one region, everywhere.
    for line in lines:
        if line[0] == "gcloud":
            assert f"--project={PROJECT}" in line, line
    assert f"--location={REGION}" in text and "us-central1" not in text
    # The images Cloud Build pushes are the images the templates use, in the Terraform repository.
    registry = f"{REGION}-docker.pkg.dev/{PROJECT}/{NAMES['artifact_repository']}"
    built = [arg.split("_IMAGE=")[1] for line in lines for arg in line if "_IMAGE=" in arg]
    used = [arg.split("=", 1)[1] for line in lines for arg in line if arg.startswith("--image=")]
    assert built == used == [f"{registry}/{t.replace('_', '-')}:{TAG}" for t in TEMPLATES]
    # Service accounts and buckets are the ones Terraform creates.
    accounts = {a.split("=")[-1].split("/")[-1] for line in lines for a in line if "service-account" in a}
    assert accounts == {
        f"{NAMES['service_accounts'][w]}@{PROJECT}.iam.gserviceaccount.com" for w in ("build", "dataflow")
    }
    buckets = {
        word.split("/")[2]
        for line in lines
        for arg in line
        for word in [arg.split("=")[-1]]
        if "gs://" in word
    }
    assert buckets == {f"{PROJECT}-tfstate", f"{PROJECT}-staging"}
    # The Spark DAGs' Dataproc requests name only files this plan staged, where they never expire.
    [staged] = [line for line in lines if line[:3] == ["gcloud", "storage", "cp"]]
    folder = staged[-2]
    assert folder == f"gs://{PROJECT}-staging/code/{TAG}/"  # the tag the bundle records (deployed_tag)
    uploaded = {Path(source).name for source in staged[3:-2]}
    package = next(line for line in lines if line[:3] == ["gcpipe", "spark", "package"])
    assert package[3] == f"--output={staged[4]}"  # the zip it builds is the zip it stages
    assert uploaded == {
        "kdd_analysis.py",
        "als_recommend.py",
        "gcpipe_spark.zip",
        "postgresql-42.7.8.jar",
        "tables.json",
        *(f"{name}.json" for job in JOBS.values() for name in job.schemas),
    }
    config = deployment().config.replace(lake_bucket=f"{PROJECT}-lake", staging_bucket=f"{PROJECT}-staging")
    for job in JOBS:
        for request in (
            dataproc_job(job, config, [], "c")["pyspark_job"],
            dataproc_batch(job, config, [])["pyspark_batch"],
        ):
            uris = [
                request["main_python_file_uri"],
                *request["python_file_uris"],
                *request["file_uris"],
                *request.get("jar_file_uris", []),
            ]
            assert {uri.removeprefix(folder) for uri in uris} <= uploaded, uris
    # The variables Terraform gets.
    tfvars = json.loads(text.split("terraform.tfvars.json <<'EOF'\n")[1].split("\nEOF")[0])
    assert (
        tfvars["project"] == PROJECT
        and tfvars["region"] == REGION
        and tfvars["lake_bucket"] == f"{PROJECT}-lake"
    )


def test_dry_run_without_a_project_says_what_is_missing(cloud, monkeypatch):
    monkeypatch.delenv("GCPIPE_PROJECT")
    done = gcpipe("deploy", "infra", "--dry-run", check=False)
    assert done.returncode == 1
    assert "the gcp target needs project (GCPIPE_PROJECT)" in done.stderr
    assert "Traceback" not in done.stderr


# -- real runs: the plan, called in order --------------------------------------------------------------


def test_deploy_infra_calls_the_plan_in_order_and_writes_the_gcp_settings(cloud):
    gcpipe("deploy", "infra", "--yes")

    expected = [
        list(step.argv) for step in infra_plan(deployment()) if step.argv and step.argv[0] != "gcpipe"
    ]
    describe = ["gcloud", "storage", "buckets", "describe", f"gs://{PROJECT}-tfstate", f"--project={PROJECT}"]
    assert cloud.calls() == [expected[0], describe, *expected[1:]]
    settings = tomllib.loads(cloud.config_file.read_text())
    assert settings["port_offset"] == 800 and settings["local"] == {"lake_bucket": "my-local-lake"}
    assert settings["gcp"]["lake_bucket"] == f"{PROJECT}-lake"
    config = load_config(target="gcp")
    assert (config.project, config.region, config.staging_bucket) == (PROJECT, REGION, f"{PROJECT}-staging")
    tfvars = json.loads(
        (cloud.state_dir / "deploy" / f"{PROJECT}-prod" / "terraform.tfvars.json").read_text()
    )
    assert tfvars["datasets"] == {
        "taxi": "taxi",
        "ecommerce": "ecommerce",
        "kdd": "kdd",
        "rentals": "rentals",
    }


def test_deploy_dags_tolerates_unchanged_packages_and_imports_the_bundle(cloud):
    gcpipe("deploy", "dags")

    calls = cloud.calls()
    assert calls[0][:4] == ["gcloud", "composer", "environments", "update"]
    package = cloud.state_dir / "dataproc" / "gcpipe_spark.zip"
    assert package.exists() and calls[1][:3] == ["gcloud", "storage", "cp"] and str(package) in calls[1]
    assert calls[1][-2] == f"gs://{PROJECT}-staging/code/{TAG}/"
    imported = [c[-2].split("=", 1)[1] for c in calls[2:]]
    bundle = cloud.state_dir / "deploy" / f"{PROJECT}-prod" / "composer"
    assert [Path(p).name for p in imported] == [
        p.name for p in [bundle / ".airflowignore", bundle / "gcpipe.toml"]
    ] + [n for n in ("gcpipe", "pipelines", "spark_jobs", "sql", "infra") if (PROJECT_ROOT / n).is_dir()] + [
        *sorted(p.name for p in (PROJECT_ROOT / "dags").glob("*.py")),
    ]  # the DAGs last: after gcpipe/, whose operator factory they import
    assert all((PROJECT_ROOT / p).exists() for p in imported)


def test_the_composer_bundle_is_a_project_root_for_the_gcp_target(tmp_path, cloud):
    bundle = make_bundle(deployment(), tmp_path / "bundle")

    assert not list(bundle.rglob("__pycache__")) and not list(bundle.rglob("*_test.py"))
    probe = (
        "import json; from gcpipe.core.config import load_config; from gcpipe.core.schemas import load_tables;"
        "c = load_config(); print(json.dumps([c.target, c.project, c.lake, c.dataset('taxi'), sorted(load_tables())]))"
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(bundle)}  # as on Composer: no GCPIPE_CONFIG
    done = subprocess.run([sys.executable, "-c", probe], cwd=bundle, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["gcp", PROJECT, f"gs://{PROJECT}-lake", "taxi", sorted(load_tables())]
    deployed = tomllib.loads((bundle / "gcpipe.toml").read_text())["gcp"]["deploy"]
    assert deployed["templates"]["csv_ingest"] == f"gs://{PROJECT}-staging/templates/csv_ingest.json"
    assert deployed["service_accounts"]["dataflow"] == f"gcpipe-dataflow@{PROJECT}.iam.gserviceaccount.com"


def test_the_composer_bundle_parses_its_dags_for_the_gcp_target_as_composer_does(tmp_path, cloud):
    """Composer's dags/ folder is on sys.path and its .airflowignore keeps Airflow out of the support code."""
    bundle = make_bundle(deployment(), tmp_path / "bundle")
    ignored = (bundle / ".airflowignore").read_text().split()
    assert {"gcpipe/", "sql/", "infra/"} <= set(ignored)
    probe = (
        "import spark_kdd, batch_ingest; ingest = batch_ingest.dag.get_task('ingest_csv'); "
        "print('PARSED', sorted(t.task_type for t in spark_kdd.dag.tasks), ingest.task_type, "
        "ingest.pipeline_options['sdk_container_image'], "
        "spark_kdd.dag.get_task('kdd_analysis').job['pyspark_job']['main_python_file_uri'])"
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(bundle), "AIRFLOW_HOME": str(tmp_path / "airflow")}
    done = subprocess.run([sys.executable, "-c", probe], cwd=bundle, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == (
        "PARSED ['BigQueryInsertJobOperator', 'BigQueryInsertJobOperator', 'DataprocCreateClusterOperator', "
        "'DataprocDeleteClusterOperator', 'DataprocSubmitJobOperator'] "
        f"BeamRunPythonPipelineOperator {REGION}-docker.pkg.dev/{PROJECT}/gcpipe/csv-ingest:{TAG} "
        f"gs://{PROJECT}-staging/code/{TAG}/kdd_analysis.py"
    )  # the image and the Spark code of the version deploy dags recorded in the bundle's gcpipe.toml


# -- run-gcp -------------------------------------------------------------------------------------------


def test_run_a_template_passes_checked_options_as_parameters(cloud):
    args = (
        "--input=gs://lake/raw/*.csv",
        "--schema",
        "taxi_trips",
        f"--table={PROJECT}:taxi.taxi_trips",
        "--pii=passenger_name,card",
    )
    d = deployment()
    [step] = run_plan(d, "csv_ingest", args, job_name="load-1")
    assert list(step.argv) == [
        "gcloud",
        "dataflow",
        "flex-template",
        "run",
        "load-1",
        f"--region={REGION}",
        f"--template-file-gcs-location=gs://{PROJECT}-staging/templates/csv_ingest.json",
        f"--parameters=^~^input=gs://lake/raw/*.csv~schema=taxi_trips~table={PROJECT}:taxi.taxi_trips"
        f"~pii=passenger_name,card~output={d.config.lake}/ingest/taxi_trips",  # the launcher has no lake
        f"--project={PROJECT}",
    ]


def test_run_streaming_defaults_to_the_terraform_subscription(cloud):
    [step] = run_plan(deployment(), "taxi_streaming", (), job_name="rides")
    assert (
        f"--parameters=input_subscription=projects/{PROJECT}/subscriptions/{NAMES['rides_subscription']},"
        f"output_dataset={PROJECT}:taxi" in step.argv
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--input=gs://a.csv", "--schema=x"), "csv_ingest needs --table."),
        (
            ("--input=gs://a.csv", "--schema=x", "--table=p.d.t", "--colour=red"),
            "csv_ingest has no option --colour",
        ),
        (("gs://a.csv",), "'gs://a.csv' is not an option"),
        (("--input=gs://a.csv", "--table=p.d.t", "--schema"), "option --schema of csv_ingest needs a value"),
        (("--input", "--schema=x", "--table=p.d.t"), "option --input of csv_ingest needs a value"),
    ],
)
def test_run_rejects_options_the_template_does_not_declare(cloud, args, message):
    with pytest.raises(DeployError, match=message):
        run_plan(deployment(), "csv_ingest", args)


def test_run_a_spark_job_is_the_plan_spark_submit_makes(cloud):
    d = deployment()
    args = ("--input", "gs://lake/kdd/part-1.gz")
    expected = submit_plan(
        JOBS["kdd_analysis"], d.config, job_args(JOBS["kdd_analysis"], d.config, [], list(args))
    )
    planned = render(run_plan(d, "kdd_analysis", args))
    assert planned == render(expected) and "- gs://lake/kdd/part-1.gz" in planned
    with pytest.raises(
        DeployError, match="unknown job 'nope'; known: csv_ingest, taxi_streaming, kdd_analysis"
    ):
        run_plan(d, "nope", ())


def test_make_run_gcp_names_the_missing_job():
    done = subprocess.run(["make", "-s", "run-gcp"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode != 0 and "name the job" in done.stderr


# -- pieces ----------------------------------------------------------------------------------------------


def test_templates_plan_builds_each_image_before_its_spec():
    d = Deployment(
        Config(target="gcp", project=PROJECT, region=REGION, lake_bucket="l", staging_bucket="s"), tag=TAG
    )
    steps = templates_plan(d)
    for build, spec in zip(steps[::2], steps[1::2], strict=True):
        assert build.argv[1:3] == ("builds", "submit") and spec.argv[1:4] == (
            "dataflow",
            "flex-template",
            "build",
        )
        image = next(a for a in spec.argv if a.startswith("--image=")).split("=", 1)[1]
        assert f"_IMAGE={image}" in next(a for a in build.argv if a.startswith("--substitutions="))
    streaming = [s for s in steps if "--enable-streaming-engine" in s.argv]
    assert [s.argv[4] for s in streaming] == ["gs://s/templates/taxi_streaming.json"]
    assert dags_plan(d)[0].tolerate == "No change"


def test_the_deployed_tag_is_the_environment_s_else_the_recorded_one_else_the_commit_s(cloud, monkeypatch):
    assert deployed_tag() == TAG  # GCPIPE_IMAGE_TAG
    monkeypatch.delenv("GCPIPE_IMAGE_TAG")
    commit = git("rev-parse", "--short=12", "HEAD")
    assert deployed_tag().removesuffix("-dirty") == commit  # nothing recorded: the checkout's version
    cloud.config_file.write_text(toml_dumps({"gcp": {"deploy": {"image_tag": "v7"}}}))  # as the bundle's
    assert deployed_tag() == "v7"


def test_toml_dumps_round_trips_settings():
    settings = {
        "target": "gcp",
        "port_offset": 800,
        "gcp": {"project": PROJECT, "quoted": 'a "b" \\ c', "deploy": {"flag": True, "list": ["x", "y"]}},
        "local": {"lake_bucket": "l"},
    }
    assert tomllib.loads(toml_dumps(settings)) == settings
