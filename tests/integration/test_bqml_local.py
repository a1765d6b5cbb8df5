"""Local BigQuery ML in the emulator, against scikit-learn fitted the same way on the same rows: the
acceptance bar is ROC AUC within 0.01 and the same predicted label on at least 99 % of rows; outputs have
BigQuery ML's column names and types."""

from __future__ import annotations

import uuid
import warnings
from datetime import date

import numpy as np
import pytest
from sklearn import metrics
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from gcpipe.core.config import PROJECT_ROOT
from gcpipe.datagen.ecommerce import write_sessions
from gcpipe.warehouse.bqml.local import ModelStore
from gcpipe.warehouse.bqml.sql import ModelRef
from gcpipe.warehouse.load import load_json_lines
from gcpipe.warehouse.runner import run_sql, run_sql_file
from gcpipe.warehouse.script import SqlError

pytestmark = pytest.mark.stack

LABEL = "will_buy_on_return_visit"
NUMERIC = ["latest_ecommerce_progress", "bounces", "time_on_site", "pageviews"]
CATEGORICAL = ["source", "medium", "channel_grouping", "device_category", "country"]
SPLIT = date(2017, 5, 1)  # trained on first visits before it, compared on those after


class Shop:
    def __init__(self, bq, config, tmp):
        self.bq, self.name = bq, f"test_bqml_{uuid.uuid4().hex[:8]}"
        bq.create_dataset(self.name)
        self.config = config.replace(datasets={**config.datasets, "ecommerce": self.name})
        run_sql_file(PROJECT_ROOT / "sql/ddl/ga_sessions.sql", config=self.config, client=bq)
        write_sessions(tmp / "sessions.jsonl.gz", 6000, seed=11)
        load_json_lines(bq, tmp / "sessions.jsonl.gz", f"{config.project}.{self.name}.ga_sessions")
        run_sql_file(PROJECT_ROOT / "sql/ml/purchase_features.sql", config=self.config, client=bq)
        features = self.query("SELECT * FROM {ds}.purchase_features ORDER BY fullVisitorId")
        features = features.to_dataframe(create_bqstorage_client=False)
        self.train = features[features["date"] < SPLIT].reset_index(drop=True)
        self.later = features[features["date"] >= SPLIT].reset_index(drop=True)

    def query(self, sql: str):
        return self.bq.query(sql.replace("{ds}", f"`{self.config.project}.{self.name}`")).result()

    def run(self, sql: str, **params):
        sql = sql.replace("{ds}", f"`{self.config.project}.{self.name}`")
        return run_sql(sql, params, config=self.config, client=self.bq, source="test.sql")

    def create_model(self, name: str, options: str, label: str = LABEL, select: str = ""):
        return self.run(
            f"""CREATE OR REPLACE MODEL {{ds}}.{name}
            OPTIONS (model_type = 'logistic_reg', input_label_cols = ['{label}'], {options})
            AS SELECT {select} * EXCEPT (fullVisitorId, visitId, date{", " + LABEL if select else ""})
            FROM {{ds}}.purchase_features WHERE date < @split""",
            split=SPLIT,
        )

    def predict(self, name: str, label: str = LABEL):
        sql = f"""SELECT fullVisitorId, predicted_{label} AS predicted,
                    (SELECT p.prob FROM UNNEST(predicted_{label}_probs) AS p WHERE p.label = 1) AS prob
                  FROM ML.PREDICT(MODEL {{ds}}.{name}, (SELECT * FROM {{ds}}.purchase_features WHERE date >= @split))
                  ORDER BY fullVisitorId"""
        rows = self.run(sql, split=SPLIT).rows
        return np.array([r["predicted"] for r in rows]), np.array([r["prob"] for r in rows])


@pytest.fixture(scope="module")
def shop(bq, local_stack, tmp_path_factory):
    shop = Shop(bq, local_stack, tmp_path_factory.mktemp("bqml"))
    yield shop
    bq.delete_dataset(shop.name, delete_contents=True, not_found_ok=True)
    for path in (local_stack.state_dir / "models" / local_stack.project / shop.name).glob("*.json"):
        path.unlink()


def _sklearn(frame, **settings):
    prepare = ColumnTransformer(
        [
            ("numbers", StandardScaler(), NUMERIC),
            ("categories", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_pipeline(prepare, LogisticRegression(max_iter=10_000, tol=1e-10, **settings))
        return model.fit(frame[NUMERIC + CATEGORICAL], frame[LABEL])


@pytest.mark.parametrize(
    ("options", "settings"),
    [
        ("data_split_method = 'NO_SPLIT'", {"C": np.inf}),
        ("data_split_method = 'NO_SPLIT', l2_reg = 10", {"C": 0.1}),
        (
            "data_split_method = 'NO_SPLIT', auto_class_weights = TRUE",
            {"C": np.inf, "class_weight": "balanced"},
        ),
    ],
    ids=["defaults", "l2_reg", "auto_class_weights"],
)
def test_logistic_regression_matches_scikit_learn_on_the_same_rows(shop, options, settings):
    result = shop.create_model("compare", options)
    assert result.statements[0].statement_type == "CREATE_MODEL"
    predicted, ours = shop.predict("compare")
    theirs = _sklearn(shop.train, **settings).predict_proba(shop.later[NUMERIC + CATEGORICAL])[:, 1]
    actual = shop.later[LABEL].to_numpy()
    assert len(actual) > 500 and actual.sum() > 20
    assert abs(metrics.roc_auc_score(actual, ours) - metrics.roc_auc_score(actual, theirs)) < 0.01
    assert np.mean((ours > 0.5) == (theirs > 0.5)) >= 0.99
    assert np.array_equal(predicted, (ours > 0.5).astype(int))
    evaluation = shop.run(
        "SELECT * FROM ML.EVALUATE(MODEL {ds}.compare, (SELECT * FROM {ds}.purchase_features WHERE date >= @split))",
        split=SPLIT,
    ).rows[0]
    assert evaluation["roc_auc"] == pytest.approx(metrics.roc_auc_score(actual, ours), abs=1e-9)
    assert evaluation["log_loss"] == pytest.approx(metrics.log_loss(actual, ours), abs=1e-9)
    assert evaluation["precision"] == pytest.approx(
        metrics.precision_score(actual, ours > 0.5, zero_division=np.nan)
    )


def test_predictions_in_the_warehouse_are_the_fitted_model(shop):
    shop.create_model("purchase", "l2_reg = 1")
    model = ModelStore(shop.config.state_dir / "models").load(
        ModelRef(shop.config.project, shop.name, "purchase")
    )[0]
    import pyarrow as pa

    later = pa.Table.from_pandas(shop.later[NUMERIC + CATEGORICAL], preserve_index=False)
    _, in_warehouse = shop.predict("purchase")
    assert np.max(np.abs(in_warehouse - model.predict(later))) < 1e-9
    # AUTO_SPLIT held out 20 % of the rows for the metrics ML.EVALUATE reports without input.
    assert model.split["evaluation_rows"] == round(len(shop.train) * 0.2)
    evaluation = shop.run("SELECT * FROM ML.EVALUATE(MODEL {ds}.purchase)").rows[0]
    assert evaluation == pytest.approx(model.evaluation)


def test_roc_curve_counts_what_scikit_learn_counts_at_each_threshold(shop):
    shop.create_model("purchase", "l2_reg = 1")
    _, probability = shop.predict("purchase")
    actual = shop.later[LABEL].to_numpy()
    rows = shop.run(
        """SELECT * FROM ML.ROC_CURVE(MODEL {ds}.purchase, (SELECT * FROM {ds}.purchase_features WHERE date >= @split),
             GENERATE_ARRAY(0.1, 0.9, 0.1))""",
        split=SPLIT,
    ).rows
    assert [r["threshold"] for r in rows] == pytest.approx([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    for row in rows:
        tn, fp, fn, tp = metrics.confusion_matrix(actual, probability > row["threshold"]).ravel()
        assert (
            row["true_positives"],
            row["false_positives"],
            row["true_negatives"],
            row["false_negatives"],
        ) == (tp, fp, tn, fn)
        assert row["recall"] == pytest.approx(metrics.recall_score(actual, probability > row["threshold"]))
        assert row["false_positive_rate"] == pytest.approx(fp / (fp + tn))

    # Without input rows: the held-out rows of the training split, at the percentiles of their predictions.
    model = ModelStore(shop.config.state_dir / "models").load(
        ModelRef(shop.config.project, shop.name, "purchase")
    )[0]
    held = model.split["evaluation_rows"]
    curve = shop.run("SELECT * FROM ML.ROC_CURVE(MODEL {ds}.purchase) ORDER BY threshold DESC").rows
    assert 50 <= len(curve) <= 101
    assert all(
        r["true_positives"] + r["false_positives"] + r["true_negatives"] + r["false_negatives"] == held
        for r in curve
    )
    assert curve[-1]["threshold"] == min(r["threshold"] for r in curve)
    fpr = [0.0, *(r["false_positive_rate"] for r in curve), 1.0]
    recall = [0.0, *(r["recall"] for r in curve), 1.0]
    area = float(np.sum(np.diff(fpr) * (np.array(recall[1:]) + recall[:-1]) / 2))
    assert area == pytest.approx(
        model.evaluation["roc_auc"], abs=0.01
    )  # the curve's area is ML.EVALUATE's AUC

    with pytest.raises(SqlError, match=r"pass the rows to use GENERATE_ARRAY thresholds"):
        shop.run("SELECT * FROM ML.ROC_CURVE(MODEL {ds}.purchase, GENERATE_ARRAY(0.1, 0.9, 0.1))")
    with pytest.raises(SqlError, match=r"GENERATE_ARRAY\(0.9, 0.1, 0.1\) gives 0 thresholds"):
        shop.run(
            "SELECT * FROM ML.ROC_CURVE(MODEL {ds}.purchase, TABLE {ds}.purchase_features, "
            "GENERATE_ARRAY(0.9, 0.1, 0.1))"
        )


def _schema(result) -> list[tuple]:
    """(name, type, mode, [(field, type)]) of each column of a result set (query rows or a StatementResult)."""
    return [(f.name, f.field_type, f.mode, [(g.name, g.field_type) for g in f.fields]) for f in result.schema]


def test_outputs_have_bigquery_ml_names_and_types(shop):
    shop.create_model("purchase", "l2_reg = 1")
    predict = shop.run(
        "SELECT * FROM ML.PREDICT(MODEL {ds}.purchase, (SELECT * FROM {ds}.purchase_features LIMIT 3))"
    )
    columns = _schema(predict.statements[0])
    assert columns[:2] == [
        (f"predicted_{LABEL}", "INTEGER", "NULLABLE", []),
        (f"predicted_{LABEL}_probs", "RECORD", "REPEATED", [("label", "INTEGER"), ("prob", "FLOAT")]),
    ]
    assert [c[0] for c in columns[2:]] == [
        f.name for f in shop.query("SELECT * FROM {ds}.purchase_features LIMIT 0").schema
    ]
    probs = predict.rows[0][f"predicted_{LABEL}_probs"]
    assert [p["label"] for p in probs] == [1, 0] and sum(p["prob"] for p in probs) == pytest.approx(1.0)

    expected = {
        "EVALUATE": [
            (n, "FLOAT", "NULLABLE", [])
            for n in ("precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc")
        ],
        "WEIGHTS": [
            ("processed_input", "STRING", "NULLABLE", []),
            ("weight", "FLOAT", "NULLABLE", []),
            ("category_weights", "RECORD", "REPEATED", [("category", "STRING"), ("weight", "FLOAT")]),
        ],
        "FEATURE_INFO": [("input", "STRING", "NULLABLE", [])]
        + [(n, "FLOAT", "NULLABLE", []) for n in ("min", "max", "mean", "median", "stddev")]
        + [(n, "INTEGER", "NULLABLE", []) for n in ("category_count", "null_count", "dimension")],
        "ROC_CURVE": [(n, "FLOAT", "NULLABLE", []) for n in ("threshold", "recall", "false_positive_rate")]
        + [
            (n, "INTEGER", "NULLABLE", [])
            for n in ("true_positives", "false_positives", "true_negatives", "false_negatives")
        ],
        "TRAINING_INFO": [
            ("training_run", "INTEGER", "NULLABLE", []),
            ("iteration", "INTEGER", "NULLABLE", []),
            ("loss", "FLOAT", "NULLABLE", []),
            ("eval_loss", "FLOAT", "NULLABLE", []),
            ("learning_rate", "FLOAT", "NULLABLE", []),
            ("duration_ms", "INTEGER", "NULLABLE", []),
        ],
    }
    for function, schema in expected.items():
        result = shop.run(f"SELECT * FROM ML.{function}(MODEL {{ds}}.purchase)")
        assert _schema(result.statements[0]) == schema, function
    weights = {
        r["processed_input"]: r for r in shop.run("SELECT * FROM ML.WEIGHTS(MODEL {ds}.purchase)").rows
    }
    assert list(weights)[-1] == "__INTERCEPT__" and weights["pageviews"]["category_weights"] == []
    assert {c["category"] for c in weights["device_category"]["category_weights"]} == {
        "desktop",
        "mobile",
        "tablet",
    }
    recall = [
        shop.run(
            "SELECT recall FROM ML.EVALUATE(MODEL {ds}.purchase, (SELECT * FROM {ds}.purchase_features), "
            "STRUCT(@t AS threshold))",
            t=t,
        ).rows[0]["recall"]
        for t in (0.1, 0.5)
    ]
    assert recall[0] > recall[1]  # a lower threshold finds more of the buyers


def test_string_and_bool_labels_keep_their_type_and_the_higher_value_is_positive(shop):
    for label, expression, positive, kind in (
        ("bought", "IF(will_buy_on_return_visit = 1, 'yes', 'no')", "yes", "STRING"),
        ("buys", "will_buy_on_return_visit = 1", True, "BOOLEAN"),
    ):
        select = f"{expression} AS {label},"
        shop.create_model(f"by_{label}", "data_split_method = 'NO_SPLIT'", label=label, select=select)
        result = shop.run(
            f"SELECT * FROM ML.PREDICT(MODEL {{ds}}.by_{label}, (SELECT * FROM {{ds}}.purchase_features LIMIT 5))"
        )
        columns = _schema(result.statements[0])
        assert columns[0] == (f"predicted_{label}", kind, "NULLABLE", [])
        assert columns[1][3] == [("label", kind), ("prob", "FLOAT")]
        assert result.rows[0][f"predicted_{label}_probs"][0]["label"] == positive


def test_linear_regression_matches_scikit_learn(shop):
    shop.run(
        """CREATE OR REPLACE MODEL {ds}.time_on_site
           OPTIONS (model_type = 'linear_reg', input_label_cols = ['time_on_site'], data_split_method = 'NO_SPLIT')
           AS SELECT time_on_site, pageviews, bounces, device_category
           FROM {ds}.purchase_features WHERE date < @split""",
        split=SPLIT,
    )
    rows = shop.run(
        """SELECT predicted_time_on_site, time_on_site FROM ML.PREDICT(MODEL {ds}.time_on_site,
             (SELECT * FROM {ds}.purchase_features WHERE date >= @split ORDER BY fullVisitorId))""",
        split=SPLIT,
    ).rows
    columns = ["pageviews", "bounces"]
    prepare = ColumnTransformer(
        [("n", "passthrough", columns), ("c", OneHotEncoder(handle_unknown="ignore"), ["device_category"])]
    )
    reference = make_pipeline(prepare, LinearRegression()).fit(
        shop.train[[*columns, "device_category"]], shop.train["time_on_site"]
    )
    theirs = reference.predict(shop.later.sort_values("fullVisitorId")[[*columns, "device_category"]])
    ours = np.array([r["predicted_time_on_site"] for r in rows])
    assert np.max(np.abs(ours - theirs)) < 1e-6
    actual = np.array([r["time_on_site"] for r in rows])
    evaluation = shop.run(
        """SELECT * FROM ML.EVALUATE(MODEL {ds}.time_on_site,
             (SELECT * FROM {ds}.purchase_features WHERE date >= @split))""",
        split=SPLIT,
    ).rows[0]
    assert evaluation["mean_absolute_error"] == pytest.approx(metrics.mean_absolute_error(actual, ours))
    assert evaluation["r2_score"] == pytest.approx(metrics.r2_score(actual, ours))


def test_model_lifecycle_and_errors(shop):
    shop.create_model("lifecycle", "l2_reg = 1")
    with pytest.raises(
        SqlError, match=r"^test.sql:1: Already Exists: Model .*lifecycle; use CREATE OR REPLACE MODEL"
    ):
        shop.run(
            "CREATE MODEL {ds}.lifecycle OPTIONS (model_type = 'linear_reg') AS SELECT 1 AS label, 2 AS x"
        )
    kept = shop.run(
        "CREATE MODEL IF NOT EXISTS {ds}.lifecycle OPTIONS (model_type = 'linear_reg') AS SELECT 1 AS label"
    )
    assert "already exists; left as it is" in kept.statements[0].message
    path = ModelStore(shop.config.state_dir / "models").path(
        ModelRef(shop.config.project, shop.name, "lifecycle")
    )
    assert path.exists()
    shop.run("DROP MODEL {ds}.lifecycle")
    assert not path.exists()
    with pytest.raises(SqlError, match=r"^test.sql:1: Not found: Model .*\.lifecycle"):
        shop.run("SELECT * FROM ML.WEIGHTS(MODEL {ds}.lifecycle)")
    shop.bq.query(
        f"CREATE MODEL `{shop.config.project}.{shop.name}.elsewhere` OPTIONS (model_type = 'linear_reg') "
        "AS SELECT 1.0 AS label, 2 AS x"
    ).result()
    with pytest.raises(SqlError, match="exists in the emulator but was not trained by gcpipe"):
        shop.run("SELECT * FROM ML.WEIGHTS(MODEL {ds}.elsewhere)")
    with pytest.raises(
        SqlError, match=r"^test.sql:2: option num_clusters does not apply to model_type logistic_reg"
    ):
        shop.run(
            "SELECT 1;\nCREATE MODEL {ds}.bad OPTIONS (model_type = 'logistic_reg', num_clusters = 3)\n"
            "AS SELECT 1 AS label"
        )
    with pytest.raises(SqlError, match=r"^test.sql:1: the label column label has a single value"):
        shop.run(
            "CREATE OR REPLACE MODEL {ds}.bad OPTIONS (model_type = 'logistic_reg') AS SELECT 1 AS label, 2 AS x"
        )


def test_categories_with_quotes_survive_the_round_trip_through_sql(shop):
    shop.run(
        """CREATE OR REPLACE MODEL {ds}.quoted OPTIONS (model_type = 'logistic_reg', data_split_method = 'NO_SPLIT')
           AS SELECT will_buy_on_return_visit AS label, IF(bounces = 1, "it's a bounce", 'a "visit"') AS kind
           FROM {ds}.purchase_features"""
    )
    weights = shop.run("SELECT * FROM ML.WEIGHTS(MODEL {ds}.quoted)").rows
    assert {c["category"] for c in weights[0]["category_weights"]} == {"it's a bounce", 'a "visit"'}
    predicted = shop.run("""SELECT kind, predicted_label FROM ML.PREDICT(MODEL {ds}.quoted,
        (SELECT IF(bounces = 1, "it's a bounce", 'a "visit"') AS kind FROM {ds}.purchase_features))""")
    assert {r["kind"] for r in predicted.rows} == {"it's a bounce", 'a "visit"'}


def test_multiclass_logistic_regression_predicts_in_the_warehouse(shop):
    shop.run(
        """CREATE OR REPLACE MODEL {ds}.device
           OPTIONS (model_type = 'logistic_reg', input_label_cols = ['device_category'], data_split_method = 'NO_SPLIT',
                    l2_reg = 1)
           AS SELECT device_category, pageviews, time_on_site, bounces, channel_grouping FROM {ds}.purchase_features"""
    )
    result = shop.run(
        "SELECT * FROM ML.PREDICT(MODEL {ds}.device, (SELECT * FROM {ds}.purchase_features ORDER BY fullVisitorId))"
    )
    columns = _schema(result.statements[0])
    assert columns[:2] == [
        ("predicted_device_category", "STRING", "NULLABLE", []),
        ("predicted_device_category_probs", "RECORD", "REPEATED", [("label", "STRING"), ("prob", "FLOAT")]),
    ]
    model = ModelStore(shop.config.state_dir / "models").load(
        ModelRef(shop.config.project, shop.name, "device")
    )[0]
    rows = result.rows
    inputs = shop.query("SELECT * FROM {ds}.purchase_features ORDER BY fullVisitorId")
    expected = model.predict(inputs.to_arrow(create_bqstorage_client=False))
    assert model.kind == "multiclass" and model.classes == ["desktop", "mobile", "tablet"]
    for row, probabilities in zip(rows, expected, strict=True):
        probs = {p["label"]: p["prob"] for p in row["predicted_device_category_probs"]}
        assert [p["label"] for p in row["predicted_device_category_probs"]] == ["tablet", "mobile", "desktop"]
        assert [probs[c] for c in model.classes] == pytest.approx(probabilities.tolist(), abs=1e-9)
        assert row["predicted_device_category"] == model.classes[int(np.argmax(probabilities))]
    weights = shop.run("SELECT * FROM ML.WEIGHTS(MODEL {ds}.device)")
    assert weights.statements[0].columns == ["processed_input", "weight", "category_weights", "class_label"]
    assert {r["class_label"] for r in weights.rows} == {"desktop", "mobile", "tablet"}
    with pytest.raises(SqlError, match=r"ML.ROC_CURVE applies to binary classification models only"):
        shop.run("SELECT * FROM ML.ROC_CURVE(MODEL {ds}.device)")
