"""Reading BigQuery ML statements (CREATE MODEL, DROP MODEL, ML.* calls) and writing SQL literals."""

import re

import pytest

from gcpipe.warehouse.bqml.sql import (
    MlSqlError,
    ModelRef,
    find_ml_calls,
    parse_create_model,
    parse_drop_model,
    rows_sql,
    sql_literal,
)


def test_create_model_options_and_query():
    text = """CREATE OR REPLACE MODEL `acme-prod.shop.purchase`
    OPTIONS (model_type = 'logistic_reg', input_label_cols = ['bought'], l2_reg = 0.5, max_iterations = @n,
             class_weights = [STRUCT('0', 1.0), STRUCT('1', -2.5)], early_stop = FALSE)
    AS SELECT a, bought FROM shop.t -- trailing comment"""
    statement = parse_create_model(text, "default-project", {"n": 7})
    assert statement.model == ModelRef("acme-prod", "shop", "purchase")
    assert statement.replace and not statement.if_not_exists
    assert statement.options == {
        "model_type": "logistic_reg",
        "input_label_cols": ["bought"],
        "l2_reg": 0.5,
        "max_iterations": 7,
        "class_weights": [("0", 1.0), ("1", -2.5)],
        "early_stop": False,
    }
    assert statement.query == "SELECT a, bought FROM shop.t -- trailing comment"
    other = parse_create_model(
        "CREATE MODEL IF NOT EXISTS shop.model OPTIONS(model_type='linear_reg') AS (SELECT 1)", "p", {}
    )
    assert (
        other.model == ModelRef("p", "shop", "model") and other.if_not_exists and other.query == "(SELECT 1)"
    )
    assert parse_create_model("CREATE TABLE shop.model AS SELECT 1", "p", {}) is None
    assert parse_drop_model("DROP MODEL IF EXISTS `shop.m`", "p") == (ModelRef("p", "shop", "m"), True)
    transformed = parse_create_model(
        "CREATE MODEL shop.m TRANSFORM(ML.STANDARD_SCALER(a) OVER () AS a, ML.BUCKETIZE(b, [1, 2]) AS b, label)\n"
        "OPTIONS(model_type='linear_reg') AS SELECT 1",
        "p",
        {},
    )
    assert transformed.transform == "ML.STANDARD_SCALER(a) OVER () AS a, ML.BUCKETIZE(b, [1, 2]) AS b, label"
    assert transformed.options == {"model_type": "linear_reg"} and transformed.query == "SELECT 1"
    assert transformed.registration == "CREATE MODEL shop.m \nOPTIONS(model_type='linear_reg') AS SELECT 1"
    with pytest.raises(MlSqlError, match="TRANSFORM needs at least one column"):
        parse_create_model(
            "CREATE MODEL shop.m TRANSFORM() OPTIONS(model_type='linear_reg') AS SELECT 1", "p", {}
        )
    with pytest.raises(MlSqlError, match="needs its dataset"):
        parse_create_model("CREATE MODEL m OPTIONS(model_type='linear_reg') AS SELECT 1", "p", {})


def test_ml_calls_are_found_outermost_first_and_strings_are_left_alone():
    text = (
        "SELECT * FROM ML.PREDICT(MODEL `shop.m`, (SELECT * FROM ML.PREDICT(MODEL shop.m2, TABLE shop.t)),"
        " STRUCT(0.6 AS threshold)) AS p\n"
        "JOIN ML.WEIGHTS(MODEL `shop-prod.shop.m3`, STRUCT(@std AS standardize)) ON TRUE"
        " WHERE s = 'ML.EVALUATE(MODEL x)'"
    )
    predict, weights = find_ml_calls(text, "p", {"std": True})
    assert (predict.function, predict.model, predict.settings) == (
        "PREDICT",
        ModelRef("p", "shop", "m"),
        {"threshold": 0.6},
    )
    assert predict.input_sql == "SELECT * FROM ML.PREDICT(MODEL shop.m2, TABLE shop.t)"
    assert text[predict.start : predict.end].endswith("STRUCT(0.6 AS threshold))")
    assert (weights.function, weights.model, weights.settings) == (
        "WEIGHTS",
        ModelRef("shop-prod", "shop", "m3"),
        {"standardize": True},
    )
    inner = find_ml_calls(predict.input_sql, "p", {})
    assert inner[0].input_sql == "SELECT * FROM `p.shop.t`"
    with pytest.raises(
        MlSqlError, match=r"ML.GENERATE_TEXT is not supported by local BigQuery ML; supported: ML.PREDICT"
    ):
        find_ml_calls("SELECT * FROM ML.GENERATE_TEXT(MODEL shop.m, TABLE t)", "p", {})
    with pytest.raises(MlSqlError, match=r"takes MODEL `dataset\.model` as its first argument"):
        find_ml_calls("SELECT * FROM ML.PREDICT(TABLE shop.t)", "p", {})


def test_roc_curve_thresholds_are_generate_arrays_end_included():
    [call] = find_ml_calls(
        "SELECT * FROM ML.ROC_CURVE(MODEL shop.m, TABLE shop.t, GENERATE_ARRAY(0.2, @hi, 0.2))",
        "p",
        {"hi": 0.8},
    )
    assert (call.function, call.input_sql, call.thresholds) == (
        "ROC_CURVE",
        "SELECT * FROM `p.shop.t`",
        [0.2, 0.4, 0.6, 0.8],
    )
    assert find_ml_calls("SELECT * FROM ML.ROC_CURVE(MODEL shop.m)", "p", {})[0].thresholds is None
    for bad, reason in (
        ("GENERATE_ARRAY(0.1, 0.9, 0)", "needs finite bounds and a positive step"),
        ("GENERATE_ARRAY(0, 1, 0.00001)", "gives 100,001 thresholds"),
        ("GENERATE_ARRAY(0.1)", "cannot read the thresholds"),
    ):
        with pytest.raises(MlSqlError, match=re.escape(reason)):
            find_ml_calls(f"SELECT * FROM ML.ROC_CURVE(MODEL shop.m, TABLE shop.t, {bad})", "p", {})
    with pytest.raises(MlSqlError, match=r"ML.PREDICT takes \(query\) or TABLE t as input"):
        find_ml_calls("SELECT * FROM ML.PREDICT(MODEL shop.m, GENERATE_ARRAY(0.1, 0.9, 0.1))", "p", {})


def test_literals_are_escaped_and_typed():
    assert sql_literal("it's", "STRING") == "'it\\'s'"
    assert sql_literal(None, "FLOAT64") == "CAST(NULL AS FLOAT64)"
    assert sql_literal(float("nan"), "FLOAT64") == "CAST('NaN' AS FLOAT64)"
    assert sql_literal(float("-inf"), "FLOAT64") == "CAST('-inf' AS FLOAT64)"
    assert sql_literal(1e-7, "FLOAT64") == "1e-07" and sql_literal(True, "BOOL") == "TRUE"
    weights = "ARRAY<STRUCT<category STRING, weight FLOAT64>>"
    assert sql_literal([], weights) == f"CAST([] AS {weights})"
    assert sql_literal([("a", 1.5)], weights) == "[STRUCT('a' AS `category`, 1.5 AS `weight`)]"
    assert rows_sql([("n", "INT64")], []) == "SELECT CAST(NULL AS INT64) AS `n` LIMIT 0"
