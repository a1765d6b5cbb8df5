"""The streaming rides pipeline's transforms (``pipelines/taxi_streaming.py`` runs them).

What a run does: ``options`` (what it takes) -> ``plan`` (resolved: I/O, tables, subscription, rebuild);
the graph's steps: ``connectors`` (Pub/Sub in, BigQuery out, for either ``--io``), ``messages`` (parse,
validate, de-duplicate: ``CleanRideMessages``), ``windows`` (event-time aggregates), ``geohash``.

The local runner's I/O and the state a run keeps in its process, each in one place:
``pubsub_reader`` (batched pulls, flow control, the drain), ``bigquery_writer`` (writer threads that store,
then acknowledge), ``dedup`` (the de-duplication memory), ``rebuild`` (at start, the open windows and that
memory rebuilt from what ride_events holds, computed in the warehouse), ``subscriptions`` (the pipeline's
own subscription on the emulator, rotated), ``accounting`` (the run's tally and its last line).
"""
