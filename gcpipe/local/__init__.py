"""The local target's stack: the emulators (Pub/Sub, BigQuery, Cloud Storage), the metadata stand-in,
PostgreSQL and the dashboard as supervised services (``stack``), and ``gcpipe up/down/status`` (``cli``)."""
