"""``gcpipe spark``: run the Spark jobs locally or on Dataproc, and load the rentals lab into Cloud SQL."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from gcpipe.core.config import TARGETS, load_config
from gcpipe.spark.jobs import JOBS, SparkJobError, cloudsql_args, get_job, job_args, local_command, run_local


@click.group()
def spark() -> None:
    """Run the Spark jobs: locally on local[*], or on Dataproc."""


@spark.command(context_settings={"ignore_unknown_options": True})
@click.argument("job", type=click.Choice(sorted(JOBS)))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--target", type=click.Choice(TARGETS), help="Default: the configured target.")
@click.option("--dry-run", is_flag=True, help="Print what would run (the gcloud commands and the request).")
@click.option("--serverless", is_flag=True, help="On gcp: a Dataproc Serverless batch, not a job cluster.")
@click.option(
    "--cloudsql", is_flag=True, help="Read from and write to Cloud SQL (als_recommend), as the lab."
)
def submit(
    job: str, args: tuple[str, ...], target: str | None, dry_run: bool, serverless: bool, cloudsql: bool
):
    """Run JOB with its default arguments for the target; ARGS (--name value) replace the defaults."""
    config = load_config(target=target)
    spark_job = get_job(job)
    if cloudsql and spark_job.name != "als_recommend":
        raise SparkJobError("--cloudsql applies to als_recommend only.")
    arguments = job_args(spark_job, config, cloudsql_args(config) if cloudsql else [], list(args))
    if config.is_local:
        if serverless:
            raise SparkJobError("--serverless runs on Dataproc: add --target gcp.")
        if dry_run:
            click.echo(shlex.join(local_command(spark_job, arguments)))
            return
        click.echo(run_local(spark_job, config, arguments).stdout, nl=False)
        return
    from gcpipe.deploy.dataproc import submit_plan
    from gcpipe.deploy.steps import execute, render

    steps = submit_plan(spark_job, config.require_gcp(), arguments, serverless)
    if dry_run:
        click.echo(render(steps), nl=False)
    else:
        execute(steps)


@spark.command()
@click.option("--output", type=click.Path(path_type=Path), help="Default: .gcpipe/dataproc/gcpipe_spark.zip.")
def package(output: Path | None) -> None:
    """Build the zip of the Python code the jobs import on Dataproc (--py-files)."""
    from gcpipe.deploy.dataproc import build_package, package_path

    click.echo(build_package(output or package_path(load_config())))


@spark.command("load-rentals")
@click.option(
    "--input", "folder", type=click.Path(path_type=Path), help="Default: the lake's landing/rentals."
)
@click.option("--target", type=click.Choice(TARGETS), help="Default: the configured target.")
def load_rentals(folder: Path | None, target: str | None) -> None:
    """Load the lab's accommodations.csv and ratings.csv into Cloud SQL (locally: the stack's PostgreSQL)."""
    from gcpipe.warehouse import cloudsql

    config = load_config(target=target)
    folder = folder or Path(config.lake) / "landing" / "rentals"
    click.echo(json.dumps(cloudsql.load_rentals(config, folder)))
