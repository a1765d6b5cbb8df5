"""Running the Spark jobs of ``spark_jobs/``: locally on ``local[*]``, or on Dataproc (``gcpipe spark``)."""
