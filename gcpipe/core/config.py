"""One place that says where things run: the target, the project, the lake and the datasets.

Values come from, in order: keyword overrides, environment variables (``GCPIPE_*``), the config file
(``gcpipe.toml`` at the project root, or the file named by ``GCPIPE_CONFIG``), then defaults. The
``local`` target needs nothing; ``gcp`` needs a project, a region and a lake bucket, and
:meth:`Config.require_gcp` names exactly what is missing.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from gcpipe.core.errors import GcpipeError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("local", "gcp")
LOCAL_PROJECT = "gcpipe-local"

# Fixed loopback ports of the local stack; GCPIPE_PORT_OFFSET shifts them all (two checkouts side by side).
DEFAULT_PORTS = {
    "pubsub": 8085,
    "bigquery": 9050,
    "bigquery_grpc": 9060,
    "gcs": 9023,
    "metadata": 8095,
    "postgres": 5433,
    "dashboard": 8050,
    "airflow": 8080,
}

DEFAULT_DATASETS = {"taxi": "taxi", "ecommerce": "ecommerce", "kdd": "kdd", "rentals": "rentals"}

# Matched whole (fullmatch: `$` alone would let a trailing newline through). Names that pass reach SQL text.
_NAME, _PROJECT = r"[A-Za-z_][A-Za-z0-9_]{0,1023}", r"[a-z][a-z0-9-]{4,28}[a-z0-9]"
_IDENTIFIER = re.compile(_NAME)
_PROJECT_ID = re.compile(_PROJECT)
_DATASET_ID = re.compile(rf"(?:{_PROJECT}\.)?{_NAME}")  # [project.]dataset
_TABLE_ID = re.compile(rf"(?:{_PROJECT}\.)?{_NAME}\.{_NAME}")  # [project.]dataset.table
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")


class ConfigError(GcpipeError):
    """A configuration problem, worded as one sentence that says what to do."""


@dataclass(frozen=True)
class Config:
    target: str = "local"
    project: str = LOCAL_PROJECT
    region: str = "us-central1"
    lake_bucket: str = "gcpipe-lake"
    staging_bucket: str = "gcpipe-staging"
    datasets: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_DATASETS))
    state_dir: Path = PROJECT_ROOT / ".gcpipe"
    port_offset: int = 0
    composer_environment: str = "gcpipe"
    # Cloud SQL (PostgreSQL) of the rentals lab; locally the stack's PostgreSQL. The password is a secret
    # reference (gcpipe.core.secrets): a file locally, a Secret Manager version on gcp; never the value itself.
    jdbc_url: str = ""
    jdbc_user: str = "gcpipe"
    jdbc_password_secret: str = ""

    # -- derived -------------------------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        return self.target == "local"

    def port(self, service: str) -> int:
        return DEFAULT_PORTS[service] + self.port_offset

    @property
    def lake(self) -> str:
        """Root URI of the lake: a folder under the state dir locally, the lake bucket on GCP."""
        return str(self.state_dir / "lake") if self.is_local else f"gs://{self.lake_bucket}"

    @property
    def bucket(self) -> str:
        """The lake bucket's URI on both targets (locally the storage emulator's): where Spark reads and
        writes, through the GCS connector, as on Dataproc."""
        return f"gs://{self.lake_bucket}"

    def dataset(self, name: str) -> str:
        try:
            return self.datasets[name]
        except KeyError:
            raise ConfigError(
                f"unknown dataset {name!r}; known: {', '.join(sorted(self.datasets))}."
            ) from None

    def emulator_env(self) -> dict[str, str]:
        """Variables that point Google's client libraries (and Beam) at the local stack.

        Empty on the gcp target. The metadata stand-in answers the credential lookup at once, so nothing
        waits on auth retries or an interactive OAuth flow.
        """
        if not self.is_local:
            return {}
        metadata = f"127.0.0.1:{self.port('metadata')}"
        return {
            "GOOGLE_CLOUD_PROJECT": self.project,
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{self.port('pubsub')}",
            "BIGQUERY_EMULATOR_HOST": f"http://127.0.0.1:{self.port('bigquery')}",
            "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{self.port('gcs')}",
            "GCE_METADATA_HOST": metadata,
            "GCE_METADATA_IP": metadata,
        }

    def apply_env(self) -> None:
        """Point this process (and the processes it starts) at the local stack; nothing on gcp."""
        os.environ.update(self.emulator_env())

    def template_vars(self) -> dict[str, str]:
        """Names SQL files may use as ``{{ name }}``: the project and every dataset (``{{ taxi_dataset }}``)."""
        names = {"project": self.project, "region": self.region, "lake": self.lake, "bucket": self.bucket}
        names.update({f"{key}_dataset": value for key, value in self.datasets.items()})
        return names

    def require_gcp(self) -> Config:
        """Return self if every setting the gcp target needs is present, else say which are missing."""
        if self.is_local:
            return self
        missing = [
            f"{name} ({env})"
            for name, env, value in (
                ("project", "GCPIPE_PROJECT", self.project),
                ("region", "GCPIPE_REGION", self.region),
                ("lake bucket", "GCPIPE_LAKE_BUCKET", self.lake_bucket),
            )
            if not value or value == LOCAL_PROJECT
        ]
        if missing:
            raise ConfigError(
                f"the gcp target needs {', '.join(missing)}: set them in the environment or in gcpipe.toml."
            )
        if not _PROJECT_ID.fullmatch(self.project):
            raise ConfigError(
                f"{self.project!r} is not a valid GCP project id (6-30 lowercase letters, digits, -)."
            )
        return self

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)


def is_identifier(name: str) -> bool:
    """True if ``name`` is a plain BigQuery identifier (letters, digits, _; not starting with a digit)."""
    return isinstance(name, str) and _IDENTIFIER.fullmatch(name) is not None


def validate_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain BigQuery identifier (letters, digits, _), else raise ConfigError."""
    if not is_identifier(name):
        raise ConfigError(f"{what} {name!r} is not a valid identifier (letters, digits and _ only).")
    return name


def validate_dataset_id(dataset_id: str, what: str = "dataset") -> str:
    """Return ``[project.]dataset`` if it is a project id and a plain identifier, else raise ConfigError."""
    return _validate_id(_DATASET_ID, dataset_id, what, "project.dataset")


def validate_table_id(table_id: str, what: str = "table") -> str:
    """Return ``[project.]dataset.table`` if every part is a plain name, else raise ConfigError."""
    return _validate_id(_TABLE_ID, table_id, what, "project.dataset.table")


def _validate_id(pattern: re.Pattern, text: str, what: str, form: str) -> str:
    if not isinstance(text, str) or not pattern.fullmatch(text):
        kind = form.rsplit(".", 1)[1]
        raise ConfigError(
            f"{what} {text!r} is not a {kind} id: write {form} (a project id, then letters, digits and _)."
        )
    return text


def _read_file(path: Path | None) -> dict:
    if path is None or not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}.") from None


def load_config(**overrides) -> Config:
    """Resolve the configuration from overrides, ``GCPIPE_*`` variables, the config file and defaults."""
    env = os.environ
    file_path = Path(env["GCPIPE_CONFIG"]) if env.get("GCPIPE_CONFIG") else PROJECT_ROOT / "gcpipe.toml"
    if env.get("GCPIPE_CONFIG") and not file_path.exists():
        raise ConfigError(f"GCPIPE_CONFIG points at {file_path}, which does not exist.")
    from_file = _read_file(file_path)

    target = overrides.get("target") or env.get("GCPIPE_TARGET") or from_file.get("target") or "local"
    if target not in TARGETS:
        raise ConfigError(f"target {target!r} is unknown; use one of: {', '.join(TARGETS)}.")
    section = {**{k: v for k, v in from_file.items() if not isinstance(v, dict)}, **from_file.get(target, {})}

    def pick(name: str, default):
        env_value = env.get(f"GCPIPE_{name.upper()}")
        return overrides.get(name) or env_value or section.get(name) or default

    is_local = target == "local"
    project = pick("project", LOCAL_PROJECT if is_local else env.get("GOOGLE_CLOUD_PROJECT", ""))
    # The project reaches SQL text and paths: never a stray character.
    if project and not _PROJECT_ID.fullmatch(project):
        raise ConfigError(f"{project!r} is not a valid GCP project id (6-30 lowercase letters, digits, -).")
    datasets = {**DEFAULT_DATASETS, **section.get("datasets", {}), **overrides.get("datasets", {})}
    for key, value in datasets.items():
        validate_identifier(value, f"dataset name for {key}")
    lake_bucket = pick("lake_bucket", "gcpipe-lake" if is_local else "")
    if lake_bucket and not _BUCKET.fullmatch(lake_bucket):
        raise ConfigError(f"{lake_bucket!r} is not a valid bucket name.")
    try:
        port_offset = int(pick("port_offset", 0))
    except ValueError:
        raise ConfigError("GCPIPE_PORT_OFFSET must be a whole number.") from None
    state_dir = Path(pick("state_dir", PROJECT_ROOT / ".gcpipe")).resolve()
    if is_local:
        jdbc_defaults = (
            f"jdbc:postgresql://127.0.0.1:{DEFAULT_PORTS['postgres'] + port_offset}/rentals",
            f"file:{state_dir / 'secrets' / 'postgres_password'}",
        )
    else:
        jdbc_defaults = ("", f"projects/{project}/secrets/gcpipe-cloudsql-password/versions/latest")
    return Config(
        target=target,
        project=project,
        region=pick("region", "us-central1"),
        lake_bucket=lake_bucket,
        staging_bucket=pick("staging_bucket", "gcpipe-staging" if is_local else f"{project}-staging"),
        datasets=datasets,
        state_dir=state_dir,
        port_offset=port_offset,
        composer_environment=pick("composer_environment", "gcpipe"),
        jdbc_url=pick("jdbc_url", jdbc_defaults[0]),
        jdbc_user=pick("jdbc_user", "gcpipe"),
        jdbc_password_secret=pick("jdbc_password_secret", jdbc_defaults[1]),
    )
