"""The ML.* table functions: one table of what each takes and which model types have it, and the call.

A model class implements a function as a method of the function's name in lower case (``predict``,
``detect_anomalies``), taking a :class:`Call` and returning the SQL that replaces the call in the
statement. ``FUNCTIONS`` is the one place that says which model types have which function (BigQuery's
own matrix), which settings each takes and whether it needs input rows; ``LocalBigQueryML`` checks a call
against it before the model sees it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from gcpipe.warehouse.bqml.sql import FUNCTION_NAMES, MlSqlError, ModelRef, quote, rows_sql
from gcpipe.warehouse.bqml.transform import Transform

GLM = ("linear_reg", "logistic_reg")
TREES = ("boosted_tree_classifier", "boosted_tree_regressor")
SUPERVISED = GLM + TREES
CLASSIFIERS = ("logistic_reg", "boosted_tree_classifier")


@dataclass(frozen=True)
class Function:
    models: tuple[str, ...]  # the model types that have it
    input: str = "optional"  # "required", "optional" or "none": the rows after MODEL m
    settings: frozenset[str] = frozenset()  # the STRUCT(... AS name) it takes


FUNCTIONS: dict[str, Function] = {
    "PREDICT": Function((*SUPERVISED, "kmeans"), "required", frozenset({"threshold"})),
    "EVALUATE": Function(
        (*SUPERVISED, "kmeans", "matrix_factorization"), "optional", frozenset({"threshold"})
    ),
    "ROC_CURVE": Function(CLASSIFIERS),
    "CONFUSION_MATRIX": Function(CLASSIFIERS, "optional", frozenset({"threshold"})),
    "EXPLAIN_PREDICT": Function(SUPERVISED, "required", frozenset({"threshold", "top_k_features"})),
    "WEIGHTS": Function(GLM, "none", frozenset({"standardize"})),
    "FEATURE_INFO": Function((*SUPERVISED, "kmeans"), "none"),
    "TRAINING_INFO": Function((*SUPERVISED, "kmeans", "matrix_factorization"), "none"),
    "FEATURE_IMPORTANCE": Function(TREES, "none"),
    "CENTROIDS": Function(("kmeans",), "none", frozenset({"standardize"})),
    "DETECT_ANOMALIES": Function(
        ("kmeans", "arima_plus"), "optional", frozenset({"contamination", "anomaly_prob_threshold"})
    ),
    "RECOMMEND": Function(("matrix_factorization",)),
    "FORECAST": Function(("arima_plus",), "none", frozenset({"horizon", "confidence_level"})),
    "EXPLAIN_FORECAST": Function(("arima_plus",), "none", frozenset({"horizon", "confidence_level"})),
    "ARIMA_EVALUATE": Function(("arima_plus",), "none", frozenset({"show_all_candidate_models"})),
    "TRANSFORM": Function((*SUPERVISED, "kmeans"), "required"),
}
# The functions that compare predictions with the input's labels (so the TRANSFORM computes the label too).
LABELLED = ("EVALUATE", "ROC_CURVE", "CONFUSION_MATRIX")

assert tuple(FUNCTIONS) == FUNCTION_NAMES  # one list, in the order the errors name them


@dataclass
class Call:
    """One ML.* call being replaced: its arguments, and the warehouse to read its rows from.

    ``raw_sql`` is the input rows' query as the statement gives it; ``input_sql`` the rows the model reads:
    the same, or for a model trained with a TRANSFORM clause, the TRANSFORM's columns computed from them.
    Functions that pass the input's own columns through (ML.PREDICT ...) start from ``raw_sql``
    (:meth:`per_row`, :meth:`pass_through`).
    """

    function: str
    model: ModelRef
    input_sql: str | None  # the rows the model reads (already rewritten; TRANSFORM applied)
    settings: dict[str, Any]
    thresholds: list[float] | None
    dry_run: bool
    ml: Any  # the LocalBigQueryML reading and writing the warehouse
    params: dict[str, Any]
    raw_sql: str | None = None  # the input rows as given
    transform: Transform | None = None
    skip: frozenset[str] = frozenset()  # TRANSFORM columns the function does not compute (the label)

    @classmethod
    def of(cls, function: str, model, ref: ModelRef, raw_sql: str | None, **arguments) -> Call:
        """The call of ``function`` on ``model`` with the input ``raw_sql``, the model's TRANSFORM applied."""
        transform, options = getattr(model, "transform", None), model.options
        skip = {options.data_split_col, options.kmeans_init_col} - {None}
        if options.model_type in SUPERVISED and function not in LABELLED:
            skip |= set(options.input_label_cols)
        input_sql = raw_sql
        if transform is not None and raw_sql is not None and function != "TRANSFORM":
            input_sql = transform.select(raw_sql, skip=skip)
        return cls(
            function, ref, input_sql, raw_sql=raw_sql, transform=transform, skip=frozenset(skip), **arguments
        )

    def setting(self, name: str, default: Any) -> Any:
        return self.settings.get(name, default)

    def fetch(self, sql: str | None = None) -> pa.Table:
        """The rows of ``sql`` (default: the input), as Arrow; none in a dry run (only the columns)."""
        sql = self.input_sql if sql is None else sql
        if self.dry_run:
            sql = f"SELECT * FROM ({sql}) LIMIT 0"
        table = self.ml.fetch(sql, self.params, self.model.dataset)
        if not table.num_rows and not self.dry_run:
            raise MlSqlError(f"the input rows of ML.{self.function} are empty; the query returned no rows.")
        return table

    def rows(self, columns: list[tuple[str, str]], rows: list[tuple]) -> str:
        """A few rows computed here, as SQL the emulator reads like a table."""
        return rows_sql(columns, rows)

    def table(self, table: pa.Table, schema: list[tuple[str, str]]) -> str:
        """Many rows computed here: loaded into a scratch table (dropped after the statement), selected."""
        return f"SELECT * FROM `{self.ml.scratch_table(table, schema, self.model.dataset)}`"

    def per_row(self, compute: Callable[[pa.Table], pa.Table], schema: list[tuple[str, str]]) -> str:
        """Outputs computed here for every input row, then the input's own columns, as BigQuery lists them.

        ``compute`` turns the rows the model reads (Arrow) into the output columns of ``schema``: the same
        rows, in the same order. Without a TRANSFORM, and when the input's columns travel as Arrow (no
        GEOGRAPHY, JSON, INTERVAL or RANGE), the input is read once (a table as it is, a query's result
        from a scratch table) and loaded back once with its outputs beside it. Otherwise the input stays in
        the warehouse with a row number, the model's columns are computed there and fetched, and the
        outputs join back on the number, so the input's columns never leave the warehouse.
        """
        if self.dry_run:  # the output's shape, and the input query checked
            nulls = ", ".join(f"CAST(NULL AS {kind}) AS `{name}`" for name, kind in schema)
            return f"SELECT {nulls}, i.* FROM ({self.raw_sql}) AS i WHERE FALSE"
        dataset = self.model.dataset
        source = self.ml.materialised(self.raw_sql, self.params, dataset)
        fields = self.ml.client.get_table(source).schema
        if self.transform is None and all(_travels(f) for f in fields):
            rows = self.ml.read(source)
            outputs = compute(rows).select([name for name, _ in schema])
            both = pa.Table.from_arrays(
                outputs.columns + rows.columns, names=outputs.column_names + rows.column_names
            )
            return f"SELECT * FROM `{self.ml.scratch_table(both, schema, dataset, fields=fields)}`"
        numbered = self.ml.numbered(f"SELECT * FROM `{source}`", self.params, dataset)
        read = f"SELECT * FROM `{numbered}`"
        if self.transform is not None:
            read = self.transform.select(read, skip=self.skip, also=["_gcpipe_row"])
        fetched = self.ml.fetch(read, self.params, dataset)
        outputs = compute(fetched).append_column("_gcpipe_row", fetched["_gcpipe_row"])
        scratch = self.ml.scratch_table(outputs, schema, dataset, row_numbers=True)
        names = ", ".join(f"o.`{name}`" for name, _ in schema)
        return (
            f"SELECT {names}, i.* EXCEPT (_gcpipe_row) FROM `{numbered}` AS i "
            f"JOIN `{scratch}` AS o ON i._gcpipe_row = o._gcpipe_row"
        )

    def pass_through(self, model, build: Callable[[Any, str], str]) -> str:
        """``build(model, source)``: SQL computing a model's outputs from the feature columns of the rows
        ``source`` and passing every column of ``source`` through. With a TRANSFORM, the TRANSFORM's columns
        go beside the input's own under helper names, the model reads those, and the helpers are dropped."""
        if self.transform is None:
            return build(model, self.raw_sql)
        columns = [c.name for c in self.transform.columns if c.name not in self.skip]
        names = {name: f"_gcpipe_t{i}" for i, name in enumerate(columns)}

        def renamed(path: str) -> str:
            first, dot, rest = path.partition(".")
            return names.get(first, first) + dot + rest

        reading = dataclasses.replace(
            model, features=[dataclasses.replace(f, column=renamed(f.column)) for f in model.features]
        )
        source = self.transform.beside(self.raw_sql, names, self.skip)
        helpers = ", ".join(quote(name) for name in names.values())
        return f"SELECT * EXCEPT ({helpers}) FROM ({build(reading, source)})"

    def transformed(self) -> str:
        """ML.TRANSFORM: the TRANSFORM's columns as BigQuery computes them, from the input rows (the label's
        only when the input has what it reads)."""
        if self.transform is None:
            raise MlSqlError(
                f"model {self.model} was trained without a TRANSFORM clause; ML.TRANSFORM needs one (BigQuery "
                "rejects it too)."
            )
        present = {name.lower() for name in self.ml.columns(self.raw_sql, self.params)}
        skip = {c.name for c in self.transform.columns if not {r.lower() for r in c.reads} <= present}
        return self.transform.select(self.raw_sql, view="public", skip=skip)


_UNTRAVELLED = {
    "GEOGRAPHY",
    "JSON",
    "INTERVAL",
    "RANGE",
}  # what Arrow from the read API cannot load back as it was


def _travels(field) -> bool:
    """Whether a column read as Arrow loads back into the warehouse as the same column."""
    return field.field_type not in _UNTRAVELLED and all(_travels(f) for f in field.fields)


def check_call(function: str, model_type: str, settings: dict, has_input: bool) -> Function:
    """The function's entry, once the call fits it (BigQuery's rules, in one sentence each)."""
    spec = FUNCTIONS[function]  # (find_ml_calls rejects the others)
    if model_type not in spec.models:
        raise MlSqlError(
            f"ML.{function} does not apply to {model_type} models (BigQuery rejects it too); it takes "
            f"{', '.join(spec.models)} models."
        )
    unknown = sorted(set(settings) - spec.settings)
    if unknown:
        raise MlSqlError(
            f"ML.{function} has no setting {unknown[0]!r}"
            + (f"; it takes {', '.join(sorted(spec.settings))}." if spec.settings else ".")
        )
    if spec.input == "required" and not has_input:
        raise MlSqlError(f"ML.{function} needs input rows: ML.{function}(MODEL m, (query)) or TABLE t.")
    if spec.input == "none" and has_input:
        raise MlSqlError(f"ML.{function} takes no input rows, only MODEL m and its settings.")
    return spec
