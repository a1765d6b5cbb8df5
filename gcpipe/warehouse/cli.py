"""``gcpipe sql``: run BigQuery SQL files on either target, and write the DDL of the table catalog.

    gcpipe sql run sql/ml/purchase_predictions.sql --param predict_from=2017-05-01
    gcpipe sql run sql/transforms/visitor_sessions.sql --target gcp --dry-run
    gcpipe sql ddl --write        # sql/ddl/<table>.sql from sql/schemas + sql/tables.json

Results go to stdout (a table, or JSON with ``--format json``); what ran, how long it took and the
bytes processed go to stderr.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from gcpipe.core.config import PROJECT_ROOT
from gcpipe.core.ui import console, print_table, stdout
from gcpipe.warehouse.runner import RunResult, format_bytes, run_sql_file

DDL_DIR = PROJECT_ROOT / "sql" / "ddl"


@click.group()
def sql() -> None:
    """Run BigQuery SQL files (local emulator + local BigQuery ML, or BigQuery)."""


@sql.command()
@click.argument("file", type=click.Path(path_type=Path, readable=False))
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME[:TYPE]=VALUE",
    help="A named query parameter (@NAME); repeat for more. TYPE: INT64, FLOAT64, DATE, STRING, ...",
)
@click.option(
    "--target",
    type=click.Choice(["local", "gcp"]),
    default=None,
    help="Where to run (default: the configured target).",
)
@click.option("--dry-run", is_flag=True, help="Validate without running; report the bytes it would process.")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--max-rows", default=100, show_default=True, help="Rows to print per result set.")
def run(file: Path, params: tuple[str, ...], target: str | None, dry_run: bool, output: str, max_rows: int):
    """Run FILE, statement by statement, and print each result."""
    from gcpipe.warehouse.params import parse_param

    values = dict(parse_param(text) for text in params)
    result = run_sql_file(file, values, target=target, dry_run=dry_run, max_rows=max_rows)
    if output == "json":
        click.echo(json.dumps(_as_json(result), indent=2, default=str))
    else:
        _print_tables(result)


def _as_json(result: RunResult) -> dict:
    return {
        "source": result.source,
        "target": result.target,
        "dry_run": result.dry_run,
        "seconds": round(result.seconds, 3),
        "bytes_processed": result.bytes_processed,
        "statements": [
            {
                "line": s.line,
                "statement_type": s.statement_type,
                "seconds": round(s.seconds, 3),
                "bytes_processed": s.bytes_processed,
                "affected_rows": s.affected_rows,
                "message": s.message,
                "total_rows": s.total_rows,
                "rows": s.rows,
            }
            for s in result.statements
        ],
    }


def _print_tables(result: RunResult) -> None:
    for s in result.statements:
        facts = [s.statement_type, f"{s.seconds:.2f} s"]
        if s.bytes_processed is not None:
            facts.append(f"{format_bytes(s.bytes_processed)} processed")
        if s.affected_rows is not None:
            facts.append(f"{s.affected_rows:,} rows affected")
        if s.total_rows is not None:
            facts.append(f"{s.total_rows:,} rows")
        console.print(
            f"[bold]{result.source}:{s.line}[/] "
            + " · ".join(facts)
            + (f": {s.message}" if s.message else "")
        )
        if s.rows:
            table = Table(*s.columns, show_lines=False)
            for row in s.rows:
                table.add_row(*(_cell(row[c]) for c in s.columns))
            print_table(table, stdout)
            if s.total_rows and s.total_rows > len(s.rows):
                console.print(f"... {s.total_rows - len(s.rows):,} more rows (--max-rows)")
    processed = (
        f", {format_bytes(result.bytes_processed)} processed" if result.bytes_processed is not None else ""
    )
    console.print(f"[green]done[/] on {result.target} in {result.seconds:.2f} s{processed}.")


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return "NULL" if value is None else str(value)


@sql.command()
@click.argument("tables", nargs=-1)
@click.option("--write", is_flag=True, help=f"Write {DDL_DIR.relative_to(PROJECT_ROOT)}/<table>.sql files.")
def ddl(tables: tuple[str, ...], write: bool) -> None:
    """Print (or --write) CREATE TABLE statements for the catalog's tables (all by default)."""
    from gcpipe.core.schemas import load_tables

    catalog = load_tables()
    for name in tables or sorted(catalog):
        text = ddl_file_text(name)
        if write:
            DDL_DIR.mkdir(parents=True, exist_ok=True)
            (DDL_DIR / f"{name}.sql").write_text(text)
            console.print(f"wrote sql/ddl/{name}.sql")
        else:
            click.echo(text)


def ddl_file_text(table: str) -> str:
    """The DDL file of a catalog table: generated from its schema, names left as {{ }} placeholders."""
    from gcpipe.core.schemas import table_spec

    spec = table_spec(table)
    table_id = f"{{{{ project }}}}.{{{{ {spec.dataset_key}_dataset }}}}.{spec.name}"
    header = (
        f"-- {spec.name}: generated from sql/schemas/{spec.schema.name}.json and sql/tables.json by\n"
        "-- `gcpipe sql ddl --write`; edit those, not this file.\n"
    )
    return header + spec.ddl(table_id) + ";\n"
