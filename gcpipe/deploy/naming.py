"""Every name of a deployment, derived once: the project, region, buckets and datasets from gcpipe.core.config
(``GCPIPE_*``, gcpipe.toml), every other resource name from ``infra/terraform/names.auto.tfvars.json``, which
Terraform reads too; and the version (tag) of the code deployed."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from gcpipe.core.config import PROJECT_ROOT, Config, load_config
from gcpipe.deploy.steps import DeployError, show_path

TERRAFORM_DIR = PROJECT_ROOT / "infra" / "terraform"
NAMES_FILE = TERRAFORM_DIR / "names.auto.tfvars.json"
ENVIRONMENTS = ("dev", "staging", "prod")
# Flex templates: pipeline module per template; infra/dataflow/<template>/metadata.json names its options.
TEMPLATES = {"csv_ingest": "pipelines.csv_ingest", "taxi_streaming": "pipelines.taxi_streaming"}
STREAMING_TEMPLATES = {"taxi_streaming"}


def load_names(path: Path = NAMES_FILE) -> dict:
    return json.loads(path.read_text())


def git(*args: str) -> str:
    """The output of a git command in the project's checkout (CalledProcessError or OSError when it fails)."""
    return subprocess.check_output(
        ["git", *args], cwd=PROJECT_ROOT, text=True, stderr=subprocess.DEVNULL
    ).strip()


def _git_tag() -> str:
    """The image tag: the short commit id, marked -dirty when the work tree has changes."""
    try:
        commit, dirty = git("rev-parse", "--short=12", "HEAD"), git("status", "--porcelain")
    except (OSError, subprocess.CalledProcessError):
        return "latest"
    return commit + ("-dirty" if dirty else "")


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
        """The Terraform variables gcpipe.core.config owns (names.auto.tfvars.json has the rest)."""
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
        """gcpipe.toml for the gcp target: what gcpipe.core.config reads, and the deployed names under [gcp.deploy]."""
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


# -- files gcpipe writes -------------------------------------------------------------------------------

TOML_HEADER = "# gcpipe settings (see README: Two targets, one code base). Written by gcpipe deploy.\n"


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
    """The gcpipe.toml that gcpipe.core.config reads."""
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
    path.write_text(TOML_HEADER + toml_dumps(current))
    return path
