"""The dashboard's charts (Plotly): per-minute lines, and pickups over an outline of New York.

Map tiles cannot be fetched offline, so the heat map draws the geohash cells' centres on plain
longitude/latitude axes (at New York's aspect ratio) over a hand-drawn outline of Manhattan and the two
airports' positions.
"""

from __future__ import annotations

import math

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
LAYOUT = {"margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "template": "plotly_white", "height": 300}


def empty(message: str) -> go.Figure:
    figure = go.Figure(layout=LAYOUT)
    figure.add_annotation(text=message, showarrow=False, font={"size": 16, "color": "#888"})
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure


def bars(labels: list, values: list, title: str, horizontal: bool = True) -> go.Figure:
    """One bar per label; horizontal bars keep long labels (reasons, stage names) readable."""
    if not labels:
        return empty(f"{title}: none")
    bar = go.Bar(x=values, y=labels, orientation="h") if horizontal else go.Bar(x=labels, y=values)
    figure = go.Figure(bar, layout={**LAYOUT, "title": title})
    if horizontal:
        figure.update_yaxes(autorange="reversed")  # the first label on top
    return figure


def per_minute(rows: list[dict], columns: dict[str, str], title: str) -> go.Figure:
    """One trace per column (column -> legend name) over the windows' start times."""
    if not rows:
        return empty("No data yet")
    x = [row["window_start"] for row in rows]
    figure = go.Figure(layout={**LAYOUT, "title": title, "barmode": "group"})
    for column, name in columns.items():
        figure.add_trace(go.Bar(x=x, y=[row[column] for row in rows], name=name))
    figure.update_layout(legend={"orientation": "h", "y": 1.12, "x": 1, "xanchor": "right"})
    figure.update_xaxes(tickformat="%H:%M", dtick=60_000 * max(1, len(rows) // 10))  # whole minutes
    return figure


def roc_curve(rows: list[dict], title: str) -> go.Figure:
    """ML.ROC_CURVE's rows as a curve from (0, 0) to (1, 1), over the diagonal of a guess."""
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
    figure.update_xaxes(title="false positive rate", range=[0, 1])
    return figure.update_yaxes(title="recall", range=[0, 1.02])


def pickups_map(areas: list[dict]) -> go.Figure:
    """Pickups per area in the latest 5-minute window: a bubble per geohash cell over the outline."""
    figure = go.Figure(layout={**LAYOUT, "height": 520, "showlegend": False})
    lon, lat = zip(*MANHATTAN, strict=True)
    figure.add_trace(
        go.Scatter(x=lon, y=lat, mode="lines", line={"color": "#999", "width": 1}, hoverinfo="skip")
    )
    names, points = zip(*LANDMARKS.items(), strict=True)
    figure.add_trace(
        go.Scatter(
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            text=names,
            mode="text",
            textfont={"color": "#777"},
            hoverinfo="skip",
        )
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
                    "colorbar": {"title": "pickups"},
                    "line": {"width": 0.5, "color": "#555"},
                },
                text=[f"{row['area']}: {row['pickups']} pickups" for row in areas],
                hoverinfo="text",
            )
        )
        title = f"Pickups by area, {start:%H:%M}-{end:%H:%M} UTC"
    else:
        title = "Pickups by area: no data yet"
    figure.update_layout(title=title)
    figure.update_xaxes(title="longitude", range=[-74.05, -73.75], constrain="domain")
    figure.update_yaxes(title="latitude", range=[40.60, 40.90], scaleanchor="x", scaleratio=ASPECT)
    return figure
