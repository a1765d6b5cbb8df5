"""Local BigQuery ML: the statements the emulator cannot run, run against it.

``CREATE MODEL`` runs its query in the emulator, fits the model here, keeps it as a JSON artefact under
``<state_dir>/models/<project>/<dataset>/<model>.json`` and registers the statement with the emulator
(which stores model metadata, so ``client.get_model`` and ``list_models`` work); ``DROP MODEL`` drops
both (the emulator cannot parse it).
Statements that call ``ML.*`` table functions are rewritten (:mod:`gcpipe.warehouse.bqml.sql`) and then run by the
emulator like any other query.

Rows leave the warehouse only to be fitted on or evaluated: the query's result is written to a scratch
table and read back as Arrow through the BigQuery Storage Read API (about 15 times faster than JSON
pages on the emulator), then the scratch table is dropped.
"""

from __future__ import annotations

import io
import itertools
import json
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from google.api_core.exceptions import NotFound
from sqlglot import exp
from sqlglot.tokens import TokenType

from gcpipe.core.clients import bigquery_read_client
from gcpipe.core.config import Config
from gcpipe.warehouse.bqml import sql as mlsql
from gcpipe.warehouse.bqml.functions import SUPERVISED, Call, check_call
from gcpipe.warehouse.bqml.models import load_model, model_class
from gcpipe.warehouse.bqml.models.base import Model
from gcpipe.warehouse.bqml.options import ModelOptions
from gcpipe.warehouse.bqml.sql import CreateModel, MlSqlError, ModelRef
from gcpipe.warehouse.bqml.transform import TRANSFORM_MODELS, Transform
from gcpipe.warehouse.params import job_config
from gcpipe.warehouse.script import tokenize, used_parameters


class ModelStore:
    """Fitted models as JSON files, one per model, next to the emulator's own state."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, ref: ModelRef) -> Path:
        return self.root / ref.project / ref.dataset / f"{ref.model}.json"

    def save(self, ref: ModelRef, model: Model, registered: str | None) -> Path:
        path = self.path(ref)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {"model": str(ref), "registered": registered, **model.to_json()}
        if model.transform is not None:
            document["transform"] = model.transform.to_json()
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, indent=1))
        temporary.replace(path)
        return path

    def load(self, ref: ModelRef) -> tuple[Model, str | None] | None:
        path = self.path(ref)
        if not path.exists():
            return None
        document = json.loads(path.read_text())
        model = load_model(document)
        if "transform" in document:
            model.transform = Transform.from_json(document["transform"])
        return model, document.get("registered")

    def delete(self, ref: ModelRef) -> None:
        self.path(ref).unlink(missing_ok=True)


class LocalBigQueryML:
    def __init__(self, client, config: Config, read_client=None, models_dir: Path | None = None):
        self.client, self.config = client, config
        self.store = ModelStore(models_dir or config.state_dir / "models")
        self._read_client = read_client
        self._scratch: list[str] = []  # tables made for the statement being run; dropped by release()

    # -- what the runner calls -------------------------------------------------------------------

    @staticmethod
    def statement_kind(text: str) -> str | None:
        """'create_model', 'drop_model', 'functions' (calls ML.*) or None (nothing for BigQuery ML)."""
        tokens = tokenize(text)
        words = mlsql.leading_words(tokens, 4)
        if words[:2] == ["CREATE", "MODEL"] or words == ["CREATE", "OR", "REPLACE", "MODEL"]:
            return "create_model"
        if words[:2] == ["DROP", "MODEL"]:
            return "drop_model"
        for ml, dot in itertools.pairwise(tokens):
            if ml.token_type == TokenType.VAR and ml.text.upper() == "ML" and dot.token_type == TokenType.DOT:
                return "functions"
        return None

    def create_model(self, text: str, params: dict[str, Any]) -> str:
        """Train the model of a CREATE MODEL statement; returns a one-line summary."""
        statement = mlsql.parse_create_model(text, self.config.project, params)
        ref = statement.model
        if self._registered(ref):
            if statement.if_not_exists:
                return f"model {ref} already exists; left as it is"
            if not statement.replace:
                raise MlSqlError(f"Already Exists: Model {ref}; use CREATE OR REPLACE MODEL.")
        options = self.options(statement)
        started = time.perf_counter()
        table, transform = self.training_rows(statement, options, params)
        fetched = time.perf_counter()
        model = model_class(options.model_type).fit(table, options, transform)
        model.transform = transform
        fitted = time.perf_counter()
        stored = statement.registration  # the emulator refuses TRANSFORM; the artefact keeps it
        self.client.query(stored, job_config=job_config(used_parameters(tokenize(stored)), params)).result()
        self.store.save(ref, model, self._registered(ref))
        return (
            f"model {ref} ({options.model_type}): {model.summary()}; query {fetched - started:.1f} s, "
            f"fit {fitted - fetched:.1f} s"
        )

    def training_query(self, text: str, params: dict[str, Any]) -> str:
        """A CREATE MODEL statement's query, its options checked (what a dry run can validate)."""
        statement = mlsql.parse_create_model(text, self.config.project, params)
        self.options(statement)
        return statement.query

    @staticmethod
    def options(statement: CreateModel) -> ModelOptions:
        """The statement's options, checked, and whether its model type takes its TRANSFORM clause."""
        options = ModelOptions.parse(statement.options)
        if statement.transform is not None and options.model_type not in TRANSFORM_MODELS:
            raise MlSqlError(
                f"model_type {options.model_type} takes no TRANSFORM clause (BigQuery rejects it too); "
                f"TRANSFORM goes with {', '.join(TRANSFORM_MODELS)}."
            )
        return options

    def training_rows(
        self, statement: CreateModel, options: ModelOptions, params: dict[str, Any]
    ) -> tuple[pa.Table, Transform | None]:
        """The rows the model learns from: the training query's, or its TRANSFORM's columns computed from them
        with the statistics of those rows (which the returned Transform keeps, frozen)."""
        dataset = statement.model.dataset
        if statement.transform is None:
            return self.fetch(statement.query, params, dataset), None
        scratch = self._scratch_name(dataset)
        create = f"CREATE TABLE `{scratch}` AS\n{statement.query}"
        self.client.query(create, job_config=job_config(used_parameters(tokenize(create)), params)).result()
        try:
            columns = [f.name for f in self.client.get_table(scratch).schema]

            def values(expressions: list[str]) -> pa.Table:
                select = ", ".join(f"{e} AS _{i}" for i, e in enumerate(expressions))
                return self.fetch(f"SELECT {select} FROM `{scratch}`", params, dataset)

            transform = Transform.fit(statement.transform, columns, values, params)
            if options.model_type in SUPERVISED and options.label not in transform.names:
                raise MlSqlError(
                    f"the TRANSFORM clause has no column {options.label!r}, the label; list it in TRANSFORM "
                    "(the model learns from TRANSFORM's columns only)."
                )
            also = [
                c
                for c in (options.data_split_col, options.kmeans_init_col)
                if c in columns and c not in transform.names
            ]
            rows = transform.select(f"SELECT * FROM `{scratch}`", also=also)
            return self.fetch(rows, params, dataset), transform
        finally:
            self.client.delete_table(scratch, not_found_ok=True)

    def drop_model(self, text: str) -> str:
        """DROP MODEL [IF EXISTS]: the emulator's model metadata and the artefact (the emulator cannot parse it)."""
        ref, if_exists = mlsql.parse_drop_model(text, self.config.project)
        try:
            self.client.delete_model(str(ref))
        except NotFound:
            self.store.delete(ref)
            if not if_exists:
                raise MlSqlError(f"Not found: Model {ref}.") from None
            return f"model {ref} did not exist"
        self.store.delete(ref)  # only once the emulator let go of it: a failed drop keeps the model whole
        return f"model {ref} dropped"

    def rewrite(self, text: str, params: dict[str, Any], dry_run: bool = False) -> str:
        """``text`` with every ML.* call replaced by the SQL that computes it.

        ``dry_run``: nothing is computed from input rows; their query is still part of the SQL (so a dry
        run validates it) and the call's output has its columns but NaN metrics or no rows.
        """
        calls = mlsql.find_ml_calls(text, self.config.project, params)
        parts, last = [], 0
        for found in calls:
            model = self.model(found.model)
            inner = self.rewrite(found.input_sql, params, dry_run) if found.input_sql is not None else None
            check_call(found.function, model.options.model_type, found.settings, inner is not None)
            call = Call.of(
                found.function,
                model,
                found.model,
                inner,
                settings=found.settings,
                thresholds=found.thresholds,
                dry_run=dry_run,
                ml=self,
                params=params,
            )
            if found.function == "TRANSFORM":  # the same for every model type
                sql = call.transformed()
            else:
                sql = getattr(model, found.function.lower())(call)
            parts += [text[last : found.start], "(", sql, ")"]
            last = found.end
        return "".join([*parts, text[last:]])

    def release(self) -> None:
        """Drop the scratch tables the last rewritten statement read (call once it has run)."""
        while self._scratch:
            self.client.delete_table(self._scratch.pop(), not_found_ok=True)

    # -- models ----------------------------------------------------------------------------------

    def _registered(self, ref: ModelRef) -> str | None:
        """When the emulator registered the model (its creation time), or None if it has no such model."""
        try:
            return str(self.client.get_model(str(ref)).created)
        except NotFound:
            return None

    def model(self, ref: ModelRef) -> Model:
        registered = self._registered(ref)
        if registered is None:
            raise MlSqlError(f"Not found: Model {ref}.")
        stored = self.store.load(ref)
        if stored is None or stored[1] != registered:
            raise MlSqlError(
                f"model {ref} exists in the emulator but was not trained by gcpipe (no current artefact at "
                f"{self.store.path(ref)}); create it again with `gcpipe sql run`."
            )
        return stored[0]

    # -- moving rows -----------------------------------------------------------------------------

    def fetch(self, query: str, params: dict[str, Any], dataset: str) -> pa.Table:
        """Run ``query`` in the warehouse and bring its result back as Arrow (via a scratch table); a query
        that only picks a table's columns is read from the table itself."""
        plain = self._projection(query)
        if plain:
            return self._read(plain[0], plain[1])
        scratch = self._scratch_name(dataset)
        create = f"CREATE TABLE `{scratch}` AS\n{query}"
        self.client.query(create, job_config=job_config(used_parameters(tokenize(query)), params)).result()
        try:
            return self._read(scratch)
        finally:
            self.client.delete_table(scratch, not_found_ok=True)

    def columns(self, query: str, params: dict[str, Any]) -> list[str]:
        """The column names of ``query``'s result (it runs, returning no rows)."""
        sql = f"SELECT * FROM ({query}) LIMIT 0"
        job = self.client.query(sql, job_config=job_config(used_parameters(tokenize(sql)), params))
        return [f.name for f in job.result().schema]

    def materialised(self, query: str, params: dict[str, Any], dataset: str) -> str:
        """A table holding ``query``'s rows: the table itself for ``SELECT * FROM `table```, else a scratch
        table of its result (dropped by release())."""
        plain = self._projection(query)
        if plain and plain[2]:
            return plain[0]
        scratch = self._scratch_name(dataset)
        create = f"CREATE TABLE `{scratch}` AS\n{query}"
        self.client.query(create, job_config=job_config(used_parameters(tokenize(query)), params)).result()
        self._scratch.append(scratch)
        return scratch

    def read(self, table_id: str) -> pa.Table:
        """A table's rows as Arrow, through the Storage Read API."""
        return self._read(table_id)

    def numbered(self, query: str, params: dict[str, Any], dataset: str) -> str:
        """A scratch table of ``query``'s rows, each with its number in ``_gcpipe_row``."""
        scratch = self._scratch_name(dataset)
        create = f"CREATE TABLE `{scratch}` AS\nSELECT ROW_NUMBER() OVER () AS _gcpipe_row, * FROM ({query})"
        self.client.query(create, job_config=job_config(used_parameters(tokenize(query)), params)).result()
        self._scratch.append(scratch)
        return scratch

    def scratch_table(
        self,
        table: pa.Table,
        columns: list[tuple[str, str]],
        dataset: str,
        row_numbers=False,
        fields: list | None = None,
    ) -> str:
        """Load Arrow rows into a scratch table with these (name, BigQuery type) columns, then ``fields``
        (BigQuery SchemaFields, as a table's schema lists them) if given; its id."""
        from google.cloud import bigquery

        columns = ([("_gcpipe_row", "INT64")] if row_numbers else []) + list(columns)
        schema = [mlsql.schema_field(name, kind) for name, kind in columns] + list(fields or [])
        scratch = self._scratch_name(dataset)
        self.client.create_table(bigquery.Table(scratch, schema=schema))
        self._scratch.append(scratch)
        buffer = io.BytesIO()
        # (no dictionary pages: writing them took longer than the load they save, 0.11 s against 0.05 s here)
        pq.write_table(table.select([field.name for field in schema]), buffer, use_dictionary=False)
        buffer.seek(0)
        settings = bigquery.LoadJobConfig(source_format="PARQUET", schema=schema)
        self.client.load_table_from_file(buffer, scratch, job_config=settings).result()
        return scratch

    def _scratch_name(self, dataset: str) -> str:
        return f"{self.config.project}.{dataset}._gcpipe_scratch_{uuid.uuid4().hex[:12]}"

    def _projection(self, query: str) -> tuple[str, list, bool] | None:
        """(table id, the columns it picks as SchemaFields, whether they are all of them) when ``query`` is
        ``SELECT *``, ``SELECT * EXCEPT (...)`` or ``SELECT a, b`` of one table (not a view) and nothing
        else; None for any other query, which the warehouse runs."""
        try:
            select = sqlglot.parse_one(query, read="bigquery")
        except sqlglot.errors.ParseError:
            return None
        source = select.args.get("from_") if isinstance(select, exp.Select) else None
        extras = {k for k, v in select.args.items() if v} - {"expressions", "from_"}
        if source is None or extras or not isinstance(source.this, exp.Table):
            return None
        table = source.this
        if table.alias or not table.db or any(table.args.get(k) for k in ("joins", "pivots", "version")):
            return None
        picked = select.expressions
        star = picked[0] if len(picked) == 1 and isinstance(picked[0], exp.Star) else None
        if star is None and not all(isinstance(c, exp.Column) and not c.table for c in picked):
            return None
        if star is not None and (star.args.get("replace") or star.args.get("rename")):
            return None
        table_id = f"{table.catalog or self.config.project}.{table.db}.{table.name}"
        try:
            found = self.client.get_table(table_id)
        except NotFound:
            return None  # the warehouse says so, in its words
        if found.table_type != "TABLE":
            return None
        by_name = {f.name.lower(): f for f in found.schema}
        if star is not None:
            dropped = {c.name.lower() for c in star.args.get("except_") or star.args.get("except") or []}
            return table_id, [f for f in found.schema if f.name.lower() not in dropped], not dropped
        if not all(c.name.lower() in by_name for c in picked):
            return None
        return table_id, [by_name[c.name.lower()] for c in picked], False

    def _read(self, table_id: str, fields: list | None = None) -> pa.Table:
        """The table's rows (``fields``: only these columns, in this order) through the Storage Read API."""
        if self._read_client is None:
            self._read_client = bigquery_read_client(self.config)
        with warnings.catch_warnings():  # the client prefers pandas-gbq for this now; the API is the same
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            if fields is None:
                return self.client.list_rows(table_id).to_arrow(bqstorage_client=self._read_client)
            rows = self.client.list_rows(table_id, selected_fields=fields)
            return rows.to_arrow(bqstorage_client=self._read_client).select([f.name for f in fields])
