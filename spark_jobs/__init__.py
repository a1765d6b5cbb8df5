"""PySpark jobs for Dataproc: one module per job with main(argv)."""
