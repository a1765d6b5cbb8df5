"""The Java archives local Spark needs, pinned: Maven coordinates, version and SHA-256 of each.

``make setup`` fetches them from Maven Central into ``.jars/`` (``infra/local/fetch_jars.py``); nothing is
fetched when a job runs. On Dataproc the image carries the GCS connector; the JDBC driver is staged with
the job (``jarFileUris``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gcpipe.core.errors import GcpipeError

JARS_DIR = Path(os.environ.get("GCPIPE_JARS_DIR") or Path(__file__).resolve().parents[2] / ".jars")
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


class MissingJarError(GcpipeError):
    """A pinned jar is not in .jars/."""


@dataclass(frozen=True)
class Jar:
    group: str
    artifact: str
    version: str
    sha256: str
    classifier: str = ""
    why: str = ""

    @property
    def file_name(self) -> str:
        suffix = f"-{self.classifier}" if self.classifier else ""
        return f"{self.artifact}-{self.version}{suffix}.jar"

    @property
    def url(self) -> str:
        return (
            f"{MAVEN_CENTRAL}/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.file_name}"
        )

    @property
    def path(self) -> Path:
        return JARS_DIR / self.file_name

    def require(self) -> str:
        """The jar's path, or one sentence that says how to get it."""
        if not self.path.is_file():
            raise MissingJarError(f"{self.file_name} ({self.why}) is not in {JARS_DIR}: run `make setup`.")
        return str(self.path)


# Google's Hadoop connector for gs://, the shaded jar of the line built against Hadoop 3.4 (PySpark 4.1's).
GCS_CONNECTOR = Jar(
    "com.google.cloud.bigdataoss",
    "gcs-connector",
    "4.0.4",
    "dfb5832738686436e597026a8e4bab01aa22e75ebfb15d37d096981f6599d73c",  # pragma: allowlist secret (a SHA-256)
    classifier="shaded",
    why="Google's Cloud Storage connector, for gs:// in Spark",
)
POSTGRESQL_JDBC = Jar(
    "org.postgresql",
    "postgresql",
    "42.7.8",
    "2a32a9dcbc42d67a50ad3a0de5efd102c8d2be46720045f2cbd6689f160ab7c7",  # pragma: allowlist secret (a SHA-256)
    why="PostgreSQL's JDBC driver, for Cloud SQL in Spark",
)
JARS = (GCS_CONNECTOR, POSTGRESQL_JDBC)
