"""What users see while work runs: progress bars and a shared console (stderr, so stdout stays data)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


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
