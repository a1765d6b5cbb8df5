"""Local BigQuery ML's models against scikit-learn fitted the same way on the same rows, and BigQuery ML's
preprocessing, data split, options and metrics (no services: the SQL side is tested with the emulator)."""

import warnings

import numpy as np
import pyarrow as pa
import pytest
from sklearn import linear_model, metrics

from gcpipe.warehouse.bqml.features import ModelError
from gcpipe.warehouse.bqml.features import split_mask as _split
from gcpipe.warehouse.bqml.metrics import roc_curve
from gcpipe.warehouse.bqml.models.glm import GlmModel
from gcpipe.warehouse.bqml.options import ModelOptions, ModelOptionsError


def _table(n=4000, seed=0, classes=2):
    """Rows like the purchase model's: numbers (one with NULLs), categories (one with NULLs), a struct."""
    rng = np.random.default_rng(seed)
    pages = rng.poisson(4, n).astype(float)
    minutes = rng.gamma(2.0, 3.0, n)
    device = rng.choice(["desktop", "mobile", "tablet"], n, p=[0.6, 0.3, 0.1])
    country = rng.choice(["US", "IN", "GB", "DE"], n)
    logit = -2.0 + 0.35 * pages + 0.12 * minutes - 1.0 * (device == "mobile") + 0.8 * (country == "US")
    if classes == 2:
        label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    else:
        label = np.digitize(logit + rng.normal(0, 1, n), [-0.5, 1.0])  # 0, 1, 2
    minutes_col = pa.array(np.where(rng.random(n) < 0.05, np.nan, minutes), from_pandas=True)
    country_col = pa.array(np.where(rng.random(n) < 0.03, None, country).tolist())
    geo = pa.StructArray.from_arrays([pa.array(country.tolist())], names=["region"])
    return pa.table(
        {
            "pages": pages,
            "minutes": minutes_col,
            "device": device.tolist(),
            "country": country_col,
            "geo": geo,
            "label": label,
        }
    )


def _fit(table, **options):
    options = {"model_type": "logistic_reg", "data_split_method": "NO_SPLIT", **options}
    return GlmModel.fit(table, ModelOptions.parse(options))


def _design(model, table):
    return model.design(table.drop_columns(["label"]))


def _sklearn(X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # penalty= is deprecated in favour of l1_ratio= in scikit-learn 1.8
        return linear_model.LogisticRegression(max_iter=10_000, tol=1e-10, **kwargs).fit(X, y)


@pytest.mark.parametrize(
    ("options", "sklearn_settings"),
    [
        ({}, {"C": np.inf}),
        ({"l2_reg": 25.0}, {"C": 1 / 25.0}),
        ({"l1_reg": 8.0, "max_iterations": 50}, {"C": 1 / 8.0, "l1_ratio": 1.0, "solver": "saga"}),
        ({"auto_class_weights": True}, {"C": np.inf, "class_weight": "balanced"}),
    ],
    ids=["plain", "l2_reg", "l1_reg", "auto_class_weights"],
)
def test_logistic_regression_matches_scikit_learn(options, sklearn_settings):
    table = _table()
    model = _fit(table, **options)
    X, y = _design(model, table), table["label"].to_numpy()
    ours = model.predict_design(X)
    theirs = _sklearn(X, y, **sklearn_settings).predict_proba(X)[:, 1]
    assert abs(metrics.roc_auc_score(y, ours) - metrics.roc_auc_score(y, theirs)) < 0.01
    assert np.mean((ours > 0.5) == (theirs > 0.5)) >= 0.99
    assert np.max(np.abs(ours - theirs)) < 0.02
    if "l1_reg" in options:  # the L1 penalty zeroes weights, as scikit-learn's does
        assert sum(abs(w) < 1e-9 for w in model.coefficients[0]) >= 1


def test_multiclass_logistic_regression_matches_scikit_learn_multinomial():
    table = _table(classes=3)
    model = _fit(table, l2_reg=1.0)
    X, y = _design(model, table), table["label"].to_numpy()
    ours, theirs = model.predict_design(X), _sklearn(X, y, C=1.0).predict_proba(X)
    assert ours.shape == (len(y), 3) and model.kind == "multiclass"
    assert np.mean(ours.argmax(1) == theirs.argmax(1)) >= 0.99
    assert np.max(np.abs(ours - theirs)) < 0.02


def test_linear_regression_matches_scikit_learn():
    table = _table()
    rng = np.random.default_rng(5)
    target = 3.0 + 2.0 * table["pages"].to_numpy() + rng.normal(0, 1, table.num_rows)
    table = table.set_column(table.schema.get_field_index("label"), "label", pa.array(target))
    for options, reference in (
        ({}, linear_model.LinearRegression()),
        ({"l2_reg": 50.0}, linear_model.Ridge(alpha=50.0)),
        ({"l1_reg": 400.0}, linear_model.Lasso(alpha=400.0 / table.num_rows, max_iter=100_000, tol=1e-10)),
    ):
        model = _fit(table, model_type="linear_reg", **options)
        X = _design(model, table)
        theirs = reference.fit(X, target).predict(X)
        assert np.max(np.abs(model.predict_design(X) - theirs)) < 1e-3, options
        assert model.evaluation["r2_score"] == pytest.approx(metrics.r2_score(target, theirs), abs=1e-6)


def test_preprocessing_standardises_numbers_and_one_hot_encodes_the_rest():
    table = _table(n=1000)
    model = _fit(table)
    by_name = {f.name: f for f in model.features}
    assert list(by_name) == ["pages", "minutes", "device", "country", "geo_region"]  # struct fields expanded
    minutes = table["minutes"].to_numpy(zero_copy_only=False)
    assert by_name["minutes"].mean == pytest.approx(np.nanmean(minutes))
    assert by_name["minutes"].stddev == pytest.approx(np.nanstd(minutes, ddof=1))
    assert by_name["minutes"].null_count == int(np.isnan(minutes).sum())
    assert (
        by_name["device"].categories == ["desktop", "mobile", "tablet"]
        and not by_name["device"].null_category
    )
    assert by_name["country"].null_category and by_name["country"].encoded == ["DE", "GB", "IN", "US", None]
    X = _design(model, table)
    assert X.shape == (1000, 1 + 1 + 3 + 5 + 4)
    assert np.allclose(X[np.isnan(minutes), 1], 0.0)  # NULL -> the mean -> 0 once standardised
    unseen = pa.table(
        {
            "pages": [1.0],
            "minutes": [None],
            "device": ["smart tv"],
            "country": [None],
            "geo": pa.StructArray.from_arrays([pa.array(["US"])], names=["region"]),
        }
    )
    row = model.design(unseen)[0]
    assert row[2:5].tolist() == [0, 0, 0]  # an unseen category weighs 0
    assert row[5:10].tolist() == [0, 0, 0, 0, 1]  # NULL is a category of its own


def test_dummy_encoding_drops_one_category_per_feature():
    model = _fit(_table(n=600), category_encoding_method="DUMMY_ENCODING")
    device = next(f for f in model.features if f.name == "device")
    assert device.dropped == "desktop" and device.encoded == ["mobile", "tablet"]


@pytest.mark.parametrize(("rows", "held"), [(499, 0), (500, 100), (50_000, 10_000), (50_001, 10_000)])
def test_auto_split_follows_bigquery_ml(rows, held):
    table = pa.table({"x": np.arange(rows, dtype=float), "label": np.arange(rows) % 2})
    assert _split(table, ModelOptions.parse({"model_type": "logistic_reg"})).sum() == held


def test_random_split_is_by_content_not_row_order():
    table = pa.table({"x": np.arange(2000, dtype=float), "label": np.arange(2000) % 2})
    options = ModelOptions.parse(
        {"model_type": "logistic_reg", "data_split_method": "RANDOM", "data_split_eval_fraction": 0.3}
    )
    held = _split(table, options)
    assert held.sum() == 600
    order = np.random.default_rng(1).permutation(2000)
    shuffled = table.take(order)
    assert set(shuffled["x"].to_numpy()[_split(shuffled, options)]) == set(table["x"].to_numpy()[held])


def test_custom_and_seq_splits():
    table = pa.table(
        {
            "x": [5.0, 1.0, 4.0, 2.0, None, 3.0],
            "is_eval": [True, False, None, False, False, True],
            "label": [0, 1, 0, 1, 0, 1],
        }
    )
    custom = ModelOptions.parse(
        {"model_type": "logistic_reg", "data_split_method": "CUSTOM", "data_split_col": "is_eval"}
    )
    assert _split(table, custom).tolist() == [True, False, True, False, False, True]  # TRUE and NULL held out
    seq = ModelOptions.parse(
        {
            "model_type": "logistic_reg",
            "data_split_method": "SEQ",
            "data_split_col": "x",
            "data_split_eval_fraction": 0.4,
        }
    )
    assert _split(table, seq).tolist() == [True, False, True, False, True, False]  # the largest two, and NULL


def test_evaluation_metrics_match_scikit_learn():
    table = _table()
    model = GlmModel.fit(
        table, ModelOptions.parse({"model_type": "logistic_reg"})
    )  # AUTO_SPLIT: 800 held out
    assert model.split == {"method": "AUTO_SPLIT", "training_rows": 3200, "evaluation_rows": 800}
    held = _split(table, model.options)
    y, p = table["label"].to_numpy()[held], model.predict(table.filter(pa.array(held)))
    expected = {
        "precision": metrics.precision_score(y, p > 0.5),
        "recall": metrics.recall_score(y, p > 0.5),
        "accuracy": metrics.accuracy_score(y, p > 0.5),
        "f1_score": metrics.f1_score(y, p > 0.5),
        "log_loss": metrics.log_loss(y, p),
        "roc_auc": metrics.roc_auc_score(y, p),
    }
    assert model.evaluation == pytest.approx(expected, abs=1e-9)
    assert model.metrics(y, p, threshold=0.3)["recall"] == pytest.approx(metrics.recall_score(y, p > 0.3))
    losses = [t.loss for t in model.training]
    assert losses == sorted(losses, reverse=True) and model.training[0].iteration == 0
    assert all(t.eval_loss is not None for t in model.training)

    # ML.ROC_CURVE of the same rows: at the percentiles of the predictions, what sklearn counts there.
    thresholds = [row[0] for row in model.roc]
    assert thresholds == sorted(set(np.quantile(p, np.linspace(0, 1, 101))), reverse=True)
    for threshold, recall, fpr, tp, fp, tn, fn in model.roc:
        assert [[tn, fp], [fn, tp]] == metrics.confusion_matrix(y, p > threshold).tolist()
        assert (recall, fpr) == pytest.approx((tp / (tp + fn), fp / (fp + tn)))
    tied = roc_curve(np.array([True, False, True]), np.array([0.5, 0.5, 0.2]), [0.2, 0.5])
    assert tied == [(0.5, 0.0, 0.0, 0, 0, 1, 2), (0.2, 0.5, 1.0, 1, 1, 0, 1)]  # a tie is not above it


def test_model_round_trips_through_its_json_artefact():
    table = _table(n=800)
    model = _fit(table, l2_reg=1.0)
    again = GlmModel.from_json(model.to_json())
    assert np.array_equal(again.predict(table), model.predict(table))
    assert again.evaluation == model.evaluation and again.options == model.options
    assert again.roc == model.roc and len(model.roc) > 50


def test_options_follow_bigquery_ml_defaults_and_rules():
    options = ModelOptions.parse({"MODEL_TYPE": "LOGISTIC_REG", "labels": ["y"]})
    assert (options.label, options.max_iterations, options.min_rel_progress, options.data_split_method) == (
        "y",
        20,
        0.01,
        "AUTO_SPLIT",
    )
    weighted = ModelOptions.parse({"model_type": "logistic_reg", "class_weights": [("0", 1.0), ("1", 5.0)]})
    assert weighted.class_weights == {"0": 1.0, "1": 5.0}
    for bad, message in (
        ({"model_type": "autoencoder"}, "model_type 'autoencoder' is not supported locally"),
        (
            {"model_type": "logistic_reg", "num_clusters": 3},
            "option num_clusters does not apply to model_type logistic_reg",
        ),
        (
            {"model_type": "logistic_reg", "learn_rate": 0.2},
            "learn_rate needs learn_rate_strategy = 'CONSTANT'",
        ),
        (
            {"model_type": "linear_reg", "auto_class_weights": True},
            "option auto_class_weights does not apply to model_type linear_reg",
        ),
        ({"model_type": "logistic_reg", "data_split_method": "CUSTOM"}, "needs data_split_col"),
        (
            {"model_type": "logistic_reg", "max_iterations": "ten"},
            "option max_iterations has a value of the wrong type",
        ),
    ):
        with pytest.raises(ModelOptionsError, match=message):
            ModelOptions.parse(bad)


def test_training_data_problems_are_one_sentence(monkeypatch):
    table = _table(n=600)
    labels = table["label"].to_pylist()
    with pytest.raises(ModelError, match="the label column label is NULL in 1 rows"):
        _fit(table.set_column(5, "label", pa.array([None, *labels[1:]])))
    with pytest.raises(ModelError, match="has a single value"):
        _fit(table.set_column(5, "label", pa.array(np.zeros(600, dtype=np.int64))))
    with pytest.raises(ModelError, match="no label column 'will_buy'"):
        _fit(table, input_label_cols=["will_buy"])
    monkeypatch.setattr("gcpipe.warehouse.bqml.models.glm.MAX_DESIGN_COLUMNS", 100)
    ids = table.append_column("session_id", pa.array([str(i) for i in range(600)]))
    with pytest.raises(ModelError, match="feature session_id alone has 600 categories"):
        _fit(ids)


@pytest.mark.parametrize("model_type", ["boosted_tree_classifier", "boosted_tree_regressor"])
def test_boosted_trees_predict_here_as_xgboost_does(model_type):
    """The trees walked in numpy (NULL numbers and categories, unseen categories: each tree's default side)
    give XGBoost's own predictions."""
    import xgboost as xgb

    from gcpipe.warehouse.bqml.models.boosted_tree import BoostedTreeModel

    table = _table(3000).drop_columns(["geo"])
    if model_type == "boosted_tree_regressor":
        labels = pa.array(np.asarray(table["pages"]) * 1.5 + 2.0)
        table = table.set_column(table.column_names.index("label"), "label", labels)
    options = {"model_type": model_type, "input_label_cols": ["label"], "max_iterations": 20}
    model = BoostedTreeModel.fit(table, ModelOptions.parse(options))
    rows = _table(2000, seed=4).drop_columns(["geo", "label"])
    rows = rows.set_column(2, "device", pa.array(["phone", *rows["device"].to_pylist()[1:]]))  # unseen
    X = model.matrix(rows)
    assert np.isnan(X).any()
    ours = model.predict_matrix(X)
    theirs = model.booster.predict(xgb.DMatrix(X, missing=np.nan))
    assert ours.dtype == np.float32 and np.max(np.abs(ours - theirs)) < 1e-5
