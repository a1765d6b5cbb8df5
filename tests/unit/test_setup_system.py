"""`make setup`'s system step (infra/local/setup_system.sh): it finds the Debian packages of the list that
are missing and installs them with apt-get as root, through sudo otherwise, else says what to run.

Its dry run prints the exact commands; `id` and `sudo` are stand-ins on PATH so that each way is tested
whoever runs the tests (dpkg-query, apt-get's package database, are the machine's own)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gcpipe.core.config import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "infra" / "local" / "setup_system.sh"
MISSING = "gcpipe-no-such-package"  # never installed anywhere
INSTALL = f"apt-get install -y -qq --no-install-recommends {MISSING}"


def run_step(tmp_path: Path, packages: str, uid: int, sudo: str | None = None) -> subprocess.CompletedProcess:
    """The system step in dry-run mode on a list of ``packages``, as user ``uid``; ``sudo``: the body of a
    stand-in sudo (None: no sudo on PATH beyond the machine's)."""
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "id").write_text(f'#!/bin/sh\n[ "$1" = -u ] && echo {uid} || exec /usr/bin/id "$@"\n')
    if sudo is not None:
        (shims / "sudo").write_text(f"#!/bin/sh\n{sudo}\n")
    for shim in shims.iterdir():
        shim.chmod(0o755)
    listing = tmp_path / "packages.txt"
    listing.write_text(packages)
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", str(SCRIPT), str(listing), "--dry-run"], capture_output=True, text=True, env=env, timeout=60
    )


def test_as_root_it_installs_the_missing_package_of_the_list_with_apt_get(tmp_path):
    done = run_step(tmp_path, f"# what needs it\nbash  # the shell\n{MISSING}  # a test\n\n", uid=0)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"system packages: missing {MISSING}",
        "would run: env DEBIAN_FRONTEND=noninteractive apt-get update -qq",
        f"would run: env DEBIAN_FRONTEND=noninteractive {INSTALL}",
    ]


def test_not_root_it_goes_through_sudo_without_a_password_prompt(tmp_path):
    done = run_step(tmp_path, f"{MISSING}\n", uid=1000, sudo='[ "$1" = -n ] && exit 0; exit 1')
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == [
        "would run: sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -qq",
        f"would run: sudo -n env DEBIAN_FRONTEND=noninteractive {INSTALL}",
    ]


@pytest.mark.parametrize("sudo", [None, 'echo "sudo: a password is required" >&2; exit 1'])
def test_without_root_or_sudo_it_names_the_packages_and_the_command(tmp_path, sudo):
    """No usable sudo (absent, or it would ask for a password): one sentence, and setup stops."""
    if sudo is None and any(Path(p, "sudo").exists() for p in os.environ["PATH"].split(":")):
        sudo = "exit 1"  # a real sudo here might work: stand in for one that would not
    done = run_step(tmp_path, f"bash\n{MISSING}\n", uid=1000, sudo=sudo)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"error: the Debian packages {MISSING} are missing and installing them needs root: "
        f"run `sudo apt-get install {MISSING}`, then `make setup` again.\n"
    )


def test_with_every_package_present_it_says_so_and_runs_nothing(tmp_path):
    done = run_step(tmp_path, "bash\ncoreutils  # always there\n", uid=1000)
    assert (done.returncode, done.stdout, done.stderr) == (0, "system packages: all present\n", "")


def test_make_setup_runs_the_system_step_and_ci_runs_exactly_the_readme_commands():
    recipe = (PROJECT_ROOT / "Makefile").read_text().split("\nsetup:")[1].split("\n\n")[0]
    assert "bash infra/local/setup_system.sh" in recipe
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert "make setup && make test" in readme.split("```")[1]
    ci = [line for line in (PROJECT_ROOT / ".ci/run").read_text().splitlines() if line and line[0] != "#"]
    assert ci == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', "make setup && make test"]
