"""What gcpipe's Airflow DAGs (``dags/``) run, per target, and the local Airflow they run in.

* :mod:`gcpipe.orchestration.local_steps`: each DAG step on the local target (the lake folder, the
  emulators, local Spark, the local streaming pipeline);
* :mod:`gcpipe.orchestration.gcp_requests`: the requests each step sends on gcp (Dataproc cluster, job
  and batch; Dataflow flex-template launches; BigQuery jobs), built from the helpers the CLI uses;
* :mod:`gcpipe.orchestration.airflow_home`: Airflow on SQLite under the state folder, ``gcpipe dags``.

The operator factory the DAG files import (:mod:`gcpipe.orchestration.operators`) imports these
lazily, inside callables, so a DAG file parses with Airflow and the providers alone.
"""
