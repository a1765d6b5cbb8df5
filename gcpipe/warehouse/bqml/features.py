"""The rows a model learns from: BigQuery ML's automatic preprocessing and data split.

Preprocessing: numeric columns (INT64, FLOAT64, NUMERIC) are standardised with the mean and standard
deviation of the input, NULL becoming the mean; other columns (STRING, BOOL, DATE, DATETIME, TIME, BYTES)
are one-hot encoded, NULL being a category of its own and a category unseen in training weighing 0; a
STRUCT column is expanded into ``<struct>_<field>`` features. (Tree models encode categories as labels
instead: :mod:`gcpipe.warehouse.bqml.models.boosted_tree`.)

Split (``data_split_method``): AUTO_SPLIT keeps every row for training under 500 rows, holds out 20 %
up to 50,000 rows and 10,000 rows above; RANDOM holds out ``data_split_eval_fraction``; CUSTOM holds out
the rows whose BOOL ``data_split_col`` is TRUE or NULL; SEQ holds out the rows with the largest
``data_split_col`` (and NULLs). Random splits are deterministic: rows are ranked by a hash of their
content, as BigQuery ranks them by FARM_FINGERPRINT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gcpipe.core.errors import GcpipeError
from gcpipe.warehouse.bqml.options import ModelOptions
from gcpipe.warehouse.bqml.sql import rows_sql

MAX_DESIGN_COLUMNS = 2_000  # one-hot columns in all; the local fit holds the design matrix in memory
AUTO_SPLIT_MIN_ROWS, AUTO_SPLIT_LARGE_ROWS, AUTO_SPLIT_LARGE_EVAL_ROWS = 500, 50_000, 10_000


class ModelError(GcpipeError):
    """Training data or a model the local BigQuery ML cannot use, worded for the user."""


# -- features ------------------------------------------------------------------------------------


def bigquery_type(arrow_type: pa.DataType) -> str:
    """The BigQuery type name of an Arrow column type, as the BigQuery client hands columns back."""
    checks = (
        (pa.types.is_boolean, "BOOL"),
        (pa.types.is_integer, "INT64"),
        (pa.types.is_floating, "FLOAT64"),
        (pa.types.is_decimal, "NUMERIC"),
        (pa.types.is_string, "STRING"),
        (pa.types.is_large_string, "STRING"),
        (pa.types.is_binary, "BYTES"),
        (pa.types.is_date, "DATE"),
        (pa.types.is_time, "TIME"),
        (pa.types.is_struct, "STRUCT"),
        (pa.types.is_list, "ARRAY"),
    )
    for check, name in checks:
        if check(arrow_type):
            return name
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMP" if arrow_type.tz else "DATETIME"
    return str(arrow_type).upper()


NUMERIC_TYPES = {"INT64", "FLOAT64", "NUMERIC"}
CATEGORICAL_TYPES = {"STRING", "BOOL", "BYTES", "DATE", "DATETIME", "TIME"}


def _as_strings(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Category values as BigQuery's CAST(x AS STRING) writes them ('true', '2017-05-01', ...)."""
    if pa.types.is_boolean(values.type):
        return pc.if_else(values, "true", "false")
    if pa.types.is_timestamp(values.type):  # DATETIME
        return pc.strftime(values, "%Y-%m-%d %H:%M:%S")
    return pc.cast(values, pa.string())


@dataclass
class Feature:
    """One input column as the model sees it, with the statistics of the input (ML.FEATURE_INFO)."""

    name: str  # as ML.WEIGHTS and ML.FEATURE_INFO name it (struct fields: struct_field)
    column: str  # how SQL reaches it in the input (struct fields: struct.field)
    type: str  # its BigQuery type
    null_count: int
    mean: float | None = None
    stddev: float | None = None
    min: float | None = None
    max: float | None = None
    median: float | None = None
    categories: list[str] = field(default_factory=list)  # sorted; NULL is not among them
    null_category: bool = False  # NULL was seen, so it has a category (and a weight) of its own
    dropped: str | None = None  # DUMMY_ENCODING: the category folded into the intercept

    @property
    def numerical(self) -> bool:
        return self.type in NUMERIC_TYPES

    @property
    def encoded(self) -> list[str | None]:
        """The categories that have a column in the design matrix (None: the NULL category)."""
        kept = [c for c in self.categories if c != self.dropped]
        return [*kept, None] if self.null_category else kept

    @property
    def width(self) -> int:
        return 1 if self.numerical else len(self.encoded)

    @classmethod
    def describe(cls, name: str, column: str, values: pa.ChunkedArray, dummy: bool) -> Feature:
        kind = bigquery_type(values.type)
        nulls = values.null_count
        if kind in NUMERIC_TYPES:
            numbers = values.drop_null().to_numpy(zero_copy_only=False).astype(np.float64)
            if not len(numbers):
                raise ModelError(f"feature {name} is NULL in every row.")
            spread = float(np.std(numbers, ddof=1)) if len(numbers) > 1 else 0.0
            return cls(
                name,
                column,
                kind,
                nulls,
                float(np.mean(numbers)),
                spread,
                float(np.min(numbers)),
                float(np.max(numbers)),
                float(np.median(numbers)),
            )
        if kind in CATEGORICAL_TYPES:
            categories = sorted(pc.unique(_as_strings(values).drop_null()).to_pylist())
            dropped = categories[0] if dummy and categories else None
            return cls(
                name, column, kind, nulls, categories=categories, null_category=nulls > 0, dropped=dropped
            )
        raise ModelError(
            f"feature {name} is {kind}, which local BigQuery ML does not encode yet; cast it to a number or "
            "a STRING in the query."
        )

    def design(self, values: pa.ChunkedArray) -> np.ndarray:
        """This feature's columns of the design matrix for ``values`` (rows x width)."""
        if self.numerical:
            numbers = values.to_numpy(zero_copy_only=False).astype(np.float64)
            numbers = np.where(np.isnan(numbers), self.mean, numbers)
            scale = self.stddev or 1.0  # a constant column standardises to 0 everywhere
            return ((numbers - self.mean) / scale).reshape(-1, 1)
        encoded = self.encoded
        lookup = pa.array([c for c in encoded if c is not None], pa.string())
        index = pc.index_in(_as_strings(values), value_set=lookup).to_numpy(zero_copy_only=False)
        out = np.zeros((len(values), len(encoded)))
        known = ~np.isnan(index.astype(np.float64))
        rows = np.flatnonzero(known)
        out[rows, index[known].astype(np.int64)] = 1.0
        if self.null_category:
            out[values.is_null().to_numpy(zero_copy_only=False), len(encoded) - 1] = 1.0
        return out

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def input_columns(table: pa.Table) -> list[tuple[str, str, pa.ChunkedArray]]:
    """(feature name, SQL path, values) of each column, STRUCT columns expanded one level."""
    out = []
    for name in table.column_names:
        values = table[name]
        if pa.types.is_struct(values.type):
            for index, child in enumerate(values.type):
                children = pa.chunked_array([chunk.field(index) for chunk in values.chunks], child.type)
                nulls = values.is_null()
                children = pc.if_else(nulls, pa.scalar(None, child.type), children)
                out.append((f"{name}_{child.name}", f"{name}.{child.name}", children))
        else:
            out.append((name, name, values))
    return out


def str_label(value: Any) -> str:
    """A label value as BigQuery's CAST(label AS STRING) writes it (class_weights keys)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- the split -----------------------------------------------------------------------------------


def split_mask(table: pa.Table, options: ModelOptions) -> np.ndarray:
    """A boolean mask of the rows held out for evaluation."""
    n, method = table.num_rows, options.data_split_method
    if method in ("CUSTOM", "SEQ"):
        column = options.data_split_col
        if column not in table.column_names:
            raise ModelError(f"data_split_col {column!r} is not a column of the training query.")
        values = table[column]
        if method == "CUSTOM":
            if not pa.types.is_boolean(values.type):
                raise ModelError(f"data_split_col {column} must be BOOL for data_split_method CUSTOM.")
            return pc.fill_null(values, True).to_numpy(zero_copy_only=False)
        held = values.is_null().to_numpy(zero_copy_only=False).copy()
        order = np.argsort(
            pc.rank(values, sort_keys="ascending", tiebreaker="first").to_numpy(), kind="stable"
        )
        order = order[~held[order]]
        count = round(len(order) * options.data_split_eval_fraction)
        held[order[len(order) - count :]] = True
        return held
    if method == "NO_SPLIT" or (method == "AUTO_SPLIT" and n < AUTO_SPLIT_MIN_ROWS):
        return np.zeros(n, dtype=bool)
    if method == "AUTO_SPLIT":
        count = AUTO_SPLIT_LARGE_EVAL_ROWS if n > AUTO_SPLIT_LARGE_ROWS else round(n * 0.2)
    else:
        count = round(n * options.data_split_eval_fraction)
    held = np.zeros(n, dtype=bool)
    held[np.argsort(_row_hashes(table), kind="stable")[:count]] = True
    return held


def _row_hashes(table: pa.Table) -> np.ndarray:
    """A 64-bit hash of each row's content (columns in order), so a random split is the same every run."""
    import pandas as pd

    return pd.util.hash_pandas_object(table.flatten().to_pandas(), index=False).to_numpy()


def feature_info_sql(features: list[Feature]) -> str:
    """ML.FEATURE_INFO: each input's statistics in the training rows."""
    columns = [
        ("input", "STRING"),
        ("min", "FLOAT64"),
        ("max", "FLOAT64"),
        ("mean", "FLOAT64"),
        ("median", "FLOAT64"),
        ("stddev", "FLOAT64"),
        ("category_count", "INT64"),
        ("null_count", "INT64"),
        ("dimension", "INT64"),
    ]
    rows = [
        (
            f.name,
            f.min,
            f.max,
            f.mean,
            f.median,
            f.stddev,
            None if f.numerical else len(f.categories),
            f.null_count,
            None,
        )
        for f in features
    ]
    return rows_sql(columns, rows)
