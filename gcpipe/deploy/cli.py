"""``gcpipe deploy``: infra, templates, dags, run, config, bundle (see :mod:`gcpipe.deploy.plans`)."""

from __future__ import annotations

from pathlib import Path

import click

from gcpipe.deploy.naming import ENVIRONMENTS, Deployment, write_config
from gcpipe.deploy.plans import dags_plan, infra_plan, make_bundle, run_plan, templates_plan
from gcpipe.deploy.steps import Step, execute, render

dry_run_option = click.option(
    "--dry-run",
    is_flag=True,
    envvar="DRY_RUN",
    help="Print the commands and files, call nothing (DRY_RUN=1).",
)
environment_option = click.option(
    "--environment",
    type=click.Choice(ENVIRONMENTS),
    default="prod",
    envvar="GCPIPE_ENVIRONMENT",
    show_default=True,
    help="dev, staging or prod (labels, Terraform state prefix).",
)
tag_option = click.option("--tag", envvar="GCPIPE_IMAGE_TAG", help="Image tag; default: the git commit.")
yes_option = click.option("--yes", is_flag=True, help="Apply without asking.")


def _go(steps: list[Step], dry_run: bool, assume_yes: bool = False) -> None:
    if dry_run:
        click.echo(render(steps), nl=False)
    else:
        execute(steps, assume_yes)


@click.group()
def deploy() -> None:
    """Deploy gcpipe to Google Cloud (GCPIPE_PROJECT, GCPIPE_REGION) and run jobs there."""


@deploy.command()
@environment_option
@dry_run_option
@yes_option
@click.option("--plan-only", is_flag=True, help="Stop after terraform plan.")
def infra(environment: str, dry_run: bool, yes: bool, plan_only: bool) -> None:
    """Terraform: state bucket, init, plan, apply; the outputs go into gcpipe.toml."""
    _go(infra_plan(Deployment.from_config(environment, tag="-"), plan_only), dry_run, yes)


@deploy.command()
@environment_option
@tag_option
@dry_run_option
def templates(environment: str, tag: str | None, dry_run: bool) -> None:
    """Build the flex-template images (Cloud Build) and write the template specs."""
    _go(templates_plan(Deployment.from_config(environment, tag)), dry_run)


@deploy.command()
@environment_option
@tag_option
@dry_run_option
def dags(environment: str, tag: str | None, dry_run: bool) -> None:
    """Install Composer's PyPI packages, then import the DAGs and the support code."""
    _go(dags_plan(Deployment.from_config(environment, tag)), dry_run)


@deploy.command(context_settings={"ignore_unknown_options": True})
@click.argument("job")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--job-name", help="Dataflow job name; default gcpipe-<job>-<UTC time>.")
@environment_option
@dry_run_option
def run(job: str, args: tuple[str, ...], job_name: str | None, environment: str, dry_run: bool) -> None:
    """Run one pipeline as a flex-template job, or one Spark job, on GCP: JOB [--option=value ...]."""
    _go(run_plan(Deployment.from_config(environment, tag="-"), job, args, job_name), dry_run)


@deploy.command("config")
@click.option("--outputs", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True)
def config_command(outputs: Path) -> None:
    """Write the [gcp] section of gcpipe.toml from `terraform output -json`."""
    click.echo(f"wrote the [gcp] section of {write_config(outputs)}")


@deploy.command()
@environment_option
@tag_option
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), required=True)
def bundle(environment: str, tag: str | None, output: Path) -> None:
    """Assemble what deploy dags imports into Composer's dags/ folder."""
    click.echo(f"bundle: {make_bundle(Deployment.from_config(environment, tag), output)}")
