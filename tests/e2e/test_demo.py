"""The demo runs end to end on the local stack, small; every stage reports what it made, and the final
report (terminal summary and HTML page) shows what the warehouse holds."""

import shutil
from html.parser import HTMLParser

import pytest
from rich.console import Console

from gcpipe.app import demo, demo_report
from gcpipe.app.cli import main
from gcpipe.app.demo import STAGES, run_demo
from gcpipe.core.clients import storage_client
from gcpipe.core.errors import GcpipeError
from gcpipe.local import stack
from tests.browser import save_page

pytestmark = pytest.mark.stack


class _ExternalAssets(HTMLParser):
    """Every script, stylesheet, image or frame the page would fetch from the network."""

    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if (
                name in ("src", "href")
                and tag in ("script", "link", "img", "iframe")
                and "//" in (value or "")
            ):
                self.found.append((tag, value))


def _count(bq, table_id: str) -> int:
    return next(iter(bq.query(f"SELECT COUNT(*) AS n FROM `{table_id}`").result()))["n"]


def test_demo_runs_every_stage_and_reports_what_the_warehouse_holds(local_stack, bq, postgres, tmp_path):
    ctx, results = run_demo(local_stack, scale=0.01, lake=tmp_path)
    assert [name for name, _, _ in results] == [stage.name for stage in STAGES]
    assert all(summary for _, _, summary in results)
    assert ctx.facts["trips"].rows == 2000
    assert (tmp_path / "landing" / "taxi_trips" / "2019-03-01" / "trips.csv").exists()
    ingest = ctx.facts["ingest"]
    assert ingest.rows_read == 2000 == ingest.rows_loaded + ingest.rows_dead_lettered
    tables = {t.table_id for t in bq.list_tables(local_stack.dataset("taxi"))}
    assert {"taxi_trips", "trips_by_zone_hour", "ride_events", "rides_per_minute"} <= tables
    # What this run's stream added (the tables keep earlier runs' rides): every valid or late event once,
    # every malformed message dead-lettered, duplicates dropped.
    sent, added = ctx.facts["rides_sent"], ctx.facts["rides_added"]
    assert sent.sent == sent.valid + sent.late + sent.duplicates + sum(sent.malformed.values())
    assert added == {"events_stored": sent.valid + sent.late, "dead_letters": sum(sent.malformed.values())}
    assert added["events_stored"] > 0 and ctx.facts["rides"]["windows"] > 0
    dashboard = stack.SERVICES["dashboard"]  # started by the streaming stage, left up for the user
    assert stack.healthy(dashboard, local_stack)
    assert (
        f"live dashboard at {dashboard.url(local_stack)}/ (up until `make down`)"
        in dict((name, summary) for name, _, summary in results)["streaming rides"]
    )
    kdd = ctx.facts["kdd_analysis"]
    assert (kdd["valid"], kdd["malformed"]) == (ctx.facts["kdd"].valid, ctx.facts["kdd"].malformed)
    report = (
        storage_client(local_stack)
        .bucket(local_stack.lake_bucket)
        .get_blob("kdd/analysis/report/attack_stats.png")
    )
    assert report is not None and report.size > 1000  # written on gs:// through Spark's GCS connector
    assert ctx.facts["als_recommend"]["recommendations"] == 5 * ctx.facts["rentals"].users
    assert {"precision", "recall", "accuracy", "f1_score", "log_loss", "roc_auc"} <= set(
        ctx.facts["purchase_model"]
    )
    predictions = f"{local_stack.project}.{local_stack.dataset('ecommerce')}.purchase_predictions"
    assert bq.get_table(predictions).num_rows > 0
    assert ctx.facts["dag_run"]["moved"].exists()  # batch_ingest ran, its checks passed, the file moved

    report = demo_report.collect(ctx, results, seconds=sum(s for _, s, _ in results), client=bq)
    terminal = Console(record=True, width=500)  # no wrapping
    demo_report.print_summary(report, terminal)
    summary = terminal.export_text()
    lines = summary.splitlines()
    page = demo_report.write_html(report, tmp_path / "report.html").read_text()

    # The key tables' row counts are the emulator's, in the summary and on the page.
    for key, name in demo_report.KEY_TABLES:
        table = f"{local_stack.dataset(key)}.{name}"
        rows = _count(bq, f"{local_stack.project}.{table}")
        assert report.row_counts[table] == rows, table
        assert f"<td>{table}</td><td>{rows:,}</td>" in page
        assert [table, f"{rows:,}"] in [[c.strip() for c in line.split("│")][1:3] for line in lines], table
    assert report.row_counts["taxi.taxi_trips"] >= ingest.rows_loaded > 0

    # Dead letters: the CSV ingestion's table by reason, and the KDD job's malformed lines.
    csv_where = "CSV ingestion (taxi.taxi_trips_dead_letter)"
    csv_dead = report.dead_letters[csv_where]
    assert sum(r["messages"] for r in csv_dead) == _count(
        bq, f"{local_stack.project}.{local_stack.dataset('taxi')}.taxi_trips_dead_letter"
    )
    assert f"{csv_dead[0]['reason']} ({csv_dead[0]['messages']:,})" in summary
    kdd_dead = report.dead_letters["Spark KDD (malformed lines, in the lake)"]
    assert sum(r["messages"] for r in kdd_dead) == sum(kdd["malformed"].values())

    # Model metrics as the stages measured them; the KDD categories add up to the valid connections.
    purchase = report.metrics["purchase model (BigQuery ML, ML.EVALUATE on later visits)"]
    assert purchase == ctx.facts["purchase_model"]
    assert f"roc_auc {demo_report.format_value(purchase['roc_auc'])}" in summary
    curve = report.roc_curve
    assert curve == ctx.facts["purchase_roc_curve"] and len(curve) > 10
    assert [r["threshold"] for r in curve] == sorted((r["threshold"] for r in curve), reverse=True)
    assert "Purchase models: ROC curves on later visits (ML.ROC_CURVE)" in page  # both models, one plot
    assert (
        report.metrics["ALS recommendations (Spark ML, held-out ratings)"]["rmse"]
        == (ctx.facts["als_recommend"]["rmse"])
    )
    assert sum(r["connections"] for r in report.kdd_categories) == kdd["valid"]
    assert sum(r["trips"] for r in report.trips_by_hour) == report.row_counts["taxi.taxi_trips"]
    assert report.rides_per_minute

    # One page, nothing fetched: plotly.js inlined once, a chart per figure.
    assets = _ExternalAssets()
    assets.feed(page)
    assert assets.found == []
    assert page.count("<script") > len(demo_report.charts(report)) and "Plotly.newPlot" in page
    for stage, _, _ in results:
        assert stage in page and stage in summary


def test_a_failed_demo_still_writes_its_report_marking_the_stage_that_failed(
    local_stack, browser, tmp_path, monkeypatch, capsys
):
    """The first two stages run for real; the third fails as a stage fails on a user's error (a GcpipeError:
    here injected); the fourth does not run. The command ends with one sentence, exit status 1, and the
    report of what ran, the failure marked, is written all the same."""

    def no_trips(ctx):
        raise GcpipeError("no taxi trips in the landing folder: run `gcpipe datagen taxi-trips` first.")

    stages = [*demo.STAGES[:2], demo.Stage("CSV ingestion (Beam)", no_trips), demo.STAGES[-1]]
    monkeypatch.setattr(demo, "STAGES", stages)
    page = tmp_path / "report.html"
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--scale", "0.01", "--report", str(page)])
    err = capsys.readouterr().err
    assert exited.value.code == 1
    assert err.rstrip().splitlines()[-1] == (
        "error: stage 3/4 (CSV ingestion (Beam)) failed: no taxi trips in the landing folder: run "
        f"`gcpipe datagen taxi-trips` first; the report of the stages that ran: {page}"
    )
    assert "Traceback" not in err

    browser.get(page.as_uri())
    assert browser.find_element("id", "failed").text.startswith(
        "The demo stopped at stage 3, CSV ingestion (Beam): no taxi trips in the landing folder: run "
        "`gcpipe datagen taxi-trips` first. This report shows the 2 stage(s) that ran before it; 1 did not run."
    )
    rows = [
        [cell.text for cell in row.find_elements("tag name", "td")]
        for row in browser.find_elements("css selector", "table")[0].find_elements("css selector", "tbody tr")
    ]
    assert [row[0] for row in rows] == [stage.name for stage in stages]
    assert [row[1] == "-" for row in rows] == [False, False, False, True]  # the stages that ran, timed
    assert "FAILED" not in rows[0][2] + rows[1][2] and rows[2][2].startswith("FAILED: no taxi trips")
    assert rows[3][2] == demo_report.NOT_RUN
    colours = browser.execute_script("return document.querySelector('.js-plotly-plot').data[0].marker.color")
    assert colours == [demo_report.PASSED_COLOUR] * 2 + [demo_report.FAILED_COLOUR]
    save_page(browser, tmp_path / "report-failed.png")
    (local_stack.state_dir / "artifacts").mkdir(exist_ok=True)
    shutil.copy(tmp_path / "report-failed.png", local_stack.state_dir / "artifacts" / "report-failed.png")
