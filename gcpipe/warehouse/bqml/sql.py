"""BigQuery ML's SQL, read and written: CREATE MODEL, the ML.* table functions, and what replaces them.

Reading works on sqlglot's BigQuery tokens, so strings and comments never confuse it, and keeps the
statement's own text for everything it does not replace (the emulator translates that, as usual).
Writing builds SQL whose values are typed literals (:func:`sql_literal`; strings escaped by
:func:`gcpipe.warehouse.params.string_literal`), never formatted from user input:

* ``ML.PREDICT`` becomes a subquery computing BigQuery ML's output columns from the input query;
* ``ML.EVALUATE``, ``ML.ROC_CURVE``, ``ML.WEIGHTS``, ``ML.FEATURE_INFO`` and ``ML.TRAINING_INFO`` become a
  subquery of their rows (``SELECT ... UNION ALL SELECT ...``) with BigQuery ML's column names and types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.tokens import Token, TokenType

from gcpipe.core.config import ConfigError, validate_table_id
from gcpipe.core.errors import GcpipeError
from gcpipe.warehouse.params import string_literal
from gcpipe.warehouse.script import tokenize

# The ML.* table functions local BigQuery ML answers (what each takes: gcpipe.warehouse.bqml.functions).
FUNCTION_NAMES = (
    "PREDICT",
    "EVALUATE",
    "ROC_CURVE",
    "CONFUSION_MATRIX",
    "EXPLAIN_PREDICT",
    "WEIGHTS",
    "FEATURE_INFO",
    "TRAINING_INFO",
    "FEATURE_IMPORTANCE",
    "CENTROIDS",
    "DETECT_ANOMALIES",
    "RECOMMEND",
    "FORECAST",
    "EXPLAIN_FORECAST",
    "ARIMA_EVALUATE",
    "TRANSFORM",
)


class MlSqlError(GcpipeError):
    """BigQuery ML SQL that the local target cannot read or run."""


@dataclass(frozen=True)
class ModelRef:
    project: str
    dataset: str
    model: str

    def __str__(self) -> str:
        return f"{self.project}.{self.dataset}.{self.model}"


@dataclass(frozen=True)
class MlCall:
    """One ``ML.<FUNCTION>(MODEL m[, input][, GENERATE_ARRAY(...)][, STRUCT(...)])`` in a statement."""

    function: str
    model: ModelRef
    start: int  # its span in the statement's text (end exclusive)
    end: int
    input_sql: str | None  # the input rows: the query in parentheses, or SELECT * FROM the TABLE
    settings: dict[str, Any]  # the STRUCT(... AS name) argument
    thresholds: list[float] | None = None  # ML.ROC_CURVE's GENERATE_ARRAY(start, end, step)


@dataclass(frozen=True)
class CreateModel:
    model: ModelRef
    replace: bool
    if_not_exists: bool
    options: dict[str, Any]
    query: str
    transform: str | None = None  # the TRANSFORM clause's select list, as written
    registration: str = ""  # the statement without its TRANSFORM clause (what the emulator stores)


# -- reading -------------------------------------------------------------------------------------


def leading_words(tokens: list[Token], count: int) -> list[str]:
    """The first ``count`` words, upper-cased; quoted names and strings as '' so they never read as keywords."""
    quoted = (TokenType.IDENTIFIER, TokenType.STRING)
    return ["" if t.token_type in quoted else t.text.upper() for t in tokens[:count]]


def _closing(tokens: list[Token], opening: int) -> int:
    """Index of the token closing the parenthesis (or bracket) opened at ``opening``."""
    depth = 0
    for index in range(opening, len(tokens)):
        kind = tokens[index].token_type
        if kind in (TokenType.L_PAREN, TokenType.L_BRACKET):
            depth += 1
        elif kind in (TokenType.R_PAREN, TokenType.R_BRACKET):
            depth -= 1
            if depth == 0:
                return index
    raise MlSqlError("a parenthesis is not closed.")


def _split_commas(tokens: list[Token], first: int, last: int) -> list[tuple[int, int]]:
    """Token index ranges [start, end) of the comma-separated parts between ``first`` and ``last``."""
    parts, depth, start = [], 0, first
    for index in range(first, last):
        kind = tokens[index].token_type
        if kind in (TokenType.L_PAREN, TokenType.L_BRACKET):
            depth += 1
        elif kind in (TokenType.R_PAREN, TokenType.R_BRACKET):
            depth -= 1
        elif kind == TokenType.COMMA and depth == 0:
            parts.append((start, index))
            start = index + 1
    if start < last:
        parts.append((start, last))
    return parts


def model_ref(tokens: list[Token], default_project: str) -> ModelRef:
    """``dataset.model`` or ``project.dataset.model`` (quoted whole or in parts) -> ModelRef."""
    path = "".join("." if t.token_type == TokenType.DOT else t.text for t in tokens)
    parts = [p for p in path.split(".") if p]
    written = ".".join(parts)
    if len(parts) == 2:
        parts.insert(0, default_project)  # the configuration's, validated there
    if len(parts) != 3 or not all(parts):
        raise MlSqlError(
            f"model name {path!r} needs its dataset: write dataset.model or `project.dataset.model`."
        )
    try:  # the parts become SQL text and the model's file path (.gcpipe/models/project/dataset/model.json)
        validate_table_id(written)
    except ConfigError:
        raise MlSqlError(
            f"{path!r} is not a plain name: a project id, then letters, digits and _ (dataset.model)."
        ) from None
    return ModelRef(*parts)


def literal_value(node: exp.Expression, params: dict[str, Any]) -> Any:
    """The Python value of a literal SQL expression (numbers, strings, booleans, arrays, structs, @params)."""
    if isinstance(node, exp.Literal):
        if node.is_string:
            return node.this
        number = float(node.this)
        return (
            int(number)
            if number.is_integer() and "." not in node.this and "e" not in node.this.lower()
            else number
        )
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Neg):
        return -literal_value(node.this, params)
    if isinstance(node, exp.Paren):
        return literal_value(node.this, params)
    if isinstance(node, exp.Array):
        return [literal_value(e, params) for e in node.expressions]
    if isinstance(node, exp.Struct):
        return tuple(
            literal_value(e.expression if isinstance(e, exp.PropertyEQ) else e, params)
            for e in node.expressions
        )
    if isinstance(node, exp.Parameter):
        name = node.name
        if name not in params:
            raise MlSqlError(f"query parameter @{name} has no value.")
        return params[name]
    raise MlSqlError(f"{node.sql('bigquery')} is not a literal value.")


def _struct_settings(text: str, params: dict[str, Any]) -> dict[str, Any]:
    """``STRUCT(0.55 AS threshold, TRUE AS standardize)`` -> {'threshold': 0.55, 'standardize': True}."""
    try:
        node = sqlglot.parse_one(text, read="bigquery")
    except ParseError:
        raise MlSqlError(f"cannot read the settings {text!r}.") from None
    if not isinstance(node, exp.Struct):
        raise MlSqlError(f"expected STRUCT(... AS name), got {text!r}.")
    settings = {}
    for field in node.expressions:
        if not isinstance(field, exp.PropertyEQ):
            raise MlSqlError(f"every setting in {text!r} needs a name: STRUCT(value AS name).")
        settings[field.name.lower()] = literal_value(field.expression, params)
    return settings


def _generate_array(text: str, params: dict[str, Any]) -> list[float]:
    """``GENERATE_ARRAY(0.1, 0.9, 0.1)`` -> [0.1, 0.2, ..., 0.9]: from start to end inclusive, by step."""
    try:
        node = sqlglot.parse_one(text, read="bigquery")
    except ParseError:
        node = None
    if not isinstance(node, exp.GenerateSeries):
        raise MlSqlError(f"cannot read the thresholds {text!r}: write GENERATE_ARRAY(start, end, step).")
    start, end = (float(literal_value(node.args[key], params)) for key in ("start", "end"))
    step = float(literal_value(node.args["step"], params)) if node.args.get("step") else 1.0
    if not all(map(math.isfinite, (start, end, step))) or step <= 0:
        raise MlSqlError(f"{text} needs finite bounds and a positive step.")
    count = math.floor((end - start) / step + 1e-9) + 1
    if not 0 < count <= 10_000:
        raise MlSqlError(f"{text} gives {max(count, 0):,} thresholds; ML.ROC_CURVE takes 1 to 10,000.")
    return [round(start + i * step, 12) for i in range(count)]


def find_ml_calls(text: str, default_project: str, params: dict[str, Any]) -> list[MlCall]:
    """The ML.* table-function calls of ``text`` (``ML.<NAME>(MODEL ...``), outermost only, left to right.

    Other ML.* functions count only when called on a MODEL, so the preprocessing functions
    (``ML.STANDARD_SCALER(x)``) and a function of a dataset that happens to be called ``ml`` are left alone.
    """
    tokens = tokenize(text)
    calls, index = [], 0
    while index < len(tokens) - 4:
        token, function = tokens[index], tokens[index + 2].text.upper()
        if not (
            token.token_type == TokenType.VAR
            and token.text.upper() == "ML"
            and tokens[index + 1].token_type == TokenType.DOT
            and tokens[index + 3].token_type == TokenType.L_PAREN
            and (function in FUNCTION_NAMES or tokens[index + 4].token_type == TokenType.MODEL)
        ):
            index += 1
            continue
        if function not in FUNCTION_NAMES:
            raise MlSqlError(
                f"ML.{function} is not supported by local BigQuery ML; supported: "
                f"{', '.join('ML.' + f for f in FUNCTION_NAMES)}."
            )
        close = _closing(tokens, index + 3)
        parts = _split_commas(tokens, index + 4, close)
        if not parts or tokens[parts[0][0]].token_type != TokenType.MODEL:
            raise MlSqlError(f"ML.{function} takes MODEL `dataset.model` as its first argument.")
        model = model_ref(tokens[parts[0][0] + 1 : parts[0][1]], default_project)
        input_sql, settings, thresholds = None, {}, None
        for start, end in parts[1:]:
            first = tokens[start]
            span = text[first.start : tokens[end - 1].end + 1]
            if first.token_type == TokenType.STRUCT:
                settings = _struct_settings(span, params)
            elif first.text.upper() == "GENERATE_ARRAY" and function == "ROC_CURVE":
                thresholds = _generate_array(span, params)
            elif first.token_type == TokenType.TABLE:
                table = model_ref(tokens[start + 1 : end], default_project)
                input_sql = f"SELECT * FROM `{table}`"
            elif first.token_type == TokenType.L_PAREN:
                input_sql = text[first.end + 1 : tokens[end - 1].start]
            else:
                raise MlSqlError(f"ML.{function} takes (query) or TABLE t as input, not {span!r}.")
        end = tokens[close].end + 1
        calls.append(MlCall(function, model, token.start, end, input_sql, settings, thresholds))
        index = close + 1
    return calls


def parse_create_model(text: str, default_project: str, params: dict[str, Any]) -> CreateModel | None:
    """``CREATE [OR REPLACE] MODEL [IF NOT EXISTS] m [TRANSFORM(...)] OPTIONS(...) AS query``; None for other
    statements."""
    tokens = tokenize(text)
    words = leading_words(tokens, 7)
    replace = words[:3] == ["CREATE", "OR", "REPLACE"]
    at = 3 if replace else 1
    if words[:1] != ["CREATE"] or len(words) <= at or words[at] != "MODEL":
        return None
    at += 1
    if_not_exists = [t.text.upper() for t in tokens[at : at + 3]] == ["IF", "NOT", "EXISTS"]
    at += 3 if if_not_exists else 0
    end = at
    while (
        end < len(tokens)
        and tokens[end].token_type != TokenType.ALIAS
        and leading_words(tokens[end:], 1)[0] not in ("OPTIONS", "TRANSFORM", "INPUT", "OUTPUT", "REMOTE")
    ):
        end += 1
    model = model_ref(tokens[at:end], default_project)
    options: dict[str, Any] = {}
    query = transform = None
    registration = text
    index = end
    while index < len(tokens):
        word = tokens[index].text.upper()
        if (
            word == "TRANSFORM"
            and index + 1 < len(tokens)
            and tokens[index + 1].token_type == TokenType.L_PAREN
        ):
            close = _closing(tokens, index + 1)
            if close == index + 2:
                raise MlSqlError("TRANSFORM needs at least one column: TRANSFORM(expression AS name, ...).")
            transform = text[tokens[index + 1].end + 1 : tokens[close].start].strip()
            registration = text[: tokens[index].start] + text[tokens[close].end + 1 :]
            index = close + 1
            continue
        if (
            word == "OPTIONS"
            and index + 1 < len(tokens)
            and tokens[index + 1].token_type == TokenType.L_PAREN
        ):
            close = _closing(tokens, index + 1)
            for start, stop in _split_commas(tokens, index + 2, close):
                if stop - start < 3 or tokens[start + 1].token_type != TokenType.EQ:
                    raise MlSqlError("OPTIONS takes name = value pairs.")
                value = text[tokens[start + 2].start : tokens[stop - 1].end + 1]
                try:
                    node = sqlglot.parse_one(value, read="bigquery")
                except ParseError:
                    raise MlSqlError(
                        f"cannot read the value of option {tokens[start].text}: {value!r}."
                    ) from None
                options[tokens[start].text] = literal_value(node, params)
            index = close + 1
            continue
        if tokens[index].token_type == TokenType.ALIAS:
            query = text[tokens[index].end + 1 :].strip()
            break
        raise MlSqlError(
            f"unexpected {tokens[index].text!r} in CREATE MODEL; expected [TRANSFORM(...)] OPTIONS(...) AS query."
        )
    if not query:
        raise MlSqlError("CREATE MODEL needs AS followed by the training query.")
    return CreateModel(model, replace, if_not_exists, options, query, transform, registration)


def parse_drop_model(text: str, default_project: str) -> tuple[ModelRef, bool] | None:
    """``DROP MODEL [IF EXISTS] m`` -> (model, if_exists); None for other statements."""
    tokens = tokenize(text)
    if leading_words(tokens, 2) != ["DROP", "MODEL"]:
        return None
    if_exists = [t.text.upper() for t in tokens[2:4]] == ["IF", "EXISTS"]
    return model_ref(tokens[4 if if_exists else 2 :], default_project), if_exists


# -- writing -------------------------------------------------------------------------------------


def quote(name: str) -> str:
    return "`" + name.replace("`", "") + "`"


def column(path: str, alias: str | None = None) -> str:
    """A column (or struct field, ``a.b``) reference, every part quoted."""
    parts = ([alias] if alias else []) + path.split(".")
    return ".".join(quote(part) for part in parts)


def sql_literal(value: Any, type_: str) -> str:
    """``value`` as a SQL literal of BigQuery type ``type_`` (strings escaped by the one escaper,
    :func:`gcpipe.warehouse.params.string_literal`)."""
    if type_.startswith("ARRAY<"):
        if not value:
            return f"CAST([] AS {type_})"
        inner = type_[len("ARRAY<") : -1]
        return "[" + ", ".join(sql_literal(item, inner) for item in value) + "]"
    if type_.startswith("STRUCT<"):
        fields = [f.strip().split(" ", 1) for f in _split_types(type_[len("STRUCT<") : -1])]
        return (
            "STRUCT("
            + ", ".join(f"{sql_literal(v, t)} AS {quote(n)}" for (n, t), v in zip(fields, value, strict=True))
            + ")"
        )
    if value is None:
        return f"CAST(NULL AS {type_})"
    if type_ == "FLOAT64":
        number = float(value)
        if math.isfinite(number):
            return repr(number)
        return "CAST('NaN' AS FLOAT64)" if math.isnan(number) else f"CAST('{number}' AS FLOAT64)"
    if type_ == "INT64":
        return str(int(value))
    if type_ == "BOOL":
        return "TRUE" if value else "FALSE"
    return string_literal(str(value))


def _split_types(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "<") - (char == ">")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def rows_sql(columns: list[tuple[str, str]], rows: list[tuple]) -> str:
    """A query returning ``rows`` with these (name, BigQuery type) columns."""
    if not rows:
        nulls = ", ".join(f"CAST(NULL AS {t}) AS {quote(n)}" for n, t in columns)
        return f"SELECT {nulls} LIMIT 0"
    selects = [
        "SELECT "
        + ", ".join(f"{sql_literal(v, t)} AS {quote(n)}" for (n, t), v in zip(columns, row, strict=True))
        for row in rows
    ]
    return "\nUNION ALL ".join(selects)


ROC_CURVE_COLUMNS = [
    ("threshold", "FLOAT64"),
    ("recall", "FLOAT64"),
    ("false_positive_rate", "FLOAT64"),
    ("true_positives", "INT64"),
    ("false_positives", "INT64"),
    ("true_negatives", "INT64"),
    ("false_negatives", "INT64"),
]


def roc_curve_sql(rows: list[tuple]) -> str:
    return rows_sql(ROC_CURVE_COLUMNS, rows)


def schema_field(name: str, type_: str, mode: str = "NULLABLE"):
    """A BigQuery SchemaField of a type written as SQL (``ARRAY<STRUCT<label INT64, prob FLOAT64>>``)."""
    from google.cloud import bigquery

    if type_.startswith("ARRAY<"):
        return schema_field(name, type_[len("ARRAY<") : -1], "REPEATED")
    if type_.startswith("STRUCT<"):
        fields = [f.strip().split(" ", 1) for f in _split_types(type_[len("STRUCT<") : -1])]
        return bigquery.SchemaField(name, "RECORD", mode, fields=[schema_field(n, t) for n, t in fields])
    return bigquery.SchemaField(name, type_, mode)
