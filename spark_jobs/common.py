"""What the Spark jobs share: the session, the table schemas, and the sinks for small results.

Jobs never branch on the target. They take URIs (a local path or ``gs://...``, ``bq://PROJECT.DATASET``,
``jdbc:postgresql://HOST:PORT/DATABASE``) and run unchanged under ``python -m spark_jobs.<job>`` (a
``local[*]`` session), ``spark-submit``, or Dataproc. Small results (aggregates, reports, metrics) are
written from the driver with pyarrow, whose filesystem layer reads both local paths and ``gs://``.

On Dataproc the jobs import this package and a few gcpipe modules from the zip ``gcpipe spark submit``
stages (``--py-files``), and read the schema files shipped beside it (``--files``).
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from gcpipe.core.config import ConfigError, validate_dataset_id, validate_table_id
from gcpipe.core.jars import GCS_CONNECTOR, POSTGRESQL_JDBC
from gcpipe.core.schemas import SCHEMA_DIR, TABLES_FILE, Rule, Schema, load_schema
from gcpipe.warehouse.load import load_arrow
from spark_jobs import logs

JDBC_DRIVER = "org.postgresql.Driver"

# A local session on a laptop: no web UI, few shuffle partitions, the jars on the class path,
# checkpoints (iterative jobs such as ALS cut their lineage there) in the temp folder, removed when unused.
LOCAL_CONF = {
    "spark.ui.enabled": "false",
    # the driver's RPC and block manager listen on loopback, like every local service (not on the LAN)
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.driver.memory": "2g",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.checkpoint.dir": str(Path(tempfile.gettempdir()) / "gcpipe-spark-checkpoints"),
    "spark.cleaner.referenceTracking.cleanCheckpoints": "true",
    # The code Spark generates to type a 42-column KDD line outgrows 8,000 bytes of bytecode, which the JVM
    # leaves interpreted by default (measured here: the real 10% file's analysis 12.1 s, 9.9 s with this).
    "spark.driver.extraJavaOptions": "-XX:-DontCompileHugeMethods",
}

# Google's GCS connector, as Dataproc's image configures it: gs:// is a Hadoop file system.
GCS_CONNECTOR_CONF = {
    "fs.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem",
    "fs.AbstractFileSystem.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFS",
}
# The connector pointed at the local storage emulator (STORAGE_EMULATOR_HOST) instead of Google's endpoint.
EMULATOR_CONNECTOR_CONF = {
    "fs.gs.storage.root.url": "{host}/",
    "fs.gs.storage.service.path": "storage/v1/",
    "fs.gs.project.id": "{project}",
    "fs.gs.auth.type": "UNAUTHENTICATED",
    # connector 4.x probes a bucket's hierarchical namespace (GET .../storageLayout, 404 on emulators) and
    # renames with the objects.move call (unknown to them): plain buckets rename by copy + delete
    "fs.gs.hierarchical.namespace.folders.enable": "false",
    "fs.gs.operation.move.enable": "false",
    # before a create it looks up each parent as an object in one batch; the emulator answers those with an
    # empty 404 body, which the connector takes for an error, not "no such object"
    "fs.gs.create.items.conflict.check.enable": "false",
}

log = logging.getLogger("spark_jobs")


def spark_session(app_name: str):
    """The running session (spark-submit, Dataproc, a test's), else a new ``local[*]`` one."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    if "PYSPARK_GATEWAY_PORT" not in os.environ:  # not launched by spark-submit: run locally
        # Python workers run the driver's interpreter (the venv), not whichever python3 is first on PATH
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master(os.environ.get("GCPIPE_SPARK_MASTER", "local[*]"))
        for key, value in logs.quiet_conf(local_conf(), app_name).items():
            builder = builder.config(key, value)
        with logs.jvm_output_to_log(app_name):  # Spark's log to the job's log file (spark_jobs.logs)
            spark = builder.getOrCreate()
    else:
        spark = builder.getOrCreate()
        logs.apply_driver_log_levels(spark)
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    for key, value in connector_conf(os.environ).items():  # also under spark-submit, which has no builder
        hadoop.set(key, value)
    return spark


def local_conf() -> dict[str, str]:
    """The local session's properties: LOCAL_CONF and the pinned jars on the driver's class path."""
    jars = [GCS_CONNECTOR.require(), POSTGRESQL_JDBC.require()]
    return {**LOCAL_CONF, "spark.driver.extraClassPath": ":".join(jars)}


def connector_conf(env) -> dict[str, str]:
    """The Hadoop properties of the GCS connector: against the local emulator when ``env`` names one."""
    if not (host := env.get("STORAGE_EMULATOR_HOST")):
        return dict(GCS_CONNECTOR_CONF)
    names = {"host": host.rstrip("/"), "project": env.get("GOOGLE_CLOUD_PROJECT", "gcpipe-local")}
    return {**GCS_CONNECTOR_CONF, **{k: v.format(**names) for k, v in EMULATOR_CONNECTOR_CONF.items()}}


def require_storage(job: str, *uris: str) -> None:
    """Locally gs:// is the storage emulator's bucket: if the emulator does not answer, say so at once (the
    connector would retry for minutes, then print a Java stack trace)."""
    host = os.environ.get("STORAGE_EMULATOR_HOST")
    if not host or not any(uri.startswith("gs://") for uri in uris if uri):
        return
    address = urlsplit(host)
    try:
        socket.create_connection((address.hostname, address.port or 80), timeout=2).close()
    except OSError:
        raise SystemExit(
            f"{job}: the storage emulator at {host} (STORAGE_EMULATOR_HOST) does not answer: start it with "
            "`gcpipe up`."
        ) from None


def _shipped(path: Path) -> Path:
    """``path`` in the checkout, or on Dataproc the copy shipped with the job (``--files``)."""
    candidates = [path, Path.cwd() / path.name]
    try:
        from pyspark import SparkFiles

        candidates.append(Path(SparkFiles.get(path.name)))
    except Exception:  # noqa: S110 (no active SparkContext: the first two places are all there is)
        pass
    return next((candidate for candidate in candidates if candidate.exists()), path)


def job_schema(name: str) -> Schema:
    """A table schema from sql/schemas (or the copy shipped with the job)."""
    return load_schema(_shipped(SCHEMA_DIR / f"{name}.json"))


def row_checks(table: str, schema: Schema) -> list[tuple[str, object]]:
    """(reason, failing condition) per REQUIRED column and per catalog rule of ``table``, as Spark columns.

    The checks ``RowValidator`` makes, for a frame already cast to the schema (so a value that was not a
    number is NULL by now). A rule's text is SQL, and NULL passes it, as in ``Rule.holds``.
    """
    from pyspark.sql import functions as F

    checks = [
        (f"{f.name}: missing or not a valid {f.type}", F.col(f.name).isNull())
        for f in schema.fields
        if f.required
    ]
    return checks + [
        (f"violates rule {rule.text}", ~F.expr(rule.text)) for rule in catalog_rules(table, schema)
    ]


def catalog_rules(table: str, schema: Schema) -> list[Rule]:
    """The rules sql/tables.json (or the copy shipped with the job) sets on ``table``."""
    catalog = json.loads(_shipped(TABLES_FILE).read_text())
    return [Rule.parse(text, schema) for text in catalog.get(table, {}).get("rules", ())]


def write_dead_letters(letters, folder: str) -> None:
    """Rejected records (columns ``source``, ``raw``, ``reason``; ``line`` if known) as JSON lines of the
    dead-letter schema (sql/schemas/dead_letter.json) in the folder URI ``folder``, replaced."""
    from pyspark.sql import functions as F

    for column in ("line", "partition_date"):
        if column not in letters.columns:
            letters = letters.withColumn(column, F.lit(None))
    letters = letters.withColumn("loaded_at", F.current_timestamp())
    conform(letters, job_schema("dead_letter")).coalesce(1).write.mode("overwrite").json(folder)


def conform(df, schema: Schema):
    """``df`` with the schema's columns, in its order and types (JDBC and BigQuery sources type loosely)."""
    from pyspark.sql import functions as F

    spark_schema = schema.to_spark()
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in spark_schema.fields])


# -- small results, written from the driver ------------------------------------------------------


def _hadoop_path(uri: str):
    """``uri`` (a local path or gs://) as a Hadoop path and its file system: the GCS connector for gs://,
    as Dataproc reaches Cloud Storage, so small results take the same road as the frames."""
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        raise RuntimeError("small results are written through the job's Spark session: start it first.")
    if "://" not in uri:
        uri = Path(uri).absolute().as_uri()
    path = spark._jvm.org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(spark._jsc.hadoopConfiguration())


def write_bytes(folder: str, name: str, data: bytes) -> str:
    """Write ``folder/name`` (local or gs://), replacing it; return its URI."""
    uri = f"{folder.rstrip('/')}/{name}"
    path, fs = _hadoop_path(uri)
    out = fs.create(path, True)
    try:
        out.write(bytearray(data))
    finally:
        out.close()
    return uri


def write_json(folder: str, name: str, payload: dict) -> str:
    return write_bytes(folder, name, (json.dumps(payload, indent=2, default=str) + "\n").encode())


def write_table(folder: str, name: str, table: pa.Table) -> list[str]:
    """``folder/name.parquet`` and ``folder/name.csv`` (with a header); return their URIs."""
    parquet, csv = io.BytesIO(), io.BytesIO()
    pq.write_table(table, parquet)
    pacsv.write_csv(table, csv)
    return [
        write_bytes(folder, f"{name}.parquet", parquet.getvalue()),
        write_bytes(folder, f"{name}.csv", csv.getvalue()),
    ]


def remove(folder: str, name: str) -> None:
    """Delete ``folder/name`` (a file or a folder) if it exists: no stale output from an earlier run."""
    path, fs = _hadoop_path(f"{folder.rstrip('/')}/{name}")
    fs.delete(path, True)


def load_bigquery(table: pa.Table, table_id: str, schema: Schema) -> str:
    """Replace BigQuery table ``project.dataset.table`` with ``table`` (a load job from Parquet).

    Through the client library rather than the Spark BigQuery connector: results are small, and the
    same code runs against the local emulator (``BIGQUERY_EMULATOR_HOST``) and BigQuery.
    """
    from google.cloud import bigquery

    project = bigquery_id(table_id, 3)[0]
    load_arrow(bigquery.Client(project=project), table, schema, table_id)
    return table_id


def bigquery_id(text: str, parts: int) -> list[str]:
    """``PROJECT.DATASET`` (``parts=2``) or ``PROJECT.DATASET.TABLE`` split into its names, each checked by
    gcpipe's one validator; else one clear error (ConfigError)."""
    validate = validate_table_id if parts == 3 else validate_dataset_id
    names = validate(text).split(".")
    if len(names) != parts:
        form = "PROJECT.DATASET.TABLE" if parts == 3 else "PROJECT.DATASET"
        raise ConfigError(f"{text!r} needs its project: write {form}.")
    return names


def arrow_table(frame, schema: Schema) -> pa.Table:
    """A pandas frame as a pyarrow table of the schema's columns and types."""
    return pa.Table.from_pandas(frame[schema.names], schema=schema.to_arrow(), preserve_index=False)
