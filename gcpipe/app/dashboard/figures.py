"""The dashboard's and the demo report's charts (Plotly): per-minute bars, stacked bars, scores that compare, ROC
curves, confusion matrices, forecasts with their interval, and pickups over an outline of New York. Every
axis says what it counts and in which unit.

Map tiles cannot be fetched offline, so the heat map draws the geohash cells' centres on plain
longitude/latitude axes (at New York's aspect ratio) over a hand-drawn outline of Manhattan and the two
airports' positions.
"""

from __future__ import annotations

import html
import math
from datetime import timedelta

import plotly.graph_objects as go
from plotly.subplots import make_subplots

# A rough outline of Manhattan, (longitude, latitude), drawn by hand from the shoreline's main bends.
MANHATTAN = [
    (-74.0165, 40.7003),
    (-74.0134, 40.7110),
    (-74.0110, 40.7250),
    (-74.0090, 40.7400),
    (-74.0050, 40.7550),
    (-73.9990, 40.7650),
    (-73.9880, 40.7800),
    (-73.9710, 40.8030),
    (-73.9600, 40.8200),
    (-73.9470, 40.8400),
    (-73.9330, 40.8600),
    (-73.9220, 40.8760),
    (-73.9110, 40.8790),
    (-73.9100, 40.8720),
    (-73.9270, 40.8500),
    (-73.9330, 40.8350),
    (-73.9340, 40.8100),
    (-73.9290, 40.7970),
    (-73.9420, 40.7760),
    (-73.9580, 40.7600),
    (-73.9700, 40.7450),
    (-73.9720, 40.7300),
    (-73.9770, 40.7200),
    (-73.9740, 40.7120),
    (-73.9900, 40.7070),
    (-74.0000, 40.7040),
    (-74.0100, 40.7010),
    (-74.0165, 40.7003),
]
LANDMARKS = {"JFK": (-73.7781, 40.6413), "LaGuardia": (-73.8740, 40.7769), "Brooklyn": (-73.9770, 40.6860)}
ASPECT = 1 / math.cos(math.radians(40.75))  # degrees of longitude per degree of latitude, on the ground
LAYOUT = {"margin": {"l": 60, "r": 20, "t": 40, "b": 50}, "template": "plotly_white", "height": 300}
MINUTE_AXIS = "minute (event time, UTC)"
PARTIAL = "partial minute"  # the marker of a window whose minute was not over when it was last counted
MINUTE = timedelta(minutes=1)
MINUTE_MS = 60_000


def empty(message: str, title: str = "") -> go.Figure:
    figure = go.Figure(layout={**LAYOUT, "title": title})
    figure.add_annotation(text=message, showarrow=False, font={"size": 16, "color": "#888"})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure


def bars(
    labels: list, values: list, title: str, *, value_axis: str, label_axis: str = "", horizontal: bool = True
) -> go.Figure:
    """One bar per label; horizontal bars keep long labels (reasons, stage names) readable. The axis
    titles say what is counted and in which unit."""
    if not labels:
        return empty(f"{title}: none")
    bar = go.Bar(x=values, y=labels, orientation="h") if horizontal else go.Bar(x=labels, y=values)
    figure = go.Figure(bar, layout={**LAYOUT, "title": title})
    values_on, labels_on = (
        (figure.update_xaxes, figure.update_yaxes)
        if horizontal
        else (figure.update_yaxes, figure.update_xaxes)
    )
    values_on(title=value_axis)
    labels_on(title=label_axis, automargin=True)
    if horizontal:
        figure.update_yaxes(autorange="reversed")  # the first label on top
    return figure


def stacked_bars(
    counts: dict[str, dict[str, int]], title: str, *, value_axis: str, label_axis: str
) -> go.Figure:
    """Vertical bars, one per outer key of ``counts`` ({bar: {part: count}}), each stacked from its parts
    (a legend entry per part, the parts in the order they first appear)."""
    if not counts:
        return empty(f"{title}: none")
    parts = list(dict.fromkeys(part for bar in counts.values() for part in bar))
    figure = go.Figure(layout={**LAYOUT, "title": title, "barmode": "stack"})
    for part in parts:
        figure.add_bar(x=list(counts), y=[bar.get(part, 0) for bar in counts.values()], name=part)
    figure.update_xaxes(title=label_axis, type="category")
    figure.update_yaxes(title=value_axis)
    return figure


def compare(
    values: dict[str, float],
    title: str,
    *,
    axis: str,
    better: str,
    label_axis: str,
    note: str = "",
    top: float | None = None,
) -> go.Figure:
    """Figures side by side, each bar labelled with its value, on an axis from 0 that fits them (up to
    ``top`` if given: 1 for scores that cannot exceed it); ``better`` ("higher" or "lower") says which way
    is better, in the title and the axis title; ``note`` is a line under the title. A NaN (BigQuery ML's
    figure for what the rows cannot measure) is a bar-less "not measured"."""
    measured = [None if math.isnan(v) else v for v in values.values()]
    arrow = "\u2191" if better == "higher" else "\u2193"
    heading = f"{title} ({arrow} {better} is better)" + (
        f"<br><sup>{html.escape(note)}</sup>" if note else ""
    )
    figure = go.Figure(
        go.Bar(
            x=list(values),
            y=[v or 0 for v in measured],
            text=["not measured" if v is None else f"{v:.4g}" for v in measured],
            textposition=["outside" if v is None else "auto" for v in measured],
            cliponaxis=False,
        ),
        layout={**LAYOUT, "title": heading, "margin": {**LAYOUT["margin"], "t": 70 if note else 40}},
    )
    figure.update_yaxes(
        title=f"{axis} ({better} is better)", range=[0, top or max(v or 0 for v in measured) * 1.15 or 1]
    )
    return figure.update_xaxes(title=label_axis)


def per_minute(rows: list[dict], columns: dict[str, str], title: str, *, value_axis: str) -> go.Figure:
    """One trace per column (column -> legend name), a bar per 1-minute window, on an axis that spans
    the windows shown and no more. A window whose latest count was made before its minute ended (the
    current minute, or the one a finished stream stopped in) is drawn faded and marked partial, so that
    it does not read as a drop."""
    if not rows:
        return empty("no data yet", title)
    x = [row["window_start"] for row in rows]
    partial = [_partial(row) for row in rows]
    # Explicit widths (ms on a time axis): Plotly would size bars by the closest two windows, so windows
    # minutes apart would get bars minutes wide.
    width = 0.8 * MINUTE_MS / len(columns)
    figure = go.Figure(layout={**LAYOUT, "title": title, "barmode": "overlay"})
    for i, (column, name) in enumerate(columns.items()):
        figure.add_trace(
            go.Bar(
                x=x,
                y=[row[column] for row in rows],
                name=name,
                width=width,
                offset=-0.4 * MINUTE_MS + i * width,
                marker={
                    "opacity": [0.4 if p else 1 for p in partial],
                    "pattern": {"shape": ["/" if p else "" for p in partial]},
                },
            )
        )
    for row, is_partial in zip(rows, partial, strict=True):
        if is_partial:
            top = max(row[column] for column in columns)
            figure.add_annotation(
                x=row["window_start"],
                y=top,
                text=PARTIAL,
                showarrow=False,
                yshift=12,
                font={"color": "#b35900"},
            )
    figure.update_layout(legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"})
    figure.update_xaxes(
        title=MINUTE_AXIS,
        tickformat="%H:%M",
        dtick=MINUTE_MS * max(1, len(rows) // 10),  # whole minutes
        range=[x[0] - MINUTE / 2, x[-1] + MINUTE / 2],
    )
    top = max(row[column] for row in rows for column in columns)
    return figure.update_yaxes(title=value_axis, range=[0, top * 1.2 or 1])  # room for the partial marker


def _partial(row: dict) -> bool:
    emitted, end = row.get("emitted_at"), row.get("window_end")
    return bool(emitted and end and emitted < end)


def roc_curves(curves: dict[str, list[dict]], title: str, aucs: dict[str, float | None]) -> go.Figure:
    """ML.ROC_CURVE's rows of one or more models (name -> rows), each a curve from (0, 0) to (1, 1), over
    the diagonal of a guess; each model's area under its curve (``aucs``: ML.EVALUATE's roc_auc, None:
    not known) in its legend and written on the chart. Up and to the left is better."""
    heading = f"{title}<br><sup>(\u2196 up and to the left is better)</sup>"
    figure = go.Figure(
        layout={**LAYOUT, "title": heading, "showlegend": True, "margin": {**LAYOUT["margin"], "t": 60}}
    )
    figure.update_layout(legend={"orientation": "h", "y": -0.25, "x": 0})
    figure.add_scatter(
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        line={"dash": "dot", "color": "#bbb"},
        hoverinfo="skip",
        name="a guess",
    )
    hover = "threshold %{customdata:.3f}<br>recall %{y:.2f}, false positive rate %{x:.2f}"
    measured = []
    for name, rows in curves.items():
        ordered = sorted(rows, key=lambda r: (r["false_positive_rate"], r["recall"]))
        auc = aucs.get(name)
        area = "" if auc is None else f"ROC AUC {_auc(auc)}"
        figure.add_scatter(
            x=[0.0, *(r["false_positive_rate"] for r in ordered), 1.0],
            y=[0.0, *(r["recall"] for r in ordered), 1.0],
            mode="lines",
            name=f"{name}: {area}" if area else name,
            customdata=[None, *(r["threshold"] for r in ordered), None],
            hovertemplate=hover,
        )
        if area:
            measured.append(f"{name}: {area}" if len(curves) > 1 else area)
    if measured:
        figure.add_annotation(
            text="<br>".join(measured) + "<br>(1 is perfect, 0.5 a guess)",
            x=0.97,
            y=0.06,
            xanchor="right",
            yanchor="bottom",
            align="right",
            showarrow=False,
            bgcolor="rgba(255,255,255,0.85)",
        )
    figure.add_annotation(
        text="a guess", x=0.75, y=0.75, showarrow=False, textangle=-35, yshift=10, font={"color": "#999"}
    )
    figure.update_xaxes(title="false positive rate (non-buyers flagged)", range=[0, 1])
    return figure.update_yaxes(title="recall (buyers found)", range=[0, 1.02])


def _auc(auc: float) -> str:
    return "not measured: the rows hold one label only" if math.isnan(auc) else f"{auc:.3f}"


def confusion_matrices(
    rows: list[dict], title: str, *, note: str, label_names: dict[str, str], unit: str
) -> go.Figure:
    """ML.CONFUSION_MATRIX's rows of one or more models (a ``model`` column, ``expected_label`` and a
    column per predicted label, ``_<label>`` where the label is not a name), a heat map per model: actual
    labels down, predicted across, each cell its count of ``unit`` and its share of the actual label's
    rows (the colour: a rare label's row reads as well as a common one's). The diagonal is right: more
    there is better. ``label_names`` reads the labels ("1": "purchase"); ``note`` starts the subtitle."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    if not models:
        return empty(f"{title}: none")
    labels = [c.removeprefix("_") for c in rows[0] if c not in ("model", "expected_label")]
    names = [label_names.get(label, label) for label in labels]
    figure = make_subplots(1, len(models), subplot_titles=models, shared_yaxes=True, horizontal_spacing=0.06)
    for i, model in enumerate(models, start=1):
        matrix = {r["expected_label"]: r for r in rows if r["model"] == model}
        counts = [[_cell(matrix.get(actual, {}), label) for label in labels] for actual in labels]
        shares = [[n / (sum(row) or 1) for n in row] for row in counts]  # of the actual label's rows
        figure.add_trace(
            go.Heatmap(
                z=shares,
                x=names,
                y=names,
                text=[
                    [f"{n:,} ({share:.0%})" for n, share in zip(*pair, strict=True)]
                    for pair in zip(counts, shares, strict=True)
                ],
                texttemplate="%{text}",
                colorscale="Blues",
                zmin=0,
                zmax=1,
                showscale=i == len(models),
                colorbar={"title": "share of the<br>actual label", "tickformat": ".0%"},
                hovertemplate=f"actual %{{y}}<br>predicted %{{x}}<br>%{{text}} {unit}<extra></extra>",
            ),
            1,
            i,
        )
        figure.update_xaxes(title_text="predicted label", row=1, col=i)
    figure.update_yaxes(title_text="actual label", autorange="reversed", row=1, col=1)
    heading = (
        f"{title}<br><sup>{note}; cells: {unit} (share of the actual label)<br>\u2198 more on the diagonal is "
        "better</sup>"
    )
    return figure.update_layout(
        **{**LAYOUT, "height": 340, "margin": {**LAYOUT["margin"], "t": 120}},
        title={"text": heading, "y": 0.98, "yanchor": "top"},
    )


def _cell(row: dict, label: str) -> int:
    return row.get(f"_{label}", row.get(label)) or 0


def forecasts(
    history: dict[str, list[tuple]],
    forecast: dict[str, list[dict]],
    title: str,
    *,
    note: str,
    value_axis: str,
    time_axis: str,
) -> go.Figure:
    """A series' history and ML.FORECAST's rows for it (``forecast_timestamp``, ``forecast_value``,
    ``confidence_level``, ``prediction_interval_lower_bound`` / ``_upper_bound``), the interval a band, for
    each series (name -> (timestamp, value) pairs, in the order given: the first is shown, a menu picks
    another), titled ``title: series`` over ``note``. A narrower band is a surer forecast."""
    series = [name for name in history if name in forecast]
    if not series:
        return empty(f"{title}: none")
    figure = go.Figure(layout={**LAYOUT, "height": 360})
    traces = 4  # the band's upper edge, its lower edge (filled up to the upper), the history, the forecast
    for index, name in enumerate(series):
        ahead = forecast[name]
        when = [r["forecast_timestamp"] for r in ahead]
        level = ahead[0]["confidence_level"]
        shown = index == 0
        figure.add_scatter(
            x=when,
            y=[r["prediction_interval_upper_bound"] for r in ahead],
            mode="lines",
            line={"width": 0},
            hoverinfo="skip",
            showlegend=False,
            visible=shown,
        )
        figure.add_scatter(
            x=when,
            y=[r["prediction_interval_lower_bound"] for r in ahead],
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(239,85,59,0.2)",
            name=f"{level:.0%} prediction interval",
            hoverinfo="skip",
            visible=shown,
        )
        figure.add_scatter(
            x=[t for t, _ in history[name]],
            y=[v for _, v in history[name]],
            mode="lines",
            name="history",
            line={"color": "#636efa"},
            visible=shown,
        )
        figure.add_scatter(
            x=when,
            y=[r["forecast_value"] for r in ahead],
            mode="lines",
            name="forecast",
            line={"color": "#ef553b", "dash": "dash"},
            visible=shown,
        )

    def heading(name: str) -> str:
        return f"{title}: {html.escape(name)}<br><sup>{note}; a narrower band is a surer forecast</sup>"

    buttons = [
        {
            "label": name,
            "method": "update",
            "args": [
                {"visible": [i // traces == index for i in range(traces * len(series))]},
                {"title.text": heading(name)},
            ],
        }
        for index, name in enumerate(series)
    ]
    figure.update_layout(
        title=heading(series[0]),
        margin={**LAYOUT["margin"], "t": 70},
        legend={"orientation": "h", "y": -0.3, "x": 0},
        updatemenus=[
            {"buttons": buttons, "direction": "up", "x": 1, "xanchor": "right", "y": -0.3, "yanchor": "top"}
        ],
    )
    figure.update_xaxes(title=time_axis)
    return figure.update_yaxes(title=value_axis, rangemode="tozero")


def pickups_map(areas: list[dict]) -> go.Figure:
    """Pickups per area in the latest 5-minute window: a bubble per geohash cell over the outline."""
    figure = go.Figure(layout={**LAYOUT, "height": 520, "showlegend": False})
    lon, lat = zip(*MANHATTAN, strict=True)
    figure.add_trace(
        go.Scatter(x=lon, y=lat, mode="lines", line={"color": "#999", "width": 1}, hoverinfo="skip")
    )
    if areas:
        start, end = areas[0]["window_start"], areas[0]["window_end"]
        top = max(row["pickups"] for row in areas)
        figure.add_trace(
            go.Scatter(
                name="pickups",
                x=[row["center_longitude"] for row in areas],
                y=[row["center_latitude"] for row in areas],
                mode="markers",
                marker={
                    "size": [8 + 22 * row["pickups"] / top for row in areas],
                    "color": [row["pickups"] for row in areas],
                    "colorscale": "YlOrRd",
                    "showscale": True,
                    "colorbar": {"title": "pickups<br>in 5 min"},
                    "line": {"width": 0.5, "color": "#555"},
                },
                text=[f"{row['area']}: {row['pickups']} pickups" for row in areas],
                hoverinfo="text",
            )
        )
        title = f"Pickups by area, {start:%H:%M}-{end:%H:%M} UTC"
    else:
        title = "Pickups by area: no data yet"
    for name, (x, y) in LANDMARKS.items():  # annotations draw above the markers: always readable
        figure.add_annotation(
            x=x,
            y=y,
            text=name,
            ax=28,
            ay=-26,
            arrowcolor="#999",
            arrowwidth=1,
            font={"color": "#444"},
            bgcolor="rgba(255,255,255,0.85)",
            bordercolor="#ccc",
        )
    figure.update_layout(title=title)
    figure.update_xaxes(title="longitude (degrees)", range=[-74.05, -73.75], constrain="domain")
    figure.update_yaxes(title="latitude (degrees)", range=[40.60, 40.90], scaleanchor="x", scaleratio=ASPECT)
    return figure
