"""The demo's report reads the warehouse: real counts, dead letters by kind of reason, missing tables shown
as missing, the purchase models and the taxi demand forecast the flows made; and its page fetches nothing."""

from collections import defaultdict
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from gcpipe.app import demo, demo_report
from gcpipe.app.dashboard.queries import reason_kind
from gcpipe.app.demo import DemoContext
from gcpipe.core.clients import ensure_table
from gcpipe.core.schemas import table_spec
from gcpipe.datagen.ecommerce import write_sessions
from gcpipe.datagen.kdd import generate_connections
from gcpipe.datagen.taxi_trips import generate_trips
from gcpipe.flows.registry import flow
from gcpipe.flows.run import run_sql_steps
from gcpipe.warehouse.load import load_arrow

pytestmark = pytest.mark.stack

RIDE_REASONS = [
    "not JSON: Expecting value: line 1 column 1 (char 0)",
    "not JSON: Unterminated string starting at: line 1 column 12 (char 11)",
    "passenger_count: 'two' is not a valid INTEGER",
]
TRIP_REASONS = [
    "fare_amount: 'abc' is not a valid FLOAT",
    "fare_amount: '1.2.3' is not a valid FLOAT",
    "blank line",
]


def test_reason_kinds_drop_the_particulars_and_keep_the_rule():
    assert [reason_kind(r) for r in RIDE_REASONS] == [
        "not JSON",
        "not JSON",
        "passenger_count: … is not a valid INTEGER",
    ]
    rule = "violates rule ride_status IN ('pickup', 'enroute', 'dropoff')"
    assert reason_kind(rule) == rule
    assert reason_kind("18 fields, expected 19") == "18 fields, expected 19"


def test_the_report_shows_the_warehouses_rows_and_dead_letters(local_stack, bq, dataset, tmp_path):
    config = replace(
        local_stack, datasets=dict.fromkeys(local_stack.datasets, dataset)
    )  # every key: one dataset
    for name, reasons, required in (  # the REQUIRED columns besides the reason
        ("ride_dead_letter", RIDE_REASONS, {"received_at": "CURRENT_TIMESTAMP()"}),
        ("taxi_trips_dead_letter", TRIP_REASONS, {"source": "'test'", "loaded_at": "CURRENT_TIMESTAMP()"}),
    ):
        ensure_table(bq, table_spec(name), f"{dataset}.{name}")
        values = ", ".join(f"({reason!r}, {', '.join(required.values())})" for reason in reasons)
        bq.query(f"INSERT INTO `{dataset}.{name}` (reason, {', '.join(required)}) VALUES {values}").result()
    ensure_table(bq, table_spec("taxi_trips"), f"{dataset}.taxi_trips")
    ctx = DemoContext(
        config, tmp_path, facts={"kdd_analysis": {"malformed": {"few_fields": 2, "bad_number": 0}}}
    )

    report = demo_report.collect(ctx, [("a stage", 1.5, "made things")], 2.0, client=bq)

    written = {
        f"{dataset}.taxi_trips": 0,
        f"{dataset}.taxi_trips_dead_letter": 3,
        f"{dataset}.ride_dead_letter": 3,
    }
    assert report.row_counts == {
        f"{dataset}.{name}": written.get(f"{dataset}.{name}") for _, name in demo_report.KEY_TABLES
    }  # the tables no stage wrote: None, shown as "-"
    assert report.dead_letters == {
        f"CSV ingestion ({dataset}.taxi_trips_dead_letter)": [
            {"reason": "fare_amount: … is not a valid FLOAT", "messages": 2},
            {"reason": "blank line", "messages": 1},
        ],
        f"streaming rides ({dataset}.ride_dead_letter)": [
            {"reason": "not JSON", "messages": 2},
            {"reason": "passenger_count: … is not a valid INTEGER", "messages": 1},
        ],
        "Spark KDD (malformed lines, in the lake)": [{"reason": "few_fields", "messages": 2}],
    }
    assert (report.trips_by_hour, report.kdd_categories, report.rides_per_minute) == ([], [], [])

    page = demo_report.render_html(report)
    assert f"<td>{dataset}.ride_dead_letter</td><td>3</td>" in page
    assert f"<td>{dataset}.recommendations</td><td>-</td>" in page
    assert "<td>not JSON</td><td>2</td>" in page


def test_the_report_plots_both_purchase_models_and_the_demand_forecast(local_stack, bq, dataset, tmp_path):
    """The flows' own steps on generated data (the demo's e-commerce stage itself; the batch_csv flow's SQL
    on two days of trips), then the report: both models' ROC curves and confusion matrices from the flow's
    results, the demand history and forecast of every zone read back from BigQuery."""
    config = replace(local_stack, datasets=dict.fromkeys(local_stack.datasets, dataset))
    ctx = DemoContext(config, tmp_path)
    demo._warehouse(ctx)
    trips = generate_trips(np.random.default_rng(3), 3000, date(2019, 3, 1), days=2)
    assert load_arrow(bq, trips, table_spec("taxi_trips").schema, f"{dataset}.taxi_trips") == 3000
    run_sql_steps(flow("batch_csv"), config, bq)  # zones, trips by zone and hour, demand model, forecast
    ctx.facts["sessions"] = write_sessions(tmp_path / "sessions.jsonl.gz", 2500, seed=7)
    summary = demo._ecommerce_ml(ctx)

    report = demo_report.collect(ctx, [("e-commerce", 1.0, summary)], 1.0, client=bq)

    # Purchases: both models, each curve with its model's AUC; the logistic one's is ML.EVALUATE's
    aucs = report.metrics[demo_report.PURCHASE_MODELS]
    assert set(aucs) == {"logistic_reg", "boosted_tree_classifier"}
    assert (
        round(aucs["logistic_reg"], 4) == report.metrics[demo_report.PURCHASE_MODEL]["roc_auc"]
    )  # shown to 4
    assert f"boosted trees beside it: ROC AUC {aucs['boosted_tree_classifier']:.4g}" in summary
    assert aucs["boosted_tree_classifier"] > 0.75  # the trees learn the generator's buyers
    later = bq.query(
        f"SELECT COUNT(*) AS n FROM `{dataset}.purchase_features` WHERE date BETWEEN '2017-05-01' AND '2017-07-31'"
    ).result()
    visits = next(iter(later))["n"]
    for model in aucs:  # every later visit in one cell of each model's matrix
        cells = [r for r in report.confusion_matrices if r["model"] == model]
        assert sorted(r["expected_label"] for r in cells) == ["0", "1"]
        assert sum(r["_0"] + r["_1"] for r in cells) == visits, model

    # Taxi demand: every trip counted once in its zone's hourly series, the busiest zone first
    history = defaultdict(list)
    for r in report.demand_history:
        history[r["zone"]].append(r["pickups"])
    assert sum(map(sum, history.values())) == 3000
    assert list(history) == sorted(history, key=lambda zone: -sum(history[zone]))
    assert {len(series) for series in history.values()} == {48}  # two days, hour by hour
    forecast = defaultdict(list)
    for r in report.demand_forecast:
        forecast[r["zone"]].append(r)
    assert set(forecast) == set(history) and {len(rows) for rows in forecast.values()} == {24}

    charts = {figure.layout.title.text.split("<br>")[0]: figure for figure in demo_report.charts(report)}
    roc = charts["Purchase models: ROC curves on later visits (ML.ROC_CURVE)"]
    assert [trace.name for trace in roc.data] == [
        "a guess",
        *(f"{model}: ROC AUC {aucs[model]:.3f}" for model in ("boosted_tree_classifier", "logistic_reg")),
    ]
    matrices = charts["Purchase models: confusion matrices (ML.CONFUSION_MATRIX)"]
    assert [trace.type for trace in matrices.data] == ["heatmap", "heatmap"]
    busiest = next(iter(history))
    demand = charts[f"Taxi demand: {busiest}"]
    assert len(demand.data) == 4 * len(history)  # per zone: the band's two edges, history, forecast
    shown = [trace for trace in demand.data if trace.visible]
    assert [trace.name for trace in shown] == [None, "90% prediction interval", "history", "forecast"]
    assert list(shown[2].y) == history[busiest]
    assert list(shown[3].y) == [r["forecast_value"] for r in forecast[busiest]]


def test_the_report_lists_the_rarest_kdd_connections_per_cluster(local_stack, bq, dataset, tmp_path):
    """The kdd flow's SQL steps (k-means, ML.DETECT_ANOMALIES) on generated connections, then the report:
    the flagged connections per cluster and label as stacked bars, the rarest listed furthest first."""
    config = replace(local_stack, datasets=dict.fromkeys(local_stack.datasets, dataset))
    spec = table_spec("kdd_connections")
    ensure_table(bq, spec, f"{dataset}.kdd_connections")
    connections = generate_connections(np.random.default_rng(11), 2000)
    assert load_arrow(bq, connections, spec.schema, f"{dataset}.kdd_connections") == 2000
    run_sql_steps(flow("kdd"), config, bq)

    report = demo_report.collect(DemoContext(config, tmp_path), [("kdd", 1.0, "made")], 1.0, client=bq)

    flagged = report.row_counts[f"{dataset}.rare_connections"]
    assert 10 <= flagged <= 30  # contamination 0.01 of 2000
    assert sum(r["connections"] for r in report.rare_by_cluster) == flagged
    distances = [r["normalized_distance"] for r in report.rarest]
    assert len(distances) == demo_report.RAREST and distances == sorted(distances, reverse=True)
    chart = next(
        figure
        for figure in demo_report.charts(report)
        if figure.layout.title.text == "Rarest KDD connections per k-means cluster, by label"
    )
    assert (chart.layout.xaxis.title.text, chart.layout.yaxis.title.text) == (
        "k-means cluster (centroid_id)",
        "rare connections (count)",
    )
    stacked = sum(sum(trace.y) for trace in chart.data)
    assert stacked == flagged and {trace.name for trace in chart.data} == {
        r["label"].rstrip(".") for r in report.rare_by_cluster
    }
    page = demo_report.render_html(report)
    top = report.rarest[0]
    assert f"<td>{top['protocol_type']}</td><td>{top['service']}</td><td>{top['flag']}</td>" in page
    assert f"<td>{top['label']}</td>" in page
