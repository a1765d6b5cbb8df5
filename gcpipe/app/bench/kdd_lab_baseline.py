"""The baseline of the ``spark_kdd`` benchmark: the same KDD analysis written the Dataproc lab's way.

    python -m gcpipe.app.bench.kdd_lab_baseline INPUT OUTPUT

As the lab: ``sc.textFile``, then Python lambdas on the RDD (``map`` to split and type every line,
``filter`` out what does not parse, ``reduceByKey`` to count), ``SQLContext.createDataFrame`` and SQL on a
temporary table for the per-protocol and per-state statistics. It computes what spark_jobs.kdd_analysis
computes (the five aggregates, malformed lines counted by kind, the column types and range rules of
kdd_connections from the catalog) with the same local Spark settings; only the way differs
(tests/unit/test_kdd_analysis.py compares the two). It is spared some work: each aggregate is written as
CSV only (as the lab did), with no Parquet, no report charts and no dead letters.
"""

from __future__ import annotations

import sys
from operator import itemgetter

from gcpipe.core.kdd import ATTACK_CATEGORY, NORMAL_LABEL, UNKNOWN_CATEGORY
from gcpipe.core.schemas import table_spec
from spark_jobs.common import local_conf

CONNECTIONS = table_spec("kdd_connections")
NAMES = CONNECTIONS.schema.names
TYPES = [{"STRING": str, "INTEGER": int, "FLOAT": float}[f.type] for f in CONNECTIONS.schema.fields]
COLUMN = {name: index for index, name in enumerate(NAMES)}
SERVICE, LABEL = COLUMN["service"], COLUMN["label"]
QUERIED = [
    "duration",
    "protocol_type",
    "service",
    "flag",
    "src_bytes",
    "dst_bytes",
    "num_failed_logins",
    "num_compromised",
    "su_attempted",
    "num_root",
    "num_file_creations",
    "label",
]
PICK = itemgetter(*[COLUMN[name] for name in QUERIED])  # the queried cells of a parsed line


def parse(line: str):
    """(kind, None) for a malformed line, else (None, the typed cells): the lab's map, with checks."""
    cells = line.split(",")
    if len(cells) != len(NAMES):
        return "wrong_column_count", None
    if "" in cells:
        return "empty_field", None
    try:
        values = [convert(cell) for convert, cell in zip(TYPES, cells, strict=True)]
    except ValueError:
        return "non_numeric", None
    row = dict(zip(NAMES, values, strict=True))
    if not all(rule.holds(row) for rule in CONNECTIONS.rules):
        return "out_of_range", None
    return None, values


def main(argv: list[str]) -> None:
    from pyspark import SparkConf, SparkContext

    source, output = argv
    sc = SparkContext(
        master="local[*]", appName="kdd-lab", conf=SparkConf().setAll(list(local_conf().items()))
    )
    sc.setLogLevel("WARN")
    print(analyse(sc, source, output))
    sc.stop()


def analyse(sc, source: str, output: str) -> dict:
    """Analyse ``source`` on ``sc``, the aggregates as CSV folders under ``output``; return the counts."""
    from pyspark.sql import SQLContext

    sql_context = SQLContext(sc)

    checked = sc.textFile(source).map(parse).cache()
    malformed = dict(
        checked.filter(lambda r: r[0] is not None)
        .map(lambda r: (r[0], 1))
        .reduceByKey(lambda a, b: a + b)
        .collect()
    )
    parsed = checked.filter(lambda r: r[0] is None).map(lambda r: r[1])
    sql_context.createDataFrame(parsed.map(PICK), QUERIED).registerTempTable("connections")
    total = sql_context.sql("SELECT COUNT(*) AS n FROM connections").collect()[0]["n"]

    label_counts = parsed.map(lambda r: (r[LABEL], 1)).reduceByKey(lambda a, b: a + b).collect()
    by_label = [
        (label, ATTACK_CATEGORY.get(label.rstrip("."), UNKNOWN_CATEGORY), n, n / total)
        for label, n in label_counts
    ]
    categories = (
        sc.parallelize(by_label)
        .map(lambda r: (r[1], (r[2], 1)))
        .reduceByKey(lambda a, b: (a[0] + b[0], a[1] + b[1]))
        .collect()
    )
    services = (
        parsed.filter(lambda r: r[LABEL] != NORMAL_LABEL)
        .map(lambda r: ((r[SERVICE], ATTACK_CATEGORY.get(r[LABEL].rstrip("."), UNKNOWN_CATEGORY)), 1))
        .reduceByKey(lambda a, b: a + b)
        .collect()
    )

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
            by_label, "label string, attack_category string, connections long, share double"
        ),
        "connections_by_category": sql_context.createDataFrame(
            [(c, n, n / total, labels) for c, (n, labels) in categories],
            "attack_category string, connections long, share double, labels long",
        ),
        "top_attacked_services": sql_context.createDataFrame(
            [(s, c, n) for (s, c), n in services], "service string, attack_category string, attacks long"
        )
        .groupBy("service")
        .sum("attacks")
        .orderBy("sum(attacks)", ascending=False)
        .limit(10),
    }
    for name, frame in frames.items():
        frame.coalesce(1).write.mode("overwrite").option("header", True).csv(f"{output}/{name}")
    return {"rows": total + sum(malformed.values()), "valid": total, "malformed": malformed}


if __name__ == "__main__":
    main(sys.argv[1:])
