"""The CSV ingestion's transforms (``pipelines/csv_ingest.py`` runs them).

``options`` (what a run takes), ``plan`` (the options resolved: files, schema, tables, output), ``files``
(reading CSV from any file system), ``records`` and ``validation`` (vectorised splitting, typing and checks),
``pii`` (hash, mask, redact), ``transforms`` (the named steps of the graph), ``bigquery_load`` (load jobs
that replace a partition), ``accounting`` (rows read = loaded + dead-lettered, from Beam's counters).
"""

from gcpipe.core.errors import GcpipeError


class IngestError(GcpipeError):
    """An ingestion that cannot start or whose records do not add up."""
