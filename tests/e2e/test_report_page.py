"""The demo's report page as a reader sees it, in headless Chromium: every chart titled on both axes with its
unit, the comparisons saying which way is better on axes that fit them, both purchase models' ROC curves
on one plot each with its AUC and their confusion matrices, the taxi demand forecast of each zone with its
history and interval, the purchase model described by recall and ROC AUC, and the stream's last, partly
filled minute marked partial.

The report is rendered from a DemoReport holding the figures of a typical demo run (recall 0.17 at ROC AUC
0.89, ALS RMSE 0.93 against 1.055 for the mean rating); tests/e2e/test_demo.py builds one from a real run.
The screenshot is kept in the test's tmp dir and copied to .gcpipe/artifacts/.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

from gcpipe.app import demo_report
from tests.browser import rendered_charts, save_page
from tests.conftest import CONFIG

T0 = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
DAY = datetime(2019, 3, 1, tzinfo=UTC)
# The first y value of each trace the taxi demand chart shows (its band's edges, history, forecast).
VISIBLE_DEMAND = (
    "const g = [...document.querySelectorAll('.js-plotly-plot')]"
    ".find(g => g.layout.title.text.startsWith('Taxi demand'));"
    "return g.data.filter(t => t.visible !== false).map(t => t.y[0])"
)
DEMAND_ZONES = {"Midtown": 3, "JFK Airport": 1}  # pickups_by_zone_hour's order: the busiest zone first
VERDICT = "ranks buyers well; misses most buyers at threshold 0.5 (a lower one finds more)"


def minute(i: int, pickups: int, complete: bool = True) -> dict:
    start = T0 + timedelta(minutes=i)
    end = start + timedelta(minutes=1)
    emitted = end + timedelta(seconds=4) if complete else start + timedelta(seconds=22)
    return {
        "window_start": start,
        "window_end": end,
        "pickups": pickups,
        "dropoffs": max(0, pickups - 3),
        "passengers": 2 * pickups,
        "revenue": 15.5 * pickups,
        "emitted_at": emitted,
    }


def typical_report() -> demo_report.DemoReport:
    stages = [
        "local stack",
        "warehouse tables",
        "generated data",
        "CSV ingestion (Beam)",
        "trips by zone and hour",
        "Spark KDD analysis",
        "Spark ALS recommendations",
        "e-commerce SQL and BigQuery ML",
        "streaming rides",
        "DAG run (batch_ingest)",
    ]
    roc = [
        {
            "threshold": 1 - i / 20,
            "recall": min(1.0, (i / 20) ** 0.3),
            "false_positive_rate": i / 20,
            "true_positives": i,
            "false_positives": i,
            "true_negatives": 20 - i,
            "false_negatives": 20 - i,
        }
        for i in range(21)
    ]
    tree_roc = [{**r, "recall": min(1.0, r["recall"] ** 0.5)} for r in roc]  # above the logistic one
    roc_curves = [
        {"model": model, **{k: r[k] for k in ("threshold", "recall", "false_positive_rate")}, "roc_auc": auc}
        for model, curve, auc in (
            ("logistic_reg", roc, 0.8889),
            ("boosted_tree_classifier", tree_roc, 0.9312),
        )
        for r in curve
    ]
    confusion = [
        {"model": "logistic_reg", "expected_label": "0", "_0": 440, "_1": 8},
        {"model": "logistic_reg", "expected_label": "1", "_0": 19, "_1": 4},
        {"model": "boosted_tree_classifier", "expected_label": "0", "_0": 436, "_1": 12},
        {"model": "boosted_tree_classifier", "expected_label": "1", "_0": 13, "_1": 10},
    ]
    return demo_report.DemoReport(
        stages=[(name, 5.0 + 3 * i, "done") for i, name in enumerate(stages)],
        seconds=240.0,
        row_counts={"taxi.taxi_trips": 20_000, "taxi.ride_events": 5_912},
        dead_letters={
            "CSV ingestion (taxi.taxi_trips_dead_letter)": [
                {"reason": "fare_amount: … is not a valid FLOAT", "messages": 12},
                {"reason": "blank line", "messages": 3},
            ]
        },
        metrics={
            demo_report.PURCHASE_MODEL: {
                "precision": 0.3333,
                "recall": 0.1739,
                "accuracy": 0.9583,
                "f1_score": 0.2286,
                "log_loss": 0.1254,
                "roc_auc": 0.8889,
                "model_quality": "fair",
                "verdict": VERDICT,
            },
            demo_report.ALS_MODEL: {
                "rmse": 0.93,
                "baseline_rmse (the mean rating)": 1.055,
                "users": 25,
                "recommendations": 125,
            },
        },
        kdd_categories=[
            {"attack_category": "dos", "connections": 391_458, "share": 0.79, "labels": "smurf"},
            {"attack_category": "u2r", "connections": 52, "share": 0.0001, "labels": "rootkit"},
        ],
        trips_by_hour=[{"hour": h, "trips": 100 + 40 * h} for h in range(24)],
        trips_by_zone=[{"zone": "Midtown", "borough": "Manhattan", "trips": 900, "revenue": 12_000.0}],
        rides_per_minute=[minute(0, 96), minute(1, 101), minute(2, 99), minute(3, 31, complete=False)],
        roc_curve=roc,
        roc_curves=roc_curves,
        confusion_matrices=confusion,
        demand_history=[
            {"zone": zone, "pickup_hour": DAY + timedelta(hours=h), "pickups": scale * (10 + h)}
            for zone, scale in DEMAND_ZONES.items()
            for h in range(24)
        ],
        demand_forecast=[
            {
                "zone": zone,
                "forecast_timestamp": DAY + timedelta(hours=24 + h),
                "forecast_value": scale * (10 + h),
                "standard_error": 2.0 * scale,
                "confidence_level": 0.9,
                "prediction_interval_lower_bound": scale * (10 + h) - 3.3 * scale,
                "prediction_interval_upper_bound": scale * (10 + h) + 3.3 * scale,
            }
            for zone, scale in sorted(DEMAND_ZONES.items())  # the SQL's order: by zone
            for h in range(24)
        ],
    )


def test_the_report_page_says_what_every_chart_shows(browser, tmp_path):
    report = typical_report()
    page = demo_report.write_html(report, tmp_path / "report.html")
    browser.get(page.as_uri())
    charts = rendered_charts(browser)
    shot = save_page(browser, tmp_path / "report.png")
    artifacts = CONFIG.state_dir / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, artifacts / "report.png")

    assert len(charts) == len(demo_report.charts(report))
    for chart in charts:  # both axes titled, the unit or what is counted in the title
        assert chart["x_title"] and chart["y_title"], chart["title"]
    by_title = {chart["title"].split(" (")[0].split("<")[0]: chart for chart in charts}

    purchase = by_title["Purchase model on later visits"]
    assert VERDICT in purchase["title"] and "(↑ higher is better)" in purchase["title"]
    assert "good" not in purchase["text"] and "0.1739" in purchase["text"]  # recall, labelled on its bar
    assert purchase["y_title"] == "score, 0 to 1 (higher is better)" and purchase["y_range"] == [0, 1]

    als = by_title["ALS: error on held-out ratings"]
    assert "(↓ lower is better)" in als["title"] and als["y_title"] == "RMSE, rating points (lower is better)"
    assert als["y_range"][0] == 0 and 1.055 < als["y_range"][1] < 1.5  # both bars fit, neither is cut
    assert "0.93" in als["text"] and "1.055" in als["text"]

    roc = by_title["Purchase models: ROC curves on later visits"]
    assert "(↖ up and to the left is better)" in roc["title"]
    assert roc["annotations"][0] == (
        "logistic_reg: ROC AUC 0.889boosted_tree_classifier: ROC AUC 0.931(1 is perfect, 0.5 a guess)"
    )  # one line each (<br>)
    assert "boosted_tree_classifier: ROC AUC 0.931" in roc["text"]  # its legend
    assert len(roc["y"]) == 3 and len(roc["y"][1]) == len(roc["y"][2]) == 23  # a guess, both curves
    assert roc["x_title"].startswith("false positive rate") and roc["y_title"].startswith("recall")

    matrices = by_title["Purchase models: confusion matrices"]
    assert "threshold 0.5; cells: visits (share of the actual label)↘ more on the diagonal is better" in (
        matrices["title"].replace("\u200b", "")
    )
    assert matrices["x_title"] == "predicted label" and matrices["y_title"] == "actual label"
    for cell in ("440 (98%)", "4 (17%)", "436 (97%)", "10 (43%)", "no purchase", "purchase"):
        assert cell in matrices["text"], cell
    assert "logistic_reg" in matrices["text"] and "boosted_tree_classifier" in matrices["text"]

    demand = next(chart for chart in charts if chart["title"].startswith("Taxi demand: "))
    assert demand["title"].replace("\u200b", "") == (  # its zone, and a subtitle (Plotly pads it)
        "Taxi demand: Midtownhourly pickups per zone: ARIMA_PLUS, ML.FORECAST; a narrower band is a surer forecast"
    )
    assert demand["x_title"] == "pickup hour (UTC)" and demand["y_title"] == "pickups per hour"
    assert "90% prediction interval" in demand["text"] and "history" in demand["text"]
    shown = browser.execute_script(VISIBLE_DEMAND)
    assert shown == [3 * 10 + 3 * 3.3, 3 * 10 - 3 * 3.3, 30, 30]  # Midtown's band, history, forecast
    # the menu picks another zone: its traces and its title
    browser.find_element("css selector", ".updatemenu-header-group").click()
    next(
        b
        for b in browser.find_elements("css selector", ".updatemenu-dropdown-button")
        if b.get_attribute("textContent") == "JFK Airport"
    ).click()
    titles = [chart["title"] for chart in rendered_charts(browser)]
    assert any(title.replace("\u200b", "").startswith("Taxi demand: JFK Airporthourly") for title in titles)
    assert browser.execute_script(VISIBLE_DEMAND) == [10 + 3.3, 10 - 3.3, 10, 10]

    rides = by_title["Rides per minute"]
    assert rides["annotations"] == ["partial minute"]  # the last minute only
    assert rides["y_title"] == "rides per minute" and rides["x_title"] == "minute (event time, UTC)"
    assert by_title["KDD Cup 99 connections by attack category"]["x_title"] == "connections (log scale)"
    assert by_title["Seconds per stage"]["x_title"] == "seconds"
    body = browser.find_element("tag name", "body").text
    assert "ROC AUC grade (the lab's: ranking only)" in body  # not a bare "model_quality fair"
    assert "Midtown Manhattan 900 12,000" in body  # revenue, not 1.2e+04


def test_a_small_run_unmeasured_scores_and_minutes_apart(browser, tmp_path):
    """As `make demo --scale 0.01` makes them: later visits of one label (BigQuery ML's NaN scores), and
    a late ride's minute two minutes before the stream's only, partial one."""
    nan = float("nan")
    report = typical_report()
    purchase = report.metrics[demo_report.PURCHASE_MODEL]
    purchase |= {"precision": nan, "recall": nan, "f1_score": nan, "roc_auc": nan, "accuracy": 0.93}
    purchase["verdict"] = "unmeasured: the rows hold one label only"
    report.rides_per_minute = [minute(0, 1), minute(2, 15, complete=False)]
    report.roc_curves = [{**r, "roc_auc": nan} for r in report.roc_curves]
    page = demo_report.write_html(report, tmp_path / "report.html")
    browser.get(page.as_uri())
    by_title = {chart["title"].split(" (")[0]: chart for chart in rendered_charts(browser)}
    save_page(browser, tmp_path / "report-small.png")
    shutil.copy(tmp_path / "report-small.png", CONFIG.state_dir / "artifacts" / "report-small.png")

    scores = by_title["Purchase model on later visits"]
    assert (
        scores["text"].count("not measured") == 4 and "0.93" in scores["text"] and "NaN" not in scores["text"]
    )
    roc = by_title["Purchase models: ROC curves on later visits"]
    assert roc["annotations"][0] == (
        "logistic_reg: ROC AUC not measured: the rows hold one label only"
        "boosted_tree_classifier: ROC AUC not measured: the rows hold one label only(1 is perfect, 0.5 a guess)"
    )
    widths = browser.execute_script(
        "return [...document.querySelectorAll('.js-plotly-plot')].find(g => g.layout.title.text.startsWith('Rides'))"
        ".data.map(t => [t.width, t.offset])"
    )
    assert widths == [[24_000, -24_000], [24_000, 0]]  # each minute's bars within its minute, ms
