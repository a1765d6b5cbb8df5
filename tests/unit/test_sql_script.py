"""SQL files as the runner reads them: placeholders, statements and their lines, named parameters."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from gcpipe.core.schemas import load_tables
from gcpipe.warehouse.cli import DDL_DIR, ddl_file_text
from gcpipe.warehouse.params import ParameterError, job_config, parse_param, query_parameter
from gcpipe.warehouse.script import SqlError, parse_script, render

NAMES = {"project": "acme-data-prod", "taxi_dataset": "taxi_prod"}


def test_statements_keep_their_lines_and_ignore_semicolons_in_strings_and_comments():
    text = (
        "-- a header; with a semicolon\n"
        "SELECT 'a;b' AS s FROM `{{ project }}.{{ taxi_dataset }}.t`;\n"
        "\n"
        "/* a block;\n comment */ INSERT INTO t VALUES (1);\n"
        ";\n"
        "SELECT\n  @start_date AS d, @@project_id AS p"
    )
    script = parse_script(text, NAMES, "x.sql")
    assert [(s.line, s.text.split()[0]) for s in script.statements] == [
        (2, "SELECT"),
        (5, "INSERT"),
        (7, "SELECT"),
    ]
    assert script.statements[0].text == "SELECT 'a;b' AS s FROM `acme-data-prod.taxi_prod.t`"
    assert script.statements[2].parameters == {"start_date"}
    assert script.parameters == {"start_date"} and not script.is_procedural


def test_a_position_in_a_statement_maps_to_the_line_and_column_of_the_file_as_written():
    """Backends count from the statement they were sent, names filled in: map back through both."""
    text = "SELECT 1;\nSELECT 2; SELECT x FROM `{{ project }}.{{ taxi_dataset }}.t`\n  WHER 1"
    script = parse_script(text, NAMES, "x.sql")
    third = script.statements[2]
    assert third.text == "SELECT x FROM `acme-data-prod.taxi_prod.t`\n  WHER 1"

    def where(line: int, column: int) -> tuple[int, int]:
        return script.position(script.offset(third.start, line, column))

    assert where(1, 1) == (2, 11)  # the statement starts mid-line
    assert where(1, third.text.index("t`") + 1) == (2, text.splitlines()[1].index("t`") + 1)  # after names
    assert where(1, third.text.index("prod.taxi") + 1) == (2, text.splitlines()[1].index("{{ project") + 1)
    assert where(2, 8) == (3, 8)  # later lines: columns as they are
    assert script.offset(third.start, 9, 1) is None  # past the end: no position


def test_scripts_that_keep_state_between_statements_are_procedural():
    for text in (
        "DECLARE n INT64 DEFAULT 1; SELECT n",
        "BEGIN TRANSACTION; DELETE FROM t WHERE TRUE; COMMIT TRANSACTION",
        "CREATE TEMP TABLE t AS SELECT 1; SELECT * FROM t",
    ):
        assert parse_script(text).is_procedural, text
    assert not parse_script("CREATE TABLE t AS SELECT 1; SELECT * FROM t").is_procedural


def test_placeholders_are_names_only_and_errors_name_the_line():
    assert (
        render("SELECT 1 FROM `{{project}}.{{ taxi_dataset }}.t`", NAMES)
        == "SELECT 1 FROM `acme-data-prod.taxi_prod.t`"
    )
    with pytest.raises(
        SqlError, match=r"^f.sql:2: unknown name \{\{ ecommerce_dataset \}\}; known: project, taxi_dataset"
    ):
        render("SELECT 1;\nSELECT * FROM {{ ecommerce_dataset }}.t", NAMES, "f.sql")
    with pytest.raises(
        SqlError, match=r"f.sql:1: the value of \{\{ project \}\} \('x; DROP TABLE y'\) is not a plain name"
    ):
        render("SELECT * FROM `{{ project }}.d.t`", {"project": "x; DROP TABLE y"}, "f.sql")
    with pytest.raises(SqlError, match="there is no SQL statement"):
        parse_script("-- nothing but a comment\n;", {}, "empty.sql")


def test_command_line_parameters_are_typed():
    assert parse_param("start=2017-05-01") == ("start", date(2017, 5, 1))
    assert parse_param("n=10") == ("n", 10) and parse_param("r=0.5") == ("r", 0.5)
    assert parse_param("flag=TRUE") == ("flag", True) and parse_param("name=Midtown") == ("name", "Midtown")
    assert parse_param("year:STRING=2016") == ("year", "2016")
    assert parse_param("amount:NUMERIC=1.10") == ("amount", Decimal("1.10"))
    assert parse_param("at=2017-05-01T10:00:00+00:00") == ("at", datetime(2017, 5, 1, 10, tzinfo=UTC))
    for bad, message in (
        ("nope", "is not name=value"),
        ("n:INT=1", "type INT is unknown"),
        ("n:INT64=ten", "'ten' is not a valid INT64"),
    ):
        with pytest.raises(ParameterError, match=message):
            parse_param(bad)


def test_python_values_become_typed_query_parameters():
    assert query_parameter("d", date(2017, 5, 1)).to_api_repr()["parameterType"] == {"type": "DATE"}
    assert query_parameter("t", datetime(2017, 5, 1, tzinfo=UTC)).to_api_repr()["parameterType"] == {
        "type": "TIMESTAMP"
    }
    array = query_parameter("ids", [1, 2, 3]).to_api_repr()
    assert array["parameterType"] == {"type": "ARRAY", "arrayType": {"type": "INT64"}}
    config = job_config({"n"}, {"n": 3, "unused": "x"}, dry_run=True)
    assert config.dry_run and [p.name for p in config.query_parameters] == ["n"]
    with pytest.raises(
        ParameterError, match=r"query parameter @start has no value: pass --param start=VALUE"
    ):
        job_config({"start"}, {})


def test_ddl_files_are_the_catalog_ddl():
    """sql/ddl is generated from the schemas (`gcpipe sql ddl --write`): no schema is typed twice."""

    tables = load_tables()
    assert {p.stem for p in DDL_DIR.glob("*.sql")} == set(tables)
    for name in tables:
        assert (DDL_DIR / f"{name}.sql").read_text() == ddl_file_text(name), (
            f"run `gcpipe sql ddl --write` ({name})"
        )
    assert "PARTITION BY date\nCLUSTER BY fullVisitorId" in ddl_file_text("ga_sessions")
    assert "partition_expiration_days = 30" in ddl_file_text("ride_events")
