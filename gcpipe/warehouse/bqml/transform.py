"""The TRANSFORM clause of ``CREATE MODEL``: preprocessing whose statistics are frozen at training.

``CREATE MODEL m TRANSFORM(ML.STANDARD_SCALER(x) OVER () AS x, ML.ONE_HOT_ENCODER(colour) OVER () AS colour,
label) OPTIONS(...) AS SELECT ...``: the model learns from the TRANSFORM's columns, computed over the training
query's rows, and every function later given rows (ML.PREDICT, ML.EVALUATE, ...) computes them again from
those rows with the statistics of training, as BigQuery does.

:meth:`Transform.fit` reads the select list with sqlglot, computes the statistics the analytic functions
need (``... OVER ()``) from the training rows, and replaces each preprocessing call by a plain SQL
expression with the statistics as literals. The result is SQL over the input's columns, kept in the
model's artefact; :meth:`Transform.select` applies it to any rows, in the warehouse.

The functions, as BigQuery ML's references describe them (output types in parentheses):

* ``ML.STANDARD_SCALER(x) OVER ()`` (FLOAT64): ``(x - mean) / stddev``, the sample standard deviation (a
  constant column: ``x - mean``);
* ``ML.MIN_MAX_SCALER(x) OVER ()`` (FLOAT64): ``(x - min) / (max - min)``, capped to [0, 1] for new rows;
* ``ML.BUCKETIZE(x, split_points [, exclude_boundaries])`` and ``ML.QUANTILE_BUCKETIZE(x, n) OVER ()``
  (STRING ``bin_<i>``, from 1): ``[lower, upper)`` buckets; the quantile boundaries are the training
  values' quantiles ``1/n .. (n-1)/n`` (linear interpolation, as numpy and scikit-learn compute them;
  BigQuery's are approximate), repeated ones merged;
* ``ML.ONE_HOT_ENCODER(s [, drop] [, top_k] [, frequency_threshold]) OVER ()``
  (ARRAY<STRUCT<index INT64, value FLOAT64>>): the vocabulary is the ``top_k`` (32,000) most frequent
  categories seen at least ``frequency_threshold`` (5) times, indexed from 1 in alphabetical order; NULL
  and any other value is index 0; ``drop = 'most_frequent'`` gives the most frequent category value 0.
  The local model reads the category itself (NULL for index 0) and encodes it as that vector, the dropped
  category without a column of its own;
* ``ML.FEATURE_CROSS(STRUCT(a, b, ...) [, degree])`` (STRUCT of STRING): ``a_b`` = ``a || '_' || b`` for each
  combination of 2 to ``degree`` (2) features;
* ``ML.POLYNOMIAL_EXPAND(STRUCT(a, b, ...) [, degree])`` (STRUCT of FLOAT64): ``a``, ``a_a``, ``a_b``, ...
  for each product of 1 to ``degree`` (2) features.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from gcpipe.warehouse.bqml.sql import MlSqlError, literal_value, quote, sql_literal

ANALYTIC = ("STANDARD_SCALER", "MIN_MAX_SCALER", "QUANTILE_BUCKETIZE", "ONE_HOT_ENCODER")
SCALAR = ("BUCKETIZE", "FEATURE_CROSS", "POLYNOMIAL_EXPAND")
PREPROCESSING = ANALYTIC + SCALAR
# The model types whose CREATE MODEL takes a TRANSFORM clause (BigQuery ML's "manual preprocessing").
TRANSFORM_MODELS = (
    "linear_reg",
    "logistic_reg",
    "kmeans",
    "boosted_tree_classifier",
    "boosted_tree_regressor",
)


@dataclass
class TransformColumn:
    """One column of the TRANSFORM's output, frozen: SQL over the input's columns."""

    name: str
    sql: str  # BigQuery's output (ML.TRANSFORM shows it)
    model_sql: str  # what the local model reads (a one-hot encoder's category instead of its vector)
    reads: list[str]  # the input columns it reads
    dropped: str | None = None  # a one-hot encoder's dropped category (drop = 'most_frequent')


@dataclass
class Transform:
    text: str  # the clause as written
    columns: list[TransformColumn] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def dropped(self) -> dict[str, str]:
        """Output column -> the category a dummy-encoding one-hot encoder drops."""
        return {c.name: c.dropped for c in self.columns if c.dropped is not None}

    @classmethod
    def fit(
        cls,
        text: str,
        columns: list[str],
        values: Callable[[list[str]], pa.Table],
        params: dict[str, Any] | None = None,
    ) -> Transform:
        """Freeze ``text`` (a TRANSFORM select list) over the training rows, whose columns are ``columns``;
        ``values(expressions)`` returns those SQL expressions' values over the training rows (``_0``,
        ``_1``, ...), from which the analytic functions take their statistics."""
        params = params or {}
        items = _items(text, columns)
        while pending := [call for item in items for call in _calls(item)]:
            ready = [call for call in pending if not _calls(call.argument_nodes)]
            analytic = [call for call in ready if call.name in ANALYTIC]
            table = values([a.argument_nodes[0].sql("bigquery") for a in analytic]) if analytic else None
            for call in ready:
                data = table.column(analytic.index(call)) if call in analytic else None
                call.freeze(data, params)
        transform = cls(text)
        for item in items:
            node = item.this
            reads = sorted({c.name for c in node.find_all(exp.Column)})
            top = getattr(node, "frozen_call", None)  # the item is a preprocessing call, frozen
            model_sql = top.model_sql if top is not None else node.sql("bigquery")
            dropped = top.dropped if top is not None else None
            transform.columns.append(
                TransformColumn(item.alias, node.sql("bigquery"), model_sql, reads, dropped)
            )
        return transform

    def select(self, source: str, view: str = "model", skip=frozenset(), also=()) -> str:
        """The TRANSFORM's columns (the model's ``view``, or BigQuery's ``"public"`` one) over the rows of the
        query ``source``, without the columns in ``skip`` (a label, when the rows have none), then the
        input's columns ``also``, as they are."""
        expressions = self._expressions(view, skip)
        expressions += "".join(f", _gcpipe_raw.{quote(name)}" for name in also)
        return f"SELECT {expressions} FROM ({source}) AS _gcpipe_raw"

    def beside(self, source: str, names: dict[str, str], skip=frozenset()) -> str:
        """The rows of ``source`` with every column as it is, then the model's view of each TRANSFORM column
        under the helper name ``names[column]`` (for SQL that reads the features and passes the input on)."""
        helpers = ", ".join(
            f"{c.model_sql} AS {quote(names[c.name])}" for c in self.columns if c.name not in skip
        )
        return f"SELECT _gcpipe_raw.*, {helpers} FROM ({source}) AS _gcpipe_raw"

    def _expressions(self, view: str, skip) -> str:
        return ", ".join(
            f"{c.model_sql if view == 'model' else c.sql} AS {quote(c.name)}"
            for c in self.columns
            if c.name not in skip
        )

    def to_json(self) -> dict:
        return {"text": self.text, "columns": [c.__dict__ for c in self.columns]}

    @classmethod
    def from_json(cls, raw: dict) -> Transform:
        return cls(raw["text"], [TransformColumn(**c) for c in raw["columns"]])


# -- reading the clause -----------------------------------------------------------------------------


def _items(text: str, columns: list[str]) -> list[exp.Alias]:
    """Each item of the select list as ``expression AS name``, ``*`` expanded over ``columns``."""
    try:
        select = sqlglot.parse_one(f"SELECT {text}\nFROM _gcpipe_training", read="bigquery")
    except ParseError as err:
        raise MlSqlError(f"cannot read the TRANSFORM clause: {_first_line(err)}.") from None
    clauses = {k for k, v in select.args.items() if v} - {"expressions", "from_", "from"}
    if not isinstance(select, exp.Select) or clauses:
        raise MlSqlError("TRANSFORM takes a select list only: TRANSFORM(expression AS name, column, ...).")
    known = {c.lower(): c for c in columns}

    def column(name: str) -> str:
        if name.lower() not in known:
            raise MlSqlError(
                f"TRANSFORM reads column {name!r}, which the training query does not have; its columns: "
                f"{', '.join(columns)}."
            )
        return known[name.lower()]

    items: list[exp.Alias] = []
    for node in select.expressions:
        if isinstance(node, exp.Star):
            if node.args.get("replace") or node.args.get("rename"):
                raise MlSqlError("TRANSFORM takes * and * EXCEPT (...), not * REPLACE (...).")
            excluded = {column(e.name) for e in node.args.get("except_") or node.args.get("except") or []}
            items += [exp.alias_(exp.column(c, quoted=True), c) for c in columns if c not in excluded]
        elif isinstance(node, exp.Alias):
            items.append(node)
        elif isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
            items.append(exp.alias_(node, column(node.name)))
        else:
            raise MlSqlError(
                f"the TRANSFORM expression {node.sql('bigquery')} needs a name: write it AS name."
            )
    names = [item.alias.lower() for item in items]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise MlSqlError(f"TRANSFORM names column {repeated[0]!r} more than once.")
    for item in items:
        for window in item.find_all(exp.Window):
            if not _preprocessing(window.this):
                raise MlSqlError(
                    f"{window.sql('bigquery')} is an analytic function; TRANSFORM takes only the preprocessing "
                    f"ones ({', '.join('ML.' + n for n in ANALYTIC)}) with OVER ()."
                )
    return items


def _first_line(err: Exception) -> str:
    return str(err).splitlines()[0].rstrip(".")


def _preprocessing(node: exp.Expression) -> str | None:
    """The name of the ML.* function ``node`` calls (``ML.STANDARD_SCALER(x)``), else None."""
    if (
        isinstance(node, exp.Dot)
        and isinstance(node.this, exp.Identifier)
        and node.this.name.upper() == "ML"
        and isinstance(node.expression, exp.Anonymous)
    ):
        return str(node.expression.this).upper()
    return None


def _calls(nodes) -> list[_Call]:
    """The preprocessing calls under ``nodes`` (an expression or a list of them), innermost last."""
    found = []
    for root in nodes if isinstance(nodes, list) else [nodes]:
        for node in root.find_all(exp.Dot):
            name = _preprocessing(node)
            if name is not None:
                found.append(_Call(node, name))
    return found


class _Call:
    """One ``ML.<FUNCTION>(...) [OVER ()]`` in the clause, replaced by SQL once frozen."""

    def __init__(self, node: exp.Dot, name: str):
        if name not in PREPROCESSING:
            raise MlSqlError(
                f"ML.{name} is not a preprocessing function local BigQuery ML runs in TRANSFORM; it runs "
                f"{', '.join('ML.' + n for n in PREPROCESSING)}."
            )
        self.node, self.name = node, name
        self.window = node.parent if isinstance(node.parent, exp.Window) else None
        self.argument_nodes = list(node.expression.expressions)
        self.model_sql: str | None = None
        self.dropped: str | None = None
        if name in ANALYTIC and self.window is None:
            raise MlSqlError(f"ML.{name} is an analytic function: write ML.{name}(...) OVER ().")
        if name in SCALAR and self.window is not None:
            raise MlSqlError(f"ML.{name} takes no OVER clause.")
        if self.window is not None and any(
            self.window.args.get(k) for k in ("partition_by", "order", "spec", "alias")
        ):
            raise MlSqlError(f"ML.{name} takes OVER () only: its statistics are over every training row.")
        if not self.argument_nodes:
            raise MlSqlError(f"ML.{name} needs its input: ML.{name}(expression, ...).")

    def __eq__(self, other) -> bool:
        return self is other

    __hash__ = object.__hash__

    def literal(self, index: int, what: str, default: Any, params: dict[str, Any]) -> Any:
        if index >= len(self.argument_nodes):
            return default
        try:
            return literal_value(self.argument_nodes[index], params)
        except MlSqlError:
            raise MlSqlError(f"ML.{self.name}'s {what} must be a literal value.") from None

    def freeze(self, values: pa.ChunkedArray | None, params: dict[str, Any]) -> None:
        """Replace the call (and its OVER ()) by plain SQL: its statistics from ``values`` (its input's
        values over the training rows; analytic functions only), its settings from its literal arguments."""
        argument = self.argument_nodes[0].sql("bigquery")
        number = f"CAST({argument} AS FLOAT64)"
        freeze = getattr(self, f"_{self.name.lower()}")
        sql = freeze(argument, number, values, params)
        replacement = sqlglot.parse_one(sql, read="bigquery")
        target = self.window or self.node
        parent = target.parent
        target.replace(replacement)
        if isinstance(parent, exp.Alias):  # the item's top level: the model may read it its own way
            replacement.frozen_call = self  # type: ignore[attr-defined]
            if self.model_sql is None:
                self.model_sql = sql

    # -- the functions ------------------------------------------------------------------------------

    def _standard_scaler(self, argument, number, values, params) -> str:
        numbers = _numbers(values, self.name)
        mean = float(numbers.mean())
        spread = float(numbers.std(ddof=1)) if len(numbers) > 1 else 0.0
        return f"({number} - {_float(mean)}) / {_float(spread or 1.0)}"

    def _min_max_scaler(self, argument, number, values, params) -> str:
        numbers = _numbers(values, self.name)
        low, high = float(numbers.min()), float(numbers.max())
        scaled = f"({number} - {_float(low)}) / {_float(high - low or 1.0)}"
        return f"IF({number} < {_float(low)}, 0.0, IF({number} > {_float(high)}, 1.0, {scaled}))"

    def _bucketize(self, argument, number, values, params) -> str:
        points = self.literal(1, "array of split points", None, params)
        if not isinstance(points, list) or not points or not all(_finite(p) for p in points):
            raise MlSqlError("ML.BUCKETIZE's split points must be a non-empty array of finite numbers.")
        if list(points) != sorted(points):
            raise MlSqlError("ML.BUCKETIZE's split points must be in order, lowest to highest.")
        exclude = self.literal(2, "exclude_boundaries", False, params)
        if not isinstance(exclude, bool):
            raise MlSqlError("ML.BUCKETIZE's exclude_boundaries must be TRUE or FALSE.")
        self._bucket_names(3, params)
        return _buckets(number, [float(p) for p in (points[1:-1] if exclude else points)])

    def _quantile_bucketize(self, argument, number, values, params) -> str:
        count = self.literal(1, "number of buckets", None, params)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise MlSqlError("ML.QUANTILE_BUCKETIZE needs the number of buckets, a positive integer.")
        self._bucket_names(2, params)
        numbers = _numbers(values, self.name)
        boundaries = np.unique(np.quantile(numbers, np.arange(1, count) / count)) if count > 1 else []
        return _buckets(number, [float(b) for b in boundaries])

    def _bucket_names(self, index: int, params) -> None:
        form = self.literal(index, "output_format", "bucket_names", params)
        if form != "bucket_names":
            raise MlSqlError(
                f"ML.{self.name}'s output_format {form!r} is not supported locally; local BigQuery ML writes "
                "'bucket_names' (bin_1, bin_2, ...)."
            )

    def _one_hot_encoder(self, argument, number, values, params) -> str:
        drop = self.literal(1, "drop", "none", params)
        top_k = self.literal(2, "top_k", 32_000, params)
        threshold = self.literal(3, "frequency_threshold", 5, params)
        if drop not in ("none", "most_frequent"):
            raise MlSqlError("ML.ONE_HOT_ENCODER's drop is 'none' or 'most_frequent'.")
        if not isinstance(top_k, int) or not 0 < top_k < 1_000_000:
            raise MlSqlError("ML.ONE_HOT_ENCODER's top_k must be an integer from 1 to 999,999.")
        if not isinstance(threshold, int) or threshold < 0:
            raise MlSqlError("ML.ONE_HOT_ENCODER's frequency_threshold must be a non-negative integer.")
        counts = pc.value_counts(_strings(values).drop_null()).to_pylist()
        frequent = sorted(
            ((c["counts"], c["values"]) for c in counts if c["counts"] >= threshold),
            key=lambda p: (-p[0], p[1]),
        )[:top_k]
        vocabulary = sorted(category for _, category in frequent)
        category = f"CAST({argument} AS STRING)"
        if drop == "most_frequent" and frequent:
            self.dropped = frequent[0][1]
        whens = " ".join(f"WHEN {_string(c)} THEN {i}" for i, c in enumerate(vocabulary, start=1))
        index = f"CASE {category} {whens} ELSE 0 END" if whens else "0"
        one, zero = "CAST(1 AS FLOAT64)", "CAST(0 AS FLOAT64)"
        value = (
            f"IF({category} = {_string(self.dropped)}, {zero}, {one})" if self.dropped is not None else one
        )
        known = ", ".join(_string(c) for c in vocabulary)
        self.model_sql = f"IF({category} IN ({known}), {category}, NULL)" if known else "CAST(NULL AS STRING)"
        return f"[STRUCT({index} AS index, {value} AS value)]"

    def _struct_fields(self, what: str) -> list[tuple[str, str]]:
        struct = self.argument_nodes[0]
        if not isinstance(struct, exp.Struct) or not struct.expressions:
            raise MlSqlError(
                f"ML.{self.name} takes a STRUCT of {what} features: ML.{self.name}(STRUCT(a, b))."
            )
        fields = []
        for item in struct.expressions:
            if isinstance(item, exp.PropertyEQ):
                fields.append((item.name, item.expression.sql("bigquery")))
            elif isinstance(item, exp.Alias):
                fields.append((item.alias, item.this.sql("bigquery")))
            elif isinstance(item, exp.Column):
                fields.append((item.name, item.sql("bigquery")))
            else:
                raise MlSqlError(f"every feature of ML.{self.name} needs a name: STRUCT(expression AS name).")
        names = [name for name, _ in fields]
        if len(set(names)) != len(names) or len(names) > 10:
            raise MlSqlError(f"ML.{self.name} takes up to 10 features, each named once.")
        return fields

    def _degree(self, low: int, params) -> int:
        degree = self.literal(1, "degree", 2, params)
        if not isinstance(degree, int) or isinstance(degree, bool) or not low <= degree <= 4:
            raise MlSqlError(f"ML.{self.name}'s degree must be an integer from {low} to 4.")
        return degree

    def _feature_cross(self, argument, number, values, params) -> str:
        fields = self._struct_fields("categorical")
        degree = self._degree(2, params)
        combinations = sorted(
            c for size in range(2, degree + 1) for c in itertools.combinations(range(len(fields)), size)
        )
        crosses = [
            " || '_' || ".join(f"CAST({fields[i][1]} AS STRING)" for i in c)
            + f" AS {quote('_'.join(fields[i][0] for i in c))}"
            for c in combinations
        ]
        if not crosses:
            raise MlSqlError("ML.FEATURE_CROSS needs two features or more.")
        return f"STRUCT({', '.join(crosses)})"

    def _polynomial_expand(self, argument, number, values, params) -> str:
        fields = self._struct_fields("numerical")
        degree = self._degree(1, params)
        combinations = sorted(
            c
            for size in range(1, degree + 1)
            for c in itertools.combinations_with_replacement(range(len(fields)), size)
        )
        products = [
            " * ".join(f"CAST({fields[i][1]} AS FLOAT64)" for i in c)
            + f" AS {quote('_'.join(fields[i][0] for i in c))}"
            for c in combinations
        ]
        return f"STRUCT({', '.join(products)})"


def _numbers(values: pa.ChunkedArray, name: str) -> np.ndarray:
    numbers = pc.cast(values, pa.float64()).drop_null().to_numpy(zero_copy_only=False)
    numbers = numbers[~np.isnan(numbers)]
    if not len(numbers):
        raise MlSqlError(f"the input of ML.{name} is NULL in every training row.")
    return numbers


def _strings(values: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_boolean(values.type):
        return pc.if_else(values, "true", "false")
    return pc.cast(values, pa.string())


def _buckets(number: str, boundaries: list[float]) -> str:
    """``bin_1`` below the first boundary, ``bin_<i + 1>`` from boundary i on; NULL stays NULL."""
    whens = " ".join(f"WHEN {number} < {_float(b)} THEN 'bin_{i}'" for i, b in enumerate(boundaries, start=1))
    return f"CASE WHEN {number} IS NULL THEN NULL {whens} ELSE 'bin_{len(boundaries) + 1}' END"


def _float(value: float) -> str:
    return sql_literal(value, "FLOAT64")


def _string(value: str) -> str:
    return sql_literal(value, "STRING")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and bool(np.isfinite(value))
