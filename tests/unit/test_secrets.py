"""Secrets by reference: files and environment variables locally, Secret Manager on gcp."""

from __future__ import annotations

import stat
import sys
import types

import pytest

from gcpipe.core.config import load_config
from gcpipe.core.secrets import SecretError, ensure_local_secret, read_secret

VALUE = "s3cr3t-value"  # pragma: allowlist secret


def test_a_file_or_an_environment_variable(tmp_path, monkeypatch):
    (tmp_path / "pw").write_text(VALUE + "\n")
    monkeypatch.setenv("GCPIPE_TEST_SECRET", VALUE)
    assert read_secret(f"file:{tmp_path / 'pw'}") == VALUE
    assert read_secret("env:GCPIPE_TEST_SECRET") == VALUE


def test_what_cannot_be_read_is_one_sentence_without_the_secret(tmp_path, monkeypatch):
    monkeypatch.delenv("GCPIPE_NO_SUCH_SECRET", raising=False)
    with pytest.raises(
        SecretError, match=r"^cannot read the secret file .*missing \(No such file or directory\)\.$"
    ):
        read_secret(f"file:{tmp_path / 'missing'}")
    with pytest.raises(
        SecretError, match=r"^the environment variable GCPIPE_NO_SUCH_SECRET named as a secret"
    ):
        read_secret("env:GCPIPE_NO_SUCH_SECRET")
    with pytest.raises(SecretError, match=r"is not a secret reference: use file:PATH, env:NAME or projects/"):
        read_secret(VALUE)


def test_a_secret_manager_version_is_read_with_the_client_library(monkeypatch):
    """Secret Manager cannot run here: a stand-in client records the exact request."""
    requested = []

    class Client:
        def access_secret_version(self, name):
            requested.append(name)
            return types.SimpleNamespace(payload=types.SimpleNamespace(data=VALUE.encode()))

    module = types.SimpleNamespace(SecretManagerServiceClient=Client)
    monkeypatch.setitem(sys.modules, "google.cloud.secretmanager", module)
    monkeypatch.setattr("google.cloud.secretmanager", module, raising=False)
    name = "projects/acme-data-prod/secrets/gcpipe-cloudsql-password/versions/latest"
    assert read_secret(name) == VALUE
    assert requested == [name]


def test_the_configured_references_point_at_the_state_folder_locally_and_secret_manager_on_gcp():
    local = load_config(target="local")
    assert local.jdbc_password_secret == f"file:{local.state_dir / 'secrets' / 'postgres_password'}"
    assert local.jdbc_url == f"jdbc:postgresql://127.0.0.1:{local.port('postgres')}/rentals"
    gcp = load_config(target="gcp", project="acme-data-prod")
    reference = "projects/acme-data-prod/secrets/gcpipe-cloudsql-password/versions/latest"
    assert gcp.jdbc_password_secret == reference
    assert gcp.jdbc_url == ""


def test_a_missing_local_secret_is_made_once_for_its_owner_only(tmp_path):
    reference = f"file:{tmp_path / 'secrets' / 'made'}"
    ensure_local_secret(reference)
    first = read_secret(reference)
    ensure_local_secret(reference)
    assert read_secret(reference) == first and len(first) >= 32
    assert stat.S_IMODE((tmp_path / "secrets" / "made").stat().st_mode) == 0o600
    ensure_local_secret("env:ANYTHING")  # only file: secrets are made
