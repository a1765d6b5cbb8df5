"""The streaming writer's insertAll requests: which rows and insertIds reach BigQuery (the ids make retries
safe). The emulator ignores insertIds, so the request is what can be checked; the writer's effects are
tested against the emulator in tests/integration/test_ride_writer.py."""

from pipelines.transforms.bigquery_rows import Job, _Writer


def test_an_empty_batch_keeps_the_insert_ids_of_the_others():
    writer = _Writer("test")
    sent = []
    writer.insert = lambda table, rows, ids=None: sent.append((table, rows, ids)) or []
    writer._write(
        [
            Job("p.taxi.rides_per_minute", [{"pickups": 1}], row_ids=["w1/p0"]),
            Job("p.taxi.rides_per_minute", [], row_ids=[]),
            Job("p.taxi.rides_per_minute", [{"pickups": 2}], row_ids=["w2/p0"]),
        ]
    )
    assert sent == [("p.taxi.rides_per_minute", [{"pickups": 1}, {"pickups": 2}], ["w1/p0", "w2/p0"])]


def test_rows_without_ids_are_sent_without_ids():
    writer = _Writer("test")
    sent = []
    writer.insert = lambda table, rows, ids=None: sent.append((table, rows, ids)) or []
    writer._write([Job("p.taxi.x", [{"a": 1}]), Job("p.taxi.x", [{"a": 2}], row_ids=["i2"])])
    assert sent == [("p.taxi.x", [{"a": 1}, {"a": 2}], None)]
