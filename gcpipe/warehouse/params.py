"""Named query parameters (``@name``): from the command line or from Python to BigQuery's own.

Values always travel as query parameters, typed, never as SQL text. From Python the type follows the
value (``int`` INT64, ``float`` FLOAT64, ``date`` DATE, aware ``datetime`` TIMESTAMP, naive DATETIME,
``Decimal`` NUMERIC, ``bool`` BOOL, ``str`` STRING, a list ARRAY of its elements' type). On the command
line ``--param name=value`` reads the value as BOOL (true/false), INT64, FLOAT64, DATE (YYYY-MM-DD),
TIMESTAMP (with a time and zone) or else STRING; ``--param name:TYPE=value`` says the type outright
(``--param year:STRING=2016``).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from gcpipe.core.config import is_identifier
from gcpipe.core.errors import GcpipeError

TYPES = (
    "STRING",
    "INT64",
    "FLOAT64",
    "NUMERIC",
    "BIGNUMERIC",
    "BOOL",
    "DATE",
    "DATETIME",
    "TIMESTAMP",
    "TIME",
)
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ParameterError(GcpipeError):
    """A query parameter that cannot be read or sent."""


def parse_param(text: str) -> tuple[str, Any]:
    """``name=value`` or ``name:TYPE=value`` -> (name, typed Python value)."""
    head, sep, raw = text.partition("=")
    name, _, type_ = head.partition(":")
    name, type_ = name.strip(), type_.strip().upper()
    if not sep or not is_identifier(name):
        raise ParameterError(f"--param {text!r} is not name=value (or name:TYPE=value).")
    if type_ and type_ not in TYPES:
        raise ParameterError(f"--param {name}: type {type_} is unknown; use one of {', '.join(TYPES)}.")
    try:
        return name, _convert(raw, type_ or _guess(raw))
    except (ValueError, InvalidOperation):
        raise ParameterError(f"--param {name}: {raw!r} is not a valid {type_ or 'value'}.") from None


def _guess(raw: str) -> str:
    if raw.lower() in ("true", "false"):
        return "BOOL"
    if _INT.match(raw):
        return "INT64"
    if _FLOAT.match(raw):
        return "FLOAT64"
    if _DATE.match(raw):
        return "DATE"
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return "STRING"
    return "TIMESTAMP" if moment.tzinfo else "DATETIME"


def _convert(raw: str, type_: str) -> Any:
    if type_ == "BOOL":
        if raw.lower() not in ("true", "false"):
            raise ValueError(raw)
        return raw.lower() == "true"
    converters = {
        "INT64": int,
        "FLOAT64": float,
        "NUMERIC": Decimal,
        "BIGNUMERIC": Decimal,
        "DATE": date.fromisoformat,
        "DATETIME": datetime.fromisoformat,
        "TIMESTAMP": datetime.fromisoformat,
        "TIME": time.fromisoformat,
    }
    value = converters.get(type_, str)(raw)
    if type_ == "TIMESTAMP" and value.tzinfo is None:
        raise ValueError(raw)
    return value


def bigquery_type(value: Any, name: str) -> str:
    """The BigQuery type of a Python value (see the module docstring)."""
    checks = (
        (bool, "BOOL"),
        (int, "INT64"),
        (float, "FLOAT64"),
        (Decimal, "NUMERIC"),
        (str, "STRING"),
        (bytes, "BYTES"),
        (datetime, None),
        (date, "DATE"),
        (time, "TIME"),
    )
    for kind, type_ in checks:
        if isinstance(value, kind):
            if kind is datetime:
                return "TIMESTAMP" if value.tzinfo else "DATETIME"
            return type_
    raise ParameterError(f"query parameter @{name}: a {type(value).__name__} has no BigQuery type.")


def query_parameter(name: str, value: Any):
    """One BigQuery query parameter (scalar, or ARRAY for a list) for a Python value."""
    from google.cloud import bigquery

    if isinstance(value, list | tuple):
        kinds = {bigquery_type(v, name) for v in value if v is not None}
        if len(kinds) != 1:
            raise ParameterError(
                f"query parameter @{name}: a list needs elements of one type, got {sorted(kinds)}."
            )
        return bigquery.ArrayQueryParameter(name, kinds.pop(), list(value))
    if value is None:
        raise ParameterError(f"query parameter @{name} is None; a NULL needs a type: pass it typed in SQL.")
    return bigquery.ScalarQueryParameter(name, bigquery_type(value, name), value)


def string_literal(text: str) -> str:
    """``text`` as a BigQuery string literal: backslash, quote, line feed and carriage return escaped.

    Only for SQL that cannot carry parameters (a script in the emulator, which drops them; a model
    rewritten as SQL); every other value travels as a query parameter. Other characters stay as they are:
    BigQuery and the emulator both read them raw, while the emulator ignores ``\\x``/``\\u`` escapes.
    """
    if "\x00" in text:
        raise ParameterError(f"the text {text[:40]!r} holds a NUL character, which SQL text cannot carry.")
    return "'" + text.translate(_ESCAPES) + "'"


_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r"})


def job_config(used: set[str], values: dict[str, Any], **settings):
    """A QueryJobConfig carrying the parameters a statement uses; a missing one is an error."""
    from google.cloud import bigquery

    missing = sorted(used - set(values))
    if missing:
        raise ParameterError(
            f"query parameter @{missing[0]} has no value: pass --param {missing[0]}=VALUE (or params= in Python)."
        )
    parameters = [query_parameter(name, values[name]) for name in sorted(used)]
    return bigquery.QueryJobConfig(query_parameters=parameters, **settings)
