"""Apache Beam pipelines, one module per pipeline (``csv_ingest``, ``taxi_streaming``) with a short ``run(argv)``
launcher and a ``build_pipeline(p, plan)`` graph; each pipeline's transforms in a package of its own
(``ingest/``, ``rides/``); what the launchers share (options, runner choice, logs) in ``common/``."""
