"""What users see while work runs: progress bars, a shared console (stderr, so stdout stays data), and
tables that print whole when the output is a file or a pipe (rich would cut them at 80 columns)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)
stdout = Console()  # data a user may pipe or copy: result tables


def print_table(table, to: Console | None = None) -> None:
    """Print a rich table on ``to`` (the console by default): fitted to a terminal's width, else whole,
    however wide (addresses, paths and values are never cut to `…` in a log or a pipe)."""
    to = to or console
    if to.is_terminal:
        to.print(table)
        return
    width = Measurement.get(to, to.options.update_width(1_000_000), table).maximum
    previous = to.width  # print(width=...) cannot go beyond the console's width: widen it for this table
    to.width = max(width, previous)
    try:
        to.print(table)
    finally:
        to.width = previous


def _quiet() -> bool:
    return bool(os.environ.get("GCPIPE_QUIET")) or "pytest" in sys.modules


@contextmanager
def progress(description: str, total: int | None) -> Iterator:
    """Yield ``advance(n)``; a progress bar on a terminal, nothing under tests or GCPIPE_QUIET=1."""
    if _quiet():
        yield lambda n=1: None
        return
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    if total:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
