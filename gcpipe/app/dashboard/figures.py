"""The dashboard's and the demo report's charts (Plotly): per-minute bars, scores that compare, a ROC
curve, and pickups over an outline of New York. Every axis says what it counts and in which unit.

Map tiles cannot be fetched offline, so the heat map draws the geohash cells' centres on plain
longitude/latitude axes (at New York's aspect ratio) over a hand-drawn outline of Manhattan and the two
airports' positions.
"""

from __future__ import annotations

import html
import math
from datetime import timedelta

import plotly.graph_objects as go

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


def roc_curve(rows: list[dict], title: str, auc: float | None = None) -> go.Figure:
    """ML.ROC_CURVE's rows as a curve from (0, 0) to (1, 1), over the diagonal of a guess, with the
    area under it (``auc``: ML.EVALUATE's roc_auc) written on the chart."""
    ordered = sorted(rows, key=lambda r: (r["false_positive_rate"], r["recall"]))
    fpr = [0.0, *(r["false_positive_rate"] for r in ordered), 1.0]
    recall = [0.0, *(r["recall"] for r in ordered), 1.0]
    thresholds = [None, *(r["threshold"] for r in ordered), None]
    figure = go.Figure(layout={**LAYOUT, "title": title, "showlegend": False})
    figure.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#bbb"}, hoverinfo="skip"
    )
    hover = "threshold %{customdata:.3f}<br>recall %{y:.2f}, false positive rate %{x:.2f}"
    figure.add_scatter(x=fpr, y=recall, mode="lines", customdata=thresholds, hovertemplate=hover)
    if auc is not None:
        measured = "not measured: the rows hold one label only" if math.isnan(auc) else f"{auc:.3f}"
        figure.add_annotation(
            text=f"ROC AUC {measured} (1 is perfect, 0.5 a guess)",
            x=0.97,
            y=0.06,
            xanchor="right",
            showarrow=False,
            bgcolor="rgba(255,255,255,0.85)",
        )
    figure.add_annotation(
        text="a guess", x=0.75, y=0.75, showarrow=False, textangle=-35, yshift=10, font={"color": "#999"}
    )
    figure.update_xaxes(title="false positive rate (non-buyers flagged)", range=[0, 1])
    return figure.update_yaxes(title="recall (buyers found)", range=[0, 1.02])


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
