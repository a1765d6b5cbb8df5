"""spark_jobs.als_recommend on local Spark: five unseen accommodations per user, a bounded RMSE, bad ratings."""

from __future__ import annotations

import csv
import json
from collections import defaultdict

import pyarrow.parquet as pq
import pytest

from gcpipe.datagen.rentals import write_rentals
from spark_jobs import als_recommend

pytestmark = pytest.mark.spark


def run(spark, *argv: str) -> dict:
    return als_recommend.run(spark, als_recommend.parse_args(list(argv)))


@pytest.fixture(scope="module")
def rentals(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rentals")
    return write_rentals(folder, users=200), folder  # 200 users: about 100 ratings per accommodation


@pytest.fixture(scope="module")
def recommended(spark, rentals, tmp_path_factory):
    _, folder = rentals
    out = tmp_path_factory.mktemp("recommendations")
    return run(spark, "--source", str(folder), "--sink", str(out)), out


def test_each_user_gets_five_accommodations_they_have_not_rated(rentals, recommended):
    manifest, _ = rentals
    metrics, out = recommended
    rated = defaultdict(set)
    with open(manifest.ratings_path) as ratings:
        for user, acco, _ in csv.reader(ratings):
            rated[int(user)].add(int(acco))
    recommendations = pq.read_table(out / "recommendations.parquet").to_pylist()
    by_user = defaultdict(list)
    for row in recommendations:
        by_user[row["user_id"]].append(row)
    assert set(by_user) == set(rated) and len(by_user) == manifest.users == metrics["users"]
    for user, rows in by_user.items():
        rows.sort(key=lambda row: row["rank"])
        assert [row["rank"] for row in rows] == [1, 2, 3, 4, 5]
        assert not {row["acco_id"] for row in rows} & rated[user]
        assert {row["acco_id"] for row in rows} <= set(range(1, manifest.accommodations + 1))
        predictions = [row["prediction"] for row in rows]
        assert predictions == sorted(predictions, reverse=True)
    assert metrics["recommendations"] == len(recommendations) == 5 * manifest.users
    assert json.loads((out / "metrics.json").read_text())["rmse"] == metrics["rmse"]


def test_rmse_on_the_held_out_split_is_bounded_and_beats_the_mean(recommended):
    metrics, _ = recommended
    # The generated ratings follow each user's tastes plus noise of sd 0.5, rounded to whole stars.
    assert metrics["rmse"] < 0.8
    assert metrics["rmse"] < 0.8 * metrics["baseline_rmse"]
    assert (metrics["seed"], metrics["test_fraction"]) == (42, 0.2)


def test_the_same_seed_gives_the_same_model(spark, rentals, recommended, tmp_path):
    _, folder = rentals
    again = run(spark, "--source", str(folder), "--sink", str(tmp_path))
    assert again["rmse"] == recommended[0]["rmse"]
    first = pq.read_table(recommended[1] / "recommendations.parquet").drop(["generated_at"]).to_pylist()
    second = pq.read_table(tmp_path / "recommendations.parquet").drop(["generated_at"]).to_pylist()
    assert sorted(first, key=str) == sorted(second, key=str)


def test_ratings_that_break_the_schema_or_rules_are_counted_and_left_out(spark, rentals, tmp_path):
    manifest, folder = rentals
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "accommodations.csv").write_text((folder / "accommodations.csv").read_text())
    ratings = (folder / "ratings.csv").read_text()
    (bad / "ratings.csv").write_text(ratings + "3,7,9\n4,x,2\n5,,3\n")
    metrics = run(spark, "--source", str(bad), "--sink", str(tmp_path / "out"))
    assert metrics["ratings"] == manifest.ratings
    assert metrics["rejected_ratings"] == {
        "violates rule rating BETWEEN 1 AND 5": 1,
        "acco_id: missing or not a valid INTEGER": 2,
    }


def test_a_jdbc_sink_without_a_password_secret_is_refused():
    with pytest.raises(SystemExit):
        als_recommend.parse_args(["--source", "x", "--sink", "jdbc:postgresql://127.0.0.1:5432/rentals"])
