"""The ride publisher's choices (no Pub/Sub needed) and the pipeline's argument errors."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from gcpipe.core.errors import GcpipeError
from gcpipe.datagen.ride_publisher import MALFORMED_KINDS, RidePublisher
from pipelines.rides import geohash
from pipelines.rides.dedup import SeenIds
from pipelines.rides.messages import RideMessage, parse_message
from pipelines.taxi_streaming import _resolve

NOW = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)


def test_the_publisher_sends_each_kind_at_its_fraction_and_each_parses_as_it_should():
    publisher = RidePublisher(rate=100, duplicates=0.1, late=0.1, malformed=0.1, late_minutes=5, seed=3)
    sent = [publisher.next_message(NOW) for _ in range(5000)]
    kinds = Counter(kind for kind, _, _ in sent)
    assert kinds == publisher.kinds
    assert 400 < kinds["duplicate"] < 600 and 400 < kinds["late"] < 600
    assert 400 < sum(kinds[k] for k in MALFORMED_KINDS) < 600 and all(kinds[k] for k in MALFORMED_KINDS)
    first_copy = {}
    for kind, data, attributes in sent:
        row, reason = parse_message(RideMessage(data, attributes, "m", 0))
        event_id = attributes["event_id"]
        if kind in MALFORMED_KINDS:
            assert row is None and reason
        elif kind == "duplicate":
            assert first_copy[event_id] == data  # the same event, sent again
        else:
            assert reason is None and row["event_id"] == event_id == f"{row['ride_id']}:{row['point_idx']}"
            lag = timedelta(minutes=5) if kind == "late" else timedelta(0)
            assert row["timestamp"] == NOW - lag
            assert int(attributes["ts"]) == int((NOW - lag).timestamp() * 1000)
            assert event_id not in first_copy  # every valid or late event is new
            first_copy[event_id] = data


def test_the_publisher_refuses_fractions_over_one():
    with pytest.raises(GcpipeError, match="add up to at most 1"):
        RidePublisher(rate=10, duplicates=0.5, late=0.4, malformed=0.2)


def test_malformed_kinds_are_each_rejected_for_their_own_reason():
    publisher = RidePublisher(rate=10, malformed=1.0, seed=1)
    reasons = {}
    for _ in range(200):
        kind, data, attributes = publisher.next_message(NOW)
        reasons[kind] = parse_message(RideMessage(data, attributes, "m", 0))[1].split(":")[0]
    assert reasons == {
        "not_json": "not JSON", "missing_field": "ride_id", "bad_type": "passenger_count",
        "bad_value": "violates rule meter_reading >= 0",
        "bad_status": "violates rule ride_status IN ('pickup', 'enroute', 'dropoff')",
    }  # fmt: skip


def test_seen_ids_forget_after_the_horizon(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("pipelines.rides.dedup.time.time", lambda: clock[0])
    seen = SeenIds(horizon=10)
    assert seen.first_sightings(["a", "b", "a"]) == [True, True, False]
    clock[0] = 105
    assert seen.first_sightings(["a", "c"]) == [False, True]
    clock[0] = 111  # "a" and "b" were first seen 11 s ago
    assert seen.first_sightings(["a", "b", "c"]) == [True, True, False]


def test_ids_a_restart_remembers_are_forgotten_when_they_would_have_been(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("pipelines.rides.dedup.time.time", lambda: clock[0])
    seen = SeenIds(horizon=100)
    seen.remember(["old", "recent"], np.array([905.0, 990.0]))  # published 95 s and 10 s ago
    assert seen.first_sightings(["old", "recent", "new"]) == [False, False, True]
    clock[0] = 1012  # "old" is past the horizon now, "recent" is not
    assert seen.first_sightings(["old", "recent", "new"]) == [True, False, False]
    assert len(seen) == 3


def test_geohash_cells_contain_their_points():
    for lat, lon in [(40.7549, -73.9840), (40.6413, -73.7781), (-33.86, 151.21)]:
        cell = geohash.encode(lat, lon, 6)
        centre = geohash.center(cell)
        assert geohash.encode(*centre, 6) == cell
        assert abs(centre[0] - lat) < 0.0055 / 2 + 1e-9 and abs(centre[1] - lon) < 0.011 / 2 + 1e-9
    assert geohash.encode(57.64911, 10.40744, 6) == "u4pruy"  # the example on Wikipedia's page


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--output_dataset", "taxi"], "give --input_topic or --input_subscription."),
        (["--input_topic", "rides"], "give --output_dataset (a dataset, or project:dataset)."),
    ],
)
def test_the_pipeline_names_a_missing_argument(argv, message):
    from apache_beam.options.pipeline_options import PipelineOptions

    with pytest.raises(GcpipeError) as err:
        _resolve(PipelineOptions(argv))
    assert str(err.value) == message


def test_a_dataset_with_its_project_names_every_table():
    from apache_beam.options.pipeline_options import PipelineOptions

    ride, project, tables = _resolve(
        PipelineOptions(["--input_topic", "rides", "--output_dataset", "acme-1:taxi"])
    )
    assert project == "acme-1" and ride.io == "batched"
    assert tables["rides_by_area"] == "acme-1.taxi.rides_by_area"
    assert sorted(tables) == ["ride_dead_letter", "ride_events", "rides_by_area", "rides_per_minute"]
