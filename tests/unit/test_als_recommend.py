"""spark_jobs.als_recommend on local Spark: five unseen accommodations per user, a bounded RMSE, bad ratings."""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict

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


HOSTILE = {  # (table, line) -> the reason the job must give
    ("ratings", "3,7,9"): "violates rule rating BETWEEN 1 AND 5",
    ("ratings", "4,x,2"): "acco_id: not a valid INTEGER",
    ("ratings", "5,,3"): "acco_id: missing or not a valid INTEGER",
    ("ratings", "6,8,4,99"): "wrong_column_count: not a line of 3 fields",  # a lenient reader drops the 99
    ("ratings", "7"): "wrong_column_count: not a line of 3 fields",
    ("accommodations", "x,Bad Id,Paris,90,2,4.0,house"): "id: not a valid INTEGER",
    ("accommodations", "201,Extra,Paris,90,2,4.0,house,junk"): "wrong_column_count: not a line of 7 fields",
    ("accommodations", "202,No Type,Paris,90,2,4.0"): "wrong_column_count: not a line of 7 fields",
    ("accommodations", "203,,Paris,90,2,4.0,house"): "title: missing or not a valid STRING",
    ("accommodations", "204,Bad Rating,Paris,90,2,abc,house"): "rating: not a valid FLOAT",
}


def test_hostile_rows_of_both_tables_are_set_aside_with_their_reason_and_counted(spark, rentals, tmp_path):
    """Nothing is lost: each hostile row is one dead letter with its reason, the others are all used."""
    manifest, folder = rentals
    bad = tmp_path / "bad"
    bad.mkdir()
    for table in als_recommend.TABLES:
        lines = [line for (kind, line) in HOSTILE if kind == table]
        (bad / f"{table}.csv").write_text((folder / f"{table}.csv").read_text() + "\n".join(lines) + "\n")
    out = tmp_path / "out"
    metrics = run(spark, "--source", str(bad), "--sink", str(out))
    assert (metrics["ratings"], metrics["accommodations"]) == (manifest.ratings, manifest.accommodations)
    assert metrics["read"] == {"ratings": manifest.ratings + 5, "accommodations": manifest.accommodations + 5}
    for table in als_recommend.TABLES:
        expected = Counter(reason for (kind, _), reason in HOSTILE.items() if kind == table)
        assert metrics[f"rejected_{table}"] == expected, table
    assert metrics["rejected"] == f"{out}/rejected"
    letters = [
        json.loads(text)
        for path in (out / "rejected").glob("*.json")
        for text in path.read_text().splitlines()
    ]
    assert {
        (letter["source"].rsplit("/", 1)[1][: -len(".csv")], letter["raw"]): letter["reason"]
        for letter in letters
    } == HOSTILE
    assert len(letters) == len(HOSTILE) and all(letter["loaded_at"] for letter in letters)
    recommended = {row["acco_id"] for row in pq.read_table(out / "recommendations.parquet").to_pylist()}
    assert recommended <= set(range(1, manifest.accommodations + 1))


def test_a_clean_run_leaves_no_stale_rejects(recommended):
    metrics, out = recommended
    assert metrics["rejected"] is None and not (out / "rejected").exists()
    assert metrics["rejected_ratings"] == metrics["rejected_accommodations"] == {}


def test_rejected_rows_need_a_folder(capsys):
    with pytest.raises(SystemExit):
        als_recommend.parse_args(["--source", "x", "--sink", "bq://acme-project.rentals"])
    assert "give --rejected FOLDER" in capsys.readouterr().err
    args = als_recommend.parse_args(
        ["--source", "x", "--sink", "bq://acme-project.rentals", "--rejected", "gs://b/r"]
    )
    assert args.rejected == "gs://b/r"


def test_a_jdbc_sink_without_a_password_secret_is_refused():
    with pytest.raises(SystemExit):
        als_recommend.parse_args(["--source", "x", "--sink", "jdbc:postgresql://127.0.0.1:5432/rentals"])
