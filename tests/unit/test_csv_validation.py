"""The vectorised CSV path against Python's csv module and the catalog's per-row validator (the oracles)."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcpipe.core.schemas import Field, Rule, Schema, TableSpec, table_spec
from pipelines.transforms.csv_records import split_records
from pipelines.transforms.csv_validation import BlockValidator, CsvLayoutError, Layout, _typed, read_layout


def _blocks(data: bytes, size: int):
    """Records of ``data`` read in blocks of ``size`` bytes, carried over as the pipeline does."""
    out, carry, line, offset = [], b"", 1, 0
    while True:
        block = data[offset : offset + size]
        offset += size
        chunk = carry + block
        records = split_records(chunk, line, final=not block)
        out += [(int(records.lines[i]), records.raw(i), int(records.fields[i])) for i in range(len(records))]
        carry, line = chunk[records.consumed :], line + records.newlines
        if not block:
            return out


def _python_records(text: str):
    """(first line, field count) of each record as Python's csv module reads it (a blank line has one field)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    out, line = [], 1
    for cells in reader:
        out.append((line, max(len(cells), 1)))
        line = reader.line_num + 1
    return out


cell = st.text(alphabet=st.sampled_from('ab,"\n 1é'), max_size=6)  # lines end at \n (CRLF too)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(cell, min_size=1, max_size=4), min_size=1, max_size=8),
    st.sampled_from(["\n", "\r\n"]),
    st.integers(1, 40),
)
def test_records_split_like_pythons_csv_in_any_block_size(rows, ending, size):
    out = io.StringIO()
    csv.writer(out, lineterminator=ending).writerows(rows)
    text = out.getvalue()
    assert [(line, fields) for line, _, fields in _blocks(text.encode(), size)] == _python_records(text)


def test_records_handle_stray_quotes_and_unterminated_fields():
    data = b'a,b\n1,5" screen\n"x""y",2\n3,"open\n'
    records = split_records(data)
    assert [records.raw(i) for i in range(len(records))] == [
        b"a,b",
        b'1,5" screen',
        b'"x""y",2',
        b'3,"open\n',
    ]
    assert records.fields.tolist() == [2, 2, 2, 2]
    assert records.lines.tolist() == [1, 2, 3, 4]


def _spec(*fields: tuple[str, str, str], rules=()) -> TableSpec:
    schema = Schema("t", tuple(Field(name, kind, mode) for name, kind, mode in fields))

    return TableSpec("t", "", schema, rules=tuple(Rule.parse(r, schema) for r in rules))


def _validate(spec: TableSpec, text: bytes, partition_date=None):
    records = split_records(text)
    layout = read_layout(records.text(0), spec.schema, "test.csv")
    return BlockValidator(spec, layout, partition_date).validate(records, skip=int(layout.header))


def test_every_kind_of_bad_row_gets_its_line_and_reason():
    spec = table_spec("taxi_trips")
    header = ",".join(spec.schema.names)
    good = "1,2019-03-01 10:00:00,2019-03-01 10:10:00,1,1.5,-73.9,40.7,1,N,-73.9,40.7,1,7.5,0,0.5,1,0,0.3,9.3"
    cells = good.split(",")

    def variant(index, value):
        return ",".join(value if i == index else c for i, c in enumerate(cells))

    lines = [
        header,
        good,
        "",
        good + ",extra",
        variant(4, "1.2.3"),
        variant(1, "2019-02-30 10:00:00"),
        variant(12, ""),
        variant(12, "-7.5"),
        variant(3, "15"),
        variant(2, "2019-03-01 09:00:00"),
        good,
    ]
    data = "\r\n".join(lines).encode().replace(b"\n1,", b"\n\xff1,", 1)  # line 2 undecodable
    result = _validate(spec, data)
    assert result.records == 10 and result.table.num_rows == 1
    assert [(line, reason) for line, _, reason in result.rejected] == [
        (2, "not UTF-8: byte 0xff at character 1"),
        (3, "blank line"),
        (4, "20 fields, expected 19"),
        (5, "trip_distance: '1.2.3' is not a valid FLOAT"),
        (6, "pickup_datetime: '2019-02-30 10:00:00' is not a valid TIMESTAMP"),
        (7, "fare_amount: REQUIRED but empty"),
        (8, "violates rule fare_amount >= 0"),
        (9, "violates rule passenger_count BETWEEN 0 AND 9"),
        (10, "violates rule dropoff_datetime >= pickup_datetime"),
    ]
    assert result.rejected[0][1].startswith("\\xff1,2019")
    assert result.table.to_pylist()[0]["pickup_datetime"] == datetime(2019, 3, 1, 10, tzinfo=UTC)


def test_header_maps_columns_by_name_quotes_bom_crlf_and_empty_cells():
    spec = _spec(
        ("id", "INTEGER", "REQUIRED"), ("note", "STRING", "NULLABLE"), ("at", "TIMESTAMP", "NULLABLE")
    )
    data = 'Note,ID,at\r\n"a, b\r\nc",1,2019-03-01 10:00:00\r\n,2,\r\n"say ""hi""",3,2019-03-01T11:00:00Z\r\n'
    result = _validate(spec, data.encode())
    assert result.rejected == []
    assert result.table.to_pylist() == [
        {"id": 1, "note": "a, b\r\nc", "at": datetime(2019, 3, 1, 10, tzinfo=UTC)},
        {"id": 2, "note": None, "at": None},
        {"id": 3, "note": 'say "hi"', "at": datetime(2019, 3, 1, 11, tzinfo=UTC)},  # rescued by the row check
    ]


def test_files_without_a_header_follow_schema_order_and_bad_headers_are_one_error():
    spec = _spec(("id", "INTEGER", "REQUIRED"), ("name", "STRING", "NULLABLE"))
    assert read_layout("1,alice", spec.schema, "f.csv") == Layout(("id", "name"), header=False)
    with pytest.raises(CsvLayoutError, match="lacks"):
        read_layout("id,nickname", spec.schema, "f.csv")
    with pytest.raises(CsvLayoutError, match="REQUIRED"):
        read_layout("name", spec.schema, "f.csv")
    with pytest.raises(CsvLayoutError, match="no header line and 3 columns"):
        read_layout("1,2,3", spec.schema, "f.csv")


def test_rows_outside_the_partition_are_rejected():
    spec = TableSpec("t", "", Schema("t", (Field("at", "TIMESTAMP", "REQUIRED"),)), partition={"field": "at"})
    result = _validate(spec, b"at\n2019-03-01 23:59:59\n2019-03-02 00:00:00\n", date(2019, 3, 1))
    assert result.table.num_rows == 1
    assert result.rejected == [
        (3, "2019-03-02 00:00:00", "at on 2019-03-02 is outside the partition 2019-03-01")
    ]


def test_a_row_without_a_day_belongs_to_no_partition():
    """With or without --partition_date: a re-run replaces days, and a row with no day would pile up."""
    spec = TableSpec(
        "t", "", Schema("t", (Field("n", "INTEGER"), Field("at", "TIMESTAMP"))), partition={"field": "at"}
    )
    for partition_date in (None, date(2019, 3, 1)):
        result = _validate(spec, b"n,at\n1,2019-03-01 10:00:00\n2,\n", partition_date)
        assert result.table.to_pydict()["n"] == [1]
        assert result.rejected == [(3, "2,", "at is empty: the row belongs to no partition")]


KINDS = ("INTEGER", "FLOAT", "NUMERIC", "BOOLEAN", "TIMESTAMP", "DATETIME", "DATE", "STRING")
numberish = st.text(alphabet=st.sampled_from("0123456789+-.eE _abnift:TZ/ "), max_size=22)
moments = st.datetimes(min_value=datetime(900, 1, 1)).map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S"))
us_moments = st.datetimes(min_value=datetime(1000, 1, 1)).map(lambda d: d.strftime("%m/%d/%Y %I:%M:%S %p"))
odd_days = st.tuples(st.integers(1990, 2030), st.integers(0, 13), st.integers(0, 32), st.booleans()).map(
    lambda t: (
        f"{t[0]}-{t[1]:02d}-{t[2]:02d} 10:00:00" if t[3] else f"{t[1]:02d}/{t[2]:02d}/{t[0]} 10:00:00 PM"
    )
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(numberish, moments, us_moments, odd_days, st.sampled_from(["", "-0", "TRUE", "1e999"])),
        max_size=30,
    )
)
def test_vectorised_path_agrees_with_the_row_validator(values):
    spec = _spec(*((kind.lower(), kind, "NULLABLE") for kind in KINDS))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(spec.schema.names)
    for value in values:
        writer.writerow([value] * len(KINDS))
    result = _validate(spec, out.getvalue().encode())
    validator = spec.validator()
    expected_rows, expected_rejects = [], []
    for line, value in enumerate(values, start=2):
        row, reason = validator.validate(dict.fromkeys(spec.schema.names, value))
        if reason:
            expected_rejects.append((line, reason))
        else:
            expected_rows.append(row)
    assert [(line, reason) for line, _, reason in result.rejected] == expected_rejects
    assert sorted(map(repr, result.table.to_pylist())) == sorted(map(repr, expected_rows))


def test_tlc_timestamp_forms_are_typed_without_the_row_path():
    cells = pa.array(
        ["2019-03-01 13:05:09", "2019-03-01T13:05:09", "03/01/2019 01:05:09 PM", "03/01/2019 12:05:09 AM"]
    )
    values, bad = _typed("TIMESTAMP", cells, pa.timestamp("us", tz="UTC"))
    assert not bad.any()
    assert values.to_pylist() == [datetime(2019, 3, 1, 13, 5, 9, tzinfo=UTC)] * 3 + [
        datetime(2019, 3, 1, 0, 5, 9, tzinfo=UTC)
    ]


def test_a_block_pyarrow_reads_differently_falls_back_to_the_row_check_for_every_row():
    spec = _spec(("id", "INTEGER", "REQUIRED"), ("name", "STRING", "NULLABLE"))
    # a bare CR: pyarrow ends a row there, the splitter does not; the whole block goes row by row
    result = _validate(spec, b"id,name\n1,alice\n2,bo\rb\n3,carol\n")
    assert result.table.to_pylist() == [{"id": 1, "name": "alice"}, {"id": 3, "name": "carol"}]
    assert result.rejected == [(3, "2,bo\rb", "a carriage return outside quotes splits the record")]


def test_an_unterminated_quote_at_the_end_is_dead_lettered_not_loaded():
    spec = _spec(("id", "INTEGER", "REQUIRED"), ("name", "STRING", "NULLABLE"))
    result = _validate(spec, b'id,name\n1,alice\n2,"bob\n3,carol\n')
    assert result.table.to_pylist() == [{"id": 1, "name": "alice"}]
    assert result.rejected == [(3, '2,"bob\n3,carol\n', "unterminated quoted field")]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from('1a,"\r\n \xff'), max_size=60))
def test_any_garbage_is_accounted_for_row_by_row_and_never_crashes(body):
    spec = _spec(("id", "INTEGER", "REQUIRED"), ("name", "STRING", "NULLABLE"))
    data = b"id,name\n" + body.encode("latin-1")
    result = _validate(spec, data)
    assert result.table.num_rows + len(result.rejected) == result.records == len(split_records(data)) - 1
    assert all(reason for _, _, reason in result.rejected)
    assert all(isinstance(row["id"], int) for row in result.table.to_pylist())


def test_a_value_the_row_validator_takes_but_arrow_cannot_hold_is_a_dead_letter():
    spec = _spec(("id", "INTEGER", "REQUIRED"), ("amount", "NUMERIC", "NULLABLE"))
    result = _validate(spec, b"id,amount\n1,2.5\n2,1.1234567891\n")
    assert result.table.to_pylist() == [{"id": 1, "amount": Decimal("2.500000000")}]
    assert [(line, reason.split(":")[0]) for line, _, reason in result.rejected] == [
        (3, "a value does not fit the table's types")
    ]
