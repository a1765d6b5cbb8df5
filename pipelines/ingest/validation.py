"""Typed, validated Arrow tables from CSV records: vectorised for the bulk, the catalog's row check for the rest.

A block of records goes through three gates:

1. record level (vectorised, from :mod:`records`): blank lines, bytes that are not UTF-8, and the
   wrong number of fields are rejected with their reason before any parsing;
2. pyarrow parses the remaining records as text and every column is typed with Arrow compute (casts,
   anchored regular expressions, ``strptime``), REQUIRED columns checked, then the table's rules from
   the catalog (``Rule.arrow_mask``);
3. every row gate 2 flagged is checked again by the catalog's per-row validator (``RowValidator``, the
   same rules through ``Rule.holds``), which gives the precise reason, or accepts a row written in a
   form the vectorised path does not parse (``+7``, ``2019-03-01T10:00:00Z``). The vectorised path only
   ever accepts a subset of what the row validator accepts, with the same values, so both paths agree.

Rows outside the partition being loaded (``--partition_date``), or with no value in the partition column,
are rejected last, so a re-run that replaces that partition replaces every row the previous run loaded.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from gcpipe.core.errors import GcpipeError
from gcpipe.core.schemas import RAW_LIMIT, Schema, TableSpec
from pipelines.ingest.records import Records

_INTEGER = r"^-?\d{1,18}$"  # no overflow possible; other forms (+7, 1_000) go to the row validator
_FLOAT = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_NUMERIC = r"^[+-]?\d{1,29}(\.\d{1,9})?$"
_DATE = r"[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_TIME = r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
_US_DATE = r"(0[1-9]|1[0-2])/(0[1-9]|[12]\d|3[01])/[1-9]\d{3}"
_US_TIME = r"(0[1-9]|1[0-2]):[0-5]\d:[0-5]\d [AP]M"
# (strptime format, the exact text it may parse, where the day of the month is): the regex keeps Arrow
# from accepting what Python rejects; the formats are those of the TLC files (ISO, and the older US form)
_MOMENTS = (
    ("%Y-%m-%d %H:%M:%S", f"^{_DATE} {_TIME}$", 8),
    ("%Y-%m-%dT%H:%M:%S", f"^{_DATE}T{_TIME}$", 8),
    ("%m/%d/%Y %I:%M:%S %p", f"^{_US_DATE} {_US_TIME}$", 3),
)
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


class CsvLayoutError(GcpipeError):
    """A file whose columns cannot be mapped onto the schema."""


@dataclass(frozen=True)
class Layout:
    """How a file's columns map onto the schema: the schema column at each position."""

    columns: tuple[str, ...]
    header: bool


def check_csv_schema(schema: Schema) -> None:
    nested = [f.name for f in schema.fields if f.type == "RECORD" or f.repeated]
    if nested:
        raise CsvLayoutError(
            f"schema {schema.name} has nested or repeated columns ({', '.join(nested)}), which a CSV "
            "file cannot hold; ingest it from JSON instead."
        )


def read_layout(first_record: str, schema: Schema, source: str) -> Layout:
    """The file's layout from its first record: a header (any cell naming a column) or schema order."""
    cells = next(csv.reader(io.StringIO(first_record)), [])
    names = {name.lower(): name for name in schema.names}
    keys = [cell.strip().lower() for cell in cells]
    if not any(key in names for key in keys):
        if len(cells) != len(names):
            raise CsvLayoutError(
                f"{source} has no header line and {len(cells)} columns, but schema {schema.name} has "
                f"{len(names)}: add a header line that names the columns."
            )
        return Layout(tuple(schema.names), header=False)
    unknown = [cell for cell, key in zip(cells, keys, strict=True) if key not in names]
    if unknown:
        raise CsvLayoutError(
            f"{source} has columns that schema {schema.name} lacks ({', '.join(unknown)}): add them to the "
            "schema or pass a schema that has them."
        )
    if len(set(keys)) != len(keys):
        raise CsvLayoutError(f"{source} names a column twice in its header line.")
    missing = [f.name for f in schema.fields if f.required and f.name.lower() not in keys]
    if missing:
        raise CsvLayoutError(f"{source} lacks the REQUIRED column(s) {', '.join(missing)} of {schema.name}.")
    return Layout(tuple(names[key] for key in keys), header=True)


@dataclass
class Validated:
    """What a block became: valid rows (schema order, typed) and the rejects as (line, raw, reason)."""

    table: pa.Table
    rejected: list[tuple[int, str, str]]
    records: int  # data records read (the header excluded)


class BlockValidator:
    """Validates blocks of records of one layout against a table spec (types, REQUIRED, rules, partition)."""

    def __init__(self, spec: TableSpec, layout: Layout, partition_date: date | None = None):
        check_csv_schema(spec.schema)
        self.spec, self.layout, self.partition_date = spec, layout, partition_date
        self.arrow_schema = spec.schema.to_arrow()
        self.row_validator = spec.validator()
        self.partition_field = (spec.partition or {}).get("field")

    def validate(self, records: Records, skip: int = 0) -> Validated:
        """Validate ``records`` (the first ``skip`` of them are a header, not data)."""
        n = len(records)
        reasons: dict[int, str] = {}
        blank = records.starts == records.ends
        for i in np.flatnonzero(blank[skip:]) + skip:
            reasons[int(i)] = "blank line"
        expected = len(self.layout.columns)
        for i in np.flatnonzero((records.fields[skip:] != expected) & ~blank[skip:]) + skip:
            reasons[int(i)] = f"{records.fields[i]} fields, expected {expected}"
        reasons.update(_undecodable(records, skip))
        if records.unterminated and n > skip:
            reasons[n - 1] = "unterminated quoted field"  # it ran to the end of the file
        keep = np.ones(n, dtype=bool)
        keep[:skip] = False
        keep[list(reasons)] = False
        rows = np.flatnonzero(keep)  # record index of each row handed to pyarrow

        typed, flagged = self._vectorised(records, keep, len(rows))
        table = typed.filter(pa.array(~flagged)) if flagged.any() else typed
        kept = rows[~flagged]
        rescued: dict[int, dict] = {}
        for i in rows[flagged].tolist():
            row, reason = self._check_row(records.text(i))
            if reason is None:
                rescued[i] = row
            else:
                reasons[i] = reason
        if rescued:
            extra, rescued_rows = self._arrow_rows(rescued, reasons)
            table = pa.concat_tables([table, extra])
            kept = np.concatenate([kept, rescued_rows]).astype(np.int64)
        table, kept = self._inside_partition(table, kept, reasons)
        rejected = [
            (int(records.lines[i]), records.text(i)[:RAW_LIMIT], reason)
            for i, reason in sorted(reasons.items())
        ]
        return Validated(table, rejected, n - skip)

    # -- the vectorised path -------------------------------------------------------------------

    def _vectorised(self, records: Records, keep: np.ndarray, count: int) -> tuple[pa.Table, np.ndarray]:
        """The kept records as a typed table, and which of its rows need the row validator."""
        if not count:
            return self.arrow_schema.empty_table(), np.zeros(0, dtype=bool)
        try:
            text = self._parse(records.select(keep), records.quoted)
            if text.num_rows != count:
                raise ValueError("pyarrow split the records differently")
            columns, flagged = [], np.zeros(count, dtype=bool)
            for f in self.spec.schema.fields:
                if f.name in self.layout.columns:
                    values, bad = _typed(
                        f.type, text[f.name].combine_chunks(), self.arrow_schema.field(f.name).type
                    )
                    flagged |= bad
                else:
                    values = pa.nulls(count, self.arrow_schema.field(f.name).type)
                if f.required:
                    flagged |= values.is_null().to_numpy(zero_copy_only=False)
                columns.append(values)
            typed = pa.Table.from_arrays(columns, schema=self.arrow_schema)
            for rule in self.spec.rules:
                flagged |= rule.arrow_mask(typed).to_numpy(zero_copy_only=False)
            return typed, flagged
        except (pa.ArrowException, ValueError):
            # A block pyarrow reads differently from the splitter: every row goes to the row validator.
            nulls = [pa.nulls(count, f.type) for f in self.arrow_schema]
            return pa.Table.from_arrays(nulls, schema=self.arrow_schema), np.ones(count, dtype=bool)

    def _parse(self, data: bytes, quoted: bool) -> pa.Table:
        names = list(self.layout.columns)
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, block_size=8 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=quoted, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    # -- the row path --------------------------------------------------------------------------

    def _check_row(self, text: str) -> tuple[dict | None, str | None]:
        cells, problem = record_cells(text)
        if problem:
            return None, problem
        if len(cells) != len(self.layout.columns):
            return None, f"{len(cells)} fields, expected {len(self.layout.columns)}"
        return self.row_validator.validate(dict(zip(self.layout.columns, cells, strict=True)))

    def _arrow_rows(self, rows: dict[int, dict], reasons: dict[int, str]) -> tuple[pa.Table, list[int]]:
        """Rows the row validator accepted, as Arrow; one whose value Arrow cannot hold (a NUMERIC with
        more than 9 decimals) is rejected with Arrow's reason."""
        try:
            return pa.Table.from_pylist(list(rows.values()), schema=self.arrow_schema), list(rows)
        except (pa.ArrowException, OverflowError):
            pass
        tables, fitted = [], []
        for i, row in rows.items():
            try:
                tables.append(pa.Table.from_pylist([row], schema=self.arrow_schema))
                fitted.append(i)
            except (pa.ArrowException, OverflowError) as err:
                reasons[i] = f"a value does not fit the table's types: {err}"
        return pa.concat_tables([self.arrow_schema.empty_table(), *tables]), fitted

    def _inside_partition(self, table: pa.Table, kept: np.ndarray, reasons: dict[int, str]):
        if not self.partition_field or not table.num_rows:
            return table, kept
        column = table[self.partition_field]
        day = pc.cast(column, pa.date32()) if pa.types.is_timestamp(column.type) else column
        # A row without a day belongs to no partition: no re-run could replace it, so it would pile up.
        outside = pc.is_null(day)
        if self.partition_date:
            outside = pc.or_kleene(outside, pc.not_equal(day, pa.scalar(self.partition_date, pa.date32())))
        outside = outside.to_numpy(zero_copy_only=False)
        if not outside.any():
            return table, kept
        for i, value in zip(kept[outside].tolist(), day.filter(outside).to_pylist(), strict=True):
            reasons[i] = (
                f"{self.partition_field} is empty: the row belongs to no partition"
                if value is None
                else f"{self.partition_field} on {value} is outside the partition {self.partition_date}"
            )
        return table.filter(pa.array(~outside)), kept[~outside]


def record_cells(text: str) -> tuple[list[str], str | None]:
    """The cells of one record as Python's csv module reads them, or why the text is not one record."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as err:
        if "unexpected end of data" in str(err):
            return [], "unterminated quoted field"
        rows = list(
            csv.reader(io.StringIO(text, newline=""))
        )  # a stray quote: read leniently, as pyarrow does
    if len(rows) > 1:
        return [], "a carriage return outside quotes splits the record"
    return (rows[0] if rows else []), None


def _undecodable(records: Records, skip: int) -> dict[int, str]:
    """Records holding bytes that are not UTF-8, with the first bad byte and where it is."""
    if records.data.isascii():
        return {}
    buf = np.frombuffer(records.data, np.uint8, count=records.consumed)
    suspects = np.unique(np.searchsorted(records.starts, np.flatnonzero(buf >= 0x80), side="right") - 1)
    found: dict[int, str] = {}
    for i in suspects[suspects >= skip].tolist():
        try:
            records.raw(i).decode("utf-8")
        except UnicodeDecodeError as err:
            found[i] = f"not UTF-8: byte 0x{err.object[err.start]:02x} at character {err.start + 1}"
    return found


# -- typing columns with Arrow compute -------------------------------------------------------------


def _typed(kind: str, text: pa.Array, to: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """``text`` as BigQuery type ``kind`` (empty cells NULL), and a mask of cells the row validator must see."""
    cells = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    present = cells.is_valid()
    if kind in ("STRING", "GEOGRAPHY", "JSON"):
        return cells, np.zeros(len(cells), dtype=bool)
    if kind == "INTEGER":
        values, ok = _cast(cells, pa.int64(), _INTEGER)
    elif kind == "FLOAT":
        values, ok = _cast(cells, pa.float64(), _FLOAT)
        finite = pc.fill_null(pc.is_finite(values), True)
        values, ok = pc.if_else(finite, values, pa.scalar(None, pa.float64())), pc.and_(ok, finite)
    elif kind == "NUMERIC":
        values, ok = _cast(cells, pa.decimal128(38, 9), _NUMERIC)
    elif kind == "BOOLEAN":
        lowered = pc.utf8_lower(cells)
        ok = pc.is_in(lowered, pa.array(list(_BOOLEANS)))
        truth = pc.is_in(lowered, pa.array([k for k, v in _BOOLEANS.items() if v]))
        values = pc.if_else(ok, truth, pa.scalar(None, pa.bool_()))
    elif kind in ("TIMESTAMP", "DATETIME", "DATE"):
        values, ok = _moments(cells, kind)
    else:  # TIME, BYTES, BIGNUMERIC: the row validator converts them
        values, ok = pa.nulls(len(cells), to), pa.array(np.zeros(len(cells), dtype=bool))
    bad = pc.and_(present, pc.invert(pc.fill_null(ok, False)))
    return values, bad.to_numpy(zero_copy_only=False)


def _cast(cells: pa.Array, to: pa.DataType, pattern: str) -> tuple[pa.Array, pa.Array]:
    """Cast; if some cell does not parse, only the cells matching ``pattern`` are cast (the rest NULL)."""
    try:
        values = pc.cast(cells, to)
        return values, values.is_valid()
    except pa.ArrowInvalid:
        ok = pc.fill_null(pc.match_substring_regex(cells, pattern), False)
        return pc.cast(pc.if_else(ok, cells, pa.scalar(None, pa.string())), to), ok


def _moments(cells: pa.Array, kind: str) -> tuple[pa.Array, pa.Array]:
    """TIMESTAMP (naive times are UTC, as in the row validator), DATETIME or DATE cells, parsed strictly."""
    parsed = pa.nulls(len(cells), pa.timestamp("us"))
    patterns = _MOMENTS if kind != "DATE" else (("%Y-%m-%d", f"^{_DATE}$", 8),)
    for fmt, pattern, day_at in patterns:
        pending = pc.and_(pc.is_null(parsed), pc.fill_null(pc.match_substring_regex(cells, pattern), False))
        if not pc.any(pending).as_py():
            continue
        attempt = pc.strptime(
            pc.if_else(pending, cells, pa.scalar(None, pa.string())),
            format=fmt,
            unit="us",
            error_is_null=True,
        )
        # strptime rolls 2019-02-30 over to March 2: keep only days that read back as written
        sliced = pc.utf8_slice_codeunits(pc.if_else(pending, cells, "01/01/2000 01"), day_at, day_at + 2)
        day = pc.cast(sliced, pa.int64())
        attempt = pc.if_else(pc.equal(pc.day(attempt), day), attempt, pa.scalar(None, pa.timestamp("us")))
        parsed = pc.coalesce(parsed, attempt)
    ok = parsed.is_valid()
    if kind == "DATE":
        return pc.cast(parsed, pa.date32()), ok
    if kind == "TIMESTAMP":
        return pc.cast(parsed, pa.timestamp("us", tz="UTC")), ok
    return parsed, ok
