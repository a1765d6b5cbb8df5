"""The SQL runner: statements, parameters, names from config, errors with file and line, scripts, checks,
the CLI, and dry runs (the emulator locally; on gcp the BigQuery API alone is mocked, its request asserted)."""

from __future__ import annotations

import json
from datetime import date

import pytest
from google.api_core.exceptions import BadRequest
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from gcpipe.app.cli import main
from gcpipe.core.config import load_config
from gcpipe.warehouse.runner import CheckFailed, run_sql, run_sql_file
from gcpipe.warehouse.script import SqlError

pytestmark = pytest.mark.stack


@pytest.fixture
def config(local_stack, dataset):
    return local_stack.replace(datasets={**local_stack.datasets, "ecommerce": dataset})


def _file(tmp_path, text: str):
    path = tmp_path / "job.sql"
    path.write_text(text)
    return path


def test_statements_run_one_by_one_with_parameters_and_configured_names(bq, config, tmp_path):
    path = _file(
        tmp_path,
        """-- a small job
CREATE TABLE `{{ project }}.{{ ecommerce_dataset }}.days` AS
SELECT d FROM UNNEST(GENERATE_DATE_ARRAY(@start, DATE_ADD(@start, INTERVAL @n - 1 DAY))) AS d;

SELECT COUNT(*) AS days, MIN(d) AS first FROM `{{ project }}.{{ ecommerce_dataset }}.days` WHERE d >= @start;
""",
    )
    result = run_sql_file(path, {"start": date(2017, 5, 1), "n": 7}, config=config, client=bq)
    assert [(s.line, s.statement_type) for s in result.statements] == [
        (2, "CREATE_TABLE_AS_SELECT"),
        (5, "SELECT"),
    ]
    assert result.rows == [{"days": 7, "first": date(2017, 5, 1)}]
    assert result.statements[0].rows is None and result.statements[1].total_rows == 1
    assert bq.get_table(f"{config.project}.{config.dataset('ecommerce')}.days").num_rows == 7


@pytest.mark.parametrize(
    ("text", "params", "message"),
    [
        (
            "SELECT 1;\n\nSELECT 2;\nSELEC 3;",
            {},
            r'^job.sql:4:7: Syntax error: Unexpected identifier "SELEC"\.$',  # the emulator points past it
        ),
        (
            "SELECT 1;\nSELECT\n  nope\nFROM UNNEST([1]) AS x;",
            {},
            r'^job.sql:2: Binder Error: Referenced column "nope" not found',
        ),
        (
            "SELECT 1;\nSELECT @start AS s;",
            {},
            r"^job.sql:2: query parameter @start has no value: pass --param start=VALUE",
        ),
        ("SELECT 1 FROM `{{ ecommerce_dataset }}.missing`;", {}, r"^job.sql:1: Not found: Table .*missing"),
        (
            "SELECT 1;\nSELECT * FROM {{ sales_dataset }}.t",
            {},
            r"^job.sql:2: unknown name \{\{ sales_dataset \}\}",
        ),
        (  # the emulator's own parser says "Line 1, Col: 11" of the second statement: the '+'
            "SELECT 1 AS a; SELECT (1 +;",
            {},
            r"^job.sql:1:26: Syntax error: Required keyword: 'expression' missing for .*Add'>\.$",
        ),
    ],
    ids=["syntax", "unknown column", "missing parameter", "missing table", "unknown name", "syntax mid-line"],
)
def test_errors_name_the_file_and_line(bq, config, tmp_path, text, params, message):
    with pytest.raises(SqlError, match=message):
        run_sql(text, params, source="job.sql", config=config, client=bq)


def test_a_script_with_variables_and_a_transaction_runs_as_one_script(bq, config, tmp_path):
    ds = f"`{config.project}.{config.dataset('ecommerce')}`"
    bq.query(f"CREATE TABLE {ds}.counts (n INT64)").result()
    script = f"""DECLARE total INT64 DEFAULT 41;
SET total = total + 1;
BEGIN TRANSACTION;
DELETE FROM {ds}.counts WHERE TRUE;
INSERT INTO {ds}.counts (n) VALUES (total);
COMMIT TRANSACTION;
SELECT n FROM {ds}.counts;"""
    result = run_sql(script, config=config, client=bq)
    assert len(result.statements) == 1 and result.statements[0].statement_type == "SCRIPT"
    assert result.rows == [{"n": 42}]
    with pytest.raises(
        SqlError, match=r"^<sql>:2: the BigQuery emulator does not pass query parameters into a script"
    ):
        run_sql(
            script.replace("SET total = total + 1", "SET total = @base"),
            {"base": 1},
            config=config,
            client=bq,
        )
    with pytest.raises(
        SqlError, match=r"^<sql>:2: local BigQuery ML trains a model as a statement of its own"
    ):
        run_sql(
            f"DECLARE x INT64;\nCREATE MODEL {ds}.m OPTIONS (model_type = 'linear_reg') AS SELECT 1 AS label",
            config=config,
            client=bq,
        )


def test_a_failing_check_names_itself_and_its_count(bq, config):
    checks = """SELECT 'orders.positive_amount' AS check_name, COUNTIF(amount <= 0) AS failures
    FROM UNNEST([10, -1, 0, 5]) AS amount
    UNION ALL SELECT 'orders.not_empty', 0"""
    with pytest.raises(
        CheckFailed, match=r"^checks.sql:1: check orders.positive_amount failed: 2 offending rows\.$"
    ):
        run_sql(checks, source="checks.sql", config=config, client=bq)
    assert run_sql(checks.replace("-1, 0", "1, 2"), config=config, client=bq).rows[0]["failures"] == 0
    in_days = "SELECT 'orders.fresh' AS check_name, 3 AS failures, 'day' AS unit UNION ALL SELECT 'orders.x', 1, 'day'"
    with pytest.raises(
        CheckFailed, match=r"^<sql>:1: check orders.fresh failed: 3 days; check orders.x failed: 1 day\.$"
    ):
        run_sql(in_days, config=config, client=bq)  # a check counting in its own unit


def test_the_command_line_prints_results_as_json_or_tables(config, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GCPIPE_PORT_OFFSET", str(config.port_offset))
    path = _file(tmp_path, "SELECT @n AS n, 'x' AS s;\nSELECT DATE '2017-05-01' AS d")
    main(["sql", "run", str(path), "--param", "n=3", "--format", "json"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["target"] == "local" and [s["line"] for s in printed["statements"]] == [1, 2]
    assert printed["statements"][0]["rows"] == [{"n": 3, "s": "x"}]
    assert printed["statements"][1]["rows"] == [{"d": "2017-05-01"}]

    main(["sql", "run", str(path), "--param", "n=3"])
    out, err = capsys.readouterr()
    assert "2017-05-01" in out and "job.sql:1" in err and "done on local" in err

    with pytest.raises(SystemExit) as failed:
        main(["sql", "run", str(path)])
    assert failed.value.code == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {path}:1: query parameter @n has no value: pass --param n=VALUE (or params= in Python)."
    )


def test_a_local_dry_run_validates_without_running(bq, config):
    ds = f"`{config.project}.{config.dataset('ecommerce')}`"
    text = f"CREATE TABLE {ds}.never AS SELECT 1 AS x;\nSELECT @n AS n"
    result = run_sql(text, {"n": 1}, config=config, client=bq, dry_run=True)
    assert result.dry_run and result.statements[0].message.startswith("valid")
    assert not [t for t in bq.list_tables(config.dataset("ecommerce")) if t.table_id == "never"]
    with pytest.raises(SqlError, match=r'^<sql>:3:7: Syntax error: Unexpected identifier "SELEC"'):
        run_sql("SELECT 1;\n\nSELEC 2", config=config, client=bq, dry_run=True)


# -- the gcp target, with only the BigQuery API mocked ------------------------------------------


class _BigQueryApi:
    """Stands in for BigQuery's REST API (jobs.insert): records each request, answers like BigQuery."""

    def __init__(self, answer=None, error: Exception | None = None):
        self.requests, self.answer, self.error = [], answer or {}, error  # the error answers every request

    def __call__(self, method, path, data=None, **kwargs):
        self.requests.append({"method": method, "path": path, "data": data})
        if self.error:
            raise self.error
        return {**data, "status": {"state": "DONE"}, **self.answer}


def _gcp(monkeypatch, api):
    config = load_config(
        target="gcp", project="acme-data-prod", lake_bucket="acme-lake", datasets={"ecommerce": "shop"}
    )
    client = bigquery.Client(project="acme-data-prod", credentials=AnonymousCredentials())
    monkeypatch.setattr(client._connection, "api_request", api)
    return config, client


def test_gcp_dry_run_sends_the_whole_file_as_one_bigquery_dry_run(monkeypatch, tmp_path):
    query = {"totalBytesProcessed": "52428800", "statementType": "SCRIPT"}
    api = _BigQueryApi({"statistics": {"totalBytesProcessed": "52428800", "query": query}})
    config, client = _gcp(monkeypatch, api)
    path = _file(
        tmp_path,
        "SELECT * FROM `{{ project }}.{{ ecommerce_dataset }}.purchase_features`\n"
        "WHERE date BETWEEN @from_date AND @to_date;\nSELECT 1",
    )
    result = run_sql_file(
        path,
        {"from_date": date(2017, 5, 1), "to_date": date(2017, 7, 31)},
        config=config,
        client=client,
        dry_run=True,
    )
    [request] = api.requests
    assert (request["method"], request["path"]) == ("POST", "/projects/acme-data-prod/jobs")
    job_id = request["data"]["jobReference"].pop("jobId")
    assert isinstance(job_id, str) and job_id
    assert request["data"] == {
        "jobReference": {"projectId": "acme-data-prod"},
        "configuration": {
            "dryRun": True,
            "query": {
                "query": "SELECT * FROM `acme-data-prod.shop.purchase_features`\n"
                "WHERE date BETWEEN @from_date AND @to_date;\nSELECT 1",
                "useLegacySql": False,
                "useQueryCache": False,
                "parameterMode": "NAMED",
                "queryParameters": [
                    {
                        "name": "from_date",
                        "parameterType": {"type": "DATE"},
                        "parameterValue": {"value": "2017-05-01"},
                    },
                    {
                        "name": "to_date",
                        "parameterType": {"type": "DATE"},
                        "parameterValue": {"value": "2017-07-31"},
                    },
                ],
            },
        },
    }
    assert result.target == "gcp" and result.bytes_processed == 52428800
    assert result.statements[0].message == "valid; it would process 50.0 MiB"


def test_gcp_errors_point_at_the_line_bigquery_reports(monkeypatch):
    error = BadRequest(
        "Syntax error",
        errors=[{"reason": "invalidQuery", "message": "Syntax error: Unexpected keyword FROM at [3:8]"}],
    )
    config, client = _gcp(monkeypatch, _BigQueryApi(error=error))
    with pytest.raises(SqlError, match=r"^model.sql:3:8: Syntax error: Unexpected keyword FROM\.$"):
        run_sql(
            "SELECT 1;\nSELECT 2;\nSELECT FROM FROM t",
            source="model.sql",
            config=config,
            client=client,
            dry_run=True,
        )
    # Run statement by statement, a position counts from the statement's first line (here line 3).
    with pytest.raises(SqlError, match=r"^model.sql:5:8: Syntax error: Unexpected keyword FROM\.$"):
        run_sql(
            "-- a header\n\nSELECT\n  2,\n  3 FROM FROM t", source="model.sql", config=config, client=client
        )


def test_gcp_errors_name_the_column_in_the_file_as_written(monkeypatch):
    """BigQuery counts columns in the text it was sent (names filled in): here the whole file, a dry run."""
    text = "SELECT 1;\nSELECT x FROM `{{ project }}.{{ ecommerce_dataset }}.t` WHER 1"
    sent = "SELECT x FROM `acme-data-prod.shop.t` WHER 1"  # line 2 as BigQuery gets it
    message = f'Syntax error: Expected end of input but got integer literal "1" at [2:{sent.index("1") + 1}]'
    error = BadRequest("Syntax error", errors=[{"reason": "invalidQuery", "message": message}])
    config, client = _gcp(monkeypatch, _BigQueryApi(error=error))
    with pytest.raises(SqlError) as raised:
        run_sql(text, source="model.sql", config=config, client=client, dry_run=True)
    column = text.splitlines()[1].index("WHER 1") + len("WHER ") + 1
    assert str(raised.value) == (
        f'model.sql:2:{column}: Syntax error: Expected end of input but got integer literal "1".'
    )
