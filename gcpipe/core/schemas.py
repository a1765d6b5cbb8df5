"""Table schemas: one definition (``sql/schemas/*.json``), every form the project needs.

A schema file is a BigQuery JSON schema, the same file ``bq mk --schema`` and Terraform take. The table
catalog ``sql/tables.json`` says where each table lives and how it is laid out (partitioning,
clustering, expiration) and lists the rules every row satisfies. From these, this module gives:

* ``Schema.to_bigquery()``: ``google.cloud.bigquery.SchemaField`` list;
* ``Schema.to_spark()``: a Spark ``StructType``;
* ``Schema.to_arrow()``: a pyarrow schema (vectorised parsing, Parquet load files);
* ``TableSpec.ddl()``: ``CREATE TABLE`` with partitioning, clustering and options;
* ``RowValidator``: types, REQUIRED, nested RECORD / REPEATED, and the table's rules, per row.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from gcpipe.core.config import PROJECT_ROOT, Config, validate_identifier
from gcpipe.core.errors import GcpipeError

SCHEMA_DIR = PROJECT_ROOT / "sql" / "schemas"
TABLES_FILE = PROJECT_ROOT / "sql" / "tables.json"

# Legacy (JSON schema) type names, and the standard-SQL aliases that mean the same.
_ALIASES = {
    "INT64": "INTEGER",
    "FLOAT64": "FLOAT",
    "BOOL": "BOOLEAN",
    "STRUCT": "RECORD",
    "DECIMAL": "NUMERIC",
    "BIGDECIMAL": "BIGNUMERIC",
}
TYPES = {
    "STRING",
    "BYTES",
    "INTEGER",
    "FLOAT",
    "NUMERIC",
    "BIGNUMERIC",
    "BOOLEAN",
    "TIMESTAMP",
    "DATE",
    "TIME",
    "DATETIME",
    "GEOGRAPHY",
    "JSON",
    "RECORD",
}
RAW_LIMIT = 65_536  # characters of a rejected record or message a dead letter keeps (its ``raw``)
_SQL_TYPES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL"}
MODES = {"NULLABLE", "REQUIRED", "REPEATED"}


class SchemaError(GcpipeError):
    """A schema or table catalog that cannot be used, worded for the user."""


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    mode: str = "NULLABLE"
    description: str | None = None
    fields: tuple[Field, ...] = ()

    @property
    def required(self) -> bool:
        return self.mode == "REQUIRED"

    @property
    def repeated(self) -> bool:
        return self.mode == "REPEATED"

    @property
    def sql_type(self) -> str:
        """The standard-SQL type, as DDL writes it (without NOT NULL)."""
        if self.type == "RECORD":
            inner = ", ".join(f"{sub.name} {sub.sql_column_type}" for sub in self.fields)
            base = f"STRUCT<{inner}>"
        else:
            base = _SQL_TYPES.get(self.type, self.type)
        return f"ARRAY<{base}>" if self.repeated else base

    @property
    def sql_column_type(self) -> str:
        return self.sql_type + (" NOT NULL" if self.required else "")

    @classmethod
    def from_json(cls, raw: dict, where: str) -> Field:
        try:
            name = validate_identifier(raw["name"], f"field name in {where}")
            type_ = _ALIASES.get(raw["type"].upper(), raw["type"].upper())
        except (KeyError, AttributeError):
            raise SchemaError(f"{where}: every field needs a name and a type.") from None
        mode = (raw.get("mode") or "NULLABLE").upper()
        if type_ not in TYPES:
            raise SchemaError(f"{where}: field {name} has unknown type {raw['type']!r}.")
        if mode not in MODES:
            raise SchemaError(f"{where}: field {name} has unknown mode {raw['mode']!r}.")
        subfields = tuple(cls.from_json(sub, f"{where}.{name}") for sub in raw.get("fields", ()))
        if (type_ == "RECORD") != bool(subfields):
            raise SchemaError(f"{where}: field {name} must have subfields if and only if it is a RECORD.")
        return cls(name, type_, mode, raw.get("description"), subfields)

    def to_json(self) -> dict:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "mode": self.mode}
        if self.description:
            out["description"] = self.description
        if self.fields:
            out["fields"] = [sub.to_json() for sub in self.fields]
        return out


@dataclass(frozen=True)
class Schema:
    name: str
    fields: tuple[Field, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        for candidate in self.fields:
            if candidate.name == name:
                return candidate
        raise SchemaError(f"schema {self.name} has no column {name!r}.")

    def to_json(self) -> list[dict]:
        return [f.to_json() for f in self.fields]

    def to_bigquery(self) -> list:
        from google.cloud.bigquery import SchemaField

        def convert(f: Field) -> SchemaField:
            return SchemaField(
                f.name, f.type, mode=f.mode, description=f.description, fields=[convert(s) for s in f.fields]
            )

        return [convert(f) for f in self.fields]

    def to_spark(self):
        from pyspark.sql import types as T

        scalar = {
            "STRING": T.StringType(),
            "BYTES": T.BinaryType(),
            "INTEGER": T.LongType(),
            "FLOAT": T.DoubleType(),
            "NUMERIC": T.DecimalType(38, 9),
            "BIGNUMERIC": T.DecimalType(38, 18),
            "BOOLEAN": T.BooleanType(),
            "TIMESTAMP": T.TimestampType(),
            "DATE": T.DateType(),
            "DATETIME": T.TimestampNTZType(),
            "TIME": T.StringType(),
            "GEOGRAPHY": T.StringType(),
            "JSON": T.StringType(),
        }

        def convert(f: Field):
            if f.type == "RECORD":
                inner = T.StructType([T.StructField(s.name, convert(s), not s.required) for s in f.fields])
            else:
                inner = scalar[f.type]
            return T.ArrayType(inner, containsNull=False) if f.repeated else inner

        return T.StructType([T.StructField(f.name, convert(f), not f.required) for f in self.fields])

    def to_arrow(self):
        import pyarrow as pa

        scalar = {
            "STRING": pa.string(),
            "BYTES": pa.binary(),
            "INTEGER": pa.int64(),
            "FLOAT": pa.float64(),
            "NUMERIC": pa.decimal128(38, 9),
            "BIGNUMERIC": pa.decimal256(76, 38),
            "BOOLEAN": pa.bool_(),
            "TIMESTAMP": pa.timestamp("us", tz="UTC"),
            "DATE": pa.date32(),
            "DATETIME": pa.timestamp("us"),
            "TIME": pa.time64("us"),
            "GEOGRAPHY": pa.string(),
            "JSON": pa.string(),
        }

        def convert(f: Field) -> pa.Field:
            if f.type == "RECORD":
                inner = pa.struct([convert(s) for s in f.fields])
            else:
                inner = scalar[f.type]
            if f.repeated:
                return pa.field(f.name, pa.list_(pa.field("item", inner, nullable=False)), nullable=False)
            return pa.field(f.name, inner, nullable=not f.required)

        return pa.schema([convert(f) for f in self.fields])

    def validator(self, rules: tuple[Rule, ...] = (), ignore_unknown: bool = False) -> RowValidator:
        return RowValidator(self, rules, ignore_unknown)


@cache
def _load_schema_file(path: Path) -> Schema:
    where = path.name
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise SchemaError(f"schema file {path} does not exist.") from None
    except json.JSONDecodeError as err:
        raise SchemaError(f"schema file {path} is not valid JSON: {err}.") from None
    if (
        isinstance(raw, dict) and "fields" in raw
    ):  # the form `bq show --schema --format=prettyjson` also writes
        raw = raw["fields"]
    if not isinstance(raw, list) or not raw:
        raise SchemaError(f"schema file {path} must be a non-empty JSON list of fields.")
    fields = tuple(Field.from_json(item, where) for item in raw)
    names = [f.name.lower() for f in fields]
    if len(set(names)) != len(names):
        raise SchemaError(f"schema file {path} names a column twice.")
    return Schema(path.stem, fields)


def load_schema(name_or_path: str | Path) -> Schema:
    """A schema by name (``taxi_trips`` for ``sql/schemas/taxi_trips.json``) or by the path of any JSON schema."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".json" or candidate.parent != Path("."):
        return _load_schema_file(candidate.resolve())
    path = SCHEMA_DIR / f"{name_or_path}.json"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in SCHEMA_DIR.glob("*.json")))
        raise SchemaError(
            f"no schema named {name_or_path!r}; known: {known} (or pass the path of a JSON schema)."
        )
    return _load_schema_file(path)


def schema_names() -> list[str]:
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.json"))


# -- rules ---------------------------------------------------------------------------------------

_RULE = re.compile(
    r"^\s*(?P<left>[A-Za-z_]\w*)\s+(?:(?P<op>>=|<=|!=|=|>|<)\s*(?P<right>\S+)"
    r"|BETWEEN\s+(?P<low>\S+)\s+AND\s+(?P<high>\S+)"
    r"|IN\s*\((?P<values>[^)]*)\))\s*$",
    re.IGNORECASE,
)
_OPS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "IN": lambda a, b: a in b,
}


def _literal(rule: str, text: str) -> Any:
    """A rule's literal operand: a 'string' or a number."""
    if re.fullmatch(r"'[^']*'", text):
        return text[1:-1]
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        raise SchemaError(f"rule {rule!r}: {text!r} is not a number, 'string' or column.") from None


@dataclass(frozen=True)
class Rule:
    """A row rule: ``column op operand`` where operand is a number, a 'string' or another column;
    ``column BETWEEN a AND b``; or ``column IN (literal, ...)``.

    The text is also valid SQL, so data-quality checks reuse it verbatim. A NULL operand passes,
    as a SQL CHECK does; REQUIRED is what rejects NULLs.
    """

    text: str
    column: str
    comparisons: tuple[tuple[str, Any, bool], ...]  # (op, operand, operand_is_column)

    @classmethod
    def parse(cls, text: str, schema: Schema) -> Rule:
        match = _RULE.match(text)
        if not match:
            raise SchemaError(
                f"rule {text!r} is not `column op value`, `column BETWEEN a AND b` or `column IN (a, b)`."
            )
        column = match["left"]
        schema.field(column)
        if match["values"] is not None:
            values = tuple(_literal(text, item.strip()) for item in match["values"].split(","))
            return cls(text.strip(), column, (("IN", values, False),))
        if match["op"]:
            pairs = [(match["op"], match["right"])]
        else:
            pairs = [(">=", match["low"]), ("<=", match["high"])]
        comparisons = []
        for op, operand in pairs:
            if re.fullmatch(r"[A-Za-z_]\w*", operand):
                schema.field(operand)
                comparisons.append((op, operand, True))
            else:
                comparisons.append((op, _literal(text, operand), False))
        return cls(text.strip(), column, tuple(comparisons))

    def holds(self, row: dict) -> bool:
        value = row.get(self.column)
        for op, operand, is_column in self.comparisons:
            other = row.get(operand) if is_column else operand
            if value is not None and other is not None and not _OPS[op](value, other):
                return False
        return True

    def arrow_mask(self, table):
        """Boolean array, True where the rule fails (NULLs pass), for a pyarrow table of typed columns."""
        import pyarrow as pa
        import pyarrow.compute as pc

        names = {
            ">=": "greater_equal",
            "<=": "less_equal",
            ">": "greater",
            "<": "less",
            "=": "equal",
            "!=": "not_equal",
        }
        failed = None
        for op, operand, is_column in self.comparisons:
            if op == "IN":
                ok = pc.is_in(table[self.column], value_set=pa.array(operand))
            else:
                other = table[operand] if is_column else operand
                ok = getattr(pc, names[op])(table[self.column], other)
            bad = pc.invert(pc.fill_null(ok, True))
            failed = bad if failed is None else pc.or_(failed, bad)
        return failed


# -- the table catalog ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    name: str
    dataset_key: str
    schema: Schema
    description: str = ""
    partition: dict | None = None
    clustering: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = field(default=())

    def table_id(self, config: Config, name: str | None = None) -> str:
        """``project.dataset.table`` in the configured project and dataset."""
        return f"{config.project}.{config.dataset(self.dataset_key)}.{name or self.name}"

    def validator(self, ignore_unknown: bool = False) -> RowValidator:
        return RowValidator(self.schema, self.rules, ignore_unknown)

    def ddl(self, table_id: str, if_not_exists: bool = True) -> str:
        """``CREATE TABLE`` for this table at ``table_id``, with partitioning, clustering and options."""
        columns = ",\n".join(f"  {f.name} {f.sql_column_type}" for f in self.schema.fields)
        create = "CREATE TABLE IF NOT EXISTS" if if_not_exists else "CREATE OR REPLACE TABLE"
        parts = [f"{create} `{table_id}` (\n{columns}\n)"]
        options = {}
        if self.partition:
            column = self.schema.field(self.partition["field"])
            unit = self.partition.get("granularity", "DAY")
            if column.type == "DATE" and unit == "DAY":
                parts.append(f"PARTITION BY {column.name}")
            else:
                parts.append(f"PARTITION BY TIMESTAMP_TRUNC({column.name}, {unit})")
            if self.partition.get("expiration_days"):
                options["partition_expiration_days"] = str(self.partition["expiration_days"])
        if self.clustering:
            parts.append("CLUSTER BY " + ", ".join(self.clustering))
        if self.description:
            options["description"] = json.dumps(self.description)
        if options:
            parts.append("OPTIONS (" + ", ".join(f"{k} = {v}" for k, v in options.items()) + ")")
        return "\n".join(parts)


@cache
def load_tables() -> dict[str, TableSpec]:
    raw = json.loads(TABLES_FILE.read_text())
    tables = {}
    for name, spec in raw.items():
        if name.startswith("_"):
            continue
        schema = load_schema(spec["schema"])
        clustering = tuple(spec.get("clustering", ()))
        for column in clustering + ((spec["partition"]["field"],) if spec.get("partition") else ()):
            schema.field(column)
        tables[name] = TableSpec(
            name=name,
            dataset_key=spec["dataset"],
            schema=schema,
            description=spec.get("description", ""),
            partition=spec.get("partition"),
            clustering=clustering,
            rules=tuple(Rule.parse(text, schema) for text in spec.get("rules", ())),
        )
    return tables


def table_spec(name: str) -> TableSpec:
    tables = load_tables()
    if name not in tables:
        raise SchemaError(f"no table {name!r} in sql/tables.json; known: {', '.join(sorted(tables))}.")
    return tables[name]


# -- row validation ------------------------------------------------------------------------------


class Invalid(ValueError):
    """One value that does not fit its column; the message names the column and the reason."""


_TIME_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M")


def _parse_datetime(value: str) -> datetime:
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4]
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    for fmt in _TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(value)


def _coerce(f: Field, value: Any) -> Any:
    """Convert one non-null scalar to the Python value of its BigQuery type, or raise Invalid."""
    kind = f.type
    is_text = isinstance(value, str)
    try:
        if kind == "STRING":
            if not is_text:
                raise ValueError
            value.encode()  # a lone surrogate (JSON's "\ud800") is no UTF-8 text: BigQuery would refuse the row
            return value
        if kind == "INTEGER":
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ValueError
            number = int(value.strip()) if is_text else value
            if not -(2**63) <= number < 2**63:
                raise ValueError
            return number
        if kind == "FLOAT":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValueError
            number = float(value)
            if not math.isfinite(number):
                raise Invalid(f"{f.name}: {value!r} is not a finite number")
            return number
        if kind in ("NUMERIC", "BIGNUMERIC"):
            if isinstance(value, bool):
                raise ValueError
            number = Decimal(str(value).strip())
            if not number.is_finite():
                raise ValueError
            return number
        if kind == "BOOLEAN":
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("true", "1"):
                return True
            if lowered in ("false", "0"):
                return False
            raise ValueError
        if kind == "TIMESTAMP":
            moment = value if isinstance(value, datetime) else _parse_datetime(value) if is_text else None
            if moment is None:
                raise ValueError
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        if kind == "DATETIME":
            moment = value if isinstance(value, datetime) else _parse_datetime(value) if is_text else None
            if moment is None or moment.tzinfo is not None:
                raise ValueError
            return moment
        if kind == "DATE":
            if isinstance(value, date) and not isinstance(value, datetime):
                return value
            return date.fromisoformat(value.strip()) if is_text else _raise()
        if kind == "TIME":
            return (
                value
                if isinstance(value, time)
                else time.fromisoformat(value.strip())
                if is_text
                else _raise()
            )
        if kind == "BYTES":
            return value if isinstance(value, bytes) else base64.b64decode(value, validate=True)
        if kind == "GEOGRAPHY":
            if not is_text:
                raise ValueError
            return value
        if kind == "JSON":
            return value if is_text else json.dumps(value)
    except Invalid:
        raise
    except (ValueError, TypeError, InvalidOperation, OverflowError, AttributeError):
        pass
    shown = value if not is_text or len(value) <= 60 else value[:57] + "..."
    raise Invalid(f"{f.name}: {shown!r} is not a valid {kind}")


def _raise():
    raise ValueError


@dataclass
class RowValidator:
    """Checks one row (a dict of column -> value) against a schema and rules.

    ``validate`` returns ``(typed_row, None)`` or ``(None, reason)``: the reason is one sentence naming
    the first problem. Values may be strings (CSV) or JSON values; empty strings are NULL.
    """

    schema: Schema
    rules: tuple[Rule, ...] = ()
    ignore_unknown: bool = False

    def validate(self, row: dict) -> tuple[dict | None, str | None]:
        try:
            typed = self._record(self.schema.fields, row, "")
        except Invalid as err:
            return None, str(err)
        for rule in self.rules:
            if not rule.holds(typed):
                return None, f"violates rule {rule.text}"
        return typed, None

    def _record(self, fields: tuple[Field, ...], row: Any, prefix: str) -> dict:
        if not isinstance(row, dict):
            raise Invalid(f"{prefix.rstrip('.') or 'row'}: expected an object, got {type(row).__name__}")
        if not self.ignore_unknown:
            known = {f.name for f in fields}
            unknown = [key for key in row if key not in known]
            if unknown:
                raise Invalid(f"{prefix}{unknown[0]}: not a column of {self.schema.name}")
        return {f.name: self._value(f, row.get(f.name), prefix) for f in fields}

    def _value(self, f: Field, value: Any, prefix: str) -> Any:
        path = prefix + f.name
        if f.repeated:
            if value is None or value == "":
                return []
            if not isinstance(value, list):
                raise Invalid(f"{path}: expected a list, got {type(value).__name__}")
            return [self._single(f, item, f"{path}[{i}]", element=True) for i, item in enumerate(value)]
        return self._single(f, value, path)

    def _single(self, f: Field, value: Any, path: str, element: bool = False) -> Any:
        if value is None or value == "":
            if f.required or element:
                raise Invalid(f"{path}: REQUIRED but empty" if not element else f"{path}: NULL in a list")
            return None
        if f.type == "RECORD":
            return self._record(f.fields, value, path + ".")
        try:
            return _coerce(f, value)
        except Invalid as err:
            raise Invalid(str(err).replace(f.name, path, 1)) from None


def to_json_row(row: dict) -> dict:
    """A typed row as BigQuery's JSON (insertAll, NEWLINE_DELIMITED_JSON) expects it."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        if isinstance(value, datetime | date | time):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        return value

    return convert(row)
