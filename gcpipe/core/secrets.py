"""Secrets by reference: code and command lines carry where a secret lives, never the secret itself.

A reference is one of:

* ``file:PATH``: the file's content (the local stack keeps its PostgreSQL password under ``.gcpipe/secrets``);
* ``env:NAME``: an environment variable;
* ``projects/P/secrets/S/versions/V``: a Secret Manager secret version (the gcp target; on Dataproc the
  job reads it with the cluster's service account).

This module is shipped to Dataproc with the Spark jobs, so it imports nothing beyond the standard library
up front.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from gcpipe.core.errors import GcpipeError

_SECRET_VERSION = re.compile(r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$")


class SecretError(GcpipeError):
    """A secret that cannot be read, worded for the user (the message never holds the secret)."""


def ensure_local_secret(reference: str) -> None:
    """Make a ``file:`` secret that does not exist yet: random, readable by its owner only (local target)."""
    kind, _, where = reference.partition(":")
    if kind == "file" and where and not Path(where).exists():
        import secrets

        path = Path(where)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))


def read_secret(reference: str) -> str:
    """The secret ``reference`` points at, without surrounding whitespace."""
    kind, _, where = reference.partition(":")
    if kind == "file" and where:
        try:
            return Path(where).read_text().strip()
        except OSError as err:
            raise SecretError(f"cannot read the secret file {where} ({err.strerror}).") from None
    if kind == "env" and where:
        if where not in os.environ:
            raise SecretError(f"the environment variable {where} named as a secret is not set.")
        return os.environ[where].strip()
    if _SECRET_VERSION.match(reference):
        return _secret_manager(reference)
    raise SecretError(
        f"{reference!r} is not a secret reference: use file:PATH, env:NAME or "
        "projects/PROJECT/secrets/NAME/versions/VERSION."
    )


def _secret_manager(name: str) -> str:
    try:
        from google.cloud import secretmanager
    except ImportError:
        raise SecretError(
            f"reading {name} needs the google-cloud-secret-manager package (pip install it on the cluster)."
        ) from None
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    try:
        response = secretmanager.SecretManagerServiceClient().access_secret_version(name=name)
    except (GoogleAPIError, GoogleAuthError) as err:
        raise SecretError(f"cannot read secret {name}: {err}") from None
    return response.payload.data.decode().strip()
