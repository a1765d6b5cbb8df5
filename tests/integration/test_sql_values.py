"""Values are data, never SQL: through the SQL runner they travel as query parameters, and the one place
that must write them as literals (the partition-replace script, since the emulator drops parameters in
scripts) escapes them so that any text comes back unchanged. Checked against the BigQuery emulator.
"""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gcpipe.datagen.taxi_trips import write_trips_csv
from gcpipe.warehouse.params import ParameterError, string_literal
from gcpipe.warehouse.runner import run_sql
from pipelines import csv_ingest
from tests.integration.test_csv_ingest import day_args

pytestmark = pytest.mark.stack

INJECTIONS = [
    "x'; DROP TABLE people; --",
    "' OR '1'='1",
    "\\'; SELECT 1; --",
    "`people`",
    "a\nb\r\nc\t\x00\x07",
    "é😀\u2028",
    "/* comment */ @name",
]


def test_an_injection_looking_parameter_is_compared_as_data(bq, local_stack, dataset):
    table = f"{local_stack.project}.{dataset}.people"
    bq.query(f"CREATE TABLE `{table}` AS SELECT 'alice' AS name UNION ALL SELECT 'bob'").result()
    for value in INJECTIONS:
        result = run_sql(
            f"SELECT @value AS echoed, (SELECT COUNT(*) FROM `{table}` WHERE name = @value) AS matches",
            {"value": value},
            config=local_stack,
            client=bq,
        )
        assert result.rows == [{"echoed": value, "matches": 0}]
    assert sorted(row["name"] for row in bq.query(f"SELECT name FROM `{table}`").result()) == ["alice", "bob"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(blacklist_characters="\x00"), max_size=30))
@example("it's a \\'trap\\' \n -- ;")
@example("".join(map(chr, range(1, 32))) + "\x7f\u2028")
def test_an_escaped_literal_reads_back_as_the_same_text(bq, text):
    (row,) = bq.query(f"SELECT {string_literal(text)} AS value").result()
    assert row["value"] == text


def test_a_nul_character_cannot_become_sql_text():
    with pytest.raises(ParameterError, match="holds a NUL character"):
        string_literal("a\x00b")


def test_a_hostile_file_name_is_loaded_and_replaced_on_a_rerun(bq, local_stack, dataset, tmp_path):
    """The source file's name is a value in the replace script (its dead letters are replaced by source)."""
    folder = tmp_path / "it's; DROP TABLE x; -- \\ `q`"
    folder.mkdir()
    made = write_trips_csv(folder / "trips.csv", 500, seed=5, malformed=0.02, start=date(2019, 3, 1))
    table = f"{local_stack.project}.{dataset}.taxi_trips"
    argv = day_args(made.path, table)
    for _ in range(2):
        result = csv_ingest.run(argv)
        assert (result.rows_loaded, result.rows_dead_lettered) == (made.valid, made.rows - made.valid)
    sources = {
        row["source"]: row["n"]
        for row in bq.query(
            f"SELECT source, COUNT(*) AS n FROM `{table}_dead_letter` GROUP BY source"
        ).result()
    }
    assert sources == {made.path: made.rows - made.valid}  # replaced, not appended, on the re-run
    (row,) = bq.query(f"SELECT COUNT(*) AS n FROM `{table}`").result()
    assert row["n"] == made.valid
