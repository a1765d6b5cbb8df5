"""csv_ingest's transforms on TestPipeline (no services): generated trips with every malformed kind, gzip,
globs, PII; and ``run`` end to end to files, with its accounting."""

import csv
import gzip
import json
import os
import re
from collections import Counter

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from gcpipe.core.config import PROJECT_ROOT
from gcpipe.core.schemas import table_spec
from gcpipe.datagen.taxi_trips import MALFORMED_KINDS, write_trips_csv
from pipelines import csv_ingest
from pipelines.csv_ingest import ValidateCsv
from pipelines.transforms.csv_validation import CsvLayoutError
from pipelines.transforms.pii import PiiPolicy

SPEC = table_spec("taxi_trips")
KIND_OF_REASON = {  # how each generated kind of bad row reads in a dead letter's reason
    r"^\d+ fields, expected 19$": "wrong_column_count",
    r"is not a valid (FLOAT|INTEGER)$": "bad_number",
    r"is not a valid TIMESTAMP$": "bad_timestamp",
    r"REQUIRED but empty$": "required_missing",
    r"^violates rule ": "rule_violation",
    r"^not UTF-8": "undecodable_bytes",
    r"^blank line$": "blank_line",
}


def _kind(reason: str) -> str:
    return next(kind for pattern, kind in KIND_OF_REASON.items() if re.search(pattern, reason))


def _pipeline():
    return test_pipeline.TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"]))


def _expected_rows(path):
    """The oracle: every data line through Python's csv module and the catalog's per-row validator."""
    validator, rows = SPEC.validator(), []
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        names = handle.readline().decode().strip().split(",")
        for raw in handle:
            try:
                cells = next(csv.reader([raw.decode().rstrip("\r\n")]), [])
            except UnicodeDecodeError:
                continue
            if len(cells) == len(names):
                row, _ = validator.validate(dict(zip(names, cells, strict=True)))
                rows.extend([row] if row else [])
    return rows


def test_a_clean_file_loads_every_row_and_no_dead_letter(tmp_path):
    manifest = write_trips_csv(tmp_path / "clean.csv", 2000, seed=8)
    expected = _expected_rows(manifest.path)
    assert len(expected) == manifest.rows == manifest.valid
    with _pipeline() as p:
        result = p | beam.Create([manifest.path]) | ValidateCsv(SPEC)
        rows = result.valid | "Rows" >> beam.FlatMap(lambda item: item[2].to_pylist())
        assert_that(rows, equal_to(expected), label="every row")
        assert_that(result.dead_letter, equal_to([]), label="no dead letter")


def test_generated_trips_every_malformed_kind_is_dead_lettered_with_its_reason(tmp_path):
    manifest = write_trips_csv(tmp_path / "trips.csv", 5000, seed=5, malformed=0.02)
    assert set(manifest.malformed) == set(MALFORMED_KINDS) and all(manifest.malformed.values())
    with _pipeline() as p:
        result = p | beam.Create([manifest.path]) | ValidateCsv(SPEC, block_bytes=64 << 10)  # several blocks
        rows = result.valid | "Rows" >> beam.FlatMap(lambda item: item[2].to_pylist())
        assert_that(rows, equal_to(_expected_rows(manifest.path)), label="valid rows")
        kinds = (
            result.dead_letter | beam.Map(lambda d: _kind(d["reason"])) | beam.combiners.Count.PerElement()
        )
        assert_that(kinds, equal_to(list(manifest.malformed.items())), label="dead letters per kind")
        lines = result.dead_letter | "Where" >> beam.Map(
            lambda d: (d["source"], d["line"] > 1, bool(d["reason"]))
        )
        assert_that(
            lines | "CountWhere" >> beam.combiners.Count.PerElement(),
            equal_to([((manifest.path, True, True), manifest.rows - manifest.valid)]),
            label="every dead letter has its source, a data line and a reason",
        )


def test_dead_letters_point_at_the_right_lines(tmp_path):
    path = tmp_path / "trips.csv"
    write_trips_csv(path, 300, seed=9)
    lines = path.read_bytes().split(b"\n")
    lines[10] = b""  # line 11
    lines[200] = lines[200].replace(b",", b",,", 1)  # line 201: one field too many
    path.write_bytes(b"\n".join(lines))
    with _pipeline() as p:
        result = p | beam.Create([str(path)]) | ValidateCsv(SPEC, block_bytes=4096)
        assert_that(
            result.dead_letter | beam.Map(lambda d: (d["line"], d["reason"])),
            equal_to([(11, "blank line"), (201, "20 fields, expected 19")]),
        )


def test_a_real_world_file_bom_crlf_header_by_name_quoted_commas_and_newlines(tmp_path):
    spec = table_spec("taxi_trips_sample")
    path = tmp_path / "sample.csv"
    path.write_bytes(
        b"\xef\xbb\xbfpickup_zone,pickup,dropoff,distance,fare,total,color,passengers\r\n"
        b'"Queens, Astoria",03/01/2019 11:58:00 PM,03/02/2019 12:10:00 AM,2.5,10.0,12.3,yellow,\r\n'
        b'"Line one\r\nline two",2019-03-01 10:00:00,2019-03-01 10:05:00,1,5,6,green,2\r\n'
        b"Midtown,2019-03-01 10:00:00,2019-03-01 09:00:00,1,5,6,yellow,1\r\n"
    )
    with _pipeline() as p:
        result = p | beam.Create([str(path)]) | ValidateCsv(spec)
        rows = result.valid | "Rows" >> beam.FlatMap(lambda item: item[2].to_pylist())
        picked = rows | "Pick" >> beam.Map(
            lambda r: (r["pickup_zone"], r["dropoff"].isoformat(), r["passengers"])
        )
        assert_that(
            picked,
            equal_to(
                [
                    ("Queens, Astoria", "2019-03-02T00:10:00+00:00", None),
                    ("Line one\r\nline two", "2019-03-01T10:05:00+00:00", 2),
                ]
            ),
            label="rows",
        )
        assert_that(
            result.dead_letter | "Reason" >> beam.Map(lambda d: (d["line"], d["reason"])),
            equal_to([(5, "violates rule dropoff >= pickup")]),
            label="dead letters",
        )


def test_gzip_and_a_glob_of_several_files(tmp_path):
    a = write_trips_csv(tmp_path / "in" / "a.csv.gz", 700, seed=1, malformed=0.01)
    b = write_trips_csv(tmp_path / "in" / "b.csv", 500, seed=2, malformed=0.01)
    paths = csv_ingest.match_inputs(str(tmp_path / "in" / "*.csv*"))
    assert paths == [a.path, b.path]
    with _pipeline() as p:
        result = p | beam.Create(paths) | ValidateCsv(SPEC)
        rows = result.valid | "Rows" >> beam.FlatMap(lambda item: item[2].to_pylist())
        assert_that(rows, equal_to(_expected_rows(a.path) + _expected_rows(b.path)), label="rows")
        sources = (
            result.dead_letter
            | "Source" >> beam.Map(lambda d: d["source"])
            | "PerFile" >> beam.combiners.Count.PerElement()
        )
        assert_that(sources, equal_to([(a.path, 7), (b.path, 5)]), label="dead letters per file")


def test_pii_columns_are_hashed_in_rows_and_withheld_or_hashed_in_dead_letters(tmp_path):
    path = tmp_path / "trips.csv"
    write_trips_csv(path, 400, seed=4, malformed=0.05)
    key_file = tmp_path / "pii.key"
    key_file.write_text("a-test-key")
    policy = PiiPolicy({"vendor_id": "hash", "store_and_fwd_flag": "mask"}, str(key_file))
    with _pipeline() as p:
        result = p | beam.Create([str(path)]) | ValidateCsv(SPEC, pii=policy)
        rows = result.valid | "Rows" >> beam.FlatMap(lambda item: item[2].to_pylist())
        clear = {"1", "2"}  # the vendors in clear
        assert_that(
            rows
            | beam.Map(lambda r: (r["vendor_id"] in clear, len(r["vendor_id"]), r["store_and_fwd_flag"]))
            | beam.Distinct(),
            equal_to([(False, 64, "#")]),
            label="rows",
        )

        def vendor_cell(dead):
            if not dead["raw"]:
                return "withheld" if dead["raw"] is None else "blank"
            cells = next(csv.reader([dead["raw"].replace("\\xff\\xfe", "")]))
            return "hashed" if len(cells[0]) == 64 and cells[0] not in clear else "CLEAR"

        assert_that(
            result.dead_letter | "VendorCell" >> beam.Map(vendor_cell) | "DistinctCells" >> beam.Distinct(),
            equal_to(["hashed", "withheld", "blank"]),
            label="dead letters",
        )


def test_run_writes_files_and_accounts_for_every_record(tmp_path):
    manifest = write_trips_csv(tmp_path / "trips.csv", 3000, seed=6, malformed=0.01)
    result = csv_ingest.run(
        [
            "--input",
            manifest.path,
            "--schema",
            "taxi_trips",
            "--output",
            str(tmp_path / "out"),
            "--partition_date",
            "2019-03-01",
            "--runner",
            "FnApiRunner",
        ]
    )
    assert (result.rows_read, result.rows_valid, result.rows_dead_lettered) == (3000, 2970, 30)
    assert result.rows_loaded is None
    valid = pq.read_table(f"{result.output}/valid")
    dead = pq.read_table(f"{result.output}/dead_letter")
    assert valid.num_rows == 2970 and dead.num_rows == 30
    assert valid.schema.equals(SPEC.schema.to_arrow())
    assert Counter(map(_kind, dead["reason"].to_pylist())) == Counter(manifest.malformed)


def test_run_says_in_one_sentence_what_is_wrong(tmp_path):
    with pytest.raises(csv_ingest.IngestError, match="matches no file"):
        csv_ingest.run(["--input", str(tmp_path / "none*.csv"), "--schema", "taxi_trips"])
    (tmp_path / "other.csv").write_text("vendor_id,age\n1,3\n")
    with pytest.raises(CsvLayoutError, match="lacks"):
        csv_ingest.run(["--input", str(tmp_path / "other.csv"), "--schema", "taxi_trips"])
    no_moment = tmp_path / "people.json"
    no_moment.write_text('[{"name": "name", "type": "STRING"}]')
    with pytest.raises(csv_ingest.IngestError, match="needs a partitioned table"):
        csv_ingest.run(["--input", "x", "--schema", str(no_moment), "--partition_date", "2019-03-01"])
    with pytest.raises(csv_ingest.IngestError, match="YYYY-MM-DD"):
        csv_ingest.run(["--input", "x", "--schema", "taxi_trips", "--partition_date", "March"])
    with pytest.raises(csv_ingest.IngestError, match="--block_mb must be at least 1, not 0"):
        csv_ingest.run(["--input", "x", "--schema", "taxi_trips", "--block_mb", "0"])


def test_a_truncated_or_false_gzip_file_is_one_error_not_half_a_load(tmp_path):
    write_trips_csv(tmp_path / "whole.csv.gz", 20_000, seed=4)
    data = (tmp_path / "whole.csv.gz").read_bytes()
    (tmp_path / "cut.csv.gz").write_bytes(data[: len(data) // 2])
    args = ["--schema", "taxi_trips", "--output", str(tmp_path / "out"), "--runner", "FnApiRunner"]
    with pytest.raises(
        Exception, match=r"cut\.csv\.gz cannot be read whole after line \d+: Compressed file ended"
    ):
        csv_ingest.run(["--input", str(tmp_path / "cut.csv.gz"), *args])
    assert not (tmp_path / "out").exists() or not list(
        (tmp_path / "out").rglob("*.parquet")
    )  # nothing half-written
    plain = write_trips_csv(tmp_path / "plain.csv", 100, seed=5)
    os.replace(plain.path, tmp_path / "plain.csv.gz")  # named .gz, not gzip at all
    with pytest.raises(
        csv_ingest.IngestError, match=r"plain\.csv\.gz cannot be read whole after line 1: Not a gzip"
    ):
        csv_ingest.run(["--input", str(tmp_path / "plain.csv.gz"), *args])


def test_the_flex_template_declares_only_options_the_pipeline_takes():
    metadata = json.loads((PROJECT_ROOT / "infra" / "dataflow" / "csv_ingest" / "metadata.json").read_text())
    options = {action.dest for action in csv_ingest.build_parser()._actions}
    declared = {parameter["name"] for parameter in metadata["parameters"]}
    assert declared <= options
    assert {"input", "schema", "table", "dead_letter", "partition_date", "pii"} <= declared
