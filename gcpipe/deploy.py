"""``gcpipe deploy``: take gcpipe to a Google Cloud project, from an empty project to running DAGs.

Each command builds a plan, the exact commands (and the files it writes) in order: ``infra`` (Terraform
state bucket, init, plan, apply, outputs back into gcpipe.toml), ``templates`` (the flex-template images
through Cloud Build, then the template specs), ``dags`` (Composer's PyPI packages, the Spark jobs' code
in the staging bucket, then the DAGs and the support code), ``run`` (one pipeline as a flex-template job,
or one Spark job). ``--dry-run`` prints the plan as a shell script and calls nothing; otherwise the steps
run in turn and the first failure stops.

Names come from one place each: the project, region, buckets, datasets and Composer environment from
gcpipe.config (``GCPIPE_*``, gcpipe.toml), every other resource name from
``infra/terraform/names.auto.tfvars.json``, which Terraform reads too.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click

from gcpipe.config import PROJECT_ROOT, Config, load_config
from gcpipe.errors import GcpipeError
from gcpipe.options import option_pairs

TERRAFORM_DIR = PROJECT_ROOT / "infra" / "terraform"
DATAFLOW_DIR = PROJECT_ROOT / "infra" / "dataflow"
COMPOSER_DIR = PROJECT_ROOT / "infra" / "composer"
DAGS_DIR = PROJECT_ROOT / "dags"
NAMES_FILE = TERRAFORM_DIR / "names.auto.tfvars.json"
ENVIRONMENTS = ("dev", "staging", "prod")
# Flex templates: pipeline module per template; infra/dataflow/<template>/metadata.json names its options.
TEMPLATES = {"csv_ingest": "pipelines.csv_ingest", "taxi_streaming": "pipelines.taxi_streaming"}
STREAMING_TEMPLATES = {"taxi_streaming"}
# Spark jobs run through `gcpipe spark submit JOB --target gcp` (spark_jobs/, infra/dataproc/); deploy dags
# stages their code for the DAGs (gcpipe.spark.dataproc.stage_steps).
# What the Composer bucket's dags/ folder holds besides the DAGs: it is the project root there.
SUPPORT_CODE = ("gcpipe", "pipelines", "spark_jobs", "sql")
# The infra files the DAGs read when Composer parses them: resource names, cluster shape, template options.
SUPPORT_INFRA = ("terraform/names.auto.tfvars.json", "dataproc/*.yaml", "dataflow/*/metadata.json")
_BUNDLE_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*_test.py", "test_*.py", ".pytest_cache")


class DeployError(GcpipeError):
    """A deployment that cannot go on, worded for the user."""


# -- the plan --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step: a command, or a file gcpipe writes, as it is printed and as it runs.

    ``unless``: a command whose success means the step's work exists already (the step is skipped).
    ``stdout``: a file that receives the command's output. ``call``: Python that does the step's work
    in-process (``argv`` is then the equivalent ``gcpipe`` command, for the printed plan).
    ``content``: the text of a file written to ``path``. ``confirm``: ask before running it.
    ``tolerate``: an error message that means there was nothing to do (Composer's "No change").
    """

    title: str
    argv: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    stdout: Path | None = None
    call: Callable[[], None] | None = field(default=None, compare=False)
    path: Path | None = None
    content: str | None = None
    confirm: bool = False
    tolerate: str | None = None

    def shell(self) -> str:
        """The step as one line (or a here-document) of a shell script."""
        if self.content is not None:
            folder, file = show_path(self.path.parent), show_path(self.path)
            return f"mkdir -p {folder} && cat > {file} <<'EOF'\n{self.content}EOF"
        line = shlex.join(self.argv)
        if self.stdout:
            line += f" > {show_path(self.stdout)}"
        if self.unless:
            line = f"{shlex.join(self.unless)} >/dev/null 2>&1 || {line}"
        return line


def show_path(path: Path) -> str:
    """A path as the plan prints it: relative to the project root when inside it."""
    path = Path(path)
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def render(steps: list[Step]) -> str:
    """The plan as a shell script a user can read (or run)."""
    lines = ["set -euo pipefail", f"cd {shlex.quote(str(PROJECT_ROOT))}"]
    for step in steps:
        lines += ["", f"# {step.title}", step.shell()]
    return "\n".join(lines) + "\n"


def execute(steps: list[Step], assume_yes: bool = False) -> None:
    """Run each step in turn from the project root; the first failure stops the plan."""
    for step in steps:
        click.secho(f"==> {step.title}", fg="cyan", err=True)
        if step.content is not None:
            step.path.parent.mkdir(parents=True, exist_ok=True)
            step.path.write_text(step.content)
            continue
        if step.call is not None:
            step.call()
            continue
        if step.unless and _succeeds(step.unless):
            click.echo("    already there: skipped", err=True)
            continue
        if step.confirm and not assume_yes and not click.confirm(f"{shlex.join(step.argv)}: go on?"):
            raise DeployError(
                "stopped before the change: nothing was applied (pass --yes to skip the question)."
            )
        _run(step)


def _succeeds(argv: tuple[str, ...]) -> bool:
    return subprocess.run(argv, cwd=PROJECT_ROOT, capture_output=True).returncode == 0


def _run(step: Step) -> None:
    tool = step.argv[0]
    if shutil.which(tool) is None:
        hint = {"terraform": " (Terraform 1.5 or newer)", "gcloud": " (the Google Cloud CLI)"}.get(tool, "")
        raise DeployError(f"{tool}{hint} is not on PATH: install it, then run the deployment again.")
    if step.stdout:
        step.stdout.parent.mkdir(parents=True, exist_ok=True)
        with step.stdout.open("w") as out:
            code = subprocess.run(step.argv, cwd=PROJECT_ROOT, stdout=out).returncode
    elif step.tolerate:
        done = subprocess.run(step.argv, cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True)
        sys.stderr.write(done.stderr)
        code = 0 if done.returncode and step.tolerate in done.stderr else done.returncode
    else:
        code = subprocess.run(step.argv, cwd=PROJECT_ROOT).returncode
    if code != 0:
        raise DeployError(
            f"step '{step.title}' failed (exit {code}): see its output above, fix it, and rerun."
        )


# -- the deployment: every name, derived once --------------------------------------------------------


def load_names(path: Path = NAMES_FILE) -> dict:
    return json.loads(path.read_text())


def _git_tag() -> str:
    """The image tag: the short commit id, marked -dirty when the work tree has changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=PROJECT_ROOT, capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "latest"
    return commit + ("-dirty" if dirty.stdout.strip() else "")


def deployed_tag() -> str:
    """The version of the code on GCP (images, the Spark jobs' code): GCPIPE_IMAGE_TAG if set, else the
    tag deploy dags recorded in the bundle's gcpipe.toml (``[gcp.deploy] image_tag``: so on Composer), else
    the current commit's."""
    path = config_file()
    recorded = tomllib.loads(path.read_text()).get("gcp", {}).get("deploy", {}) if path.exists() else {}
    return os.environ.get("GCPIPE_IMAGE_TAG") or recorded.get("image_tag") or _git_tag()


@dataclass(frozen=True)
class Deployment:
    """One gcpipe deployment: a project, a region, an environment, and the names of its resources."""

    config: Config
    environment: str = "prod"
    tag: str = "latest"
    names: dict = field(default_factory=load_names)

    @classmethod
    def from_config(cls, environment: str = "prod", tag: str | None = None, **overrides) -> Deployment:
        config = load_config(target="gcp", **overrides)
        if config.project and not config.lake_bucket:  # the same default as Terraform's
            config = config.replace(lake_bucket=f"{config.project}-lake")
        if environment not in ENVIRONMENTS:
            raise DeployError(
                f"environment {environment!r} is unknown; use one of: {', '.join(ENVIRONMENTS)}."
            )
        return cls(config.require_gcp(), environment, tag or _git_tag())

    # names ------------------------------------------------------------------------------------------

    @property
    def project(self) -> str:
        return self.config.project

    @property
    def region(self) -> str:
        return self.config.region

    @property
    def staging(self) -> str:
        return f"gs://{self.config.staging_bucket}"

    @property
    def state_bucket(self) -> str:
        return f"{self.project}-tfstate"

    @property
    def deploy_dir(self) -> Path:
        return self.config.state_dir / "deploy" / f"{self.project}-{self.environment}"

    def service_account(self, workload: str) -> str:
        return f"{self.names['service_accounts'][workload]}@{self.project}.iam.gserviceaccount.com"

    @property
    def image_repository(self) -> str:
        return f"{self.region}-docker.pkg.dev/{self.project}/{self.names['artifact_repository']}"

    def image(self, template: str) -> str:
        return f"{self.image_repository}/{template.replace('_', '-')}:{self.tag}"

    def template_spec(self, template: str) -> str:
        return f"{self.staging}/templates/{template}.json"

    @property
    def subnetwork(self) -> str:
        return f"regions/{self.region}/subnetworks/{self.names['network']}"

    @property
    def rides_subscription(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.names['rides_subscription']}"

    @property
    def labels(self) -> str:
        return f"app=gcpipe,environment={self.environment}"

    def tfvars(self) -> dict:
        """The Terraform variables gcpipe.config owns (names.auto.tfvars.json has the rest)."""
        return {
            "project": self.project,
            "region": self.region,
            "environment": self.environment,
            "lake_bucket": self.config.lake_bucket,
            "staging_bucket": self.config.staging_bucket,
            "datasets": dict(self.config.datasets),
            "composer_environment": self.config.composer_environment,
        }

    def settings(self) -> dict:
        """gcpipe.toml for the gcp target: what gcpipe.config reads, and the deployed names under [gcp.deploy]."""
        return {
            "target": "gcp",
            "gcp": {
                "project": self.project,
                "region": self.region,
                "lake_bucket": self.config.lake_bucket,
                "staging_bucket": self.config.staging_bucket,
                "composer_environment": self.config.composer_environment,
                "datasets": dict(self.config.datasets),
                "deploy": {
                    "environment": self.environment,
                    "image_tag": self.tag,
                    "subnetwork": self.subnetwork,
                    "rides_topic": f"projects/{self.project}/topics/{self.names['rides_topic']}",
                    "rides_subscription": self.rides_subscription,
                    "dataproc_autoscaling_policy": self.names["dataproc_autoscaling_policy"],
                    "service_accounts": {w: self.service_account(w) for w in self.names["service_accounts"]},
                    "templates": {t: self.template_spec(t) for t in TEMPLATES},
                    "images": {t: self.image(t) for t in TEMPLATES},
                },
            },
        }

    def gcloud(self, *args: str) -> tuple[str, ...]:
        return ("gcloud", *args, f"--project={self.project}")

    def tf(self, *args: str) -> tuple[str, ...]:
        """A Terraform command on infra/terraform (TERRAFORM names another binary, e.g. tofu)."""
        return (os.environ.get("TERRAFORM", "terraform"), f"-chdir={show_path(TERRAFORM_DIR)}", *args)

    def tf_path(self, path: Path) -> str:
        """A path as Terraform sees it after -chdir."""
        return os.path.relpath(path, TERRAFORM_DIR)


# -- the plans -----------------------------------------------------------------------------------------


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
            "the variables gcpipe.config owns",
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
    """The DAG files and their operator factory (dags/*.py): they sit at the root of Composer's dags/
    folder, which Airflow puts on sys.path, so ``from gcpipe_ops import ...`` works there as it does here.
    The modules dags/.airflowignore names (the factory) come first: no DAG lands before what it imports."""
    ignored = (DAGS_DIR / ".airflowignore").read_text().split()
    return sorted(DAGS_DIR.glob("*.py"), key=lambda path: (path.name not in ignored, path.name))


def bundle_entries() -> list[str]:
    """What deploy dags uploads into the Composer bucket's dags/ folder, in order: the support code first,
    so a DAG never lands before the code it imports."""
    code = [name for name in SUPPORT_CODE if (PROJECT_ROOT / name).is_dir()]
    return [".airflowignore", "gcpipe.toml", *code, "infra", *(path.name for path in dag_files())]


def dags_plan(d: Deployment) -> list[Step]:
    from gcpipe.spark.dataproc import stage_steps
    from gcpipe.spark.jobs import JOBS

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
    from gcpipe.spark.jobs import JOBS

    if job in JOBS:
        from gcpipe.spark.dataproc import submit_plan
        from gcpipe.spark.jobs import job_args

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


def gcloud_dict(values: dict[str, str]) -> str:
    """gcloud's key=value list; values with commas switch the separator (gcloud topic escaping)."""
    if any("," in v for v in values.values()):
        separator = next(c for c in "~|#@" if not any(c in v for v in values.values()))
        return f"^{separator}^" + separator.join(f"{k}={v}" for k, v in values.items())
    return ",".join(f"{k}={v}" for k, v in values.items())


# -- files gcpipe writes -------------------------------------------------------------------------------

_TOML_HEADER = "# gcpipe settings (see README: Two targets, one code base). Written by gcpipe deploy.\n"


def toml_dumps(data: dict, table: str = "") -> str:
    """A small TOML writer for settings: tables, strings, numbers, booleans and lists of them."""

    def key(name: str) -> str:
        return name if name.replace("_", "").replace("-", "").isalnum() else json.dumps(name)

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(item) for item in v) + "]"
        return json.dumps(str(v))  # JSON string escapes are valid TOML basic-string escapes

    scalars = [f"{key(k)} = {value(v)}\n" for k, v in data.items() if not isinstance(v, dict)]
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    text = (f"[{table}]\n" if table and (scalars or not tables) else "") + "".join(scalars)
    for name, sub in tables.items():
        text += ("\n" if text else "") + toml_dumps(sub, f"{table}.{key(name)}" if table else key(name))
    return text


def config_file() -> Path:
    """The gcpipe.toml that gcpipe.config reads."""
    return Path(os.environ.get("GCPIPE_CONFIG") or PROJECT_ROOT / "gcpipe.toml")


def write_config(outputs: Path, path: Path | None = None) -> Path:
    """Set the [gcp] section of gcpipe.toml from ``terraform output -json``; other settings are kept."""
    try:
        values = {name: output["value"] for name, output in json.loads(outputs.read_text()).items()}
        gcp = {name: values[name] for name in ("project", "region", "lake_bucket", "staging_bucket")}
        gcp["composer_environment"] = values["composer_environment"]
        gcp["datasets"] = values["datasets"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DeployError(
            f"{outputs} is not the output of `terraform output -json` for gcpipe ({err})."
        ) from None
    path = path or config_file()
    current = tomllib.loads(path.read_text()) if path.exists() else {}
    current["gcp"] = {**current.get("gcp", {}), **gcp}
    path.write_text(_TOML_HEADER + toml_dumps(current))
    return path


def make_bundle(d: Deployment, out: Path) -> Path:
    """The Composer bucket's dags/ folder as a folder: the DAGs, the support code, sql/ and gcpipe.toml.

    It is the project root on Composer (gcpipe.config finds sql/ and gcpipe.toml beside gcpipe/).
    """
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    ignored = [COMPOSER_DIR / ".airflowignore", DAGS_DIR / ".airflowignore"]
    (out / ".airflowignore").write_text("".join(p.read_text() for p in ignored if p.exists()))
    (out / "gcpipe.toml").write_text(_TOML_HEADER + toml_dumps(d.settings()))
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


# -- the command line ----------------------------------------------------------------------------------

dry_run_option = click.option(
    "--dry-run",
    is_flag=True,
    envvar="DRY_RUN",
    help="Print the commands and files, call nothing (DRY_RUN=1).",
)
environment_option = click.option(
    "--environment",
    type=click.Choice(ENVIRONMENTS),
    default="prod",
    envvar="GCPIPE_ENVIRONMENT",
    show_default=True,
    help="dev, staging or prod (labels, Terraform state prefix).",
)
tag_option = click.option("--tag", envvar="GCPIPE_IMAGE_TAG", help="Image tag; default: the git commit.")
yes_option = click.option("--yes", is_flag=True, help="Apply without asking.")


def _go(steps: list[Step], dry_run: bool, assume_yes: bool = False) -> None:
    if dry_run:
        click.echo(render(steps), nl=False)
    else:
        execute(steps, assume_yes)


@click.group()
def deploy() -> None:
    """Deploy gcpipe to Google Cloud (GCPIPE_PROJECT, GCPIPE_REGION) and run jobs there."""


@deploy.command()
@environment_option
@dry_run_option
@yes_option
@click.option("--plan-only", is_flag=True, help="Stop after terraform plan.")
def infra(environment: str, dry_run: bool, yes: bool, plan_only: bool) -> None:
    """Terraform: state bucket, init, plan, apply; the outputs go into gcpipe.toml."""
    _go(infra_plan(Deployment.from_config(environment, tag="-"), plan_only), dry_run, yes)


@deploy.command()
@environment_option
@tag_option
@dry_run_option
def templates(environment: str, tag: str | None, dry_run: bool) -> None:
    """Build the flex-template images (Cloud Build) and write the template specs."""
    _go(templates_plan(Deployment.from_config(environment, tag)), dry_run)


@deploy.command()
@environment_option
@tag_option
@dry_run_option
def dags(environment: str, tag: str | None, dry_run: bool) -> None:
    """Install Composer's PyPI packages, then import the DAGs and the support code."""
    _go(dags_plan(Deployment.from_config(environment, tag)), dry_run)


@deploy.command(context_settings={"ignore_unknown_options": True})
@click.argument("job")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--job-name", help="Dataflow job name; default gcpipe-<job>-<UTC time>.")
@environment_option
@dry_run_option
def run(job: str, args: tuple[str, ...], job_name: str | None, environment: str, dry_run: bool) -> None:
    """Run one pipeline as a flex-template job, or one Spark job, on GCP: JOB [--option=value ...]."""
    _go(run_plan(Deployment.from_config(environment, tag="-"), job, args, job_name), dry_run)


@deploy.command("config")
@click.option("--outputs", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
def config_command(outputs: Path) -> None:
    """Write the [gcp] section of gcpipe.toml from `terraform output -json`."""
    click.echo(f"wrote the [gcp] section of {write_config(outputs)}")


@deploy.command()
@environment_option
@tag_option
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), required=True)
def bundle(environment: str, tag: str | None, output: Path) -> None:
    """Assemble what deploy dags imports into Composer's dags/ folder."""
    click.echo(f"bundle: {make_bundle(Deployment.from_config(environment, tag), output)}")
