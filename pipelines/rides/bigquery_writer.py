"""Write rows to BigQuery from writer threads, a few large requests at a time.

The BundleBasedDirectRunner runs one bundle at a time on one thread, so a sink that waited for BigQuery
would stall the whole pipeline. The DoFns here hand their rows to a writer thread (one for events and
dead letters, one for aggregates) and return; a writer takes everything queued, writes it table by
table (insertAll in chunks of up to 5,000 rows: each request costs a fixed ~0.1 s in the emulator), and
only then counts the batches as settled in the run's tally (``accounting.py``) and acknowledges the
messages the rows came from.

BigQuery out of reach (the emulator stopped, restarting) for up to two minutes is waited out
(``pipelines/common/outages.py``): the writer tries its cycle again every 2 s, and first drops the events
and dead letters already stored (by event id, message id: a write whose answer was lost may have landed),
so nothing is stored twice. A pane row written twice is the same row again (the latest pane of a window
is what counts). Meanwhile the reader stops pulling once ``max_outstanding`` messages await their
acknowledgement. Any other failure, or a
longer outage, stops the writer and fails the pipeline at its next bundle (or at :func:`flush`): the
messages it had not acknowledged come back from Pub/Sub when the pipeline starts again.

Ride events can instead go in as micro-batch load jobs (Parquet, one per writer cycle): the emulator loads
them 5-10 times faster than it takes insertAll rows. Real BigQuery allows 1,500 load jobs per table a day,
so there, stream them (``--events_write_method streaming_inserts``).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import logging
import queue
import threading
from collections import defaultdict
from dataclasses import dataclass, field

import apache_beam as beam

from gcpipe.core.schemas import load_schema, to_json_row
from pipelines.common.outages import short_retry, through_outages
from pipelines.rides.accounting import TALLY
from pipelines.rides.messages import EVENT_ID, RideBatch, RideMessage, dead_letter, event_rows
from pipelines.rides.pubsub_reader import acknowledge

CHUNK = 5000
KEYS = {"ride_events": "event_id", "ride_dead_letter": "message_id"}  # what a stored row is known by
_LOG = logging.getLogger(__name__)


class RowsRejected(RuntimeError):
    """BigQuery refused rows that have nowhere else to go."""


@dataclass
class Job:
    table: str
    rows: list[dict]
    row_ids: list[str] | None = None  # insertIds (event ids): BigQuery drops a retried insert's repeats
    dead_letter_table: str | None = None  # rows BigQuery rejects go here; without one, they fail the pipeline
    subscription: str | None = None
    ack_ids: list[str] = field(default_factory=list)  # acknowledged once the rows are stored
    load_schema: str | None = None  # a catalog schema: load typed rows as Parquet instead of inserting JSON
    # the messages ``ack_ids`` settles, as the run's tally counts them: (events, duplicates, dead letters)
    settles: tuple[int, int, int] | None = None


class _Writer:
    def __init__(self, lane: str):
        self.jobs: queue.Queue[tuple[Job, ...]] = queue.Queue()
        self.error: Exception | None = None
        self.clients: dict[str, object] = {}
        threading.Thread(target=self._run, name=f"BigQueryWriter-{lane}", daemon=True).start()

    def submit(self, *jobs: Job) -> None:
        """Queue ``jobs`` together: the writer takes them in one cycle (a batch's rows and its acks)."""
        if self.error:
            raise RowsRejected(f"the BigQuery writer stopped: {self.error}") from self.error
        self.jobs.put(jobs)

    def flush(self) -> None:
        self.jobs.join()
        if self.error:
            raise RowsRejected(f"the BigQuery writer stopped: {self.error}") from self.error

    def _run(self) -> None:
        while True:
            taken = [self.jobs.get()]
            while True:
                try:
                    taken.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
            try:
                if not self.error:
                    cycle = [job for jobs in taken for job in jobs]
                    rows = sum(len(job.rows) for job in cycle)
                    through_outages(functools.partial(self._write, cycle), f"storing {rows:,} rows", _LOG)
            except Exception as err:  # kept, and raised in the pipeline's thread
                _LOG.error("BigQuery writer failed: %s", err)
                self.error = err
            finally:
                for _ in taken:
                    self.jobs.task_done()

    def _write(self, jobs: list[Job], again: bool = False) -> None:
        """Store the jobs' rows, then settle and acknowledge them; ``again``: after a failed try, skip the
        rows that try stored."""
        if again:
            jobs = [self.unstored(job) for job in jobs]
        by_table: dict[tuple, list[Job]] = defaultdict(list)
        for job in jobs:
            by_table[job.table, job.dead_letter_table, job.load_schema].append(job)
        dead: dict[str, list[dict]] = defaultdict(list)
        for (table, dead_table, parquet_schema), group in by_table.items():
            rows = [row for job in group for row in job.rows]
            ids = (
                [i for job in group for i in job.row_ids]
                if all(job.row_ids is not None for job in group)
                else None
            )
            if parquet_schema and rows and self.load(table, rows, parquet_schema):
                continue
            if parquet_schema:  # the load was refused: insert the rows, which names the bad ones
                rows = [to_json_row(row) for row in rows]
            rejected = self.insert(table, rows, ids)
            if rejected and not dead_table:
                raise RowsRejected(f"{len(rejected)} rows rejected by {table}: {rejected[0][1]}")
            dead[dead_table] += [rejected_row(row, reason) for row, reason in rejected]
        for table, rows in dead.items():
            if rows and (failed := self.insert(table, rows)):
                raise RowsRejected(f"{len(failed)} dead letters rejected by {table}: {failed[0][1]}")
        settled = [job.settles for job in jobs if job.settles]
        if settled:  # the events BigQuery refused are dead letters now
            refused = sum(len(rows) for rows in dead.values())
            events, duplicates, dead_letters = (sum(column) for column in zip(*settled, strict=True))
            TALLY.settled(events - refused, duplicates, dead_letters + refused)
        acks: dict[str, list[str]] = defaultdict(list)
        for job in jobs:
            if job.subscription:
                acks[job.subscription] += job.ack_ids
        for subscription, ack_ids in acks.items():
            acknowledge(subscription, ack_ids)

    def unstored(self, job: Job) -> Job:
        """``job`` without the rows its table holds already (by ``KEYS``); a table without a key: as it is."""
        key = KEYS.get(job.table.rsplit(".", 1)[1])
        wanted = [row.get(key) for row in job.rows] if key else []
        if not key or not job.rows:
            return job
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            query_parameters=[bigquery.ArrayQueryParameter("keys", "STRING", [k for k in wanted if k])]
        )
        query = f"SELECT {key} FROM `{job.table}` WHERE {key} IN UNNEST(@keys)"
        stored = {
            row[0]
            for row in self.client(job.table).query(query, job_config=config, retry=short_retry()).result()
        }
        if not stored:
            return job
        _LOG.info("%d of %d rows for %s were stored before the outage: not storing them again",
                  len(stored), len(job.rows), job.table)  # fmt: skip
        keep = [i for i, k in enumerate(wanted) if k not in stored]
        return dataclasses.replace(
            job,
            rows=[job.rows[i] for i in keep],
            row_ids=[job.row_ids[i] for i in keep] if job.row_ids is not None else None,
        )

    def client(self, table: str):
        project = table.split(".")[0]
        if project not in self.clients:
            from google.cloud import bigquery

            self.clients[project] = bigquery.Client(project=project)
        return self.clients[project]

    def load(self, table: str, rows: list[dict], schema: str) -> bool:
        """Append typed rows with a Parquet load job; False if BigQuery refused the load."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        from google.api_core.exceptions import BadRequest
        from google.cloud import bigquery

        data = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows, schema=load_schema(schema).to_arrow()), data)
        data.seek(0)
        config = bigquery.LoadJobConfig(source_format="PARQUET", write_disposition="WRITE_APPEND")
        try:
            job = self.client(table).load_table_from_file(data, table, job_config=config, num_retries=0)
            job.result(retry=short_retry())
        except BadRequest as err:
            _LOG.warning("load into %s refused (%s); inserting the rows instead", table, err)
            return False
        return True

    def insert(
        self, table: str, rows: list[dict], row_ids: list[str] | None = None
    ) -> list[tuple[dict, str]]:
        """Insert JSON rows; return the rows BigQuery rejected, each with its reason."""
        rejected = []
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            ids = row_ids[start : start + CHUNK] if row_ids else None
            errors = self.client(table).insert_rows_json(
                table, chunk, row_ids=ids, skip_invalid_rows=True, retry=short_retry()
            )
            for error in errors:
                reasons = "; ".join(e.get("message", e.get("reason", "?")) for e in error["errors"])
                rejected.append((chunk[error["index"]], reasons))
        return rejected


def rejected_row(row: dict, reason: str) -> dict:
    """A ride event BigQuery refused, as a dead letter (of the message it came in)."""
    message = RideMessage(json.dumps(row).encode(), {EVENT_ID: row.get("event_id")}, row.get("message_id"))
    return dead_letter(message, f"BigQuery rejected the row: {reason}")


_WRITERS: dict[str, _Writer] = {}
_LOCK = threading.Lock()


def writer(lane: str) -> _Writer:
    """The process's writer thread for ``lane``: events (with their acks) and aggregates do not queue together."""
    with _LOCK:
        if lane not in _WRITERS:
            _WRITERS[lane] = _Writer(lane)
        return _WRITERS[lane]


def flush() -> None:
    """Wait until every row handed to the writers is stored (and its messages acknowledged)."""
    for lane in list(_WRITERS.values()):
        lane.flush()


class StoreRideBatches(beam.DoFn):
    """Store a batch's events and dead letters, then acknowledge every message it was pulled with.

    A restart's window seeds (``rebuild.py``) are stored already.
    """

    def __init__(
        self, events_table: str, dead_letter_table: str, subscription: str | None, load: bool = True
    ):
        self.events_table, self.dead_letter_table = events_table, dead_letter_table
        self.subscription, self.load = subscription, load

    def process(self, batch: RideBatch):
        if batch.seeds:
            return
        ids = [event["event_id"] for event in batch.events]
        if self.load:
            events = Job(
                self.events_table, batch.events, ids, self.dead_letter_table, load_schema="ride_events"
            )
        else:
            events = Job(self.events_table, event_rows(batch), ids, self.dead_letter_table)
        dead_letters = Job(
            self.dead_letter_table,
            batch.dead_letters,
            subscription=batch.subscription or self.subscription,
            ack_ids=batch.ack_ids,
            settles=(len(batch.events), batch.duplicates, len(batch.dead_letters)),
        )
        writer("events").submit(events, dead_letters)


class InsertRows(beam.DoFn):
    """Rows of a bundle, handed to the writer together when the bundle ends."""

    def __init__(self, table: str):
        self.table = table

    def start_bundle(self):
        self.rows = []

    def process(self, row: dict):
        self.rows.append(row)

    def finish_bundle(self):
        if self.rows:
            writer("aggregates").submit(Job(self.table, self.rows))
        self.rows = []
