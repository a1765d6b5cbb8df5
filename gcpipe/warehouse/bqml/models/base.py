"""What every local model is: fitted from Arrow rows, kept as JSON, asked by ML.* functions.

A model family subclasses :class:`Model`: ``fit(table, options, transform)`` (the training query's rows, or
its TRANSFORM clause's columns), ``summary``
(the one line ``CREATE MODEL`` prints), ``to_json`` / ``from_json`` (the artefact under
``<state_dir>/models``), and one method per ML.* function it has (see
:mod:`gcpipe.warehouse.bqml.functions`), each returning the SQL that replaces the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from gcpipe.warehouse.bqml.features import ModelError
from gcpipe.warehouse.bqml.functions import Call
from gcpipe.warehouse.bqml.options import ModelOptions
from gcpipe.warehouse.bqml.sql import rows_sql
from gcpipe.warehouse.bqml.transform import Transform


@dataclass
class TrainingIteration:
    iteration: int
    loss: float
    eval_loss: float | None
    learning_rate: float | None
    duration_ms: int


TRAINING_INFO_COLUMNS = [
    ("training_run", "INT64"),
    ("iteration", "INT64"),
    ("loss", "FLOAT64"),
    ("eval_loss", "FLOAT64"),
    ("learning_rate", "FLOAT64"),
    ("duration_ms", "INT64"),
]


class Model:
    TYPES: ClassVar[tuple[str, ...]] = ()
    options: ModelOptions
    training: list[TrainingIteration]
    transform: Transform | None = None  # the TRANSFORM clause, frozen at training (kept beside the artefact)

    @classmethod
    def fit(cls, table: pa.Table, options: ModelOptions, transform: Transform | None = None) -> Model:
        """Fit on ``table`` (the training query's rows, or its TRANSFORM's columns computed from them)."""
        raise NotImplementedError

    def summary(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Model:
        raise NotImplementedError

    def training_info(self, call: Call) -> str:
        """ML.TRAINING_INFO, newest iteration first as BigQuery lists it."""
        rows = [
            (0, t.iteration, t.loss, t.eval_loss, t.learning_rate, t.duration_ms)
            for t in reversed(self.training)
        ]
        return rows_sql(TRAINING_INFO_COLUMNS, rows)


def require_columns(table: pa.Table, columns: dict[str, str]) -> None:
    """Each ``option -> column`` the options name must be a column of the training query."""
    for option, name in columns.items():
        if name not in table.column_names:
            raise ModelError(
                f"the training query has no column {name!r}, which {option} names; its columns: "
                f"{', '.join(table.column_names)}."
            )
