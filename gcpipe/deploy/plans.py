"""``gcpipe deploy``: take gcpipe to a Google Cloud project, from an empty project to running DAGs.

Each command builds a plan, the exact commands (and the files it writes) in order: ``infra`` (Terraform
state bucket, init, plan, apply, outputs back into gcpipe.toml), ``templates`` (the flex-template images
through Cloud Build, then the template specs), ``dags`` (Composer's PyPI packages, the Spark jobs' code
in the staging bucket, then the DAGs and the support code), ``run`` (one pipeline as a flex-template job,
or one Spark job). ``--dry-run`` prints the plan as a shell script and calls nothing; otherwise the steps
run in turn and the first failure stops.

Names come from one place each: the project, region, buckets, datasets and Composer environment from
gcpipe.core.config (``GCPIPE_*``, gcpipe.toml), every other resource name from
``infra/terraform/names.auto.tfvars.json``, which Terraform reads too.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from gcpipe.core.config import PROJECT_ROOT
from gcpipe.core.options import option_pairs
from gcpipe.deploy.dataproc import stage_steps, submit_plan
from gcpipe.deploy.naming import (
    STREAMING_TEMPLATES,
    TEMPLATES,
    TOML_HEADER,
    Deployment,
    toml_dumps,
    write_config,
)
from gcpipe.deploy.steps import DeployError, Step, gcloud_dict, show_path
from gcpipe.spark.jobs import JOBS, job_args

DATAFLOW_DIR = PROJECT_ROOT / "infra" / "dataflow"
COMPOSER_DIR = PROJECT_ROOT / "infra" / "composer"
DAGS_DIR = PROJECT_ROOT / "dags"
# Spark jobs run through `gcpipe spark submit JOB --target gcp` (spark_jobs/, infra/dataproc/); deploy dags
# stages their code for the DAGs (gcpipe.deploy.dataproc.stage_steps).
# What the Composer bucket's dags/ folder holds besides the DAGs: it is the project root there.
SUPPORT_CODE = ("gcpipe", "pipelines", "spark_jobs", "sql")
# The infra files the DAGs read when Composer parses them: resource names, cluster shape, template options.
SUPPORT_INFRA = ("terraform/names.auto.tfvars.json", "dataproc/*.yaml", "dataflow/*/metadata.json")
_BUNDLE_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*_test.py", "test_*.py", ".pytest_cache")


def infra_plan(d: Deployment, plan_only: bool = False) -> list[Step]:
    tfvars, tfplan = d.deploy_dir / "terraform.tfvars.json", d.deploy_dir / "terraform.tfplan"
    outputs = d.deploy_dir / "terraform-outputs.json"
    state = f"gs://{d.state_bucket}"
    steps = [
        Step(
            "enable the APIs Terraform itself needs (it enables the others)",
            d.gcloud(
                "services",
                "enable",
                "cloudresourcemanager.googleapis.com",
                "serviceusage.googleapis.com",
                "storage.googleapis.com",
                "iam.googleapis.com",
            ),
        ),
        Step(
            "create the Terraform state bucket (private, uniform access) unless it exists",
            d.gcloud(
                "storage",
                "buckets",
                "create",
                state,
                f"--location={d.region}",
                "--uniform-bucket-level-access",
                "--public-access-prevention",
            ),
            unless=d.gcloud("storage", "buckets", "describe", state),
        ),
        Step(
            "keep every version of the state", d.gcloud("storage", "buckets", "update", state, "--versioning")
        ),
        Step(
            "the variables gcpipe.core.config owns",
            path=tfvars,
            content=json.dumps(d.tfvars(), indent=2) + "\n",
        ),
        Step(
            "initialise Terraform with the state in the bucket",
            d.tf(
                "init",
                "-input=false",
                "-reconfigure",
                f"-backend-config=bucket={d.state_bucket}",
                f"-backend-config=prefix=gcpipe/{d.environment}",
            ),
        ),
        Step(
            "plan the changes",
            d.tf("plan", "-input=false", f"-var-file={d.tf_path(tfvars)}", f"-out={d.tf_path(tfplan)}"),
        ),
    ]
    if plan_only:
        return steps
    return [
        *steps,
        Step("apply the plan", d.tf("apply", "-input=false", d.tf_path(tfplan)), confirm=True),
        Step("read the outputs", d.tf("output", "-json"), stdout=outputs),
        Step(
            "write the [gcp] section of gcpipe.toml from the outputs",
            ("gcpipe", "deploy", "config", f"--outputs={show_path(outputs)}"),
            call=lambda: write_config(outputs),
        ),
    ]


def templates_plan(d: Deployment) -> list[Step]:
    steps = []
    for template, module in TEMPLATES.items():
        steps.append(
            Step(
                f"build the {template} image with Cloud Build",
                d.gcloud(
                    "builds",
                    "submit",
                    f"--region={d.region}",
                    f"--config={show_path(DATAFLOW_DIR / 'cloudbuild.yaml')}",
                    f"--substitutions=_PIPELINE={module},_IMAGE={d.image(template)}",
                    f"--service-account=projects/{d.project}/serviceAccounts/{d.service_account('build')}",
                    f"--gcs-source-staging-dir={d.staging}/cloudbuild/source",
                    ".",
                ),
            )
        )
        streaming = ("--enable-streaming-engine",) if template in STREAMING_TEMPLATES else ()
        steps.append(
            Step(
                f"write the {template} flex-template spec",
                d.gcloud(
                    "dataflow",
                    "flex-template",
                    "build",
                    d.template_spec(template),
                    f"--image={d.image(template)}",
                    "--sdk-language=PYTHON",
                    f"--metadata-file={show_path(DATAFLOW_DIR / template / 'metadata.json')}",
                    f"--service-account-email={d.service_account('dataflow')}",
                    f"--subnetwork={d.subnetwork}",
                    "--disable-public-ips",
                    f"--staging-location={d.staging}/staging",
                    f"--temp-location={d.staging}/temp",
                    f"--additional-user-labels={d.labels}",
                    *streaming,
                ),
            )
        )
    return steps


def dag_files() -> list[Path]:
    """The DAG files (dags/*.py): they sit at the root of Composer's dags/ folder, beside the support code
    (gcpipe/, whose operator factory they import: Airflow puts that folder on sys.path)."""
    return sorted(DAGS_DIR.glob("*.py"))


def bundle_entries() -> list[str]:
    """What deploy dags uploads into the Composer bucket's dags/ folder, in order: the support code first,
    so a DAG never lands before the code it imports."""
    code = [name for name in SUPPORT_CODE if (PROJECT_ROOT / name).is_dir()]
    return [".airflowignore", "gcpipe.toml", *code, "infra", *(path.name for path in dag_files())]


def dags_plan(d: Deployment) -> list[Step]:
    bundle = d.deploy_dir / "composer"
    env = d.config.composer_environment
    requirements = show_path(COMPOSER_DIR / "requirements.txt")
    steps = [
        Step(
            "install the PyPI packages the DAGs and support code need (takes several minutes)",
            d.gcloud(
                "composer",
                "environments",
                "update",
                env,
                f"--location={d.region}",
                f"--update-pypi-packages-from-file={requirements}",
            ),
            tolerate="No change",
        ),
        # before the DAGs: the Spark DAGs' Dataproc requests name this code (code/<tag>/, never expired)
        *stage_steps(list(JOBS.values()), d.config, d.tag),
        Step(
            "bundle the DAGs, the support code and a gcpipe.toml for the gcp target",
            ("gcpipe", "deploy", "bundle", f"--output={show_path(bundle)}"),
            call=lambda: make_bundle(d, bundle),
        ),
    ]
    for entry in bundle_entries():
        steps.append(
            Step(
                f"import {entry} into the environment's dags/ folder",
                d.gcloud(
                    "composer",
                    "environments",
                    "storage",
                    "dags",
                    "import",
                    f"--environment={env}",
                    f"--location={d.region}",
                    f"--source={show_path(bundle / entry)}",
                ),
            )
        )
    return steps


def run_plan(d: Deployment, job: str, args: tuple[str, ...], job_name: str | None = None) -> list[Step]:
    """One flex-template job, with its options checked against the template's metadata.json; or one Spark
    job, planned as `gcpipe spark submit JOB --target gcp` plans it."""

    if job in JOBS:
        return submit_plan(JOBS[job], d.config, job_args(JOBS[job], d.config, [], list(args)))
    if job not in TEMPLATES:
        raise DeployError(f"unknown job {job!r}; known: {', '.join([*TEMPLATES, *JOBS])}.")
    parameters = template_parameters(d, job, args)
    name = job_name or f"gcpipe-{job.replace('_', '-')}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    return [
        Step(
            f"launch the {job} flex template",
            d.gcloud(
                "dataflow",
                "flex-template",
                "run",
                name,
                f"--region={d.region}",
                f"--template-file-gcs-location={d.template_spec(job)}",
                f"--parameters={gcloud_dict(parameters)}",
            ),
        )
    ]


def template_metadata(template: str) -> dict:
    return json.loads((DATAFLOW_DIR / template / "metadata.json").read_text())


def template_parameters(d: Deployment, template: str, args: tuple[str, ...]) -> dict[str, str]:
    """``--name=value`` / ``--name value`` arguments as template parameters, checked and defaulted."""
    declared = {p["name"]: p for p in template_metadata(template)["parameters"]}
    parameters: dict[str, str] = {}
    for option, value in option_pairs(args, f"the {template} options", DeployError):
        name = option[2:]
        if value is None:
            raise DeployError(f"option --{name} of {template} needs a value.")
        if name not in declared:
            raise DeployError(f"{template} has no option --{name}; its options: {', '.join(declared)}.")
        parameters[name] = value
    if template == "taxi_streaming":
        if "input_subscription" not in parameters and "input_topic" not in parameters:
            parameters["input_subscription"] = d.rides_subscription
        parameters.setdefault("output_dataset", f"{d.project}:{d.config.dataset('taxi')}")
    if template == "csv_ingest" and "table" in parameters:  # the launcher has no lake: this config's
        parameters.setdefault("output", f"{d.config.lake}/ingest/{parameters['table'].rsplit('.', 1)[-1]}")
    missing = [n for n, p in declared.items() if not p.get("isOptional") and n not in parameters]
    if missing:
        raise DeployError(f"{template} needs {', '.join('--' + n for n in missing)}.")
    return parameters


def make_bundle(d: Deployment, out: Path) -> Path:
    """The Composer bucket's dags/ folder as a folder: the DAGs, the support code, sql/ and gcpipe.toml.

    It is the project root on Composer (gcpipe.core.config finds sql/ and gcpipe.toml beside gcpipe/).
    """
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copy(COMPOSER_DIR / ".airflowignore", out / ".airflowignore")
    (out / "gcpipe.toml").write_text(TOML_HEADER + toml_dumps(d.settings()))
    for name in SUPPORT_CODE:
        if (PROJECT_ROOT / name).is_dir():
            shutil.copytree(PROJECT_ROOT / name, out / name, ignore=_BUNDLE_SKIP)
    for pattern in SUPPORT_INFRA:
        for path in (PROJECT_ROOT / "infra").glob(pattern):
            to = out / path.relative_to(PROJECT_ROOT)
            to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, to)
    for path in dag_files():
        shutil.copy(path, out / path.name)
    return out
