"""Tables print whole when the output is not a terminal (a file, a pipe, CI's log): nothing cut to `…`."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from gcpipe.app.cli import main
from gcpipe.core.ui import print_table

LONG = "/a/state/folder/" + "very-long-name/" * 12 + "logs/bigquery.log"


def table() -> Table:
    result = Table("service", "address", "log")
    result.add_row("BigQuery emulator", "http://127.0.0.1:9050", LONG)
    return result


def test_not_a_terminal_the_table_prints_whole_and_the_console_keeps_its_width():
    out = Console(file=io.StringIO(), width=80)
    print_table(table(), out)
    text = out.file.getvalue()
    assert LONG in text and "http://127.0.0.1:9050" in text and "…" not in text
    assert out.width == 80


def test_on_a_terminal_the_table_fits_its_width():
    out = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    print_table(table(), out)
    assert max(len(line) for line in out.file.getvalue().splitlines()) <= 80


def test_gcpipe_status_piped_shows_every_address_and_log_path_whole(tmp_path, monkeypatch, capsys):
    state = tmp_path / ("a-state-folder-with-a-long-name-" * 3)
    monkeypatch.setenv("GCPIPE_STATE_DIR", str(state))
    monkeypatch.setenv("GCPIPE_PORT_OFFSET", "31000")  # nothing runs there: every service is stopped
    main(["status"])  # returns: exit status 0
    out = capsys.readouterr().out
    assert "…" not in out
    for name in ("metadata", "pubsub", "bigquery", "gcs", "postgres", "dashboard"):
        assert str(state / "logs" / f"{name}.log") in out
    assert "http://127.0.0.1:40050" in out and "postgresql://127.0.0.1:36433" in out
