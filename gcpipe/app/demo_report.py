"""The demo's final report: a terminal summary and one self-contained HTML page of what the run made.

What a stage measured (its time, the ingestion's accounting, model metrics, what the stream added) comes
from the facts the stage recorded; what the tables hold is read back from BigQuery (the emulator locally)
through gcpipe's clients. The page inlines plotly.js and its CSS, so it opens offline, from a file.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from google.api_core.exceptions import NotFound
from rich.console import Console
from rich.table import Table

from gcpipe.app.dashboard import figures, queries
from gcpipe.core.clients import bigquery_client, row_count
from gcpipe.core.ui import console as default_console
from gcpipe.core.ui import print_table
from gcpipe.local import stack

# (dataset key, table): the tables the demo's stages write, in the order they run.
KEY_TABLES = [
    ("taxi", "taxi_trips"),
    ("taxi", "taxi_trips_dead_letter"),
    ("taxi", "trips_by_zone_hour"),
    ("taxi", "pickups_by_zone_hour"),
    ("taxi", "taxi_demand_forecast"),
    ("kdd", "attack_stats"),
    ("kdd", "connections_by_category"),
    ("kdd", "kdd_connections"),
    ("kdd", "rare_connections"),
    ("rentals", "recommendations"),
    ("ecommerce", "ga_sessions"),
    ("ecommerce", "purchase_features"),
    ("ecommerce", "purchase_predictions"),
    ("taxi", "ride_events"),
    ("taxi", "rides_per_minute"),
    ("taxi", "rides_by_area"),
    ("taxi", "ride_dead_letter"),
]
DEAD_LETTER_TABLES = {"taxi_trips_dead_letter": "CSV ingestion", "ride_dead_letter": "streaming rides"}
# The rides chart: the last minutes of event time, which hold this run's windows (a minute of rides, and
# late ones stamped 3 minutes back) and, unless a run ended minutes ago, no other run's.
STREAM_MINUTES = 5
TOP_REASONS = 3
RAREST = 10  # the rarest KDD connections listed
RARE_TITLE = "The rarest KDD Cup 99 connections (k-means, ML.DETECT_ANOMALIES)"
TABLES_TITLE = "Key tables in BigQuery (rows now: every run so far)"
DEAD_LETTERS_TITLE = "Dead letters (BigQuery tables: every run so far; Spark jobs: this run)"
METRICS_TITLE = "Models and accounting (this run)"
PLOT_CONFIG = {"displayModeBar": False, "responsive": True}
PURCHASE_MODEL = "purchase model (BigQuery ML, ML.EVALUATE on later visits)"
PURCHASE_MODELS = "purchase models compared (BigQuery ML, ROC AUC on later visits)"
PURCHASE_LABELS = {"0": "no purchase", "1": "purchase"}  # will_buy_on_return_visit
ALS_MODEL = "ALS recommendations (Spark ML, held-out ratings)"
MODEL_SCORES = ("precision", "recall", "accuracy", "f1_score", "roc_auc")  # 0 to 1, higher is better
# Figures shown under a name that says what they are (the data keeps the SQL's column names).
NOT_RUN = "not run: an earlier stage failed"
FAILED = "FAILED: "  # how a failed stage's summary starts
FAILED_COLOUR, PASSED_COLOUR = "#d62728", "#636efa"  # red; Plotly's first colour, as the other bars
SHOWN_AS = {"model_quality": "ROC AUC grade (the lab's: ranking only)"}


@dataclass
class DemoReport:
    stages: list[tuple[str, float, str]]  # (stage, seconds, summary) of each stage that ran
    seconds: float
    row_counts: dict[str, int | None]  # "dataset.table" -> rows in it now (None: the table does not exist)
    dead_letters: dict[str, list[dict]]  # where -> [{"reason", "messages"}], most first
    metrics: dict[str, dict[str, object]]  # model -> metric -> value
    kdd_categories: list[dict] = field(default_factory=list)  # connections_by_category's rows
    # rare_connections: flagged connections per (centroid_id, label), and the RAREST furthest out
    rare_by_cluster: list[dict] = field(default_factory=list)
    rarest: list[dict] = field(default_factory=list)
    trips_by_hour: list[dict] = field(default_factory=list)
    trips_by_zone: list[dict] = field(default_factory=list)
    rides_per_minute: list[dict] = field(default_factory=list)
    roc_curve: list[dict] = field(default_factory=list)  # the purchase model's ML.ROC_CURVE rows
    # Both purchase models (logistic, boosted trees): purchase_models_roc_curves.sql's rows (model,
    # ML.ROC_CURVE's columns, roc_auc) and purchase_models_confusion_matrices.sql's (model, expected_label,
    # _0, _1).
    roc_curves: list[dict] = field(default_factory=list)
    confusion_matrices: list[dict] = field(default_factory=list)
    # Taxi demand per zone: pickups_by_zone_hour's rows (zone, pickup_hour, pickups; the busiest zone
    # first) and taxi_demand_forecast's (zone and ML.FORECAST's columns).
    demand_history: list[dict] = field(default_factory=list)
    demand_forecast: list[dict] = field(default_factory=list)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    failed: str | None = None  # the stage that failed (the last of ``stages``); None: every stage passed
    not_run: list[str] = field(default_factory=list)  # the stages after the one that failed
    unread: str = ""  # why the tables could not be read back, if they could not


def _unless_missing(read: Callable[[], list]) -> list:
    try:
        return read()
    except NotFound:  # the stage that writes the table did not run
        return []


def _rows(client, sql: str) -> list[dict]:
    return _unless_missing(lambda: [dict(row.items()) for row in client.query(sql).result()])


def _dead_letters(ctx, client) -> dict[str, list[dict]]:
    """By kind of reason: the BigQuery dead-letter tables, and what the Spark jobs set aside."""
    taxi = ctx.config.dataset("taxi")
    dataset = f"{ctx.config.project}.{taxi}"
    found = {
        f"{where} ({taxi}.{table})": _unless_missing(
            lambda table=table: queries.dead_letters(client, dataset, table)
        )
        for table, where in DEAD_LETTER_TABLES.items()
    }
    if kdd := ctx.facts.get("kdd_analysis"):
        found["Spark KDD (malformed lines, in the lake)"] = _by_count(kdd["malformed"])
    if als := ctx.facts.get("als_recommend"):
        rejected = {
            f"{table}: {reason}": n
            for table in ("accommodations", "ratings")
            for reason, n in als[f"rejected_{table}"].items()
        }
        found["Spark ALS (rows set aside, in the lake)"] = _by_count(rejected)
    return found


def _by_count(counts: dict[str, int]) -> list[dict]:
    ordered = sorted(((n, reason) for reason, n in counts.items() if n), key=lambda item: (-item[0], item[1]))
    return [{"reason": reason, "messages": n} for n, reason in ordered]


def _metrics(ctx) -> dict[str, dict[str, object]]:
    metrics = {}
    if model := ctx.facts.get("purchase_model"):
        metrics[PURCHASE_MODEL] = dict(model)
    if curves := ctx.facts.get("purchase_roc_curves"):
        metrics[PURCHASE_MODELS] = {r["model"]: r["roc_auc"] for r in curves}
    if als := ctx.facts.get("als_recommend"):
        metrics[ALS_MODEL] = {
            "rmse": als["rmse"],
            "baseline_rmse (the mean rating)": als["baseline_rmse"],
            "users": als["users"],
            "recommendations": als["recommendations"],
        }
    if ingest := ctx.facts.get("ingest"):
        metrics["CSV ingestion (Beam)"] = {
            "rows read": ingest.rows_read,
            "loaded": ingest.rows_loaded,
            "dead-lettered": ingest.rows_dead_lettered,
        }
    if (sent := ctx.facts.get("rides_sent")) and (added := ctx.facts.get("rides_added")):
        metrics["streaming rides (this run)"] = {
            "messages sent": sent.sent,
            "events stored": added["events_stored"],
            "dead letters": added["dead_letters"],
            "duplicates dropped": sent.duplicates,
        }
    return metrics


def collect(
    ctx,
    stages: list[tuple[str, float, str]],
    seconds: float,
    client=None,
    failed: str | None = None,
    not_run: list[str] | None = None,
) -> DemoReport:
    """Read what the run made: the stages' facts, and the key tables from BigQuery. A run that stopped at
    ``failed`` reports the stages that ran; if the BigQuery emulator is down, it reports them without
    the tables."""
    config = ctx.config
    ran = {"stages": list(stages), "seconds": seconds, "failed": failed, "not_run": list(not_run or [])}
    if client is None and config.is_local and not stack.healthy(stack.SERVICES["bigquery"], config):
        return DemoReport(
            **ran,
            row_counts={},
            dead_letters={},
            metrics=_metrics(ctx),
            unread="the BigQuery emulator is not running, so the tables were not read",
        )
    client = client or bigquery_client(config)

    def table(key: str, name: str) -> str:
        return f"`{config.project}.{config.dataset(key)}.{name}`"

    counts = {}
    for key, name in KEY_TABLES:
        shown = f"{config.dataset(key)}.{name}"
        try:
            counts[shown] = row_count(client, f"{config.project}.{shown}")
        except NotFound:  # the stage that writes it did not run
            counts[shown] = None
    zones = table("taxi", "trips_by_zone_hour")
    rare = table("kdd", "rare_connections")
    demand = table("taxi", "pickups_by_zone_hour")
    return DemoReport(
        **ran,
        row_counts=counts,
        dead_letters=_dead_letters(ctx, client),
        metrics=_metrics(ctx),
        kdd_categories=_rows(
            client, f"SELECT * FROM {table('kdd', 'connections_by_category')} ORDER BY connections DESC"
        ),
        rare_by_cluster=_rows(
            client,
            f"SELECT centroid_id, label, COUNT(*) AS connections FROM {rare} GROUP BY centroid_id, label "
            "ORDER BY centroid_id, connections DESC, label",
        ),
        rarest=_rows(
            client,
            f"SELECT * FROM {rare} ORDER BY normalized_distance DESC, centroid_id, service LIMIT {RAREST}",
        ),
        trips_by_hour=_rows(
            client, f"SELECT hour, SUM(trips) AS trips FROM {zones} GROUP BY hour ORDER BY hour"
        ),
        trips_by_zone=_rows(
            client,
            f"SELECT zone, borough, SUM(trips) AS trips, ROUND(SUM(revenue), 2) AS revenue FROM {zones} "
            "GROUP BY zone, borough ORDER BY trips DESC, zone",
        ),
        roc_curve=ctx.facts.get("purchase_roc_curve", []),
        roc_curves=ctx.facts.get("purchase_roc_curves", []),
        confusion_matrices=ctx.facts.get("purchase_confusion_matrices", []),
        demand_history=_rows(  # the busiest zone first: the forecast chart shows it, a menu picks another
            client,
            f"SELECT h.zone, h.pickup_hour, h.pickups FROM {demand} AS h JOIN (SELECT zone, SUM(pickups) AS "
            f"total FROM {demand} GROUP BY zone) AS z ON z.zone = h.zone ORDER BY z.total DESC, h.zone, "
            "h.pickup_hour",
        ),
        demand_forecast=_rows(
            client,
            f"SELECT * FROM {table('taxi', 'taxi_demand_forecast')} ORDER BY zone, forecast_timestamp",
        ),
        rides_per_minute=_unless_missing(
            lambda: queries.per_minute(client, f"{config.project}.{config.dataset('taxi')}", STREAM_MINUTES)
        ),
    )


def format_value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):  # four significant digits, but never 1.2e+04 for twelve thousand
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.4g}"
    return str(value)


def _top_reasons(reasons: list[dict]) -> str:
    return "; ".join(f"{r['reason']} ({r['messages']:,})" for r in reasons[:TOP_REASONS]) or "none"


def summary_tables(report: DemoReport) -> list[Table]:
    """The terminal summary: stages, key tables, dead letters, model metrics."""
    stages = Table("stage", "seconds", "what it produced", title="gcpipe demo")
    for name, seconds, summary in report.stages:
        stages.add_row(name, f"{seconds:.1f}", summary, style="red" if name == report.failed else None)
    for name in report.not_run:
        stages.add_row(name, "-", NOT_RUN, style="dim")
    tables = Table("table", "rows", title=TABLES_TITLE)
    for name, rows in report.row_counts.items():
        tables.add_row(name, format_value(rows))
    dead = Table("where", "records", f"top {TOP_REASONS} reasons", title=DEAD_LETTERS_TITLE)
    for where, reasons in report.dead_letters.items():
        dead.add_row(where, f"{sum(r['messages'] for r in reasons):,}", _top_reasons(reasons))
    metrics = Table("what", "figures", title=METRICS_TITLE)
    for what, values in report.metrics.items():
        metrics.add_row(what, ", ".join(f"{SHOWN_AS.get(k, k)} {format_value(v)}" for k, v in values.items()))
    if report.kdd_categories:
        metrics.add_row(
            "KDD Cup 99 connections by attack category (Spark)",
            ", ".join(f"{r['attack_category']} {r['connections']:,}" for r in report.kdd_categories),
        )
    if report.rare_by_cluster:
        metrics.add_row(
            f"{RARE_TITLE}, per cluster",
            ", ".join(f"cluster {c} {n:,}" for c, n in _rare_per_cluster(report).items()),
        )
    return [stages, tables, dead, metrics]


def _rare_per_cluster(report: DemoReport) -> dict[int, int]:
    per_cluster: dict[int, int] = {}
    for r in report.rare_by_cluster:
        per_cluster[r["centroid_id"]] = per_cluster.get(r["centroid_id"], 0) + r["connections"]
    return per_cluster


def print_summary(report: DemoReport, console: Console = default_console) -> None:
    for table in summary_tables(report):
        print_table(table, console)


def _html_table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def charts(report: DemoReport) -> list:
    """The page's Plotly figures, drawn with the dashboard's helpers: every axis titled with its unit,
    and where figures compare, which way is better."""
    bars = figures.bars
    found = [
        bars(
            [s[0] for s in report.stages],
            [round(s[1], 1) for s in report.stages],
            "Seconds per stage",
            value_axis="seconds",
            label_axis="stage",
        )
    ]
    if report.failed:  # the stage that failed in red, and said so
        colours = [FAILED_COLOUR if name == report.failed else PASSED_COLOUR for name, _, _ in report.stages]
        labels = ["FAILED" if name == report.failed else "" for name, _, _ in report.stages]
        found[0].update_traces(
            marker_color=colours,
            text=labels,
            textposition="outside",
            cliponaxis=False,
            textfont_color=FAILED_COLOUR,
        )
        found[0].update_layout(title=f"Seconds per stage (stopped at: {html.escape(report.failed)})")
    if report.trips_by_hour:
        found.append(
            bars(
                [r["hour"] for r in report.trips_by_hour],
                [r["trips"] for r in report.trips_by_hour],
                "Taxi trips by hour of pickup",
                value_axis="trips",
                label_axis="hour of pickup (New York time, 0-23)",
                horizontal=False,
            )
        )
        found.append(
            bars(
                [r["zone"] for r in report.trips_by_zone],
                [r["trips"] for r in report.trips_by_zone],
                "Taxi trips by pickup zone (GIS: ST_COVERS)",
                value_axis="trips",
                label_axis="pickup zone",
            )
        )
    if report.kdd_categories:
        figure = bars(
            [r["attack_category"] for r in report.kdd_categories],
            [r["connections"] for r in report.kdd_categories],
            "KDD Cup 99 connections by attack category",
            value_axis="connections (log scale)",
            label_axis="attack category",
        )
        found.append(figure.update_xaxes(type="log", dtick=1))  # ticks at powers of ten only
    if report.rare_by_cluster:
        stacks: dict[str, dict[str, int]] = {}
        for r in report.rare_by_cluster:
            stacks.setdefault(f"cluster {r['centroid_id']}", {})[r["label"].rstrip(".")] = r["connections"]
        found.append(
            figures.stacked_bars(
                stacks,
                "Rarest KDD connections per k-means cluster, by label",
                value_axis="rare connections (count)",
                label_axis="k-means cluster (centroid_id)",
            )
        )
    purchase = report.metrics.get(PURCHASE_MODEL, {})
    if scores := {k: v for k, v in purchase.items() if k in MODEL_SCORES and isinstance(v, float)}:
        found.append(
            figures.compare(
                scores,
                "Purchase model on later visits (ML.EVALUATE)",
                axis="score, 0 to 1",
                better="higher",
                label_axis="metric (at threshold 0.5; ROC AUC: all thresholds)",
                note=str(purchase.get("verdict", "")),
                top=1.0,
            )
        )
    if als := report.metrics.get(ALS_MODEL):
        errors = {
            "ALS model": als["rmse"],
            "predicting the mean rating": als["baseline_rmse (the mean rating)"],
        }
        found.append(
            figures.compare(
                errors,
                "ALS: error on held-out ratings",
                axis="RMSE, rating points",
                better="lower",
                label_axis="predictor",
            )
        )
    if report.roc_curves:  # both models on one plot
        curves = defaultdict(list)
        for row in report.roc_curves:
            curves[row["model"]].append(row)
        found.append(
            figures.roc_curves(
                curves,
                "Purchase models: ROC curves on later visits (ML.ROC_CURVE)",
                {model: rows[0]["roc_auc"] for model, rows in curves.items()},
            )
        )
    elif report.roc_curve:  # the logistic model's alone (the trees did not run)
        found.append(
            figures.roc_curves(
                {"logistic_reg": report.roc_curve},
                "Purchase model: ROC curve on later visits (ML.ROC_CURVE)",
                {"logistic_reg": purchase.get("roc_auc")},
            )
        )
    if report.confusion_matrices:
        found.append(
            figures.confusion_matrices(
                report.confusion_matrices,
                "Purchase models: confusion matrices (ML.CONFUSION_MATRIX)",
                note="later visits at threshold 0.5",
                label_names=PURCHASE_LABELS,
                unit="visits",
            )
        )
    if report.demand_history and report.demand_forecast:
        history, forecast = defaultdict(list), defaultdict(list)
        for row in report.demand_history:
            history[row["zone"]].append((row["pickup_hour"], row["pickups"]))
        for row in report.demand_forecast:
            forecast[row["zone"]].append(row)
        found.append(
            figures.forecasts(
                history,
                forecast,
                "Taxi demand",
                note="hourly pickups per zone: ARIMA_PLUS, ML.FORECAST",
                value_axis="pickups per hour",
                time_axis="pickup hour (UTC)",
            )
        )
    found.append(
        figures.per_minute(
            report.rides_per_minute,
            {"pickups": "rides started", "dropoffs": "rides completed"},
            f"Rides per minute (the stream's last {STREAM_MINUTES} minutes of event time)",
            value_axis="rides per minute",
        )
    )
    for where, reasons in report.dead_letters.items():
        if reasons:
            found.append(
                bars(
                    [r["reason"] for r in reasons],
                    [r["messages"] for r in reasons],
                    f"Dead letters: {where}",
                    value_axis="records",
                    label_axis="reason",
                )
            )
    return found


def render_html(report: DemoReport) -> str:
    """One page, nothing fetched: plotly.js is inlined once, before the first chart."""
    plots = "".join(
        f'<div class="chart">{figure.to_html(full_html=False, include_plotlyjs=i == 0, config=PLOT_CONFIG)}</div>'
        for i, figure in enumerate(charts(report))
    )
    sections = [
        (
            "Stages",
            _html_table(
                ["stage", "seconds", "what it produced"],
                [[n, f"{s:.1f}", summary] for n, s, summary in report.stages]
                + [[n, "-", NOT_RUN] for n in report.not_run],
            ),
        ),
        (TABLES_TITLE, _html_table(["table", "rows"], [[t, n] for t, n in report.row_counts.items()])),
        (
            DEAD_LETTERS_TITLE,
            _html_table(
                ["where", "reason", "records"],
                [
                    [where, r["reason"], r["messages"]]
                    for where, reasons in report.dead_letters.items()
                    for r in reasons
                ],
            ),
        ),
        (
            METRICS_TITLE,
            _html_table(
                ["what", "figure", "value"],
                [
                    [what, SHOWN_AS.get(k, k), v]
                    for what, values in report.metrics.items()
                    for k, v in values.items()
                ],
            ),
        ),
        (
            "KDD Cup 99 connections by attack category",
            _html_table(
                ["attack category", "connections", "share", "labels"],
                [
                    [r["attack_category"], r["connections"], r["share"], r["labels"]]
                    for r in report.kdd_categories
                ],
            ),
        ),
        (
            RARE_TITLE,
            _html_table(
                ["cluster", "distance (x the cluster's typical)", "protocol", "service", "flag", "label"],
                [
                    [
                        r["centroid_id"],
                        round(r["normalized_distance"], 2),
                        r["protocol_type"],
                        r["service"],
                        r["flag"],
                        r["label"],
                    ]
                    for r in report.rarest
                ],
            ),
        ),
        (
            "Taxi trips by pickup zone",
            _html_table(
                ["zone", "borough", "trips", "revenue (USD)"],
                [[r["zone"], r["borough"], r["trips"], r["revenue"]] for r in report.trips_by_zone],
            ),
        ),
    ]
    body = "".join(f"<h2>{html.escape(title)}</h2>{content}" for title, content in sections)
    when = f"{report.generated_at:%Y-%m-%d %H:%M} UTC"
    status = (
        f"<p class='status'>The whole platform on the local target: {len(report.stages)} stages in "
        f"{report.seconds:.0f} s, {when}.</p>"
    )
    if report.failed:
        error = next(summary for name, _, summary in report.stages if name == report.failed)
        error = error.removeprefix(FAILED).rstrip(".")
        status = (
            f"<p class='failed' id='failed'>The demo stopped at stage {len(report.stages)}, "
            f"{html.escape(report.failed)}: {html.escape(error)}. This report shows the "
            f"{len(report.stages) - 1} stage(s) that ran before it; {len(report.not_run)} did not run.</p>"
            + status
        )
    if report.unread:
        status += f"<p class='status'>{html.escape(report.unread)}.</p>"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>gcpipe demo report</title>"
        f"<style>{STYLE}</style></head><body><div class='page'><h1>gcpipe demo report</h1>"
        f"{status}<div class='grid'>{plots}</div>{body}</div></body></html>"
    )


def write_html(report: DemoReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path


STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; background: #fafafa; }
.page { max-width: 1200px; margin: 0 auto; padding: 12px 20px; } .status { color: #555; }
.failed { color: #b00020; font-weight: 600; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
.chart { background: white; border: 1px solid #ddd; border-radius: 6px; }
table { border-collapse: collapse; background: white; margin-bottom: 12px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; }
"""
