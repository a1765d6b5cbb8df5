"""Rental recommendations with Spark ML ALS: for each user, the top accommodations they have not rated.

    python -m spark_jobs.als_recommend --source lake/landing/rentals --sink /tmp/recommendations    # local[*]
    gcpipe spark submit als_recommend --target gcp    # a job-specific Dataproc cluster (infra/dataproc)

The recommendation lab, on the DataFrame API: ALS learns from the ratings (user_id, acco_id, rating);
its RMSE is measured on a held-out split (``--test_fraction``, a fixed ``--seed``), against predicting
the mean rating; then a model trained on every rating scores each accommodation a user has not rated,
and the best ``--top`` per user are written with the predicted rating.

``--source`` is one of:

* a folder (local path or ``gs://``) holding the lab's ``accommodations.csv`` and ``ratings.csv``;
* ``bq://PROJECT.DATASET`` with the tables ``accommodations`` and ``ratings``;
* ``jdbc:postgresql://HOST:PORT/DATABASE`` with those tables (Cloud SQL, as the lab; locally the stack's
  PostgreSQL), read as ``--jdbc_user`` with the password behind ``--jdbc_password_secret``
  (``file:PATH``, ``env:NAME`` or a Secret Manager version; see gcpipe.core.secrets).

``--sink`` (repeatable) takes the same forms: a folder gets ``recommendations.parquet/``,
``recommendations.csv/`` and ``metrics.json``; BigQuery and JDBC get the table ``recommendations``
(replaced). Rows of either table that do not fit (a CSV line of the wrong field count, a value not of its
column's type, a REQUIRED value missing, a catalog rule broken such as rating BETWEEN 1 AND 5) are left
out, counted by reason in the metrics (read = used + rejected, per table) and written as dead letters with
their reason to ``--rejected`` (a folder; by default ``rejected/`` in the first folder sink).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

from gcpipe.core.config import ConfigError
from gcpipe.core.secrets import read_secret
from spark_jobs.common import (
    JDBC_DRIVER,
    arrow_table,
    bigquery_id,
    conform,
    job_schema,
    load_bigquery,
    log,
    remove,
    require_storage,
    row_checks,
    spark_session,
    write_dead_letters,
    write_json,
)
from spark_jobs.logs import UserError, add_options, progress, setup_logging, user_errors

TABLES = ("accommodations", "ratings")  # the source tables, named as their schemas in sql/schemas
OUTPUT = "recommendations"
CORRUPT = "_corrupt_record"  # a CSV line that does not split into the schema's fields


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="als_recommend", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", required=True, help="Folder, bq://PROJECT.DATASET or jdbc:postgresql://..."
    )
    parser.add_argument("--sink", action="append", required=True, help="Same forms as --source; repeatable.")
    parser.add_argument("--jdbc_user", default="gcpipe")
    parser.add_argument("--jdbc_password_secret", help="file:PATH, env:NAME or projects/.../versions/V.")
    parser.add_argument("--top", type=int, default=5, help="Recommendations per user.")
    parser.add_argument("--rank", type=int, default=8, help="ALS latent factors.")
    parser.add_argument("--max_iter", type=int, default=15)
    parser.add_argument("--reg_param", type=float, default=0.1)
    parser.add_argument("--test_fraction", type=float, default=0.2, help="Ratings held out to measure RMSE.")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--rejected", help="Folder URI for rejected rows (default: rejected/ in a folder sink)."
    )
    add_options(parser)
    args = parser.parse_args(argv)
    if any(uri.startswith("jdbc:") for uri in [args.source, *args.sink]) and not args.jdbc_password_secret:
        parser.error("a jdbc: source or sink needs --jdbc_password_secret.")
    for uri in [args.source, *args.sink]:
        if kind_of(uri) == "bigquery":
            try:
                bigquery_id(uri.removeprefix("bq://"), 2)
            except ConfigError as err:
                parser.error(f"{uri}: {err}")
    folders = [sink for sink in args.sink if kind_of(sink) == "folder"]
    if not args.rejected and not folders:
        parser.error("give --rejected FOLDER: no --sink is a folder to set rejected rows aside in.")
    args.rejected = args.rejected or f"{folders[0].rstrip('/')}/rejected"
    return args


def kind_of(uri: str) -> str:
    if uri.startswith("bq://"):
        return "bigquery"
    if uri.startswith("jdbc:"):
        return "jdbc"
    return "folder"


def jdbc_properties(args: argparse.Namespace) -> dict[str, str]:
    return {"user": args.jdbc_user, "password": read_secret(args.jdbc_password_secret), "driver": JDBC_DRIVER}


def read_table(spark, source: str, table: str, args: argparse.Namespace):
    """One source table as read: its schema's columns (CSV cells as text), ``raw``, ``source`` and, from a
    CSV, the line that did not split into the schema's fields (``CORRUPT``)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    schema = job_schema(table)
    kind = kind_of(source)
    if kind == "folder":  # as text, typed by check_rows: a value that is not a number is rejected, not NULL
        text = StructType([StructField(name, StringType()) for name in [*schema.names, CORRUPT]])
        frame = spark.read.csv(
            f"{source.rstrip('/')}/{table}.csv",
            schema=text,
            mode="PERMISSIVE",
            columnNameOfCorruptRecord=CORRUPT,
        )
        cells = [F.coalesce(F.col(name), F.lit("")) for name in schema.names]
        raw = F.coalesce(F.col(CORRUPT), F.concat_ws(",", *cells))
        return frame.select(
            *schema.names, CORRUPT, raw.alias("raw"), F.col("_metadata.file_path").alias("source")
        )
    if kind == "jdbc":
        frame = spark.read.jdbc(source, table, properties=jdbc_properties(args))
    else:  # small lab tables: through the client library, like every BigQuery access of the jobs
        from google.cloud import bigquery

        project, dataset = bigquery_id(source.removeprefix("bq://"), 2)
        table_id = f"{project}.{dataset}.{table}"
        rows = bigquery.Client(project=project).list_rows(table_id).to_arrow(create_bqstorage_client=False)
        nullable = StructType([StructField(f.name, f.dataType, True) for f in schema.to_spark().fields])
        frame = spark.createDataFrame(rows.to_pandas(), schema=nullable)  # REQUIRED: checked, with a reason
    return conform(frame, schema).select(
        *schema.names,
        F.lit(None).cast("string").alias(CORRUPT),
        F.to_json(F.struct(*schema.names)).alias("raw"),
        F.lit(f"{source} table {table}").alias("source"),
    )


def check_rows(frame, table: str):
    """(rows of ``table``'s schema fit for use, rejected rows as dead letters, {reason or None: rows}).

    A row is rejected with the first reason that applies: a line that is not the schema's fields, a value
    not of its column's type, then the checks of ``row_checks`` (REQUIRED, the catalog's rules).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    schema = job_schema(table)
    fields = schema.to_spark().fields
    reasons = [(f"wrong_column_count: not a line of {len(fields)} fields", F.col(CORRUPT).isNotNull())]
    reasons += [
        (
            f"{f.name}: not a valid {schema.field(f.name).type}",
            F.col(f.name).isNotNull() & F.col(f.name).try_cast(f.dataType).isNull(),
        )
        for f in fields
        if not isinstance(f.dataType, StringType)
    ]
    typed = frame.select(
        *[F.col(f.name).try_cast(f.dataType).alias(f.name) for f in fields],
        "raw",
        "source",
        first_reason(reasons).alias("_reason"),
    )
    checked = typed.withColumn("_reason", F.coalesce("_reason", first_reason(row_checks(table, schema))))
    checked = checked.cache()
    counts = {row["_reason"]: row["count"] for row in checked.groupBy("_reason").count().collect()}
    rejected = checked.filter(F.col("_reason").isNotNull()).select(
        "source", "raw", F.col("_reason").alias("reason")
    )
    used = checked.filter(F.col("_reason").isNull()).select(*schema.names)
    return used, rejected, counts


def first_reason(checks):
    """The text of the first (reason, failing condition) that fails, else NULL."""
    from pyspark.sql import functions as F

    reason = F.lit(None).cast("string")
    for text, failed in reversed(checks):
        reason = F.when(failed, F.lit(text)).otherwise(reason)
    return reason


def recommend(spark, accommodations, ratings, args: argparse.Namespace):
    """(recommendations DataFrame, metrics): RMSE on a held-out split, then top ``args.top`` per user."""
    from pyspark.ml.evaluation import RegressionEvaluator
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if spark.sparkContext.getCheckpointDir() is None:  # without one, ALS's lineage grows with every iteration
        raise UserError("als_recommend: set spark.checkpoint.dir: ALS checkpoints its iterations there.")
    blocks = spark.sparkContext.defaultParallelism  # ALS's default of 10 blocks is for clusters
    als = ALS(
        userCol="user_id",
        itemCol="acco_id",
        ratingCol="rating",
        rank=args.rank,
        maxIter=args.max_iter,
        regParam=args.reg_param,
        seed=args.seed,
        coldStartStrategy="drop",
        nonnegative=True,
        numUserBlocks=blocks,
        numItemBlocks=blocks,
        checkpointInterval=5,
    )
    training = ratings.withColumn("rating", F.col("rating").cast("float")).localCheckpoint()
    train, test = training.randomSplit([1 - args.test_fraction, args.test_fraction], seed=args.seed)
    evaluator = RegressionEvaluator(metricName="rmse", labelCol="rating", predictionCol="prediction")
    rmse = evaluator.evaluate(als.fit(train).transform(test))
    mean_rating = train.agg(F.avg("rating")).first()[0]
    baseline_rmse = evaluator.evaluate(test.withColumn("prediction", F.lit(mean_rating)))

    model = als.fit(training)
    users = training.select("user_id").distinct()
    unseen = users.crossJoin(accommodations.select(F.col("id").alias("acco_id"))).join(
        training.select("user_id", "acco_id"), ["user_id", "acco_id"], "left_anti"
    )
    by_prediction = Window.partitionBy("user_id").orderBy(F.desc("prediction"), F.asc("acco_id"))
    generated_at = datetime.now(UTC)
    recommendations = (
        model.transform(unseen)  # accommodations nobody rated cannot be scored: coldStartStrategy drops them
        .withColumn("rank", F.row_number().over(by_prediction))
        .filter(F.col("rank") <= args.top)
        .withColumn("generated_at", F.lit(generated_at))
    )
    recommendations = conform(recommendations, job_schema(OUTPUT)).cache()
    metrics = {
        "rmse": round(rmse, 4),
        "baseline_rmse": round(baseline_rmse, 4),
        "baseline": "predict the mean training rating",
        "test_fraction": args.test_fraction,
        "seed": args.seed,
        "rank": args.rank,
        "max_iter": args.max_iter,
        "reg_param": args.reg_param,
        "users": users.count(),
        "recommendations": recommendations.count(),
        "generated_at": generated_at.isoformat(timespec="seconds"),
    }
    return recommendations, metrics


def write_sink(recommendations, sink: str, metrics: dict, args: argparse.Namespace) -> str:
    kind = kind_of(sink)
    if kind == "folder":
        folder = sink.rstrip("/")
        single = recommendations.coalesce(1).write.mode("overwrite")
        single.parquet(f"{folder}/{OUTPUT}.parquet")
        single.option("header", True).csv(f"{folder}/{OUTPUT}.csv")
        write_json(folder, "metrics.json", metrics)
        return folder
    if kind == "jdbc":  # truncate keeps the table's definition when it exists
        recommendations.write.option("truncate", "true").jdbc(
            sink, OUTPUT, "overwrite", jdbc_properties(args)
        )
        return f"{sink} table {OUTPUT}"
    project, dataset = bigquery_id(sink.removeprefix("bq://"), 2)
    schema = job_schema(OUTPUT)
    return load_bigquery(
        arrow_table(recommendations.toPandas(), schema), f"{project}.{dataset}.{OUTPUT}", schema
    )


def run(spark, args: argparse.Namespace) -> dict:
    started = time.monotonic()
    used, counts, letters = {}, {}, []
    log.info("reading %s from %s", " and ".join(TABLES), args.source)
    for table in TABLES:
        used[table], rejected, counts[table] = check_rows(read_table(spark, args.source, table, args), table)
        letters.append(rejected)
    accommodations, ratings = used["accommodations"], used["ratings"]
    read = {table: sum(counts[table].values()) for table in TABLES}  # read = used + rejected, per table
    kept = {table: counts[table].pop(None, 0) for table in TABLES}  # the rows without a reason: used
    if any(counts.values()):
        write_dead_letters(letters[0].unionByName(letters[1]), args.rejected)
    else:  # no stale rejects from an earlier run
        parent, _, name = args.rejected.rstrip("/").rpartition("/")
        remove(parent or ".", name)
    if ratings.isEmpty():
        raise UserError(
            f"als_recommend: no valid rating in {args.source} (rejected: {counts['ratings'] or 'none read'})."
        )
    recommendations, metrics = recommend(spark, accommodations, ratings, args)
    metrics.update(source=args.source, read=read)
    for table in TABLES:
        metrics[table] = kept[table]
        metrics[f"rejected_{table}"] = counts[table]
    metrics["rejected"] = args.rejected if any(counts.values()) else None
    log.info(
        "RMSE %.3f on %.0f%% held out (the mean rating: %.3f)",
        metrics["rmse"],
        100 * args.test_fraction,
        metrics["baseline_rmse"],
    )
    metrics["sinks"] = [write_sink(recommendations, sink, metrics, args) for sink in args.sink]
    log.info("wrote the recommendations to %s", ", ".join(metrics["sinks"]))
    metrics["seconds"] = round(time.monotonic() - started, 2)
    return metrics


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    setup_logging("als_recommend", args)
    with user_errors("als_recommend"):
        require_storage("als_recommend", args.source, args.rejected, *args.sink)
        spark = spark_session("als_recommend")
        with progress(spark, args.progress_seconds):
            metrics = run(spark, args)
    print(json.dumps(metrics))
    return metrics


if __name__ == "__main__":
    main()
