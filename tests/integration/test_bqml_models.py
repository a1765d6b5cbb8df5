"""Local BigQuery ML's k-means, boosted trees, matrix factorization and ARIMA_PLUS in the emulator, each
against an independent fit of the same rows (scikit-learn, xgboost called directly, an ALS written here,
statsmodels) and on data with a known answer; outputs have BigQuery ML's column names and types."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from gcpipe.warehouse.script import SqlError
from tests.bqml_warehouse import Warehouse, schema_of

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def wh(bq, local_stack):
    warehouse = Warehouse(bq, local_stack)
    yield warehouse
    warehouse.drop()


def same_partition(a, b) -> bool:
    """Two labellings name the same groups (whatever the numbers)."""
    pairs = set(zip(a, b, strict=True))
    return len(pairs) == len(set(a)) == len(set(b))


# -- k-means --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blobs(wh):
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [8.0, 8.0], [0.0, 9.0]])
    truth = np.repeat(np.arange(3), 200)
    points = centres[truth] + rng.normal(0, 1.0, (600, 2))
    kind = np.array(["a", "b", "c"])[truth]
    table = pa.table(
        {"id": np.arange(600), "x": points[:, 0], "y": points[:, 1], "kind": kind, "truth": truth}
    )
    wh.load("blobs", table)
    return table


def test_kmeans_finds_separated_clusters_as_scikit_learn_does(wh, blobs):
    from sklearn.cluster import KMeans
    from sklearn.metrics import davies_bouldin_score

    created = wh.run(
        """CREATE OR REPLACE MODEL {ds}.segments
           OPTIONS (model_type = 'kmeans', num_clusters = 3, kmeans_init_method = 'KMEANS++')
           AS SELECT x, y, kind FROM {ds}.blobs"""
    )
    assert created.statements[0].statement_type == "CREATE_MODEL"
    result = wh.run("SELECT * FROM ML.PREDICT(MODEL {ds}.segments, TABLE {ds}.blobs) ORDER BY id")
    assert schema_of(result)[:2] == [
        ("centroid_id", "INTEGER", "NULLABLE", []),
        (
            "nearest_centroids_distance",
            "RECORD",
            "REPEATED",
            [("centroid_id", "INTEGER"), ("distance", "FLOAT")],
        ),
    ]
    assert [c[0] for c in schema_of(result)[2:]] == ["id", "x", "y", "kind", "truth"]
    ours = [r["centroid_id"] for r in result.rows]
    assert same_partition(ours, blobs["truth"].to_pylist())
    nearest = result.rows[0]["nearest_centroids_distance"]
    assert next(n["centroid_id"] for n in nearest) == ours[0] and len(nearest) == 3
    assert [n["distance"] for n in nearest] == sorted(n["distance"] for n in nearest)

    # scikit-learn on the same design (standardised numbers, one-hot kind): the same clusters, centres, score.
    model = wh.model("segments")
    X = model.design(blobs.select(["x", "y", "kind"]))
    reference = KMeans(n_clusters=3, n_init=10, random_state=0).fit(X)
    assert same_partition(ours, reference.labels_.tolist())
    distances = np.array(
        [
            [n["distance"] for n in sorted(r["nearest_centroids_distance"], key=lambda n: n["centroid_id"])]
            for r in result.rows
        ]
    )
    assert np.allclose(distances, model.distances(X), atol=1e-9)
    evaluation = wh.rows("SELECT * FROM ML.EVALUATE(MODEL {ds}.segments)")[0]
    assert evaluation["mean_squared_distance"] == pytest.approx(reference.inertia_ / len(X), rel=1e-6)
    assert evaluation["davies_bouldin_index"] == pytest.approx(
        davies_bouldin_score(X, reference.labels_), rel=1e-6
    )
    again = wh.run("SELECT * FROM ML.EVALUATE(MODEL {ds}.segments, (SELECT x, y, kind FROM {ds}.blobs))")
    assert schema_of(again) == [
        (n, "FLOAT", "NULLABLE", []) for n in ("davies_bouldin_index", "mean_squared_distance")
    ]
    assert again.rows[0] == pytest.approx(evaluation)


# Columns of every kind an ML.PREDICT input passes through (the GEOGRAPHY one keeps the input in the warehouse).
KINDS = """id, x, y, kind, DATE_ADD(DATE '2024-02-29', INTERVAL id DAY) AS day,
  TIMESTAMP_ADD(TIMESTAMP '2024-01-01 10:00:00 UTC', INTERVAL CAST(id AS INT64) SECOND) AS seen,
  CAST(id AS NUMERIC) / 8 AS amount, MOD(id, 2) = 0 AS even, CAST(kind AS BYTES) AS raw,
  STRUCT(id AS n, kind AS k) AS pair, [id, id + 1] AS pairs"""


@pytest.mark.parametrize("geography", [False, True], ids=["arrow", "in the warehouse"])
def test_predictions_pass_every_input_column_through_as_it_was(wh, blobs, geography):
    """ML.PREDICT's own columns first, then the input's, each of its type and value, whichever way the rows
    travel: read once and loaded back beside the predictions, or joined back in the warehouse."""
    wh.run(
        """CREATE OR REPLACE MODEL {ds}.kinds OPTIONS (model_type = 'kmeans', num_clusters = 3)
           AS SELECT x, y, kind FROM {ds}.blobs"""
    )
    wh.run(
        """CREATE OR REPLACE MODEL {ds}.kinds_tree OPTIONS (model_type = 'boosted_tree_classifier',
              input_label_cols = ['truth'], max_iterations = 5)
           AS SELECT x, y, kind, truth FROM {ds}.blobs"""
    )
    columns = KINDS + (", ST_GEOGPOINT(x, y) AS place" if geography else "")
    rows = f"(SELECT {columns} FROM {{ds}}.blobs WHERE id < 50)"
    # (the emulator's tables hold GEOGRAPHY as bytes the client cannot read: the other columns are compared)
    shown = "* EXCEPT (place)" if geography else "*"
    given = wh.run(f"SELECT {shown} FROM {rows} ORDER BY id")
    for model, own in (("kinds", 2), ("kinds_tree", 2)):
        predicted = wh.run(f"SELECT {shown} FROM ML.PREDICT(MODEL {{ds}}.{model}, {rows}) ORDER BY id")
        assert schema_of(predicted)[own:] == schema_of(given), model
        names = [name for name, *_ in schema_of(given)]
        assert [{n: r[n] for n in names} for r in predicted.rows] == given.rows, model


def test_kmeans_centroids_and_anomalies(wh, blobs):
    wh.run(
        """CREATE OR REPLACE MODEL {ds}.segments
           OPTIONS (model_type = 'kmeans', num_clusters = 3, kmeans_init_method = 'KMEANS++')
           AS SELECT x, y, kind FROM {ds}.blobs"""
    )
    result = wh.run("SELECT * FROM ML.CENTROIDS(MODEL {ds}.segments) ORDER BY centroid_id, feature")
    assert schema_of(result) == [
        ("centroid_id", "INTEGER", "NULLABLE", []),
        ("feature", "STRING", "NULLABLE", []),
        ("numerical_value", "FLOAT", "NULLABLE", []),
        ("categorical_value", "RECORD", "REPEATED", [("category", "STRING"), ("value", "FLOAT")]),
    ]
    means = {}
    for row in result.rows:
        means.setdefault(row["centroid_id"], {})[row["feature"]] = row
    truth = {
        (round(float(np.mean(blobs["x"].to_numpy()[blobs["truth"].to_numpy() == t]))), t) for t in range(3)
    }
    for centroid in means.values():  # on the input's scale, each centre is its cluster's mean
        kinds = {c["category"]: c["value"] for c in centroid["kind"]["categorical_value"]}
        cluster = "abc".index(max(kinds, key=kinds.get))
        assert kinds[max(kinds, key=kinds.get)] == pytest.approx(1.0)
        members = blobs["truth"].to_numpy() == cluster
        assert centroid["x"]["numerical_value"] == pytest.approx(
            float(np.mean(blobs["x"].to_numpy()[members]))
        )
    assert len(truth) == 3

    anomalies = wh.run(
        """SELECT * FROM ML.DETECT_ANOMALIES(MODEL {ds}.segments, STRUCT(0.02 AS contamination),
             (SELECT id, x, y, kind FROM {ds}.blobs
              UNION ALL SELECT -1, 40.0, -30.0, 'a' UNION ALL SELECT -2, -25.0, 20.0, 'c'))
           ORDER BY id"""
    )
    assert schema_of(anomalies)[:3] == [
        ("is_anomaly", "BOOLEAN", "NULLABLE", []),
        ("normalized_distance", "FLOAT", "NULLABLE", []),
        ("centroid_id", "INTEGER", "NULLABLE", []),
    ]
    flagged = {r["id"] for r in anomalies.rows if r["is_anomaly"]}
    assert {-1, -2} <= flagged
    assert 0.005 <= (len(flagged) - 2) / 600 <= 0.035  # the training rows' 2 %, give or take their quantile

    with pytest.raises(SqlError, match=r"^test.sql:2: num_clusters must be between 2 and 100 \(got 1\)"):
        wh.run(
            "SELECT 1;\nCREATE MODEL {ds}.one OPTIONS (model_type = 'kmeans', num_clusters = 1)\n"
            "AS SELECT x FROM {ds}.blobs"
        )
    with pytest.raises(SqlError, match=r"ML.ROC_CURVE does not apply to kmeans models"):
        wh.run("SELECT * FROM ML.ROC_CURVE(MODEL {ds}.segments)")


# -- boosted trees --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rings(wh):
    """A label inside a ring (a boundary no linear model can draw), a category that matters, NULLs."""
    rng = np.random.default_rng(5)
    n = 3000
    x, y = rng.uniform(-3, 3, n), rng.uniform(-3, 3, n)
    colour = rng.choice(["red", "green", "blue"], n)
    radius = np.hypot(x, y)
    label = ((radius > 1.2) & (radius < 2.4)) ^ (colour == "blue") & (rng.random(n) < 0.3)
    x_with_nulls = pa.array(np.where(rng.random(n) < 0.02, np.nan, x), from_pandas=True)
    table = pa.table(
        {
            "id": np.arange(n),
            "x": x_with_nulls,
            "y": y,
            "colour": colour,
            "label": label.astype(np.int64),
            "split": np.where(np.arange(n) < 2400, "train", "test"),
        }
    )
    wh.load("rings", table)
    return table


TREE_OPTIONS = "max_iterations = 30, learn_rate = 0.3, max_tree_depth = 5, l2_reg = 1, early_stop = FALSE"


def test_boosted_trees_learn_what_logistic_regression_cannot_as_xgboost_does(wh, rings):
    import xgboost as xgb
    from sklearn.metrics import confusion_matrix, roc_auc_score

    for name, kind in (
        ("rings_tree", f"boosted_tree_classifier', {TREE_OPTIONS}, data_split_method = 'NO_SPLIT"),
        ("rings_linear", "logistic_reg', data_split_method = 'NO_SPLIT"),
    ):
        wh.run(
            f"""CREATE OR REPLACE MODEL {{ds}}.{name} OPTIONS (model_type = '{kind}')
                AS SELECT x, y, colour, label FROM {{ds}}.rings WHERE split = 'train'"""
        )
    test = rings.filter(pc_equal(rings["split"], "test"))
    actual = test["label"].to_numpy()
    probability = {}
    for name in ("rings_tree", "rings_linear"):
        result = wh.run(
            f"""SELECT * FROM ML.PREDICT(MODEL {{ds}}.{name}, (SELECT * FROM {{ds}}.rings WHERE split = 'test'))
                ORDER BY id"""
        )
        probability[name] = np.array(
            [next(p["prob"] for p in r["predicted_label_probs"] if p["label"] == 1) for r in result.rows]
        )
        if name == "rings_tree":
            assert schema_of(result)[:2] == [
                ("predicted_label", "INTEGER", "NULLABLE", []),
                ("predicted_label_probs", "RECORD", "REPEATED", [("label", "INTEGER"), ("prob", "FLOAT")]),
            ]
            assert [c[0] for c in schema_of(result)[2:]] == rings.column_names
            assert [r["id"] for r in result.rows] == test["id"].to_pylist()
            predicted = np.array([r["predicted_label"] for r in result.rows])
    assert roc_auc_score(actual, probability["rings_tree"]) > 0.9
    assert roc_auc_score(actual, probability["rings_linear"]) < 0.7

    # xgboost called directly, same parameters, same rows (colour label-encoded in sorted order): same trees.
    train = rings.filter(pc_equal(rings["split"], "train"))

    def matrix(t):
        colour = np.searchsorted(["blue", "green", "red"], t["colour"].to_numpy(zero_copy_only=False))
        return np.column_stack([t["x"].to_numpy(zero_copy_only=False), t["y"].to_numpy(), colour]).astype(
            np.float32
        )

    params = {
        "objective": "binary:logistic",
        "eta": 0.3,
        "max_depth": 5,
        "lambda": 1.0,
        "alpha": 0.0,
        "tree_method": "hist",
        "seed": 0,
    }
    booster = xgb.train(
        params, xgb.DMatrix(matrix(train), label=train["label"].to_numpy()), num_boost_round=30
    )
    theirs = booster.predict(xgb.DMatrix(matrix(test)))
    assert np.max(np.abs(probability["rings_tree"] - theirs)) < 1e-6

    matrix_rows = wh.run(
        """SELECT * FROM ML.CONFUSION_MATRIX(MODEL {ds}.rings_tree, (SELECT * FROM {ds}.rings WHERE split = 'test'))
           ORDER BY expected_label"""
    )
    assert schema_of(matrix_rows) == [
        ("expected_label", "STRING", "NULLABLE", []),
        ("_0", "INTEGER", "NULLABLE", []),
        ("_1", "INTEGER", "NULLABLE", []),
    ]
    counts = [[r["_0"], r["_1"]] for r in matrix_rows.rows]
    assert counts == confusion_matrix(actual, predicted).tolist()
    strict = wh.rows(
        """SELECT * FROM ML.CONFUSION_MATRIX(MODEL {ds}.rings_linear,
             (SELECT * FROM {ds}.rings WHERE split = 'test'), STRUCT(0.9 AS threshold)) ORDER BY expected_label"""
    )
    linear = probability["rings_linear"]
    assert [[r["_0"], r["_1"]] for r in strict] == confusion_matrix(
        actual, linear > 0.9, labels=[0, 1]
    ).tolist()

    importance = wh.run("SELECT * FROM ML.FEATURE_IMPORTANCE(MODEL {ds}.rings_tree) ORDER BY feature")
    assert schema_of(importance) == [
        ("feature", "STRING", "NULLABLE", []),
        ("importance_weight", "INTEGER", "NULLABLE", []),
        ("importance_gain", "FLOAT", "NULLABLE", []),
        ("importance_cover", "FLOAT", "NULLABLE", []),
    ]
    weights = booster.get_score(importance_type="weight")
    assert {r["feature"]: r["importance_weight"] for r in importance.rows} == {
        "colour": weights.get("f2", 0),
        "x": weights["f0"],
        "y": weights["f1"],
    }


def pc_equal(values, value):
    import pyarrow.compute as pc

    return pc.equal(values, value)


def test_every_classifier_explains_its_predictions_exactly(wh, rings):
    for name, kind in (
        ("explain_tree", f"boosted_tree_classifier', {TREE_OPTIONS}, data_split_method = 'NO_SPLIT"),
        ("explain_linear", "logistic_reg', data_split_method = 'NO_SPLIT"),
    ):
        wh.run(
            f"""CREATE OR REPLACE MODEL {{ds}}.{name} OPTIONS (model_type = '{kind}')
                AS SELECT x, y, colour, label FROM {{ds}}.rings"""
        )
        result = wh.run(
            f"""SELECT * FROM ML.EXPLAIN_PREDICT(MODEL {{ds}}.{name}, (SELECT * FROM {{ds}}.rings WHERE id < 50),
                  STRUCT(2 AS top_k_features)) ORDER BY id"""
        )
        assert schema_of(result)[:6] == [
            ("predicted_label", "INTEGER", "NULLABLE", []),
            ("probability", "FLOAT", "NULLABLE", []),
            (
                "top_feature_attributions",
                "RECORD",
                "REPEATED",
                [("feature", "STRING"), ("attribution", "FLOAT")],
            ),
            ("baseline_prediction_value", "FLOAT", "NULLABLE", []),
            ("prediction_value", "FLOAT", "NULLABLE", []),
            ("approximation_error", "FLOAT", "NULLABLE", []),
        ]
        predicted = wh.rows(
            f"SELECT * FROM ML.PREDICT(MODEL {{ds}}.{name}, (SELECT * FROM {{ds}}.rings WHERE id < 50)) ORDER BY id"
        )
        for row, plain in zip(result.rows, predicted, strict=True):
            assert row["predicted_label"] == plain["predicted_label"]
            p = next(
                p["prob"] for p in plain["predicted_label_probs"] if p["label"] == row["predicted_label"]
            )
            assert row["probability"] == pytest.approx(p, abs=1e-6)
            # prediction_value is the predicted class's logit, and the attributions lead to it from the baseline
            assert 1 / (1 + np.exp(-row["prediction_value"])) == pytest.approx(p, abs=1e-5)
            top = row["top_feature_attributions"]
            assert len(top) == 2 and abs(top[0]["attribution"]) >= abs(top[1]["attribution"])


def test_boosted_tree_regressor_matches_xgboost(wh, rings):
    import xgboost as xgb

    wh.run(
        f"""CREATE OR REPLACE MODEL {{ds}}.distance
            OPTIONS (model_type = 'boosted_tree_regressor', input_label_cols = ['radius'], {TREE_OPTIONS},
                     data_split_method = 'NO_SPLIT')
            AS SELECT SQRT(x * x + y * y) AS radius, x, y FROM {{ds}}.rings WHERE x IS NOT NULL"""
    )
    result = wh.run(
        """SELECT * FROM ML.PREDICT(MODEL {ds}.distance,
             (SELECT id, x, y, SQRT(x * x + y * y) AS radius FROM {ds}.rings WHERE x IS NOT NULL)) ORDER BY id"""
    )
    assert schema_of(result)[0] == ("predicted_radius", "FLOAT", "NULLABLE", [])
    known = [r for r in rings.to_pylist() if r["x"] is not None]
    X = np.array([[r["x"], r["y"]] for r in known], dtype=np.float32)
    radius = np.hypot(X[:, 0].astype(float), X[:, 1].astype(float))
    params = {
        "objective": "reg:squarederror",
        "eta": 0.3,
        "max_depth": 5,
        "lambda": 1.0,
        "tree_method": "hist",
        "seed": 0,
    }
    booster = xgb.train(params, xgb.DMatrix(X, label=radius), num_boost_round=30)
    ours = np.array([r["predicted_radius"] for r in result.rows])
    assert np.max(np.abs(ours - booster.predict(xgb.DMatrix(X)))) < 1e-5
    evaluation = wh.run("SELECT * FROM ML.EVALUATE(MODEL {ds}.distance)")
    assert [c[0] for c in schema_of(evaluation)] == [
        "mean_absolute_error",
        "mean_squared_error",
        "mean_squared_log_error",
        "median_absolute_error",
        "r2_score",
        "explained_variance",
    ]
    assert evaluation.rows[0]["r2_score"] > 0.95
    info = wh.rows("SELECT * FROM ML.TRAINING_INFO(MODEL {ds}.distance) ORDER BY iteration")
    assert len(info) == 30 and info[-1]["loss"] < info[0]["loss"]
    with pytest.raises(SqlError, match=r"^test.sql:1: the training query has no label column 'nothing'"):
        wh.run(
            "CREATE OR REPLACE MODEL {ds}.bad OPTIONS (model_type = 'boosted_tree_regressor', "
            "input_label_cols = ['nothing']) AS SELECT x, y FROM {ds}.rings"
        )


# -- matrix factorization -------------------------------------------------------------------------


def _numpy_als(users, items, ratings, n_users, n_items, factors, l2, iterations=30):
    """Explicit ALS, written here: ratings = mean + U V', ridge l2 on both sides."""
    rng = np.random.default_rng(42)
    mean = ratings.mean()
    U, V = rng.normal(0, 0.1, (n_users, factors)), rng.normal(0, 0.1, (n_items, factors))
    for _ in range(iterations):
        for side, other, index, by in ((U, V, users, items), (V, U, items, users)):
            for row in range(len(side)):
                mine = index == row
                F = other[by[mine]]
                side[row] = np.linalg.solve(F.T @ F + l2 * np.eye(factors), F.T @ (ratings[mine] - mean))
    return lambda u, i: mean + np.einsum("ij,ij->i", U[u], V[i])


def test_matrix_factorization_recovers_low_rank_ratings_as_an_als_written_here_does(wh):
    rng = np.random.default_rng(9)
    n_users, n_items, rank = 120, 80, 3
    U, V = rng.normal(0, 1, (n_users, rank)), rng.normal(0, 1, (n_items, rank))
    pairs = np.array([(u, i) for u in range(n_users) for i in range(n_items) if rng.random() < 0.5])
    truth = 3.0 + np.einsum("ij,ij->i", U[pairs[:, 0]], V[pairs[:, 1]])
    rating = truth + rng.normal(0, 0.1, len(pairs))
    held = rng.random(len(pairs)) < 0.1
    table = pa.table(
        {
            "user_id": pairs[:, 0].astype(np.int64),
            "item": [f"item{i}" for i in pairs[:, 1]],
            "rating": rating,
            "held": held,
        }
    )
    wh.load("ratings", table)
    wh.run(
        """CREATE OR REPLACE MODEL {ds}.taste
           OPTIONS (model_type = 'matrix_factorization', user_col = 'user_id', item_col = 'item',
                    rating_col = 'rating', num_factors = 3, l2_reg = 0.1, max_iterations = 30, early_stop = FALSE)
           AS SELECT user_id, item, rating FROM {ds}.ratings WHERE NOT held"""
    )
    result = wh.run(
        """SELECT * FROM ML.RECOMMEND(MODEL {ds}.taste, (SELECT user_id, item FROM {ds}.ratings WHERE held))
           ORDER BY user_id, item"""
    )
    assert schema_of(result) == [
        ("predicted_rating", "FLOAT", "NULLABLE", []),
        ("user_id", "INTEGER", "NULLABLE", []),
        ("item", "STRING", "NULLABLE", []),
    ]
    test = sorted((u, f"item{i}", r) for (u, i), r, h in zip(pairs.tolist(), truth, held, strict=True) if h)
    ours = np.array([r["predicted_rating"] for r in result.rows])
    actual = np.array([t[2] for t in test])
    assert [(r["user_id"], r["item"]) for r in result.rows] == [t[:2] for t in test]
    assert np.sqrt(np.mean((ours - actual) ** 2)) < 0.35  # the low-rank ratings, recovered on unseen pairs

    train = ~held
    theirs = _numpy_als(pairs[train, 0], pairs[train, 1], rating[train], n_users, n_items, 3, 0.1)
    test_pairs = np.array([(u, int(i[4:])) for u, i, _ in test])
    reference = theirs(test_pairs[:, 0], test_pairs[:, 1])
    assert abs(np.sqrt(np.mean((ours - actual) ** 2)) - np.sqrt(np.mean((reference - actual) ** 2))) < 0.02
    assert np.corrcoef(ours, reference)[0, 1] > 0.99

    evaluation = wh.rows(
        "SELECT * FROM ML.EVALUATE(MODEL {ds}.taste, (SELECT user_id, item, rating FROM {ds}.ratings WHERE held))"
    )[0]
    noisy = np.array(
        [
            r
            for *_, r in sorted(
                (u, f"item{i}", r) for (u, i), r, h in zip(pairs.tolist(), rating, held, strict=True) if h
            )
        ]
    )
    assert evaluation["mean_squared_error"] == pytest.approx(float(np.mean((ours - noisy) ** 2)), rel=1e-9)
    everything = wh.rows("SELECT COUNT(*) AS n FROM ML.RECOMMEND(MODEL {ds}.taste)")[0]["n"]
    assert everything == n_users * n_items


def test_implicit_matrix_factorization_ranks_what_users_did_first(wh):
    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(4), 25)  # 100 users in 4 tastes, each taste 10 of 40 items
    rows = []
    for user, group in enumerate(groups):
        liked = rng.choice(np.arange(group * 10, group * 10 + 10), 6, replace=False)
        rows += [(user, int(item), float(rng.integers(1, 5))) for item in liked]
    table = pa.table(
        {"visitor": [r[0] for r in rows], "product": [r[1] for r in rows], "views": [r[2] for r in rows]}
    )
    wh.load("views", table)
    wh.run(
        """CREATE OR REPLACE MODEL {ds}.implicit
           OPTIONS (model_type = 'matrix_factorization', feedback_type = 'IMPLICIT', user_col = 'visitor',
                    item_col = 'product', rating_col = 'views', num_factors = 4, l2_reg = 1, wals_alpha = 10)
           AS SELECT * FROM {ds}.views"""
    )
    result = wh.run("SELECT * FROM ML.RECOMMEND(MODEL {ds}.implicit, (SELECT 0 AS visitor))")
    assert schema_of(result)[0] == ("predicted_views_confidence", "FLOAT", "NULLABLE", [])
    top = sorted(result.rows, key=lambda r: -r["predicted_views_confidence"])[:10]
    assert sum(r["product"] < 10 for r in top) >= 9  # user 0's taste: items 0 to 9
    evaluation = wh.run("SELECT * FROM ML.EVALUATE(MODEL {ds}.implicit)")
    assert [c[0] for c in schema_of(evaluation)] == [
        "mean_average_precision",
        "mean_squared_error",
        "normalized_discounted_cumulative_gain",
        "average_rank",
    ]
    assert evaluation.rows[0]["average_rank"] < 0.2


# -- ARIMA_PLUS -----------------------------------------------------------------------------------


def test_arima_plus_forecasts_seasonal_series_within_their_interval(wh):
    from datetime import UTC, datetime

    rng = np.random.default_rng(2)
    hours = 24 * 21 + 24  # three weeks of history, then a day to forecast
    t = np.arange(hours)
    rows = {"zone": [], "hour": [], "trips": []}
    truth = {}
    start = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1_000_000)
    for zone, level in (("north", 50.0), ("south", 20.0)):
        series = level + 0.3 * level * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1.0, hours)
        truth[zone] = series[-24:]
        rows["zone"] += [zone] * (hours - 24)
        rows["hour"] += (start + t[:-24] * 3_600_000_000).tolist()
        rows["trips"] += series[:-24].tolist()
    table = pa.table(
        {
            "zone": rows["zone"],
            "hour": pa.array(rows["hour"], pa.timestamp("us", tz="UTC")),
            "trips": rows["trips"],
        }
    )
    wh.load("demand", table)
    wh.run(
        """CREATE OR REPLACE MODEL {ds}.demand
           OPTIONS (model_type = 'arima_plus', time_series_timestamp_col = 'hour', time_series_data_col = 'trips',
                    time_series_id_col = 'zone', horizon = 48, auto_arima_max_order = 2)
           AS SELECT * FROM {ds}.demand"""
    )
    result = wh.run(
        """SELECT * FROM ML.FORECAST(MODEL {ds}.demand, STRUCT(24 AS horizon, 0.9 AS confidence_level))
           ORDER BY zone, forecast_timestamp"""
    )
    assert [(c[0], c[1]) for c in schema_of(result)] == [
        ("zone", "STRING"),
        ("forecast_timestamp", "TIMESTAMP"),
        ("forecast_value", "FLOAT"),
        ("standard_error", "FLOAT"),
        ("confidence_level", "FLOAT"),
        ("prediction_interval_lower_bound", "FLOAT"),
        ("prediction_interval_upper_bound", "FLOAT"),
        ("confidence_interval_lower_bound", "FLOAT"),
        ("confidence_interval_upper_bound", "FLOAT"),
    ]
    for zone in ("north", "south"):
        mine = [r for r in result.rows if r["zone"] == zone]
        assert len(mine) == 24 and mine[0]["confidence_level"] == 0.9
        inside = [
            r["prediction_interval_lower_bound"] <= v <= r["prediction_interval_upper_bound"]
            for r, v in zip(mine, truth[zone], strict=True)
        ]
        assert np.mean(inside) >= 0.75
        errors = np.array([r["forecast_value"] for r in mine]) - truth[zone]
        assert np.sqrt(np.mean(errors**2)) < 3.0  # the daily season continued (its swing is 6 to 15)

    evaluation = wh.run("SELECT * FROM ML.ARIMA_EVALUATE(MODEL {ds}.demand) ORDER BY zone")
    assert [c[0] for c in schema_of(evaluation)][:9] == [
        "zone",
        "non_seasonal_p",
        "non_seasonal_d",
        "non_seasonal_q",
        "has_drift",
        "log_likelihood",
        "AIC",
        "variance",
        "seasonal_periods",
    ]
    assert evaluation.rows[0]["seasonal_periods"] == ["DAILY"]

    # statsmodels' ARIMA of the same order on the same deseasonalised points: the same fit.
    from statsmodels.tsa.arima.model import ARIMA

    model = wh.model("demand")
    north = model.series[0]
    rest = np.asarray(north.cleaned) - np.asarray(north.seasonal["daily"][: len(north.cleaned)])
    p, d, q = north.order
    reference = ARIMA(rest, order=(p, d, q), trend="c" if d == 0 else "n").fit()
    assert evaluation.rows[0]["AIC"] == pytest.approx(reference.aic, rel=1e-6)

    explained = wh.run("SELECT * FROM ML.EXPLAIN_FORECAST(MODEL {ds}.demand, STRUCT(24 AS horizon))")
    kinds = {r["time_series_type"] for r in explained.rows}
    assert kinds == {"history", "forecast"} and len(explained.rows) == 2 * (hours - 24 + 24)
    anomalies = wh.run("SELECT * FROM ML.DETECT_ANOMALIES(MODEL {ds}.demand)")
    assert [c[0] for c in schema_of(anomalies)][-4:] == [
        "is_anomaly",
        "lower_bound",
        "upper_bound",
        "anomaly_probability",
    ]

    with pytest.raises(
        SqlError, match=r"^test.sql:1: time series east has 2 points; ARIMA_PLUS needs at least 3"
    ):
        wh.run(
            """CREATE OR REPLACE MODEL {ds}.short OPTIONS (model_type = 'arima_plus',
                 time_series_timestamp_col = 'hour',
                 time_series_data_col = 'trips', time_series_id_col = 'zone')
               AS SELECT * FROM {ds}.demand UNION ALL SELECT 'east', TIMESTAMP '2024-01-01', 1.0
               UNION ALL SELECT 'east', TIMESTAMP '2024-01-02', 2.0"""
        )
