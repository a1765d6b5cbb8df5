"""A run's accounting from Beam's counters, checked: rows read = valid (= loaded) + dead-lettered."""

from __future__ import annotations

from dataclasses import dataclass

from apache_beam.metrics.metric import MetricsFilter

from pipelines.ingest import IngestError

NAMESPACE = "csv_ingest"
COUNTERS = ("rows_read", "rows_valid", "rows_dead_lettered", "rows_loaded", "dead_letters_loaded")


@dataclass
class IngestResult:
    rows_read: int
    rows_valid: int
    rows_dead_lettered: int
    rows_loaded: int | None  # None when no table was named
    output: str
    table: str | None
    seconds: float

    def summary(self) -> str:
        target = f"loaded into {self.table}" if self.table else f"written to {self.output}"
        return (
            f"{self.rows_read:,} rows read = {self.rows_valid:,} valid ({target}) + "
            f"{self.rows_dead_lettered:,} dead-lettered, in {self.seconds:.1f} s"
        )


def counters(result) -> dict[str, int]:
    """The run's counters (committed where the runner commits them, else attempted)."""
    found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    totals = dict.fromkeys(COUNTERS, 0)
    for counter in found:
        totals[counter.key.metric.name] += (
            counter.committed if counter.committed is not None else counter.attempted
        )
    return totals


def account(result, output: str, table: str | None, seconds: float) -> IngestResult:
    """The run's :class:`IngestResult`, or one sentence if its records do not add up."""
    counts = counters(result)
    ingest = IngestResult(
        counts["rows_read"],
        counts["rows_valid"],
        counts["rows_dead_lettered"],
        counts["rows_loaded"] if table else None,
        output,
        table,
        seconds,
    )
    landed = (ingest.rows_loaded, counts["dead_letters_loaded"])
    if ingest.rows_read != ingest.rows_valid + ingest.rows_dead_lettered or (
        table and landed != (ingest.rows_valid, ingest.rows_dead_lettered)
    ):
        raise IngestError(
            f"records do not add up: {ingest.summary()}; {landed[0]} rows and {landed[1]} dead letters landed."
        )
    return ingest
