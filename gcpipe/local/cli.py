"""``gcpipe up | down | status | env | config``: the local stack and the resolved configuration."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from rich.table import Table

from gcpipe.core.config import load_config
from gcpipe.core.ui import print_table, stdout
from gcpipe.local import stack

services_option = click.option(
    "--service",
    "services",
    multiple=True,
    type=click.Choice(sorted(stack.SERVICES)),
    help="Only this service (repeatable); default: the whole core stack.",
)


@click.command()
@services_option
def up(services: tuple[str, ...]) -> None:
    """Start the local emulators (idempotent) and write .gcpipe/env."""
    config = load_config()
    stack.up(config, services or None)
    click.echo(f"env file: {stack.env_file(config)}  (source it to point clients at the stack)")


@click.command()
@services_option
def down(services: tuple[str, ...]) -> None:
    """Stop the local emulators; no process is left behind."""
    stack.down(load_config(), services or None)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def status(as_json: bool) -> None:
    """Report each local service: healthy, unhealthy or stopped."""
    rows = stack.status(load_config())
    if as_json:
        click.echo(json.dumps([{"name": r.name, "state": r.state, "pid": r.pid, "url": r.url} for r in rows]))
        return
    table = Table("service", "state", "pid", "address", "log")
    colours = {"healthy": "green", "unhealthy": "yellow", "stopped": "dim"}
    for row in rows:
        log = os.path.relpath(row.log) if row.log.is_relative_to(Path.cwd()) else str(row.log)
        table.add_row(row.title, f"[{colours[row.state]}]{row.state}[/]", str(row.pid or "-"), row.url, log)
    print_table(table, stdout)


@click.command()
def env() -> None:
    """Print the variables that point clients at the local stack (eval "$(gcpipe env)")."""
    for key, value in load_config().emulator_env().items():
        click.echo(f"export {key}={value}")


@click.command("config")
@click.option("--target", type=click.Choice(["local", "gcp"]), help="Resolve for this target.")
def show_config(target: str | None) -> None:
    """Print the resolved configuration; for gcp, say what is missing."""
    config = load_config(target=target).require_gcp()
    for key, value in vars(config).items():
        click.echo(f"{key:<22} {value}")
