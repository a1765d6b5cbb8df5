"""Deployment to Google Cloud: the step engine (``steps``), every resource name (``naming``), the plans
(``plans``: infra, templates, DAGs, one job), Dataproc's requests for the Spark jobs (``dataproc``) and
``gcpipe deploy`` (``cli``)."""
