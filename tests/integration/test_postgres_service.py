"""PostgreSQL as a stack service (the local Cloud SQL): initdb on first start, loopback only, clean stop."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from contextlib import closing
from pathlib import Path

import pytest

from gcpipe.core.config import load_config
from gcpipe.local import stack
from gcpipe.warehouse import cloudsql
from tests.integration.test_stack import QUIET, _listening_addresses, _processes_mentioning

pytestmark = pytest.mark.stack
LOOPBACK = {"0100007F"}


@pytest.fixture
def side_config():
    """A stack of its own, 1000 ports above, in a state folder the postgres account can enter."""
    base = load_config(target="local")
    base.state_dir.mkdir(parents=True, exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="side-", dir=base.state_dir))
    state.chmod(0o755)
    config = load_config(target="local", state_dir=str(state), port_offset=base.port_offset + 1000)
    yield config
    stack.down(config, ["postgres"], **QUIET)
    shutil.rmtree(state, ignore_errors=True)


def test_first_start_creates_the_cluster_and_a_private_password(side_config):
    assert stack.up(side_config, ["postgres"], **QUIET) == {"postgres": "started"}
    data = stack.postgres_data(side_config)
    assert (data / "PG_VERSION").exists()
    secret = Path(side_config.jdbc_password_secret.removeprefix("file:"))
    assert secret.is_relative_to(side_config.state_dir) and stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert not list(data.parent.glob("*password*"))  # initdb's password file is gone
    assert _listening_addresses(side_config.port("postgres")) == LOOPBACK
    with closing(cloudsql.connect(side_config, "postgres")) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT current_user, inet_server_addr()::text")
        assert cursor.fetchone() == ("gcpipe", "127.0.0.1/32")
    assert stack.up(side_config, ["postgres"], **QUIET) == {"postgres": "running"}


def test_stop_leaves_no_process_and_a_restart_keeps_the_data(side_config):
    stack.up(side_config, ["postgres"], **QUIET)
    name = cloudsql.ensure_database(side_config, "kept")
    assert stack.down(side_config, ["postgres"], **QUIET) == {"postgres": "stopped"}
    assert _processes_mentioning(str(stack.postgres_data(side_config))) == []
    assert stack.up(side_config, ["postgres"], **QUIET) == {"postgres": "started"}
    with closing(cloudsql.connect(side_config, name)) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        assert cursor.fetchone() == ("kept",)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to the postgres account")
def test_a_state_folder_the_postgres_account_cannot_enter_is_one_sentence(tmp_path):
    tmp_path.chmod(0o700)
    config = load_config(target="local", state_dir=str(tmp_path / "state"), port_offset=1900)
    with pytest.raises(
        stack.StackError, match=r"^PostgreSQL runs as the postgres user, who cannot enter .*chmod o\+x"
    ):
        stack.up(config, ["postgres"], **QUIET)
