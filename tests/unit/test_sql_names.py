"""Names reach SQL text only once they are plain names: every place that builds SQL from a project, dataset,
table or model name refuses a hostile one with one clear error, before any SQL is sent.

Values never travel as SQL text (they are query parameters: tests/integration/test_sql_values.py); this
file covers the names, which SQL cannot take as parameters. The static checks at the end keep it so.
"""

from __future__ import annotations

import ast
import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcpipe.app.dashboard import queries
from gcpipe.core.clients import ensure_table
from gcpipe.core.config import (
    PROJECT_ROOT,
    ConfigError,
    load_config,
    validate_dataset_id,
    validate_identifier,
    validate_table_id,
)
from gcpipe.core.errors import GcpipeError
from gcpipe.core.schemas import table_spec
from gcpipe.warehouse.bqml.sql import find_ml_calls
from gcpipe.warehouse.script import SqlError, render
from pipelines import taxi_streaming
from pipelines.csv_ingest import parse_table_id
from pipelines.ingest.bigquery_load import replace_script
from spark_jobs import als_recommend, kdd_analysis
from spark_jobs.common import load_bigquery

HOSTILE = [
    "taxi`; DROP TABLE taxi.taxi_trips; --",
    "taxi' OR '1'='1",
    "taxi\n",  # a trailing newline: `$` in a regular expression would let it through
    "taxi/*",
    "../../etc",
    "ta xi",
    "",
]


def _entry_points():
    """(what, call) for each place a user-supplied name turns into SQL text."""
    from apache_beam.options.pipeline_options import PipelineOptions

    spec = table_spec("taxi_trips")
    return {
        "csv_ingest --table": lambda name: parse_table_id(f"gcpipe-local:{name}.taxi_trips", "gcpipe-local"),
        "taxi_streaming --output_dataset": lambda name: taxi_streaming._resolve(
            PipelineOptions(["--input_topic", "rides", "--output_dataset", f"gcpipe-local:{name}"])
        ),
        # the client is never reached: None would fail differently if it were
        "ensure_table (DDL)": lambda name: ensure_table(None, spec, f"gcpipe-local.{name}.taxi_trips"),
        "dashboard queries": lambda name: queries.per_minute(None, f"gcpipe-local.{name}"),
        "partition replace script": lambda name: replace_script(
            f"gcpipe-local.taxi.{name}", None, spec, "TRUE"
        ),
        "ML.PREDICT model": lambda name: find_ml_calls(
            f"SELECT * FROM ML.PREDICT(MODEL `gcpipe-local.{name}.m`, TABLE taxi.t)", "gcpipe-local", {}
        ),
        "spark job BigQuery load": lambda name: load_bigquery(None, f"gcpipe-local.{name}.t", None),
    }


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
@pytest.mark.parametrize("entry", list(_entry_points()))
def test_a_hostile_name_is_one_clear_error_before_any_sql(entry, name):
    with pytest.raises(GcpipeError) as err:
        _entry_points()[entry](name)
    message = str(err.value)
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message, message


@pytest.mark.parametrize("name", HOSTILE, ids=repr)
def test_the_spark_jobs_refuse_a_hostile_bigquery_name_before_any_work(name, capsys):
    """A usage error (exit status 2) with the reason, before the JVM starts."""

    for parse, argv in (
        (
            kdd_analysis.parse_args,
            ["--input", "in", "--output", "out", "--bq_table", f"gcpipe-local.{name}.t"],
        ),
        (als_recommend.parse_args, ["--source", f"bq://gcpipe-local.{name}", "--sink", "out"]),
    ):
        with pytest.raises(SystemExit) as exit_:
            parse(argv)
        assert exit_.value.code == 2
        assert re.search(r"is not a (table|dataset) id", capsys.readouterr().err)


def test_a_hostile_project_or_dataset_in_the_configuration_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("GCPIPE_CONFIG", str(tmp_path / "gcpipe.toml"))
    (tmp_path / "gcpipe.toml").write_text('[local.datasets]\ntaxi = "taxi`; DROP TABLE x; --"\n')
    with pytest.raises(ConfigError, match=r"dataset name for taxi .* is not a valid identifier"):
        load_config(target="local")
    (tmp_path / "gcpipe.toml").write_text("")
    monkeypatch.setenv("GCPIPE_PROJECT", "gcpipe-local`.x")
    with pytest.raises(ConfigError, match="is not a valid GCP project id"):
        load_config(target="local")


def test_sql_file_placeholders_take_plain_names_only():
    assert render("SELECT 1 FROM `{{ project }}.{{ taxi_dataset }}.t`", load_config().template_vars())
    for value in [v for v in HOSTILE if v != "../../etc"]:  # paths are names here: {{ lake }}
        with pytest.raises(SqlError, match="is not a plain name"):
            render("SELECT 1 FROM `{{ taxi_dataset }}.t`", {"taxi_dataset": value})


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_what_the_validators_accept_cannot_leave_a_quoted_name(text):
    """Whatever passes is made of letters, digits, _ (and - . in a project part): no quote, space,
    comment, statement break or path separator can reach the SQL."""
    for validate in (validate_identifier, validate_dataset_id, validate_table_id):
        try:
            accepted = validate(text)
        except ConfigError:
            continue
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", accepted) and ".." not in accepted, accepted


# -- static checks: values as parameters, names through the validators ------------------------------

RUNNER_MODULES = ["gcpipe/warehouse/runner.py", "gcpipe/warehouse/bqml/local.py"]


def _query_calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "query":
            yield node


@pytest.mark.parametrize("module", RUNNER_MODULES)
def test_the_sql_runner_sends_every_statement_with_its_parameters(module):
    """Every query the runner sends carries ``job_config(...)`` (the statement's parameters, typed), and no
    string it formats mentions the parameter values: they never become SQL text."""
    tree = ast.parse((PROJECT_ROOT / module).read_text())
    calls = list(_query_calls(tree))
    assert calls
    for call in calls:
        config = {k.arg: k.value for k in call.keywords}.get("job_config")
        assert isinstance(config, ast.Call) and getattr(config.func, "id", None) == "job_config", (
            f"{module}:{call.lineno}: a query without job_config(...)"
        )
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            assert not names & {"params", "values"}, (
                f"{module}:{node.lineno}: parameter values formatted into text"
            )


def _quotes_a_formatted_name(tree: ast.AST) -> bool:
    """True if some f-string puts a formatted value right after a backtick: `{name}...`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            for before, after in itertools.pairwise(parts):
                if (
                    isinstance(before, ast.Constant)
                    and str(before.value).endswith("`")
                    and (isinstance(after, ast.FormattedValue))
                ):
                    return True
    return False


def test_no_sql_text_quotes_an_unchecked_name():
    """Production code that formats a name into SQL (`{name}`) validates names itself, or is listed here
    with the place that does: a new module that builds SQL from names cannot skip the check unnoticed."""
    checked_elsewhere = {
        "gcpipe/warehouse/bqml/local.py": "scratch tables of the configured project and a model's validated dataset",
        "gcpipe/warehouse/bqml/sql.py": "names from model_ref, which validates them",
        "gcpipe/warehouse/bqml/functions.py": "the scratch tables local.py names",
        "gcpipe/app/demo_report.py": "the configured project and datasets, which load_config validates",
        "gcpipe/core/schemas.py": "TableSpec.ddl: callers validate the id (ensure_table; sql ddl writes placeholders)",
        "gcpipe/flows/registry.py": "backquoted paths in the README's markdown flow table, no SQL",
        "pipelines/rides/bigquery_writer.py": "the plan's tables, from taxi_streaming._resolve's check",
    }
    offenders = []
    for folder in ("gcpipe", "pipelines", "spark_jobs", "dags"):
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py")):
            relative = path.relative_to(PROJECT_ROOT).as_posix()
            if relative.endswith("_test.py") or relative.startswith("gcpipe/app/bench/"):
                continue  # benchmarks name their own scratch tables
            text = path.read_text()
            validates = re.search(r"validate_(identifier|dataset_id|table_id)\(", text)
            if (
                _quotes_a_formatted_name(ast.parse(text))
                and relative not in checked_elsewhere
                and not validates
            ):
                offenders.append(relative)
    assert offenders == []
