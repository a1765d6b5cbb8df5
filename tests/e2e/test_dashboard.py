"""The live dashboard in headless Chromium: "no data yet", then the pipeline's data, then it updates.

The pipeline runs for real (its own process, on the emulators); the page's numbers and chart data are
read from the browser's DOM and compared with what BigQuery holds. Screenshots are kept as artifacts
(the test's tmp dir, copied to .gcpipe/artifacts/).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from gcpipe.app.dashboard import queries
from gcpipe.app.dashboard.app import create_app
from gcpipe.core import pubsub
from gcpipe.core.clients import ensure_table
from gcpipe.core.schemas import table_spec
from gcpipe.datagen.ride_publisher import publish_rides
from pipelines.taxi_streaming import TABLES
from tests.browser import rendered_charts, save_page
from tests.rides_pipeline import finish, running_pipeline, wait_until_reading

pytestmark = [pytest.mark.stack, pytest.mark.slow]


@pytest.fixture
def dashboard(bq):
    """A fresh dataset with the pipeline's (empty) tables, and the dashboard serving it on a free port."""
    from werkzeug.serving import make_server

    dataset = f"{bq.project}.dash_{uuid.uuid4().hex[:8]}"
    for name in TABLES:
        ensure_table(bq, table_spec(name), f"{dataset}.{name}")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = make_server("127.0.0.1", port, create_app(bq, dataset, refresh_seconds=1).server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield dataset, f"http://127.0.0.1:{port}/"
    server.shutdown()
    bq.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


def wait_for(condition, timeout: float = 60, what: str = "the page"):
    """Poll ``condition`` until it is truthy; an element not rendered yet counts as "not yet"."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (NoSuchElementException, StaleElementReferenceException):
            value = None
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def text(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


def number(driver, element_id: str) -> int:
    value = text(driver, element_id).replace(",", "").replace("$", "")
    return int(value) if value.isdigit() else -1


def chart(driver, graph_id: str) -> list[list]:
    """The y values of each trace the browser plotted in one dcc.Graph."""
    script = f"const g = document.querySelector('#{graph_id} .js-plotly-plot'); return g ? g.data.map(t => t.y) : null;"
    return driver.execute_script(script)


def screenshot(driver, tmp_path, name: str, local_stack) -> None:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    artifacts = local_stack.state_dir / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, artifacts / path.name)


def test_the_dashboard_shows_no_data_then_the_pipelines_rides_and_updates(
    local_stack, bq, browser, dashboard, tmp_path
):
    dataset, url = dashboard
    browser.get(url)
    wait_for(lambda: "No data yet" in text(browser, "status"), what='"No data yet"')
    screenshot(browser, tmp_path, "dashboard-empty", local_stack)

    topic = f"dash-{uuid.uuid4().hex[:8]}"
    with running_pipeline(topic, dataset, 40, tmp_path / "pipeline.log") as process:
        wait_until_reading(process, pubsub.path(bq.project, "subscriptions", f"{topic}-taxi-streaming"))
        publish_rides(topic, rate=200, count=400, malformed=0.02, seed=21)
        first = wait_for(
            lambda: number(browser, "events") > 0 and number(browser, "events"), what="first rides"
        )
        publish_rides(topic, rate=200, count=400, malformed=0.02, seed=22)
        wait_for(lambda: number(browser, "events") > first, what="the page to update")
        finish(process, tmp_path / "pipeline.log")

    # Once the pipeline has drained, the page shows exactly what BigQuery holds.
    landed = queries.landed(bq, dataset)
    minutes = queries.per_minute(bq, dataset, 30)
    areas = queries.by_area(bq, dataset)
    assert landed["events_stored"] == 800 - landed["dead_letters"] and landed["dead_letters"] > 0
    wait_for(lambda: number(browser, "events") == landed["events_stored"], what="the final count")
    wait_for(
        lambda: (
            chart(browser, "rides-per-minute")
            == [[r["pickups"] for r in minutes], [r["dropoffs"] for r in minutes]]
        ),
        what="the rides chart",
    )
    assert number(browser, "dead-letters") == landed["dead_letters"]
    assert number(browser, "pickups") == sum(r["pickups"] for r in minutes)
    plotted = chart(browser, "pickups-map")
    assert sorted(plotted[-1]) == sorted(r["center_latitude"] for r in areas) and areas
    screenshot(browser, tmp_path, "dashboard", local_stack)


def _stored_minutes(bq, dataset: str, start: datetime) -> None:
    """What the pipeline writes for three whole minutes and the current, partly counted one: the latest
    pane of each window (the whole minutes' panes made after they ended, the last one's before)."""
    minutes, areas = [], []
    for i, pickups in enumerate([40, 44, 42, 9]):
        begin = start + timedelta(minutes=i)
        end = begin + timedelta(minutes=1)
        emitted = end + timedelta(seconds=3) if i < 3 else begin + timedelta(seconds=15)
        times = {
            "window_start": begin.isoformat(),
            "window_end": end.isoformat(),
            "emitted_at": emitted.isoformat(),
        }
        minutes.append(
            {
                **times,
                "pickups": pickups,
                "dropoffs": pickups - 2,
                "passengers": 2 * pickups,
                "revenue": 14.5 * pickups,
                "active_rides": pickups,
                "events": 2 * pickups,
                "pane_timing": "ON_TIME" if i < 3 else "EARLY",
                "pane_index": 0,
                "window_key": begin.isoformat(),
            }
        )
    for slide in range(-1, 4):  # 5-minute windows sliding every minute, up to the latest minute's
        begin = start + timedelta(minutes=slide)
        window = {
            "window_start": begin.isoformat(),
            "window_end": (begin + timedelta(minutes=5)).isoformat(),
            "emitted_at": (start + timedelta(minutes=3, seconds=15)).isoformat(),
            "pane_timing": "EARLY",
            "pane_index": 0,
        }
        for area, lon, lat, pickups in [
            ("dr5ru6", -73.985, 40.758, 30),
            ("dr5x0z", -73.78, 40.645, 12),
            ("dr5rzj", -73.874, 40.774, 9),
            ("dr5rk9", -73.98, 40.69, 4),
        ]:
            areas.append(
                {
                    **window,
                    "area": area,
                    "center_longitude": lon,
                    "center_latitude": lat,
                    "pickups": pickups,
                    "passengers": pickups,
                    "window_key": f"{area}/{begin.isoformat()}",
                }
            )
    for table, rows in (("rides_per_minute", minutes), ("rides_by_area", areas)):
        assert bq.insert_rows_json(f"{dataset}.{table}", rows) == []


def test_the_dashboards_charts_say_what_they_show(bq, browser, dashboard, tmp_path, local_stack):
    """Axis titles with units, a time axis spanning the minutes shown, the current minute marked
    partial (not drawn as a drop), and the map's place names above the markers."""
    dataset, url = dashboard
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    _stored_minutes(bq, dataset, start)
    browser.get(url)
    wait_for(
        lambda: chart(browser, "rides-per-minute") == [[40, 44, 42, 9], [38, 42, 40, 7]], what="the rides"
    )
    charts = {c["id"]: c for c in rendered_charts(browser)}
    save_page(browser, tmp_path / "dashboard-charts.png")
    screenshot(browser, tmp_path, "dashboard-charts", local_stack)

    expected = {
        "rides-per-minute": "rides per minute",
        "revenue-per-minute": "USD per minute",
        "passengers-per-minute": "passengers per minute",
    }
    for graph, y_title in expected.items():
        assert (charts[graph]["x_title"], charts[graph]["y_title"]) == ("minute (event time, UTC)", y_title)
        assert charts[graph]["annotations"] == ["partial minute"]  # the last minute, once
        low, high = (datetime.fromisoformat(v).replace(tzinfo=UTC) for v in charts[graph]["x_range"])
        assert (low, high) == (start - timedelta(seconds=30), start + timedelta(minutes=3, seconds=30))
    reasons = charts["dead-letter-reasons"]  # no dead letters here: says so
    assert "Dead letters by reason: none" in reasons["text"]
    area = charts["pickups-map"]
    assert (area["x_title"], area["y_title"]) == ("longitude (degrees)", "latitude (degrees)")
    assert sorted(area["annotations"]) == ["Brooklyn", "JFK", "LaGuardia"]  # drawn above the data
    assert sorted(area["y"][-1]) == [40.645, 40.69, 40.758, 40.774] and "no data" not in area["title"]
