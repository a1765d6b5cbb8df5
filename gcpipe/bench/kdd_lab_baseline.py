"""The baseline of the ``spark_kdd`` benchmark: the same KDD analysis written the Dataproc lab's way.

    python -m gcpipe.bench.kdd_lab_baseline INPUT OUTPUT

As the lab: ``sc.textFile``, then Python lambdas on the RDD (``map`` to split and type every line,
``filter`` out what does not parse, ``reduceByKey`` to count), ``SQLContext.createDataFrame`` and SQL on a
temporary table for the per-protocol and per-state statistics. It computes what spark_jobs.kdd_analysis
computes (the five aggregates, malformed lines counted by kind) with the same local Spark settings; only
the way differs. It is spared some work: each aggregate is written as CSV only (as the lab did), with no
Parquet and no report charts.
"""

from __future__ import annotations

import sys

from gcpipe.kdd import ATTACK_CATEGORY, NORMAL_LABEL, UNKNOWN_CATEGORY

INTEGER = {0, *range(4, 24), 31, 32}  # the INTEGER columns of kdd_connections; 1-3 and 41 are strings
STRING = {1, 2, 3, 41}


def parse(line: str):
    """(kind, None) for a malformed line, else (None, the typed cells): the lab's map, with checks."""
    cells = line.split(",")
    if len(cells) != 42:
        return "wrong_column_count", None
    if any(cells[i] == "" for i in range(42)):
        return "empty_field", None
    try:
        return None, [c if i in STRING else int(c) if i in INTEGER else float(c) for i, c in enumerate(cells)]
    except ValueError:
        return "non_numeric", None


def main(argv: list[str]) -> None:
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import Row, SQLContext

    from spark_jobs.common import local_conf

    source, output = argv
    sc = SparkContext(
        master="local[*]", appName="kdd-lab", conf=SparkConf().setAll(list(local_conf().items()))
    )
    sc.setLogLevel("WARN")
    sql_context = SQLContext(sc)

    checked = sc.textFile(source).map(parse).cache()
    malformed = dict(
        checked.filter(lambda r: r[0] is not None)
        .map(lambda r: (r[0], 1))
        .reduceByKey(lambda a, b: a + b)
        .collect()
    )
    parsed = checked.filter(lambda r: r[0] is None).map(lambda r: r[1])
    connections = parsed.map(lambda r: Row(
        duration=r[0], protocol_type=r[1], service=r[2], flag=r[3], src_bytes=r[4], dst_bytes=r[5],
        num_failed_logins=r[10], num_compromised=r[12], su_attempted=r[14], num_root=r[15],
        num_file_creations=r[16], label=r[41],
    ))  # fmt: skip
    sql_context.createDataFrame(connections).registerTempTable("connections")
    total = sql_context.sql("SELECT COUNT(*) AS n FROM connections").collect()[0]["n"]

    label_counts = parsed.map(lambda r: (r[41], 1)).reduceByKey(lambda a, b: a + b).collect()
    by_label = [
        (label, ATTACK_CATEGORY.get(label.rstrip("."), UNKNOWN_CATEGORY), n, n / total)
        for label, n in label_counts
    ]
    categories = sc.parallelize(by_label).map(lambda r: (r[1], (r[2], 1))).reduceByKey(
        lambda a, b: (a[0] + b[0], a[1] + b[1])).collect()  # fmt: skip
    services = parsed.filter(lambda r: r[41] != NORMAL_LABEL).map(
        lambda r: ((r[2], ATTACK_CATEGORY.get(r[41].rstrip("."), UNKNOWN_CATEGORY)), 1)).reduceByKey(
        lambda a, b: a + b).collect()  # fmt: skip

    frames = {
        "connections_by_protocol": sql_context.sql(
            f"SELECT protocol_type, COUNT(*) AS connections, COUNT(*) / {total} AS share FROM connections "
            "GROUP BY protocol_type ORDER BY connections DESC"
        ),
        "attack_stats": sql_context.sql(f"""
            SELECT protocol_type, CASE label WHEN '{NORMAL_LABEL}' THEN 'no attack' ELSE 'attack' END AS state,
                   COUNT(*) AS connections, AVG(src_bytes) AS mean_src_bytes, AVG(dst_bytes) AS mean_dst_bytes,
                   AVG(duration) AS mean_duration, SUM(num_failed_logins) AS total_failed_logins,
                   SUM(num_compromised) AS total_compromised, SUM(num_file_creations) AS total_file_creations,
                   SUM(su_attempted) AS total_root_attempts, SUM(num_root) AS total_root_accesses
            FROM connections GROUP BY protocol_type, state ORDER BY connections DESC"""),
        "connections_by_label": sql_context.createDataFrame(
            by_label, "label string, attack_category string, connections long, share double"),
        "connections_by_category": sql_context.createDataFrame(
            [(c, n, n / total, labels) for c, (n, labels) in categories],
            "attack_category string, connections long, share double, labels long"),
        "top_attacked_services": sql_context.createDataFrame(
            [(s, c, n) for (s, c), n in services], "service string, attack_category string, attacks long"
        ).groupBy("service").sum("attacks").orderBy("sum(attacks)", ascending=False).limit(10),
    }  # fmt: skip
    for name, frame in frames.items():
        frame.coalesce(1).write.mode("overwrite").option("header", True).csv(f"{output}/{name}")
    print({"rows": total + sum(malformed.values()), "valid": total, "malformed": malformed})
    sc.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
