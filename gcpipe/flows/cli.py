"""``gcpipe flows``: the platform's flows and their steps, as the registry declares them."""

from __future__ import annotations

import click
from rich.table import Table

from gcpipe.core.ui import console
from gcpipe.flows.registry import FLOWS, markdown_table


@click.command()
@click.option(
    "--markdown", is_flag=True, help="The README's table instead: flow -> DAG -> code -> SQL -> tests."
)
def flows(markdown: bool) -> None:
    """Each flow's steps (gcpipe.flows.registry): its DAG's task ids, their kind and what they run."""
    if markdown:
        click.echo(markdown_table())
        return
    table = Table("flow", "DAG", "step (task id)", "kind", "runs", "demo")
    for flow in FLOWS:
        for number, step in enumerate(flow.steps):
            first = number == 0
            table.add_row(
                flow.name if first else "",
                flow.dag if first else "",
                step.name,
                step.kind,
                step.runs,
                "yes" if step.in_demo else "-",
                end_section=number == len(flow.steps) - 1,
            )
    console.print(table)
