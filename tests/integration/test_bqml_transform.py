"""CREATE MODEL ... TRANSFORM(...) in the emulator: each preprocessing function against scikit-learn's
scaler, binner or encoder fitted on the same training rows, on those rows and on new ones (the statistics
frozen at training); the functions given rows (ML.PREDICT, ML.EVALUATE, ...) apply the TRANSFORM again, and
a model trained on it predicts as scikit-learn's same pipeline does."""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import (
    KBinsDiscretizer,
    MinMaxScaler,
    OneHotEncoder,
    PolynomialFeatures,
    StandardScaler,
)

from gcpipe.warehouse.script import SqlError
from tests.bqml_warehouse import Warehouse, schema_of

pytestmark = pytest.mark.stack

TRANSFORM = """
  ML.STANDARD_SCALER(x) OVER () AS x_std,
  ML.MIN_MAX_SCALER(y) OVER () AS y_mm,
  ML.BUCKETIZE(x, [-1, 0, 1]) AS x_bucket,
  ML.QUANTILE_BUCKETIZE(y, 4) OVER () AS y_quartile,
  ML.ONE_HOT_ENCODER(colour, 'most_frequent', 3, 5) OVER () AS colour,
  ML.FEATURE_CROSS(STRUCT(colour, size)) AS colour_size,
  ML.POLYNOMIAL_EXPAND(STRUCT(x, y)) AS poly,
  {label}"""
KNOWN = ("red", "green", "blue")
COLOURS = ["red", "green", "blue", "teal", "rare"]  # frequent, frequent, frequent, fourth, under 5 rows


def rows(rng, n: int, shift: float = 0.0) -> dict:
    colour = rng.choice(COLOURS[:4], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    colour[:3] = "rare"
    x, y = rng.normal(shift, 1.0, n), rng.uniform(0, 10, n) + shift
    size = rng.choice(["S", "L"], n)
    effect = {"red": 1.0, "green": -1.0, "blue": 0.5, "teal": 0.0, "rare": 0.0}
    score = 2 * x - 0.3 * y + 0.2 * x * y + np.array([effect[c] for c in colour]) + (size == "L")
    return {
        "id": np.arange(n),
        "x": x,
        "y": y,
        "colour": colour.tolist(),
        "size": size.tolist(),
        "target": score + rng.normal(0, 0.1, n),
        "label": (score + rng.logistic(0, 1, n) > 1).astype(np.int64),
    }


@pytest.fixture(scope="module")
def wh(bq, local_stack):
    warehouse = Warehouse(bq, local_stack)
    rng = np.random.default_rng(8)
    train, later = rows(rng, 800), rows(rng, 200, shift=0.5)
    later["colour"][3:6] = ["unseen", None, "rare"]  # a category never seen, a NULL, one too rare to count
    warehouse.load("train", pa.table(train))
    warehouse.load("later", pa.table(later))
    warehouse.train, warehouse.later = train, later
    yield warehouse
    warehouse.drop()


class Reference:
    """scikit-learn's preprocessing fitted on the training rows, as the TRANSFORM above asks."""

    def __init__(self, train: dict):
        self.standard = StandardScaler().fit(np.c_[train["x"]])
        self.minmax = MinMaxScaler(clip=True).fit(np.c_[train["y"]])
        self.quartiles = KBinsDiscretizer(4, encode="ordinal", strategy="quantile", quantile_method="linear")
        self.quartiles.fit(np.c_[train["y"]])
        self.onehot = OneHotEncoder(min_frequency=5, max_categories=4, handle_unknown="infrequent_if_exist")
        self.onehot.fit(np.c_[np.array(train["colour"], dtype=object)])
        self.poly = PolynomialFeatures(2, include_bias=False).fit(np.c_[train["x"], train["y"]])
        self.n = len(train["x"])
        self.trained = self.transform(train)

    def transform(self, data: dict) -> dict[str, list]:
        x, y = np.c_[data["x"]], np.c_[data["y"]]
        frequent = [c for c in self.onehot.categories_[0] if c not in self.onehot.infrequent_categories_[0]]
        encoded = self.onehot.transform(np.c_[np.array(data["colour"], dtype=object)]).toarray()[
            :, : len(frequent)
        ]
        index = np.where(encoded.any(axis=1), encoded.argmax(axis=1) + 1, 0)
        poly = self.poly.transform(np.c_[data["x"], data["y"]])
        names = {"x": "x", "y": "y", "x^2": "x_x", "x y": "x_y", "y^2": "y_y"}
        return {
            # BigQuery divides by the sample standard deviation, scikit-learn by the population's
            "x_std": (self.standard.transform(x)[:, 0] * np.sqrt((self.n - 1) / self.n)).tolist(),
            "y_mm": self.minmax.transform(y)[:, 0].tolist(),
            "x_bucket": [f"bin_{b + 1}" for b in np.digitize(data["x"], [-1, 0, 1])],
            "y_quartile": [f"bin_{int(b) + 1}" for b in self.quartiles.transform(y)[:, 0]],
            "colour": [int(i) for i in index],
            "colour_size": [
                f"{c}_{s}" if c is not None else None
                for c, s in zip(data["colour"], data["size"], strict=True)
            ],
            "poly": [
                dict(zip((names[n] for n in self.poly.get_feature_names_out(["x", "y"])), r, strict=True))
                for r in poly
            ],
        }


def test_every_preprocessing_function_matches_scikit_learn_on_training_and_new_rows(wh):
    wh.run(
        f"""CREATE OR REPLACE MODEL {{ds}}.shaped TRANSFORM({TRANSFORM.format(label="target")})
            OPTIONS (model_type = 'linear_reg', input_label_cols = ['target'], data_split_method = 'NO_SPLIT')
            AS SELECT x, y, colour, size, target FROM {{ds}}.train"""
    )
    reference = Reference(wh.train)
    for table, data in (("train", wh.train), ("later", wh.later)):
        result = wh.run(f"SELECT * FROM ML.TRANSFORM(MODEL {{ds}}.shaped, TABLE {{ds}}.{table})")
        if table == "train":
            assert schema_of(result) == [
                ("x_std", "FLOAT", "NULLABLE", []),
                ("y_mm", "FLOAT", "NULLABLE", []),
                ("x_bucket", "STRING", "NULLABLE", []),
                ("y_quartile", "STRING", "NULLABLE", []),
                ("colour", "RECORD", "REPEATED", [("index", "INTEGER"), ("value", "FLOAT")]),
                ("colour_size", "RECORD", "NULLABLE", [("colour_size", "STRING")]),
                ("poly", "RECORD", "NULLABLE", [(n, "FLOAT") for n in ("x", "x_x", "x_y", "y", "y_y")]),
                ("target", "FLOAT", "NULLABLE", []),
            ]
        ours = sorted(result.rows, key=lambda r: r["poly"]["x"])
        order = np.argsort(data["x"])
        expected = {name: [values[i] for i in order] for name, values in reference.transform(data).items()}
        assert np.allclose([r["x_std"] for r in ours], expected["x_std"], atol=1e-12)
        assert np.allclose([r["y_mm"] for r in ours], expected["y_mm"], atol=1e-12)
        if table == "later":  # new rows beyond the training range are capped, as scikit-learn's clip=True
            assert max(r["y_mm"] for r in ours) == 1.0
        assert [r["x_bucket"] for r in ours] == expected["x_bucket"]
        assert [r["y_quartile"] for r in ours] == expected["y_quartile"]
        assert [r["colour"][0]["index"] for r in ours] == expected["colour"]
        # the dummy encoding's dropped category (the most frequent, red) keeps its index, with value 0
        assert {r["colour"][0]["value"] for r in ours if r["colour"][0]["index"] == 3} == {0.0}
        assert {r["colour"][0]["value"] for r in ours if r["colour"][0]["index"] != 3} == {1.0}
        assert [r["colour_size"]["colour_size"] for r in ours] == expected["colour_size"]
        for row, poly in zip(ours, expected["poly"], strict=True):
            assert row["poly"] == pytest.approx(poly, rel=1e-12)


def _design(reference: Reference, data: dict) -> np.ndarray:
    """The model's features from scikit-learn's transforms: numbers as they are, categories one-hot."""
    t = reference.transform(data)
    numbers = np.c_[
        t["x_std"], t["y_mm"], [[p[k] for k in ("x", "x_x", "x_y", "y", "y_y")] for p in t["poly"]]
    ]
    blocks = []
    for name in ("x_bucket", "y_quartile", "colour", "colour_size"):
        levels = sorted(set(reference.trained[name]), key=str)
        blocks.append(np.array([[v == level for level in levels] for v in t[name]], dtype=float))
    return np.hstack([numbers, *blocks])


def test_models_trained_on_a_transform_predict_as_scikit_learn_on_the_same_pipeline(wh):
    reference = Reference(wh.train)
    # rows whose every feature the training rows span: seen colours, y within its training range (beyond
    # it y_mm is capped while poly_y is not, and least squares leaves their split of the weight open)
    top = max(wh.train["y"])
    seen = [
        i
        for i, (c, y) in enumerate(zip(wh.later["colour"], wh.later["y"], strict=True))
        if c in KNOWN and y <= top
    ]

    later = {k: [v[i] for i in seen] for k, v in wh.later.items()}
    wh.run(
        f"""CREATE OR REPLACE MODEL {{ds}}.shaped TRANSFORM({TRANSFORM.format(label="target")})
            OPTIONS (model_type = 'linear_reg', input_label_cols = ['target'], data_split_method = 'NO_SPLIT')
            AS SELECT x, y, colour, size, target FROM {{ds}}.train"""
    )
    predicted = wh.run(
        """SELECT * FROM ML.PREDICT(MODEL {ds}.shaped,
             (SELECT * EXCEPT (target, label) FROM {ds}.later WHERE colour IN ('red', 'green', 'blue') AND y <= @top))
           ORDER BY id""",
        top=top,
    )
    # the input's own columns pass through, as they were given (not the TRANSFORM's)
    assert [c[0] for c in schema_of(predicted)] == ["predicted_target", "id", "x", "y", "colour", "size"]
    assert [r["x"] for r in predicted.rows] == later["x"]
    ols = LinearRegression().fit(_design(reference, wh.train), wh.train["target"])
    expected = ols.predict(_design(reference, later))
    assert np.allclose([r["predicted_target"] for r in predicted.rows], expected, rtol=1e-6, atol=1e-6)

    wh.run(
        f"""CREATE OR REPLACE MODEL {{ds}}.buyer TRANSFORM({TRANSFORM.format(label="label")})
            OPTIONS (model_type = 'logistic_reg', data_split_method = 'NO_SPLIT', early_stop = FALSE,
                     max_iterations = 50)
            AS SELECT x, y, colour, size, label FROM {{ds}}.train"""
    )
    result = wh.run(
        """SELECT id, predicted_label, (SELECT p.prob FROM UNNEST(predicted_label_probs) AS p WHERE p.label = 1) AS p
           FROM ML.PREDICT(MODEL {ds}.buyer,
             (SELECT id, x, y, colour, size FROM {ds}.later WHERE colour IN ('red', 'green', 'blue') AND y <= @top))
           ORDER BY id""",
        top=top,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logistic = LogisticRegression(C=np.inf, max_iter=10_000, tol=1e-10).fit(
            _design(reference, wh.train), wh.train["label"]
        )
    theirs = logistic.predict_proba(_design(reference, later))[:, 1]
    ours = np.array([r["p"] for r in result.rows])
    assert np.max(np.abs(ours - theirs)) < 1e-3
    # the evaluation functions apply the TRANSFORM to the rows, label included
    evaluation = wh.rows(
        """SELECT * FROM ML.EVALUATE(MODEL {ds}.buyer,
             (SELECT * FROM {ds}.later WHERE colour IN ('red', 'green', 'blue') AND y <= @top))""",
        top=top,
    )[0]
    assert evaluation["roc_auc"] == pytest.approx(roc_auc_score(later["label"], ours), abs=1e-9)
    matrix = wh.rows(
        "SELECT * FROM ML.CONFUSION_MATRIX(MODEL {ds}.buyer, TABLE {ds}.later) ORDER BY expected_label"
    )
    assert sum(r["_0"] + r["_1"] for r in matrix) == len(wh.later["x"])
    explained = wh.rows("SELECT * FROM ML.EXPLAIN_PREDICT(MODEL {ds}.buyer, TABLE {ds}.later) ORDER BY id")
    assert [r["id"] for r in explained] == list(range(len(wh.later["x"])))
    weights = {r["processed_input"] for r in wh.rows("SELECT * FROM ML.WEIGHTS(MODEL {ds}.buyer)")}
    assert {"x_std", "colour", "colour_size_colour_size", "poly_x_y"} <= weights


def test_kmeans_and_boosted_trees_read_their_transform_too(wh):
    import xgboost as xgb

    wh.run(
        """CREATE OR REPLACE MODEL {ds}.groups
           TRANSFORM(ML.MIN_MAX_SCALER(x) OVER () AS x, ML.MIN_MAX_SCALER(y) OVER () AS y)
           OPTIONS (model_type = 'kmeans', num_clusters = 3, standardize_features = FALSE)
           AS SELECT * FROM {ds}.train"""
    )
    grouped = wh.run("SELECT * FROM ML.PREDICT(MODEL {ds}.groups, TABLE {ds}.later) ORDER BY id")
    assert [c[0] for c in schema_of(grouped)][:3] == ["centroid_id", "nearest_centroids_distance", "id"]
    centroids = wh.rows("SELECT * FROM ML.CENTROIDS(MODEL {ds}.groups)")
    assert all(0 <= r["numerical_value"] <= 1 for r in centroids)  # centres of the scaled features
    anomalies = wh.rows(
        "SELECT * FROM ML.DETECT_ANOMALIES(MODEL {ds}.groups, STRUCT(0.05 AS contamination), TABLE {ds}.later)"
    )
    assert len(anomalies) == len(wh.later["x"]) and "colour" in anomalies[0]

    wh.run(
        """CREATE OR REPLACE MODEL {ds}.tree
           TRANSFORM(ML.QUANTILE_BUCKETIZE(y, 4) OVER () AS y_quartile, ML.STANDARD_SCALER(x) OVER () AS x, target)
           OPTIONS (model_type = 'boosted_tree_regressor', input_label_cols = ['target'], max_iterations = 10,
                    early_stop = FALSE, data_split_method = 'NO_SPLIT')
           AS SELECT * FROM {ds}.train"""
    )
    predicted = wh.rows("SELECT * FROM ML.PREDICT(MODEL {ds}.tree, TABLE {ds}.later) ORDER BY id")
    assert [r["x"] for r in predicted] == wh.later["x"].tolist()  # the raw input passed through
    features = {
        name: wh.rows(f"SELECT * FROM ML.TRANSFORM(MODEL {{ds}}.tree, TABLE {{ds}}.{name}) ORDER BY x")
        for name in ("train", "later")
    }

    def matrix(rows):
        return np.array([[["bin_1", "bin_2", "bin_3", "bin_4"].index(r["y_quartile"]), r["x"]] for r in rows])

    params = {"eta": 0.3, "max_depth": 6, "lambda": 1.0, "tree_method": "hist", "seed": 0}
    train = features["train"]
    booster = xgb.train(params, xgb.DMatrix(matrix(train), label=[r["target"] for r in train]), 10)
    theirs = booster.predict(xgb.DMatrix(matrix(features["later"])))
    ours = sorted(predicted, key=lambda r: r["x"])
    assert np.max(np.abs(np.array([r["predicted_target"] for r in ours]) - theirs)) < 1e-5
    evaluation = wh.rows("SELECT * FROM ML.EVALUATE(MODEL {ds}.tree, TABLE {ds}.later)")[0]
    assert evaluation["r2_score"] > 0.5


@pytest.mark.parametrize(
    ("clause", "options", "message"),
    [
        (
            "ML.STANDARD_SCALER(x) OVER () AS x, target",
            "model_type = 'matrix_factorization', user_col = 'id', item_col = 'size', rating_col = 'target'",
            "model_type matrix_factorization takes no TRANSFORM clause",
        ),
        ("x * 2, target", "model_type = 'linear_reg'", r"the TRANSFORM expression x \* 2 needs a name"),
        (
            "ML.STANDARD_SCALER(x) AS x, target",
            "model_type = 'linear_reg'",
            r"write ML.STANDARD_SCALER\(...\) OVER",
        ),
        (
            "AVG(x) OVER () AS x, target",
            "model_type = 'linear_reg'",
            "TRANSFORM takes only the preprocessing ones",
        ),
        (
            "ML.MIN_MAX_SCALER(x) OVER (PARTITION BY size) AS x, target",
            "model_type = 'linear_reg'",
            r"ML.MIN_MAX_SCALER takes OVER \(\) only",
        ),
        (
            "ML.IMPUTER(x, 'mean') OVER () AS x, target",
            "model_type = 'linear_reg'",
            "ML.IMPUTER is not a preprocessing",
        ),
        (
            "ML.STANDARD_SCALER(x) OVER () AS x",
            "model_type = 'linear_reg', input_label_cols = ['target']",
            "has no column 'target', the label",
        ),
        ("nothing, target", "model_type = 'linear_reg'", "TRANSFORM reads column 'nothing'"),
    ],
    ids=["mf", "unnamed", "no-over", "other-window", "partition", "unsupported", "no-label", "no-column"],
)
def test_a_transform_bigquery_would_reject_is_one_sentence_naming_the_line(wh, clause, options, message):
    with pytest.raises(SqlError, match=rf"^test.sql:2: .*{message}"):
        wh.run(
            f"SELECT 1;\nCREATE OR REPLACE MODEL {{ds}}.bad TRANSFORM({clause}) OPTIONS ({options})\n"
            "AS SELECT * FROM {ds}.train"
        )


def test_ml_transform_needs_a_model_with_a_transform(wh):
    wh.run(
        """CREATE OR REPLACE MODEL {ds}.plain OPTIONS (model_type = 'linear_reg', input_label_cols = ['target'])
           AS SELECT x, target FROM {ds}.train"""
    )
    with pytest.raises(SqlError, match=r"was trained without a TRANSFORM clause; ML\.TRANSFORM needs one"):
        wh.run("SELECT * FROM ML.TRANSFORM(MODEL {ds}.plain, TABLE {ds}.later)")
