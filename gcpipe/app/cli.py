"""The ``gcpipe`` command line: the local stack, data generators, and each capability's commands.

Subcommands live in the module that implements them and load only when called, so ``gcpipe status``
does not pay for importing Beam, Spark or Airflow.
"""

from __future__ import annotations

import importlib
import sys

import click

from gcpipe.core.errors import GcpipeError

# name -> ("module:click_object", one-line help); each capability registers its command group here.
COMMANDS = {
    "up": ("gcpipe.local.cli:up", "Start the local emulators (idempotent)."),
    "down": ("gcpipe.local.cli:down", "Stop the local emulators."),
    "status": ("gcpipe.local.cli:status", "Report the local services."),
    "env": ("gcpipe.local.cli:env", "Print the variables that point clients at the local stack."),
    "config": ("gcpipe.local.cli:show_config", "Print the resolved configuration."),
    "datagen": ("gcpipe.datagen.cli:datagen", "Generate realistic, seeded data sets."),
    "demo": ("gcpipe.app.demo:demo", "Run the whole platform end to end on the local target."),
    "flows": ("gcpipe.flows.cli:flows", "The flows: their DAGs, code, SQL, tests and steps."),
    "rides": ("gcpipe.datagen.cli:rides", "Simulated taxi rides: publish them to Pub/Sub in real time."),
    "dashboard": ("gcpipe.app.dashboard.app:dashboard", "Serve the live dashboard of the streaming rides."),
    "bench": ("gcpipe.app.bench.cli:bench", "Run the benchmarks with their baselines; write BENCHMARKS.md."),
    "spark": ("gcpipe.spark.cli:spark", "Run the Spark jobs locally or on Dataproc (submit, package)."),
    "deploy": (
        "gcpipe.deploy.cli:deploy",
        "Deploy to Google Cloud (infra, templates, DAGs) and run jobs there.",
    ),
    "dags": (
        "gcpipe.orchestration.cli:dags",
        "Airflow DAGs on the local target: list, test one, serve Airflow.",
    ),
    "sql": (
        "gcpipe.warehouse.cli:sql",
        "Run BigQuery SQL files (local BigQuery ML included); write catalog DDL.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, help_) in sorted(COMMANDS.items())])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """gcpipe: a GCP batch and streaming data platform that runs whole on one laptop."""


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a GcpipeError ends as its one-sentence message and exit status 1."""
    try:
        code = cli.main(args=argv, prog_name="gcpipe", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except GcpipeError as err:
        click.secho(f"error: {err}", fg="red", err=True)
        sys.exit(1)
    if isinstance(code, int):  # click hands back exit codes (--help, ctx.exit) in this mode
        sys.exit(code)


if __name__ == "__main__":
    main()
