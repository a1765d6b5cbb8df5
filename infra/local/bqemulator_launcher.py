"""Start the BigQuery emulator (bqemulator) with its per-write growth turned off; gcpipe's stack runs it as
``.venv-emulators/bin/python infra/local/bqemulator_launcher.py start <bqemulator's own arguments>``.

Measured under a stream of writes (issue 21; 2,000 rows a write, two writes a second), the stock emulator
grew without bound, and each write got slower as the table grew:

* Time travel: ``SnapshotManager.record_change`` copies the WHOLE table into ``_bqemulator_snapshots``
  after every insertAll, load job, DML and copy, and keeps the copies 7 days: writing N rows in batches
  copies about N^2/(2 x batch) rows (5.9 GB after 606 loads; a write into a 600k-row table took 1.1-1.5 s).
  Here AUTO snapshots are skipped: ``CREATE SNAPSHOT TABLE`` still works, ``FOR SYSTEM_TIME AS OF`` reads
  the live table (gcpipe never uses time travel).
* ``jobs.executor.JOB_RESULTS`` / ``JOB_SCHEMAS`` keep every query's whole result until ``jobs.delete``:
  here the newest 200, and at most 256 MiB of results.
* DuckDB's external file cache keeps the bytes of every staged load file (a new temp path per load, so
  it never hits): off. DuckDB's ``memory_limit`` defaults to 80% of RAM: 4 GB here.

With these, 3,000 loads kept the emulator near 350 MiB, at a flat 30-45 ms a write.
"""

from __future__ import annotations

import sys
from collections import OrderedDict

RESULTS_KEPT, RESULTS_BYTES = 200, 256 * 2**20
DUCKDB_SETTINGS = {"enable_external_file_cache": "false", "memory_limit": "4GB"}


class Newest(OrderedDict):
    """A dict that keeps only its newest ``limit`` keys and, of values with ``nbytes`` (Arrow tables), at most
    ``max_bytes`` (the newest value is always kept, however large)."""

    def __init__(self, limit: int, max_bytes: int = 0):
        super().__init__()
        self.limit, self.max_bytes, self.bytes = limit, max_bytes, 0

    def __setitem__(self, key, value):
        if key in self:
            self.bytes -= getattr(self[key], "nbytes", 0)
            self.move_to_end(key)
        super().__setitem__(key, value)
        self.bytes += getattr(value, "nbytes", 0)
        while len(self) > self.limit or (self.max_bytes and self.bytes > self.max_bytes and len(self) > 1):
            _, old = self.popitem(last=False)
            self.bytes -= getattr(old, "nbytes", 0)

    def pop(self, key, *default):
        if key in self:
            self.bytes -= getattr(self[key], "nbytes", 0)
        return super().pop(key, *default)


def patch() -> None:
    from bqemulator.jobs import executor
    from bqemulator.storage import engine
    from bqemulator.versioning import snapshots

    capture = snapshots.SnapshotManager.capture

    def capture_user_only(self, project_id, dataset_id, table_id, *, kind="AUTO"):
        return None if kind == "AUTO" else capture(self, project_id, dataset_id, table_id, kind=kind)

    snapshots.SnapshotManager.capture = capture_user_only
    # Before bqemulator.api.routes imports the names (``from bqemulator.jobs.executor import JOB_RESULTS``).
    executor.JOB_RESULTS = Newest(RESULTS_KEPT, RESULTS_BYTES)
    executor.JOB_SCHEMAS = Newest(RESULTS_KEPT)

    pragmas = engine.DuckDBEngine._apply_session_pragmas

    def with_settings(self) -> None:
        pragmas(self)
        for name, value in DUCKDB_SETTINGS.items():
            self._connection.execute(f"SET {name} = '{value}'")

    engine.DuckDBEngine._apply_session_pragmas = with_settings


if __name__ == "__main__":
    patch()
    from bqemulator.cli import main

    sys.argv[0] = "bqemulator"
    sys.exit(main())
