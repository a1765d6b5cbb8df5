"""The requests each DAG step sends on gcp, built from the helpers the CLI uses (nothing written twice):

* Dataproc: the job cluster of ``infra/dataproc/cluster.yaml``, the PySpark job, or the Serverless batch of
  ``serverless.yaml`` (:mod:`gcpipe.deploy.dataproc`, as ``gcpipe spark submit --target gcp`` sends them),
  running the code ``deploy dags`` staged for the deployed version (``code/<tag>/`` in the staging bucket),
  turned into the Dataproc API's field names, which the Google operators take;
* Dataflow: a batch pipeline's options on the DataflowRunner with the image ``make build-templates``
  built, and the flex-template launch of the streaming template, their options checked against the
  template's ``metadata.json`` (:func:`gcpipe.deploy.plans.template_parameters`);
* BigQuery: a query job for a SQL file, its ``{{ names }}`` filled from the configuration and its values
  as named query parameters (:mod:`gcpipe.warehouse.script`, :mod:`gcpipe.warehouse.params`); a data-quality check
  becomes a job that fails, naming the check and its count, when the check finds offending rows.

Values that depend on the run (dates, names) may be Airflow templates (``{{ ... }}``): the operators render
them when the task runs; a templated query parameter travels as a STRING.
"""

from __future__ import annotations

import json
from pathlib import Path

from gcpipe.core.config import PROJECT_ROOT, Config
from gcpipe.deploy.dataproc import batch_request, cluster_job, job_cluster
from gcpipe.deploy.naming import Deployment, deployed_tag
from gcpipe.deploy.plans import template_parameters
from gcpipe.spark.jobs import get_job, job_args
from gcpipe.warehouse.params import ParameterError, query_parameter
from gcpipe.warehouse.script import parse_script

SQL_DIR = PROJECT_ROOT / "sql"


def _api_fields(message_type, resource: dict) -> dict:
    """A REST resource (camelCase, as infra/dataproc and gcloud write it) as the client library's dict
    (snake_case), which the Dataproc operators take; a field the API does not know is an error here."""
    message = message_type.from_json(json.dumps(resource))
    return message_type.to_dict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=False
    )


# -- Dataproc ---------------------------------------------------------------------------------------


def dataproc_cluster(job: str, config: Config) -> dict:
    """``cluster_config`` and ``labels`` of the job's cluster (DataprocCreateClusterOperator)."""
    from google.cloud import dataproc_v1

    cluster = job_cluster(get_job(job), config)
    return {
        "cluster_config": _api_fields(dataproc_v1.ClusterConfig, cluster["config"]),
        "labels": cluster["labels"],
    }


def dataproc_job(job: str, config: Config, args: list[str], cluster_name: str) -> dict:
    """The Job resource that runs ``job`` with ``args`` (over its defaults) on ``cluster_name``
    (DataprocSubmitJobOperator), labelled as the cluster is."""
    from google.cloud import dataproc_v1

    spark_job = get_job(job)
    resource = {
        "reference": {"projectId": config.project},
        "placement": {"clusterName": cluster_name},
        "pysparkJob": cluster_job(spark_job, config, job_args(spark_job, config, args), tag=deployed_tag()),
        "labels": job_cluster(spark_job, config)["labels"],
    }
    return _api_fields(dataproc_v1.Job, resource)


def dataproc_batch(job: str, config: Config, args: list[str]) -> dict:
    """The Serverless Batch resource that runs ``job`` with ``args`` (DataprocCreateBatchOperator)."""
    from google.cloud import dataproc_v1

    spark_job = get_job(job)
    batch = batch_request(spark_job, config, job_args(spark_job, config, args), tag=deployed_tag())
    return _api_fields(dataproc_v1.Batch, batch)


# -- Dataflow ---------------------------------------------------------------------------------------


def service_account(config: Config, workload: str) -> str:
    """The service account a workload (``dataflow``, ``dataproc``) runs as, of the deployment's names."""

    return Deployment(config).service_account(workload)


def deployed_image(config: Config, template: str) -> str:
    """The image ``make build-templates`` built for ``template``, of the deployed version
    (:func:`gcpipe.deploy.naming.deployed_tag`: on Composer the tag ``deploy dags`` recorded in the bundle)."""

    return Deployment(config, tag=deployed_tag()).image(template)


def dataflow_pipeline_options(config: Config, template: str, options: dict[str, str]) -> dict:
    """``pipeline_options`` of BeamRunPythonPipelineOperator on the DataflowRunner: the pipeline's options
    (checked against its template's ``metadata.json``), and how the job runs, as ``make build-templates``
    set its template up: the workers run the pipeline's image (every package inside, nothing installed at
    start), stage in the staging bucket, on the private subnetwork without public IPs. The project, region,
    job name and service account come from the operator's DataflowConfiguration."""

    deployment = Deployment(config)
    args = tuple(f"--{name}={value}" for name, value in options.items())
    return {
        **template_parameters(deployment, template, args),
        "temp_location": f"{deployment.staging}/temp",
        "staging_location": f"{deployment.staging}/staging",
        "subnetwork": deployment.subnetwork,
        "no_use_public_ips": True,
        "sdk_container_image": deployed_image(config, template),
        "sdk_location": "container",
    }


def flex_template_launch(
    config: Config, template: str, args: list[str], job_name: str, update: bool = False
) -> dict:
    """The body of ``flexTemplates.launch`` for one of gcpipe's templates (DataflowStartFlexTemplateOperator).

    The template spec carries the service account, subnetwork, private IPs, staging and temp locations
    ``make build-templates`` gave it; ``update`` replaces the running job of that name in place.
    """

    deployment = Deployment(config)
    launch = {
        "jobName": job_name,
        "containerSpecGcsPath": deployment.template_spec(template),
        "parameters": template_parameters(deployment, template, tuple(args)),
    }
    if update:
        launch["update"] = True
    return {"launchParameter": launch}


# -- BigQuery ---------------------------------------------------------------------------------------

_FAILING_CHECK = (  # the message of gcpipe.warehouse.runner's checks; `unit` is optional, hence via TO_JSON
    'SELECT check_name, IF(failures > 0, ERROR(FORMAT("check %s failed: %\'d %s%s", check_name, failures, '
    "IFNULL(JSON_VALUE(TO_JSON(c), '$.unit'), 'offending row'), IF(failures = 1, '', 's'))), failures) "
    "AS failures\nFROM (\n{check}\n) AS c"
)


def query_job(config: Config, path: str, params: dict | None = None, *, check: bool = False) -> dict:
    """The ``configuration`` of a BigQuery query job that runs ``sql/<path>`` (BigQueryInsertJobOperator).

    ``check``: the file is a data-quality check (rows of ``check_name, failures``); the job then fails
    with ``check <name> failed: <n> offending rows`` (or the check's ``unit``) when a check finds any, so the
    task fails too.
    """

    file = SQL_DIR / path
    script = parse_script(Path(file).read_text(), config.template_vars(), str(file))
    params = dict(params or {})
    missing = sorted(script.parameters - set(params))
    if missing:
        raise ParameterError(f"{path} needs a value for @{missing[0]}.")
    if check:
        query = ";\n".join(_FAILING_CHECK.format(check=s.text) for s in script.statements)
    else:
        query = script.text
    query_config: dict = {"query": query, "useLegacySql": False}
    if script.parameters:
        query_config["parameterMode"] = "NAMED"
        query_config["queryParameters"] = [
            query_parameter(name, params[name]).to_api_repr() for name in sorted(script.parameters)
        ]
    return {"query": query_config, "labels": {"app": "gcpipe", "sql": _label(path)}}


def _label(path: str) -> str:
    """A BigQuery label value for a SQL file: lowercase letters, digits, - and _, at most 63."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in path.removesuffix(".sql").lower())[:63]
