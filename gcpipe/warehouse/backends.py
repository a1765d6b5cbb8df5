"""The one seam between the two warehouses a SQL file runs on: BigQuery (the gcp target) and the BigQuery
emulator with gcpipe's local BigQuery ML beside it (the local target). The SQL runner asks its backend, never
the target, what to do with a statement.

* ``statement_kind(text)``: what a statement is to the backend's own BigQuery ML: ``create_model``,
  ``drop_model``, ``functions`` (it calls ``ML.*``), or None (the warehouse runs it as written). BigQuery runs
  everything as written, so its answer is always None.
* ``run_ml(kind, text, params)``: run a ``create_model`` or ``drop_model`` statement; a one-line summary.
* ``rewrite(text, params, dry_run)``: a ``functions`` statement as SQL the warehouse runs.
* ``check_script(script)``: what a stateful script cannot do on this backend, said before anything runs.
* ``dry_run_whole_file``: whether a dry run is one job for the file (BigQuery, which prices it) or a dry run
  of each statement (the emulator, which drops parameters inside scripts).
* ``bytes_processed(job)``: where the backend measures it (BigQuery does; the emulator reports 0).
* ``release()``: drop the scratch tables a rewritten statement read, once its rows are read.
"""

from __future__ import annotations

from typing import Any

from gcpipe.core.config import Config
from gcpipe.warehouse.bqml.local import LocalBigQueryML
from gcpipe.warehouse.script import Script


class BigQueryBackend:
    """BigQuery: every statement, BigQuery ML included, goes as written."""

    dry_run_whole_file = True

    def __init__(self, client, config: Config):
        self.client, self.config = client, config

    def statement_kind(self, text: str) -> str | None:
        return None

    def run_ml(self, kind: str, text: str, params: dict[str, Any]) -> str:
        raise AssertionError("BigQuery runs BigQuery ML statements itself")

    def rewrite(self, text: str, params: dict[str, Any], dry_run: bool = False) -> str:
        return text

    def training_query(self, text: str, params: dict[str, Any]) -> str:
        return text

    def check_script(self, script: Script) -> None:
        pass

    def release(self) -> None:
        """Drop what the last statement needed only while it ran (nothing, on BigQuery)."""

    def bytes_processed(self, job) -> int | None:
        return job.total_bytes_processed


class EmulatorBackend(BigQueryBackend):
    """The BigQuery emulator, and gcpipe's local BigQuery ML for the statements it cannot run (it stores
    ``CREATE MODEL`` but trains nothing, and answers ``ML.*`` with 501)."""

    dry_run_whole_file = False

    def __init__(self, client, config: Config):
        super().__init__(client, config)
        self._ml: LocalBigQueryML | None = None

    @property
    def ml(self) -> LocalBigQueryML:
        """Local BigQuery ML, made when a statement first needs it."""
        if self._ml is None:
            self._ml = LocalBigQueryML(self.client, self.config)
        return self._ml

    def statement_kind(self, text: str) -> str | None:
        return LocalBigQueryML.statement_kind(text)

    def run_ml(self, kind: str, text: str, params: dict[str, Any]) -> str:
        return self.ml.create_model(text, params) if kind == "create_model" else self.ml.drop_model(text)

    def rewrite(self, text: str, params: dict[str, Any], dry_run: bool = False) -> str:
        return self.ml.rewrite(text, params, dry_run=dry_run)

    def training_query(self, text: str, params: dict[str, Any]) -> str:
        return self.ml.training_query(text, params)

    def check_script(self, script: Script) -> None:
        for statement in script.statements:
            if self.statement_kind(statement.text) == "create_model":
                raise script.error(
                    statement.line,
                    "local BigQuery ML trains a model as a statement of its own; move CREATE MODEL out of this "
                    "script (it keeps state between statements: variables, blocks or transactions).",
                )
            if statement.parameters:
                raise script.error(
                    statement.line,
                    "the BigQuery emulator does not pass query parameters into a script that keeps state "
                    "between statements (variables, blocks, transactions): use DECLARE with a default, or run "
                    "it on gcp.",
                )

    def bytes_processed(self, job) -> int | None:
        return None

    def release(self) -> None:
        if self._ml is not None:
            self._ml.release()


def backend_for(client, config: Config) -> BigQueryBackend:
    """The warehouse of ``config``'s target: the emulator locally, BigQuery on gcp."""
    return EmulatorBackend(client, config) if config.is_local else BigQueryBackend(client, config)
