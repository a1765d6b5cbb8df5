"""``gcpipe dashboard``: a live page of the streaming rides, refreshed from BigQuery every few seconds.

Plotly Dash serves its JavaScript from the installed package (no CDN), so the page works offline. The
page reads the emulator locally and BigQuery on gcp, through ``gcpipe.core.clients``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click
from dash import Dash, Input, Output, dcc, html

from gcpipe.app.dashboard import figures, queries
from gcpipe.core.clients import bigquery_client
from gcpipe.core.config import Config, load_config, validate_dataset_id

MINUTES_SHOWN = 30


def _stat(label: str, element_id: str) -> html.Div:
    return html.Div(
        [html.Div("-", id=element_id, className="value"), html.Div(label, className="label")],
        className="stat",
    )


def create_app(client, dataset: str, refresh_seconds: float = 3.0) -> Dash:
    """The Dash app for ``dataset`` (``project.dataset``), reading with the BigQuery ``client``."""
    app = Dash(__name__, title="gcpipe: taxi rides, live", serve_locally=True)
    app.layout = html.Div(
        [
            html.H2("NYC taxi rides, live"),
            html.Div(id="status", className="status"),
            html.Div(
                [
                    _stat("events stored", "events"),
                    _stat(f"rides started (last {MINUTES_SHOWN} min)", "pickups"),
                    _stat(f"revenue (last {MINUTES_SHOWN} min)", "revenue"),
                    _stat("dead letters", "dead-letters"),
                ],
                className="stats",
            ),
            html.Div(
                [
                    html.Div([dcc.Graph(id="rides-per-minute"), dcc.Graph(id="revenue-per-minute")]),
                    html.Div([dcc.Graph(id="passengers-per-minute"), dcc.Graph(id="dead-letter-reasons")]),
                ],
                className="grid",
            ),
            dcc.Graph(id="pickups-map"),
            dcc.Interval(id="tick", interval=int(refresh_seconds * 1000)),
        ],
        className="page",
    )
    app.index_string = app.index_string.replace("</head>", f"<style>{STYLE}</style></head>")

    @app.callback(
        [
            Output("status", "children"),
            Output("events", "children"),
            Output("pickups", "children"),
            Output("revenue", "children"),
            Output("dead-letters", "children"),
            Output("rides-per-minute", "figure"),
            Output("revenue-per-minute", "figure"),
            Output("passengers-per-minute", "figure"),
            Output("dead-letter-reasons", "figure"),
            Output("pickups-map", "figure"),
        ],
        Input("tick", "n_intervals"),
    )
    def refresh(_):
        return render(client, dataset)

    return app


def render(client, dataset: str) -> tuple:
    """Everything the page shows, read fresh from BigQuery."""
    minutes = queries.per_minute(client, dataset, MINUTES_SHOWN)
    reasons = queries.dead_letters(client, dataset)
    dead = sum(row["messages"] for row in reasons)
    now = datetime.now(UTC).strftime("%H:%M:%S UTC")
    if not minutes:
        status = html.Span(
            f"No data yet in {dataset}: start the pipeline and publish rides "
            f"(gcpipe rides publish). Checked {now}.",
            className="empty",
        )
    else:
        latest = minutes[-1]["window_start"]
        status = (
            f"{dataset}: {len(minutes)} minute(s) of rides, latest window {latest:%H:%M} UTC; updated {now}."
        )
    reason_figure = figures.bars(
        [r["reason"] for r in reasons],
        [r["messages"] for r in reasons],
        "Dead letters by reason",
        value_axis="messages",
        label_axis="reason",
    )
    return (
        status,
        f"{queries.events_stored(client, dataset):,}",
        f"{sum(row['pickups'] for row in minutes):,}",
        f"${sum(row['revenue'] for row in minutes):,.2f}",
        f"{dead:,}",
        figures.per_minute(
            minutes,
            {"pickups": "rides started", "dropoffs": "rides completed"},
            "Rides per minute",
            value_axis="rides per minute",
        ),
        figures.per_minute(
            minutes, {"revenue": "revenue (USD)"}, "Revenue per minute", value_axis="USD per minute"
        ),
        figures.per_minute(
            minutes, {"passengers": "passengers"}, "Passengers per minute", value_axis="passengers per minute"
        ),
        reason_figure,
        figures.pickups_map(queries.by_area(client, dataset)),
    )


STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; background: #fafafa; }
.page { max-width: 1200px; margin: 0 auto; padding: 12px 20px; }
.status { color: #555; margin-bottom: 8px; } .status .empty { color: #b35900; font-size: 1.2em; }
.stats { display: flex; gap: 12px; margin-bottom: 8px; }
.stat { flex: 1; background: white; border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; }
.stat .value { font-size: 1.6em; font-weight: 600; } .stat .label { color: #666; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; }
"""


def serve(config: Config, dataset: str | None = None, port: int | None = None, refresh: float = 3.0) -> None:
    dataset = dataset or f"{config.project}.{config.dataset('taxi')}"
    if "." not in dataset:
        dataset = f"{config.project}.{dataset}"
    validate_dataset_id(dataset, "--dataset")  # before the page's first query, not inside it
    port = port or config.port("dashboard")
    click.echo(f"dashboard: http://127.0.0.1:{port}/  (reading {dataset}; Ctrl-C stops it)")
    create_app(bigquery_client(config), dataset, refresh).run(host="127.0.0.1", port=port, debug=False)


@click.command()
@click.option("--dataset", default=None, help="Dataset to read (default: the configured taxi dataset).")
@click.option("--port", type=int, default=None, help="Port (default: 8050 + the port offset).")
@click.option("--refresh", default=3.0, show_default=True, help="Seconds between refreshes.")
def dashboard(dataset: str | None, port: int | None, refresh: float) -> None:
    """Serve the live dashboard of the streaming rides on localhost."""
    serve(load_config(), dataset, port, refresh)
