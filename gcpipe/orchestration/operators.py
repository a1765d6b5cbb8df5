"""gcpipe's operator factory: each step of a DAG, as the operator that runs it on the configured target.

The DAG files say which steps they take; this module picks, per target (``GCPIPE_TARGET`` or gcpipe.toml),
the operator that runs each one, so a DAG's graph is the same on both:

=====================  ===========================================  =================================================
step                   local (the local stack)                      gcp
=====================  ===========================================  =================================================
``wait_for_files``     PythonSensor on the lake folder              GCSObjectsWithPrefixExistenceSensor
``beam_batch``         BeamRunPythonPipelineOperator, DirectRunner  BeamRunPythonPipelineOperator, DataflowRunner with
                                                                    a DataflowConfiguration (the image
                                                                    ``make build-templates`` built)
``sql`` / ``check``    gcpipe's SQL runner on the BigQuery          BigQueryInsertJobOperator (a check: a job that
                       emulator (checks fail naming the check)      fails naming the check)
``spark_job``          no-op cluster tasks, spark-submit on         Dataproc create cluster / submit job / delete
                       local[*]                                     cluster (or a Serverless batch)
``move_files``         a move in the lake folder                    GCSToGCSOperator(move_object=True)
``streaming_job``      the streaming pipeline as a local process    DataflowStartFlexTemplateOperator (start, or
                                                                    update the running job in place)
=====================  ===========================================  =================================================

Module level imports Airflow only: gcpipe, the providers and the request builders are imported when a
step is made (at parse time, only the target's operators) or when it runs, so DAG files parse fast in
Composer. It lives in gcpipe, not in dags/: an importable package, so the stock ``airflow`` CLI and a
plain ``DagBag`` find it wherever the DAGs folder is.
"""

from __future__ import annotations

import hashlib
import os
import sys
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Param, TriggerRule

# Far back, so a run for any past day can be made (Airflow makes no task for a day before it); catchup is off.
START_DATE = datetime(2015, 1, 1, tzinfo=UTC)

DEFAULT_ARGS = {
    "owner": "gcpipe",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": 2.0,  # 2, then 4 minutes ... up to max_retry_delay
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=1),
}


def _config():
    from gcpipe.core.config import load_config

    return load_config().require_gcp()


def target() -> str:
    """The target the DAGs are built for: ``local`` or ``gcp``."""
    return _config().target


# -- the run's date and names ------------------------------------------------------------------------


def run_date(dag_run, params) -> str:
    """The day a run works on, ``YYYY-MM-DD``: the run's ``date`` param if given, else its logical date,
    else (a run triggered without one, as Airflow 3 allows) the day it was triggered, in UTC."""
    if params.get("date"):
        return str(params["date"])
    moment = dag_run.logical_date or dag_run.run_after
    return moment.astimezone(UTC).date().isoformat()


def run_name(prefix: str, dag_run, params) -> str:
    """A resource name unique to a run and the same on its retries (a cluster, a batch, a Dataflow job):
    ``prefix-YYYYMMDD-<8 hex of the run id>``, lowercase letters, digits and hyphens as GCP names need."""
    digest = hashlib.sha256(dag_run.run_id.encode()).hexdigest()[:8]
    return f"{prefix}-{run_date(dag_run, params).replace('-', '')}-{digest}"


RUN_DATE = "{{ run_date(dag_run, params) }}"


def run_name_template(prefix: str) -> str:
    return "{{ run_name('" + prefix + "', dag_run, params) }}"


def gcpipe_dag(
    dag_id: str, *, doc: str, schedule, tags: list[str], dagrun_timeout: timedelta, params: dict | None = None
) -> DAG:
    """A gcpipe DAG: owner, retries with exponential backoff and timeouts by default, one run at a time,
    no catch-up, the ``date`` param and the run's date and name macros."""
    return DAG(
        dag_id,
        doc_md=doc,
        schedule=schedule,
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=dagrun_timeout,
        default_args=DEFAULT_ARGS,
        tags=["gcpipe", target(), *tags],
        params={
            "date": Param(
                None,
                type=["null", "string"],
                format="date",
                description="The day to work on (YYYY-MM-DD); default: the run's logical date, or today.",
            ),
            **(params or {}),
        },
        user_defined_macros={"run_date": run_date, "run_name": run_name},
    )


# -- names in the lake and the warehouse ------------------------------------------------------------


def lake_uri(folder: str) -> str:
    """A folder of the lake: a path locally, ``gs://LAKE_BUCKET/folder`` on gcp."""
    return f"{_config().lake}/{folder}"


def bucket_uri(folder: str) -> str:
    """``gs://LAKE_BUCKET/folder`` on both targets (locally the storage emulator's bucket): Spark's road."""
    return f"{_config().bucket}/{folder}"


def table_id(name: str) -> str:
    """``project.dataset.table`` of a catalog table (sql/tables.json) on the target."""
    from gcpipe.core.schemas import table_spec

    return table_spec(name).table_id(_config())


# -- steps ------------------------------------------------------------------------------------------


def _local_step(step: str, arguments: dict):
    """Run ``gcpipe.orchestration.local_steps.<step>(**arguments)``, imported when the task runs."""
    from gcpipe.orchestration import local_steps

    return getattr(local_steps, step)(**arguments)


def _python(task_id: str, step: str, arguments: dict, **kwargs):
    from airflow.providers.standard.operators.python import PythonOperator

    return PythonOperator(
        task_id=task_id,
        python_callable=_local_step,
        op_kwargs={"step": step, "arguments": arguments},
        **kwargs,
    )


def wait_for_files(
    task_id: str,
    folder: str,
    *,
    timeout: timedelta = timedelta(hours=6),
    poke_interval: timedelta = timedelta(minutes=5),
):
    """Wait until the lake folder holds a file (mode reschedule: no worker slot held while waiting).

    Locally the files are there or not (``gcpipe datagen``, a copy): poke every 10 s, give up after
    2 minutes, so ``gcpipe dags test`` for a day without files fails soon, naming the folder it watched.
    """
    config = _config()
    if config.is_local:
        from airflow.providers.standard.sensors.python import PythonSensor

        return PythonSensor(
            task_id=task_id,
            python_callable=_local_step,
            op_kwargs={"step": "files_arrived", "arguments": {"folder": folder}},
            mode="reschedule",
            poke_interval=10,
            timeout=min(timeout, timedelta(minutes=2)).total_seconds(),
            retries=0,
        )
    waiting = {"mode": "reschedule", "timeout": timeout.total_seconds(), "retries": 0}
    from airflow.providers.google.cloud.sensors.gcs import GCSObjectsWithPrefixExistenceSensor

    return GCSObjectsWithPrefixExistenceSensor(
        task_id=task_id,
        bucket=config.lake_bucket,
        prefix=f"{folder}/",
        poke_interval=poke_interval.total_seconds(),
        **waiting,
    )


def beam_batch(
    task_id: str, pipeline: str, options: dict[str, str], *, execution_timeout: timedelta = timedelta(hours=2)
):
    """Run one of gcpipe's batch Beam pipelines (a module of gcpipe.deploy.naming.TEMPLATES) with ``options``:
    BeamRunPythonPipelineOperator, on the DirectRunner locally, on the DataflowRunner on gcp."""
    from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator

    from gcpipe.deploy.naming import TEMPLATES

    config = _config()
    where: dict = {"runner": "DirectRunner", "pipeline_options": dict(options)}
    if not config.is_local:
        from airflow.providers.google.cloud.operators.dataflow import DataflowConfiguration

        from gcpipe.orchestration.gcp_requests import dataflow_pipeline_options, service_account

        where = {
            "runner": "DataflowRunner",
            "pipeline_options": dataflow_pipeline_options(config, pipeline, options),
            "dataflow_config": DataflowConfiguration(
                job_name=run_name_template(f"gcpipe-{pipeline.replace('_', '-')}"),
                append_job_name=False,  # the name is the run's already: a retry finds its job by it
                project_id=config.project,
                location=config.region,
                service_account=service_account(config, "dataflow"),
                wait_until_finished=True,
            ),
        }
    return BeamRunPythonPipelineOperator(
        task_id=task_id,
        py_file=TEMPLATES[pipeline],
        py_options=["-m"],
        py_interpreter=sys.executable,
        execution_timeout=execution_timeout,
        **where,
    )


def sql(
    task_id: str,
    path: str,
    params: dict | None = None,
    *,
    check: bool = False,
    execution_timeout: timedelta = timedelta(minutes=30),
    **kwargs,
):
    """Run ``sql/<path>`` (transforms, seeds, DDL, BigQuery ML); ``check``: a data-quality check, which
    fails the task, naming the check and its count, when it finds offending rows."""
    config = _config()
    if config.is_local:
        return _python(
            task_id,
            "run_sql",
            {"path": path, "params": dict(params or {})},
            execution_timeout=execution_timeout,
            **kwargs,
        )
    from airflow.providers.google.cloud.operators.bigquery import BigQueryInsertJobOperator

    from gcpipe.orchestration.gcp_requests import query_job

    return BigQueryInsertJobOperator(
        task_id=task_id,
        configuration=query_job(config, path, params, check=check),
        project_id=config.project,
        location=config.region,
        execution_timeout=execution_timeout,
        **kwargs,
    )


def check(task_id: str, path: str, params: dict | None = None, *, retries: int = 0, **kwargs):
    """A data-quality check (``sql/checks/``): no retries by default, the data would not change."""
    return sql(task_id, path, params, check=True, retries=retries, **kwargs)


def spark_job(
    job: str,
    args: list[str] = (),
    *,
    serverless: bool | None = None,
    execution_timeout: timedelta = timedelta(hours=2),
) -> tuple:
    """SETUP create the job's cluster, BODY run ``job`` (gcpipe.spark.jobs) with ``args`` over its defaults,
    TEARDOWN delete the cluster, with TriggerRule.ALL_DONE: also when the job (or the creation) failed.
    The teardown does not decide the run's state: a failed job fails the run, the cluster is deleted.

    ``serverless`` (default: ``GCPIPE_SPARK_SERVERLESS=1``): on gcp, a Dataproc Serverless batch instead
    of a job cluster, the cluster steps then no-ops. Locally the cluster steps are no-ops (local[*]).
    Cluster names are the run's (``gcpipe-<job>-YYYYMMDD-<hash>``): unique per run, the same on a retry,
    which then reuses the cluster it made; a batch adds ``-try<N>``, since Dataproc never reuses a batch id.
    """
    config = _config()
    if serverless is None:
        serverless = os.environ.get("GCPIPE_SPARK_SERVERLESS", "").lower() in ("1", "true", "yes")
    name = run_name_template(f"gcpipe-{job.replace('_', '-')}")
    if config.is_local or serverless:
        from airflow.providers.standard.operators.empty import EmptyOperator

        no_cluster = "local[*]: no cluster" if config.is_local else "Dataproc Serverless: no cluster"
        create = EmptyOperator(task_id="create_cluster", doc_md=f"No-op ({no_cluster}).")
        delete = EmptyOperator(task_id="delete_cluster", doc_md=f"No-op ({no_cluster}).")
    if config.is_local:
        submit = _python(
            job, "spark_submit", {"job": job, "args": list(args)}, execution_timeout=execution_timeout
        )
    else:
        from airflow.providers.google.cloud.operators import dataproc

        from gcpipe.orchestration import gcp_requests

        where = {"project_id": config.project, "region": config.region}
        if serverless:
            submit = dataproc.DataprocCreateBatchOperator(
                # a batch id is never reused, even by a failed batch: each try gets its own
                task_id=job,
                batch=gcp_requests.dataproc_batch(job, config, list(args)),
                batch_id=name + "-try{{ ti.try_number }}",
                execution_timeout=execution_timeout,
                **where,
            )
        else:
            create = dataproc.DataprocCreateClusterOperator(
                task_id="create_cluster",
                cluster_name=name,
                use_if_exists=True,
                delete_on_error=True,
                **gcp_requests.dataproc_cluster(job, config),
                **where,
            )
            submit = dataproc.DataprocSubmitJobOperator(
                task_id=job,
                job=gcp_requests.dataproc_job(job, config, list(args), name),
                execution_timeout=execution_timeout,
                **where,
            )
            delete = dataproc.DataprocDeleteClusterOperator(
                task_id="delete_cluster", cluster_name=name, **where
            )
    create >> submit >> delete
    delete.as_teardown(setups=create)
    # as_teardown's rule runs it only after a successful setup; a creation that failed half-way can
    # leave a cluster (in ERROR, or still starting) that costs until deleted, so: ALL_DONE.
    delete.trigger_rule = TriggerRule.ALL_DONE
    return create, submit, delete


def move_files(task_id: str, source: str, destination: str, *, trigger_rule: str = TriggerRule.ALL_SUCCESS):
    """Move every file under the lake folder ``source`` to ``destination``, keeping relative paths."""
    config = _config()
    if config.is_local:
        return _python(
            task_id, "move_files", {"source": source, "destination": destination}, trigger_rule=trigger_rule
        )
    from airflow.providers.google.cloud.transfers.gcs_to_gcs import GCSToGCSOperator

    return GCSToGCSOperator(
        task_id=task_id,
        source_bucket=config.lake_bucket,
        source_object=f"{source}/",
        destination_bucket=config.lake_bucket,
        destination_object=f"{destination}/",
        move_object=True,
        trigger_rule=trigger_rule,
    )


def _start_or_update(
    job_name: str,
    then: str,
    project_id: str | None = None,
    location: str | None = None,
    params: dict | None = None,
) -> list[str]:
    """The branches to take: start the streaming job if none of that name runs; update it in place if
    one runs and the run asks for it (param ``update``: a new version was deployed); else neither. The
    task ``then`` (the freshness check) always runs."""
    if project_id is None:
        from gcpipe.orchestration.local_steps import streaming_pid

        running = streaming_pid(job_name) is not None
    else:
        from airflow.providers.google.cloud.hooks.dataflow import DataflowHook

        running = DataflowHook().is_job_dataflow_running(
            name=job_name, project_id=project_id, location=location
        )
    if not running:
        return ["start_streaming_job", then]
    return ["update_streaming_job", then] if (params or {}).get("update") else [then]


def streaming_job(
    template: str, options: dict[str, str], *, job_name: str, then: str, local_seconds: str = "0"
) -> tuple:
    """SETUP find the streaming job ``job_name``; BODY start it if it does not run, or (param ``update``)
    update it in place with the current code and ``options``; the task ``then`` follows either way.
    Returns (find, start, update); wire ``then`` downstream of all three.

    Locally the job is the pipeline in a process of its own (``local_seconds``: drain and stop after that
    long, 0 never); an update restarts it, and the pipeline's rebuild makes a restart lose nothing.
    """
    from airflow.providers.standard.operators.python import BranchPythonOperator

    config = _config()
    where = {} if config.is_local else {"project_id": config.project, "location": config.region}
    find = BranchPythonOperator(
        task_id="find_streaming_job",
        python_callable=_start_or_update,
        op_kwargs={"job_name": job_name, "then": then, **where},
    )
    if config.is_local:
        arguments = {"job": job_name, "options": dict(options), "seconds": local_seconds}
        start = _python("start_streaming_job", "start_streaming", arguments, retries=1)
        update = _python("update_streaming_job", "update_streaming", arguments, retries=1)
    else:
        from airflow.providers.google.cloud.operators.dataflow import DataflowStartFlexTemplateOperator

        from gcpipe.orchestration.gcp_requests import flex_template_launch

        args = [f"--{name}={value}" for name, value in options.items()]
        start, update = (
            DataflowStartFlexTemplateOperator(
                task_id=f"{verb}_streaming_job",
                body=flex_template_launch(config, template, args, job_name, update=verb == "update"),
                wait_until_finished=False,  # a streaming job never finishes: wait until it runs
                append_job_name=False,  # the job keeps its name: that is what an update finds
                **where,
            )
            for verb in ("start", "update")
        )
    find >> [start, update]
    return find, start, update


def flow(name: str):
    """A flow of the registry (gcpipe.flows.registry): its steps are the DAG's tasks, what they run and with
    which parameters, the same steps ``make demo`` runs."""
    from gcpipe.flows.registry import flow as find

    return find(name)


def task(step, *, params: dict | None = None, options: dict[str, str] | None = None, args=(), **kwargs):
    """The task of a flow's step, by its kind: a SQL file (``params`` over the step's own), a data-quality
    check, a batch Beam pipeline (``options``), or a Spark job (``args``; returns its cluster's three tasks)."""
    from gcpipe.flows import registry

    if step.kind in (registry.SQL, registry.CHECK):
        make = check if step.kind == registry.CHECK else sql
        return make(step.name, step.runs, {**step.params, **(params or {})}, **kwargs)
    if step.kind == registry.BEAM:
        return beam_batch(step.name, step.runs.removeprefix("pipelines."), options or {}, **kwargs)
    if step.kind == registry.SPARK:
        return spark_job(step.runs, list(args), **kwargs)
    raise ValueError(f"step {step.name} is a {step.kind} step: build it with its own operator function.")


def streaming_source() -> dict[str, str]:
    """Where the ride events come from: on gcp the rides subscription Terraform made; locally the rides
    topic on the Pub/Sub emulator (the pipeline makes its own subscription to it)."""
    from gcpipe.deploy.naming import Deployment, load_names

    config = _config()
    if config.is_local:
        return {"input_topic": load_names()["rides_topic"]}
    return {"input_subscription": Deployment(config).rides_subscription}
