"""The deployment's step engine: a plan is a list of steps (a command, or a file gcpipe writes), printed as a
shell script for ``--dry-run`` or run in turn, the first failure stopping it."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from gcpipe.core.config import PROJECT_ROOT
from gcpipe.core.errors import GcpipeError


class DeployError(GcpipeError):
    """A deployment that cannot go on, worded for the user."""


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


def gcloud_dict(values: dict[str, str]) -> str:
    """gcloud's key=value list; values with commas switch the separator (gcloud topic escaping)."""
    if any("," in v for v in values.values()):
        separator = next(c for c in "~|#@" if not any(c in v for v in values.values()))
        return f"^{separator}^" + separator.join(f"{k}={v}" for k, v in values.items())
    return ",".join(f"{k}={v}" for k, v in values.items())
