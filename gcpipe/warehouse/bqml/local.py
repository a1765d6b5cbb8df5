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

import itertools
import json
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlglot.tokens import TokenType

from gcpipe.core.clients import bigquery_read_client
from gcpipe.core.config import Config
from gcpipe.warehouse.bqml import sql as mlsql
from gcpipe.warehouse.bqml.model import GlmModel, ModelError, roc_curve
from gcpipe.warehouse.bqml.options import ModelOptions
from gcpipe.warehouse.bqml.sql import MlCall, MlSqlError, ModelRef
from gcpipe.warehouse.params import job_config
from gcpipe.warehouse.script import tokenize, used_parameters

_SETTINGS = {"PREDICT": {"threshold"}, "EVALUATE": {"threshold"}, "WEIGHTS": {"standardize"}}


class ModelStore:
    """Fitted models as JSON files, one per model, next to the emulator's own state."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, ref: ModelRef) -> Path:
        return self.root / ref.project / ref.dataset / f"{ref.model}.json"

    def save(self, ref: ModelRef, model: GlmModel, registered: str | None) -> Path:
        path = self.path(ref)
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {"model": str(ref), "registered": registered, **model.to_json()}
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, indent=1))
        temporary.replace(path)
        return path

    def load(self, ref: ModelRef) -> tuple[GlmModel, str | None] | None:
        path = self.path(ref)
        if not path.exists():
            return None
        document = json.loads(path.read_text())
        return GlmModel.from_json(document), document.get("registered")

    def delete(self, ref: ModelRef) -> None:
        self.path(ref).unlink(missing_ok=True)


class LocalBigQueryML:
    def __init__(self, client, config: Config, read_client=None, models_dir: Path | None = None):
        self.client, self.config = client, config
        self.store = ModelStore(models_dir or config.state_dir / "models")
        self._read_client = read_client

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
        options = ModelOptions.parse(statement.options)
        started = time.perf_counter()
        table = self.fetch(statement.query, params, ref.dataset)
        fetched = time.perf_counter()
        model = GlmModel.fit(table, options)
        fitted = time.perf_counter()
        self.client.query(text, job_config=job_config(used_parameters(tokenize(text)), params)).result()
        self.store.save(ref, model, self._registered(ref))
        scores = ", ".join(f"{name} {value:.4g}" for name, value in list(model.evaluation.items())[-2:])
        held = model.split["evaluation_rows"]
        return (
            f"model {ref} ({options.model_type}): {model.split['training_rows']:,} training rows, "
            f"{len(model.training)} iterations; {scores} on "
            f"{f'{held:,} evaluation rows' if held else 'the training rows'}; query {fetched - started:.1f} s, "
            f"fit {fitted - fetched:.1f} s"
        )

    def training_query(self, text: str, params: dict[str, Any]) -> str:
        """A CREATE MODEL statement's query, its options checked (what a dry run can validate)."""
        statement = mlsql.parse_create_model(text, self.config.project, params)
        ModelOptions.parse(statement.options)
        return statement.query

    def drop_model(self, text: str) -> str:
        """DROP MODEL [IF EXISTS]: the emulator's model metadata and the artefact (the emulator cannot parse it)."""
        from google.api_core.exceptions import NotFound

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

        ``dry_run``: nothing runs; ML.EVALUATE of input rows reports NaN metrics (its input query is still
        part of the SQL, so a dry run validates it).
        """
        calls = mlsql.find_ml_calls(text, self.config.project, params)
        parts, last = [], 0
        for call in calls:
            model = self.model(call.model)
            inner = self.rewrite(call.input_sql, params, dry_run) if call.input_sql is not None else None
            parts += [text[last : call.start], "(", self._expand(call, model, inner, params, dry_run), ")"]
            last = call.end
        return "".join([*parts, text[last:]])

    # -- models ----------------------------------------------------------------------------------

    def _registered(self, ref: ModelRef) -> str | None:
        """When the emulator registered the model (its creation time), or None if it has no such model."""
        from google.api_core.exceptions import NotFound

        try:
            return str(self.client.get_model(str(ref)).created)
        except NotFound:
            return None

    def model(self, ref: ModelRef) -> GlmModel:
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

    # -- the functions ---------------------------------------------------------------------------

    def _expand(
        self, call: MlCall, model: GlmModel, input_sql: str | None, params: dict[str, Any], dry_run: bool
    ):
        unknown = set(call.settings) - _SETTINGS.get(call.function, set())
        if unknown:
            raise MlSqlError(f"ML.{call.function} has no setting {sorted(unknown)[0]!r} (local BigQuery ML).")
        threshold = float(call.settings.get("threshold", 0.5))
        if "threshold" in call.settings and model.kind != "binary":
            raise MlSqlError("threshold applies to binary logistic regression models only.")
        if call.function == "PREDICT":
            if input_sql is None:
                raise MlSqlError("ML.PREDICT needs input rows: ML.PREDICT(MODEL m, (query)) or TABLE t.")
            return mlsql.predict_sql(model, input_sql, threshold)
        if call.function == "EVALUATE":
            if input_sql is None:
                if "threshold" in call.settings:
                    raise MlSqlError("ML.EVALUATE takes a threshold only together with input rows.")
                return mlsql.evaluate_sql(model, model.evaluation)
            if dry_run:
                scores = mlsql.scores_sql(model, input_sql)
                unknown = dict.fromkeys(model.evaluation, float("nan"))
                return f"SELECT * FROM ({mlsql.evaluate_sql(model, unknown)}) WHERE EXISTS (SELECT 1 FROM ({scores}))"
            return mlsql.evaluate_sql(model, self._evaluate(call.model, model, input_sql, params, threshold))
        if call.function == "ROC_CURVE":
            return self._roc_curve(call, model, input_sql, params, dry_run)
        if call.function == "WEIGHTS":
            return mlsql.weights_sql(model, bool(call.settings.get("standardize", False)))
        if call.function == "FEATURE_INFO":
            return mlsql.feature_info_sql(model)
        return mlsql.training_info_sql(model)

    def _evaluate(self, ref: ModelRef, model: GlmModel, input_sql: str, params, threshold: float):
        """ML.EVALUATE's metrics of the input rows."""
        return model.metrics(*self._labelled(ref, model, input_sql, params), threshold)

    def _roc_curve(self, call: MlCall, model: GlmModel, input_sql: str | None, params, dry_run: bool) -> str:
        if model.kind != "binary":
            raise MlSqlError("ML.ROC_CURVE applies to binary logistic regression models only.")
        if input_sql is None:
            if call.thresholds is not None:
                raise MlSqlError(
                    "local BigQuery ML keeps the evaluation rows' curve at the default thresholds only; "
                    "pass the rows to use GENERATE_ARRAY thresholds: ML.ROC_CURVE(MODEL m, (query), ...)."
                )
            if not model.roc:
                raise MlSqlError(f"model {call.model} predates ML.ROC_CURVE here; create it again.")
            return mlsql.roc_curve_sql(model.roc)
        if dry_run:
            scores = mlsql.scores_sql(model, input_sql)
            return f"SELECT * FROM ({mlsql.roc_curve_sql([])}) WHERE EXISTS (SELECT 1 FROM ({scores}))"
        target, predicted = self._labelled(call.model, model, input_sql, params)
        return mlsql.roc_curve_sql(roc_curve(target == 1, predicted, call.thresholds))

    def _labelled(
        self, ref: ModelRef, model: GlmModel, input_sql: str, params
    ) -> tuple[np.ndarray, np.ndarray]:
        """Score the input in the warehouse and fetch it: the labels (class indexes, or values for linear
        models) and the predictions (as :meth:`GlmModel.predict_design` gives them)."""
        table = self.fetch(mlsql.scores_sql(model, input_sql), params, ref.dataset)
        labels = table["_gcpipe_label"]
        if labels.null_count:
            raise ModelError(f"the evaluation rows have {labels.null_count} NULL labels; filter them out.")
        scores = np.column_stack([table[f"_gcpipe_s{i}"].to_numpy() for i in range(len(model.intercepts))])
        if model.kind == "linear":
            target = labels.to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            known = pa.array(model.classes, labels.type)
            index = pc.index_in(labels, value_set=known)
            if index.null_count:
                unseen = pc.unique(pc.filter(labels, pc.is_null(index))).to_pylist()[:3]
                raise ModelError(f"the evaluation rows have labels the model was not trained on: {unseen}.")
            target = index.to_numpy(zero_copy_only=False)
        if not len(target):
            raise ModelError("the evaluation query returned no rows.")
        return target, model.from_scores(scores)

    # -- moving rows -----------------------------------------------------------------------------

    def fetch(self, query: str, params: dict[str, Any], dataset: str) -> pa.Table:
        """Run ``query`` in the warehouse and bring its result back as Arrow (via a scratch table)."""

        scratch = f"{self.config.project}.{dataset}._gcpipe_scratch_{uuid.uuid4().hex[:12]}"
        create = f"CREATE TABLE `{scratch}` AS\n{query}"
        self.client.query(create, job_config=job_config(used_parameters(tokenize(query)), params)).result()
        try:
            if self._read_client is None:
                self._read_client = bigquery_read_client(self.config)
            with warnings.catch_warnings():  # the client prefers pandas-gbq for this now; the API is the same
                warnings.simplefilter("ignore", PendingDeprecationWarning)
                return self.client.list_rows(scratch).to_arrow(bqstorage_client=self._read_client)
        finally:
            self.client.delete_table(scratch, not_found_ok=True)
