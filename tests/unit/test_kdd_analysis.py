"""spark_jobs.kdd_analysis on local Spark: aggregates computed by hand, malformed lines, generated ground truth."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from gcpipe.app.bench import kdd_lab_baseline
from gcpipe.core.kdd import ATTACK_CATEGORY
from gcpipe.core.schemas import load_schema
from gcpipe.datagen.kdd import write_kdd
from spark_jobs import kdd_analysis

pytestmark = pytest.mark.spark
COLUMNS = load_schema("kdd_connections").names


def line(protocol: str, service: str, label: str, **values: int) -> str:
    """A connection record: the named columns set, every other numeric column 0."""
    fields = {name: "0" for name in COLUMNS} | {"protocol_type": protocol, "service": service, "flag": "SF"}
    fields |= {name: str(value) for name, value in values.items()} | {"label": label}
    for rate in (name for name in COLUMNS if name.endswith("_rate")):
        fields[rate] = "0.00"
    return ",".join(fields[name] for name in COLUMNS)


VALID = [
    line(
        "tcp", "http", "normal.", duration=10, src_bytes=100, dst_bytes=1000, num_file_creations=2, num_root=1
    ),
    line("tcp", "http", "normal.", duration=30, src_bytes=300, dst_bytes=3000, su_attempted=1),
    line("tcp", "private", "neptune."),
    line(
        "tcp",
        "telnet",
        "guess_passwd.",
        duration=2,
        src_bytes=120,
        dst_bytes=180,
        num_failed_logins=3,
        num_compromised=1,
    ),
    line("icmp", "ecr_i", "smurf.", src_bytes=1032),
    line("icmp", "ecr_i", "smurf.", src_bytes=1032),
    line("icmp", "ecr_i", "smurf.", src_bytes=520),
    line("udp", "private", "teardrop.", src_bytes=28),
    line("udp", "domain_u", "normal.", src_bytes=45, dst_bytes=90),
    line(
        "tcp",
        "telnet",
        "buffer_overflow.",
        duration=100,
        src_bytes=1500,
        dst_bytes=3800,
        num_file_creations=1,
        num_root=2,
        num_compromised=1,
    ),
]


def spoiled(column: str, value: str) -> str:
    """The first valid line with one cell replaced."""
    cells = VALID[0].split(",")
    cells[COLUMNS.index(column)] = value
    return ",".join(cells)


MALFORMED = {  # line -> the reason the job must give
    "0,tcp,http": "wrong_column_count: 3 fields, expected 42",
    "": "wrong_column_count: 1 fields, expected 42",
    VALID[0] + ",extra": "wrong_column_count: 43 fields, expected 42",
    spoiled("src_bytes", "n/a"): "non_numeric: src_bytes='n/a'",
    spoiled("duration", "1.5"): "non_numeric: duration='1.5'",
    spoiled("protocol_type", ""): "empty_field: protocol_type",
    spoiled("src_bytes", ""): "empty_field: src_bytes",
    # Two hostile values of one group whose sum passes 2^63: in ANSI mode Spark fails the job on overflow.
    spoiled(
        "src_bytes", str(5 * 10**18)
    ): f"out_of_range: src_bytes={5 * 10**18} violates rule src_bytes BETWEEN 0 AND 4294967295",
    spoiled(
        "src_bytes", str(2**62)
    ): f"out_of_range: src_bytes={2**62} violates rule src_bytes BETWEEN 0 AND 4294967295",
    spoiled("duration", "-1"): "out_of_range: duration=-1 violates rule duration BETWEEN 0 AND 4294967295",
}


def rows(path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def columns(out, name: str, *keys: str) -> list[tuple]:
    """The aggregate ``name`` as tuples of ``keys``, in the order written."""
    return [tuple(row[key] for key in keys) for row in rows(out / f"{name}.parquet")]


@pytest.fixture(scope="module")
def analysed(spark, tmp_path_factory):
    """The hand fixture analysed twice: clean, and with the malformed lines mixed in."""
    folder = tmp_path_factory.mktemp("kdd")
    clean, dirty = folder / "clean.csv", folder / "dirty.csv"
    clean.write_text("\n".join(VALID) + "\n")
    mixed = [*VALID[:3], *list(MALFORMED)[:4], *VALID[3:], *list(MALFORMED)[4:]]
    dirty.write_text("\n".join(mixed) + "\n")
    return {
        name: (kdd_analysis.analyse(spark, str(path), str(folder / f"out-{name}")), folder / f"out-{name}")
        for name, path in (("clean", clean), ("dirty", dirty))
    }


def test_attack_stats_per_protocol_and_state_as_computed_by_hand(analysed):
    summary, out = analysed["clean"]
    assert summary["rows"] == summary["valid"] == 10
    stats = rows(out / "attack_stats.parquet")
    keys = (
        "protocol_type",
        "state",
        "connections",
        "total_failed_logins",
        "total_compromised",
        "total_file_creations",
        "total_root_attempts",
        "total_root_accesses",
    )
    assert columns(out, "attack_stats", *keys) == [
        ("icmp", "attack", 3, 0, 0, 0, 0, 0),
        ("tcp", "attack", 3, 3, 2, 1, 0, 2),
        ("tcp", "no attack", 2, 0, 0, 2, 1, 1),
        ("udp", "attack", 1, 0, 0, 0, 0, 0),
        ("udp", "no attack", 1, 0, 0, 0, 0, 0),
    ]
    means = {
        (r["protocol_type"], r["state"]): (r["mean_src_bytes"], r["mean_dst_bytes"], r["mean_duration"])
        for r in stats
    }
    assert means[("icmp", "attack")] == pytest.approx((2584 / 3, 0, 0))
    assert means[("tcp", "attack")] == pytest.approx((540, 3980 / 3, 34))
    assert means[("tcp", "no attack")] == pytest.approx((200, 2000, 20))
    assert means[("udp", "no attack")] == pytest.approx((45, 90, 0))


def test_counts_by_protocol_label_category_and_the_most_attacked_services(analysed):
    _, out = analysed["clean"]
    assert columns(out, "connections_by_protocol", "protocol_type", "connections", "share") == [
        ("tcp", 5, 0.5),
        ("icmp", 3, 0.3),
        ("udp", 2, 0.2),
    ]
    assert columns(out, "connections_by_label", "label", "attack_category", "connections") == [
        ("normal.", "normal", 3),
        ("smurf.", "dos", 3),
        ("buffer_overflow.", "u2r", 1),
        ("guess_passwd.", "r2l", 1),
        ("neptune.", "dos", 1),
        ("teardrop.", "dos", 1),
    ]
    assert columns(out, "connections_by_category", "attack_category", "connections", "labels") == [
        ("dos", 5, 3),
        ("normal", 3, 1),
        ("r2l", 1, 1),
        ("u2r", 1, 1),
    ]
    keys = ("rank", "service", "attacks", "connections", "attack_share", "top_category")
    assert columns(out, "top_attacked_services", *keys) == [
        (1, "ecr_i", 3, 3, 1.0, "dos"),
        (2, "private", 2, 2, 1.0, "dos"),
        (3, "telnet", 2, 2, 1.0, "r2l"),
    ]


def test_every_aggregate_is_written_as_parquet_and_csv_with_the_report(analysed):
    summary, out = analysed["clean"]
    for name, schema in kdd_analysis.AGGREGATES.items():
        parquet = pq.read_table(out / f"{name}.parquet")
        assert parquet.schema == load_schema(schema).to_arrow()
        assert pacsv.read_csv(out / f"{name}.csv").to_pylist() == parquet.to_pylist()
    report = (out / "report" / "report.md").read_text()
    for chart in ("attack_stats.png", "attack_categories.png", "top_attacked_services.png"):
        assert f"]({chart})" in report
        assert (out / "report" / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "summary.json").read_text())["valid"] == summary["valid"] == 10
    assert not (out / "malformed").exists()


def test_malformed_lines_are_set_aside_with_their_reason_and_never_skew_the_aggregates(analysed):
    """Every kind, hostile values whose sum overflows INT64 among them: the job finishes, each line is one
    dead letter with its reason, and the aggregates are those of the valid lines alone."""
    (_, clean_out), (dirty, dirty_out) = analysed["clean"], analysed["dirty"]
    assert dirty["rows"] == len(VALID) + len(MALFORMED) and dirty["valid"] == len(VALID)
    assert dirty["malformed"] == {
        "wrong_column_count": 3,
        "non_numeric": 2,
        "empty_field": 2,
        "out_of_range": 3,
    }
    for name in kdd_analysis.AGGREGATES:
        assert rows(dirty_out / f"{name}.parquet") == rows(clean_out / f"{name}.parquet"), name
    letters = [
        json.loads(text)
        for path in (dirty_out / "malformed").glob("*.json")
        for text in path.read_text().splitlines()
    ]
    assert {letter["raw"]: letter["reason"] for letter in letters} == MALFORMED
    assert all(letter["source"].endswith("dirty.csv") and letter["loaded_at"] for letter in letters)


def test_the_benchmark_baseline_computes_what_the_job_computes(spark, analysed, tmp_path):
    """The lab's way (the spark_kdd benchmark's baseline) on the dirty fixture: the same counts of valid and
    malformed lines, and each aggregate's columns it writes hold the job's values, so the benchmark's ratio
    compares the same work."""
    dirty, out = analysed["dirty"]
    lab = kdd_lab_baseline.analyse(spark.sparkContext, dirty["input"], str(tmp_path))
    assert (lab["rows"], lab["valid"]) == (dirty["rows"], dirty["valid"])
    assert lab["malformed"] == {kind: n for kind, n in dirty["malformed"].items() if n}
    for name in kdd_analysis.AGGREGATES:
        written = pacsv.read_csv(next((tmp_path / name).glob("part-*.csv")))
        theirs = written.rename_columns([c.replace("sum(attacks)", "attacks") for c in written.column_names])
        assert theirs.num_rows > 0, name
        ours = columns(out, name, *theirs.column_names)
        assert sorted(map(rounded, ours)) == sorted(rounded(r.values()) for r in theirs.to_pylist()), name


def rounded(row) -> tuple:
    """A row with its floats to 9 places (the baseline's pass through CSV text)."""
    return tuple(round(value, 9) if isinstance(value, float) else value for value in row)


def test_generated_data_matches_its_manifest(spark, tmp_path):
    manifest = write_kdd(tmp_path / "kdd.gz", 20_000, seed=7, malformed=0.01)
    summary = kdd_analysis.analyse(spark, manifest.path, str(tmp_path / "out"))
    assert (summary["rows"], summary["valid"], summary["malformed"]) == (
        20_000,
        manifest.valid,
        manifest.malformed,
    )
    assert dict(columns(tmp_path / "out", "connections_by_label", "label", "connections")) == manifest.labels
    expected = Counter()
    for label, count in manifest.labels.items():
        expected[ATTACK_CATEGORY[label.rstrip(".")]] += count
    by_category = {
        r["attack_category"]: r["connections"]
        for r in rows(tmp_path / "out" / "connections_by_category.parquet")
    }
    assert by_category == expected


def test_the_attack_categories_are_the_standard_mapping_and_unknown_labels_are_kept():
    assert Counter(ATTACK_CATEGORY.values()) == {"dos": 6, "probe": 4, "r2l": 8, "u2r": 4, "normal": 1}
    assert {ATTACK_CATEGORY[label] for label in ("smurf", "neptune", "back", "teardrop", "pod", "land")} == {
        "dos"
    }
    assert {ATTACK_CATEGORY[label] for label in ("satan", "ipsweep", "portsweep", "nmap")} == {"probe"}
    assert {ATTACK_CATEGORY[label] for label in ("rootkit", "perl", "loadmodule", "buffer_overflow")} == {
        "u2r"
    }
    rows_ = [
        {
            "malformed": None,
            "protocol_type": "tcp",
            "service": "http",
            "label": "mscan.",
            "connections": 4,
            **dict.fromkeys(kdd_analysis.SUMMED, 0),
        }
    ]
    frames = kdd_analysis.roll_up(rows_)
    assert frames["connections_by_category"]["attack_category"].tolist() == ["unknown"]


def test_a_missing_input_is_one_sentence(spark, tmp_path):
    with pytest.raises(
        SystemExit, match=r"^kdd_analysis: file:.*nowhere\.gz does not exist: nothing to read\.$"
    ):
        kdd_analysis.main(["--input", str(tmp_path / "nowhere.gz"), "--output", str(tmp_path / "out")])


def test_labels_without_the_trailing_dot_get_the_same_category_and_state():
    """NSL-KDD writes `normal`, the 1999 files `normal.`: both are "no attack", both category normal."""
    base = {"malformed": None, "protocol_type": "tcp", **dict.fromkeys(kdd_analysis.SUMMED, 0)}
    rows_ = [
        {**base, "service": "http", "label": "normal", "connections": 5},
        {**base, "service": "http", "label": "normal.", "connections": 2},
        {**base, "service": "private", "label": "neptune", "connections": 3},
    ]
    frames = kdd_analysis.roll_up(rows_)
    stats = frames["attack_stats"].set_index("state")["connections"].to_dict()
    assert stats == {"no attack": 7, "attack": 3}
    assert frames["top_attacked_services"]["service"].tolist() == ["private"]
