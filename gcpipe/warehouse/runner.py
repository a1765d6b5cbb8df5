"""Run BigQuery SQL files against real BigQuery or the local emulator: ``gcpipe sql run`` and its Python API.

    from gcpipe.warehouse.runner import run_sql_file
    result = run_sql_file("sql/ml/purchase_model_evaluate.sql", {"eval_from": date(2017, 5, 1), ...})
    result.rows            # the last result set, as dicts
    result.statements      # every statement: line, type, rows, bytes processed, seconds

A file runs statement by statement (each reports its own result, bytes processed and time, and an error
names the file and the line). A file that keeps state between statements (DECLARE, SET, BEGIN ... END,
transactions, temporary tables) runs as one BigQuery script instead. ``{{ name }}`` placeholders come
from the configuration (:mod:`gcpipe.warehouse.script`); values travel as named query parameters
(:mod:`gcpipe.warehouse.params`).

Where a statement goes is its backend's decision (:mod:`gcpipe.warehouse.backends`, the one seam between
the targets): on gcp every statement goes to BigQuery unchanged; locally BigQuery ML statements go to
:mod:`gcpipe.warehouse.bqml` (the emulator trains nothing) and the rest to the emulator.

Data quality checks: a statement whose result has the columns ``check_name`` and ``failures`` is a check,
and the run fails, naming each check whose ``failures`` (the offending count) is not 0, counted in the
check's ``unit`` if it has one (a singular noun: day, cent), else in offending rows.

``dry_run`` validates without running: on gcp one BigQuery dry-run job for the whole file, which reports
the bytes it would process; locally a dry run of each statement in the emulator. Bytes processed are
reported where the backend measures them: BigQuery does, the emulator does not.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcpipe.core.clients import bigquery_client
from gcpipe.core.config import Config, load_config
from gcpipe.core.errors import GcpipeError
from gcpipe.core.inputs import read_text
from gcpipe.core.ui import console
from gcpipe.warehouse.backends import backend_for
from gcpipe.warehouse.params import job_config
from gcpipe.warehouse.script import Script, SqlError, Statement, parse_script, tokenize, used_parameters

# Where the backend says the error is: BigQuery's `at [line:column]`, or sqlglot's in the emulator.
_POSITION = re.compile(r"\s*(?:at \[(\d+):(\d+)\]|Line (\d+), Col: (\d+)\.)")


class CheckFailed(SqlError):
    """A data quality check found offending rows."""


@dataclass
class StatementResult:
    line: int
    statement_type: str
    seconds: float
    rows: list[dict] | None = None  # None: the statement returns no result set
    schema: list = field(default_factory=list)  # the result set's SchemaFields
    total_rows: int | None = None  # rows in the result set (``rows`` may hold fewer, see max_rows)
    bytes_processed: int | None = None
    affected_rows: int | None = None
    message: str = ""  # what local BigQuery ML did, or a dry run's verdict

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.schema]


@dataclass
class RunResult:
    source: str
    target: str
    dry_run: bool
    statements: list[StatementResult]
    seconds: float

    @property
    def rows(self) -> list[dict]:
        """The rows of the last statement that returned a result set ([] if none did)."""
        with_rows = [s for s in self.statements if s.rows is not None]
        return with_rows[-1].rows if with_rows else []

    @property
    def bytes_processed(self) -> int | None:
        known = [s.bytes_processed for s in self.statements if s.bytes_processed is not None]
        return sum(known) if known else None


def run_sql_file(path: str | Path, params: dict[str, Any] | None = None, **settings) -> RunResult:
    """Run the SQL file at ``path``; the settings are :func:`run_sql`'s."""
    return run_sql(read_text(path, "SQL file"), params, source=str(path), **settings)


def run_sql(
    text: str,
    params: dict[str, Any] | None = None,
    *,
    source: str = "<sql>",
    config: Config | None = None,
    target: str | None = None,
    dry_run: bool = False,
    client=None,
    max_rows: int | None = None,
) -> RunResult:
    """Run SQL text (``source`` names it in errors); see the module docstring.

    ``config`` defaults to the configuration of ``target``; ``max_rows`` caps the rows kept per result.
    """
    config = config or load_config(target=target)
    if target and target != config.target:
        raise GcpipeError(f"the configuration is for the {config.target} target, not {target}.")
    config.require_gcp()
    params = dict(params or {})
    script = parse_script(text, config.template_vars(), source)
    unused = sorted(set(params) - script.parameters)
    if unused:
        console.print(f"[yellow]note:[/] {source} does not use the parameter(s) {', '.join(unused)}.")
    runner = _Runner(client or _client(config), config, script, params, max_rows)
    started = time.perf_counter()
    if dry_run:
        results = [runner.dry_run()]
    elif script.is_procedural:
        runner.check_script()
        whole = Statement(script.text, 1, ())
        results = [runner.execute(whole, whole_script=True)]
        _enforce_checks(script, whole, results[0])
    else:
        results = []
        for statement in script.statements:
            results.append(runner.execute(statement))
            _enforce_checks(script, statement, results[-1])
    return RunResult(source, config.target, dry_run, results, time.perf_counter() - started)


def _client(config: Config):
    from google.auth.exceptions import DefaultCredentialsError

    if config.is_local and not _answers("127.0.0.1", config.port("bigquery")):
        # the client would retry a refused connection for minutes, silently
        raise GcpipeError(
            f"the BigQuery emulator (127.0.0.1:{config.port('bigquery')}) does not answer: start the local "
            "stack with `gcpipe up` (or `make up`)."
        )
    try:
        return bigquery_client(config)
    except DefaultCredentialsError:
        raise GcpipeError(
            "no Google Cloud credentials for the gcp target: run `gcloud auth application-default login`."
        ) from None


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


def _enforce_checks(script: Script, statement: Statement, result: StatementResult) -> None:
    if result.rows is None or not {"check_name", "failures"} <= set(result.columns):
        return
    failed = [row for row in result.rows if row["failures"]]
    if failed:
        what = "; ".join(
            f"check {r['check_name']} failed: {_count(r['failures'], r.get('unit') or 'offending row')}"
            for r in failed
        )
        raise CheckFailed(f"{script.source}:{statement.line}: {what}.")


class _Runner:
    def __init__(self, client, config: Config, script: Script, params: dict[str, Any], max_rows: int | None):
        self.client, self.config, self.script = client, config, script
        self.params, self.max_rows = params, max_rows
        self.backend = backend_for(client, config)

    def check_script(self) -> None:
        self.backend.check_script(self.script)

    def execute(self, statement: Statement, whole_script: bool = False) -> StatementResult:
        from google.api_core.exceptions import GoogleAPIError

        started = time.perf_counter()
        kind = self.backend.statement_kind(statement.text)
        sql = statement.text
        try:
            if kind in ("create_model", "drop_model"):
                message = self.backend.run_ml(kind, sql, self.params)
                return StatementResult(
                    statement.line, kind.upper(), time.perf_counter() - started, message=message
                )
            if kind == "functions":
                sql = self.backend.rewrite(sql, self.params)
            job = self.client.query(sql, job_config=job_config(used_parameters(tokenize(sql)), self.params))
            rows = job.result(max_results=self.max_rows)
            records = [dict(row.items()) for row in rows]  # read before release() drops what they came from
        except (GcpipeError, GoogleAPIError) as err:
            raise self._error(err, statement, rewritten=sql != statement.text) from None
        finally:
            self.backend.release()  # the scratch tables a rewritten statement read, once its rows are here
        statement_type = job.statement_type or ("SCRIPT" if whole_script else "QUERY")
        result = StatementResult(
            statement.line,
            statement_type,
            0.0,
            bytes_processed=self.backend.bytes_processed(job),
            affected_rows=job.num_dml_affected_rows,
        )
        if rows.schema and statement_type in ("SELECT", "SCRIPT", "QUERY"):
            result.schema = list(rows.schema)
            result.rows = records
            result.total_rows = rows.total_rows
        result.seconds = time.perf_counter() - started
        return result

    def dry_run(self) -> StatementResult:
        """Validate without running: on gcp one BigQuery dry-run job for the whole file; locally each statement
        in turn (the emulator does not pass parameters into scripts), ML functions rewritten from their models.
        """
        from google.api_core.exceptions import GoogleAPIError, NotFound

        started = time.perf_counter()
        if self.backend.dry_run_whole_file:
            whole = Statement(self.script.text, 1, ())
            settings = {"dry_run": True, "use_query_cache": False}
            try:
                job = self.client.query(
                    whole.text, job_config=job_config(self.script.parameters, self.params, **settings)
                )
            except (GcpipeError, GoogleAPIError) as err:
                raise self._error(err, whole) from None
            verdict = "valid"
            if job.total_bytes_processed is not None:
                verdict += f"; it would process {format_bytes(job.total_bytes_processed)}"
            return StatementResult(
                1,
                job.statement_type or "SCRIPT",
                time.perf_counter() - started,
                bytes_processed=job.total_bytes_processed,
                message=verdict,
            )
        created: set[str] = set()
        unchecked = 0
        for statement in self.script.statements:
            sql, kind = statement.text, self.backend.statement_kind(statement.text)
            try:
                if kind == "drop_model":
                    continue
                if kind == "create_model":
                    sql = self.backend.training_query(sql, self.params)
                elif kind == "functions":
                    sql = self.backend.rewrite(sql, self.params, dry_run=True)
                used = used_parameters(tokenize(sql))
                self.client.query(
                    sql, job_config=job_config(used, self.params, dry_run=True, use_query_cache=False)
                )
            except (GcpipeError, GoogleAPIError) as err:
                # A statement reading what an earlier one creates can only be checked once that exists.
                missing = isinstance(err, NotFound) or _message(err).startswith("Not found")
                if not (missing and any(name in _message(err) for name in created)):
                    raise self._error(err, statement, rewritten=sql != statement.text) from None
                unchecked += 1
            finally:
                created |= _creates(statement.text)
        verdict = f"valid ({_count(len(self.script.statements), 'statement')}"
        if unchecked:
            verdict += f"; {unchecked} read what the file creates, so only their syntax was checked"
        return StatementResult(1, "SCRIPT", time.perf_counter() - started, message=verdict + ")")

    def _error(self, err: Exception, statement: Statement, rewritten=False) -> SqlError:
        """The backend's error as ``file:line:column: message``, the position counted in the file as
        written (the backend counts from the statement it was sent, names filled in)."""
        if isinstance(err, SqlError):
            return err
        message = _message(err)
        line, column = statement.line, None
        position = _POSITION.search(message)
        if position and not rewritten:
            at_line, at_column = (int(n) for n in position.groups() if n is not None)
            offset = self.script.offset(statement.start, at_line, at_column)
            if offset is not None:
                line, column = self.script.position(offset)
            message = _POSITION.sub("", message, count=1)
        return self.script.error(line, message.rstrip(".") + ".", column)


_CREATES = re.compile(
    r"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?(?:TABLE|VIEW|MATERIALIZED\s+VIEW|MODEL)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?`?([\w.-]+)`?",
    re.IGNORECASE,
)


def _creates(text: str) -> set[str]:
    """The name (last part) of the table, view or model a CREATE statement creates."""
    match = _CREATES.match(text)
    return {match.group(1).split(".")[-1]} if match else set()


def _message(err: Exception) -> str:
    """One line from a BigQuery (or emulator) error: its first reason, without the emulator's SQL echo."""
    errors = getattr(err, "errors", None) or []
    message = errors[0].get("message") if errors and isinstance(errors[0], dict) else None
    message = message or getattr(err, "message", None) or str(err)
    message = message.split("\n\nLINE ")[0].split("\nLINE ")[0]
    message = re.sub(r"(Line \d+, Col: \d+\.)\n.*", r"\1", message, flags=re.S)  # sqlglot's echo of the SQL
    message = message.replace("Query execution failed: ", "")
    return " ".join(message.split())


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def format_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{count} B"
