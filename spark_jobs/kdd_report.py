"""The KDD analysis report: PNG charts like the Dataproc lab's, and report.md that puts them in context."""

from __future__ import annotations

import io

from spark_jobs.common import write_bytes

CATEGORY_COLOURS = {
    "dos": "#d62728",
    "probe": "#ff7f0e",
    "r2l": "#9467bd",
    "u2r": "#8c564b",
    "normal": "#2ca02c",
    "unknown": "#7f7f7f",
}
STATE_COLOURS = {"attack": "#d62728", "no attack": "#2ca02c"}
# attack_stats columns charted one panel each, as the lab's plot.bar(subplots=True) did.
METRICS = (
    "connections",
    "mean_src_bytes",
    "mean_dst_bytes",
    "mean_duration",
    "total_failed_logins",
    "total_compromised",
    "total_file_creations",
    "total_root_attempts",
    "total_root_accesses",
)


def warm_up() -> None:
    """Import the plotting stack (a second or two): the job does it in a thread while Spark works."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot
    import pandas  # noqa: F401


def _png(figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _compact(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def attack_stats_chart(stats) -> bytes:
    """One panel per metric; bars per protocol, attack next to no attack."""
    import matplotlib.pyplot as plt
    import numpy as np

    protocols = sorted(stats["protocol_type"].unique())
    figure, axes = plt.subplots(3, 3, figsize=(13, 10))
    width = 0.4
    for ax, metric in zip(axes.flat, METRICS, strict=True):
        for offset, state in ((-width / 2, "attack"), (width / 2, "no attack")):
            rows = stats[stats["state"] == state].set_index("protocol_type").reindex(protocols)
            values = rows[metric].fillna(0).to_numpy()
            bars = ax.bar(
                np.arange(len(protocols)) + offset, values, width, label=state, color=STATE_COLOURS[state]
            )
            ax.bar_label(bars, labels=[_compact(v) if v else "" for v in values], fontsize=7)
        ax.set_title(metric.replace("_", " "), fontsize=10)
        ax.set_xticks(np.arange(len(protocols)), protocols)
        ax.margins(y=0.15)
        ax.tick_params(axis="y", labelsize=8)
    axes.flat[0].legend(fontsize=8)
    figure.suptitle("KDD Cup 99: connections per protocol, attack or not", fontsize=13)
    figure.tight_layout()
    return _png(figure)


def categories_chart(by_category, by_label) -> bytes:
    """Connections per attack category, and the most frequent labels, on log scales."""
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [1, 1.3]})
    cats = by_category.iloc[::-1]
    bars = left.barh(
        cats["attack_category"],
        cats["connections"],
        color=[CATEGORY_COLOURS.get(c, "#7f7f7f") for c in cats["attack_category"]],
    )
    left.bar_label(
        bars,
        labels=[f"{n:,} ({s:.2%})" for n, s in zip(cats["connections"], cats["share"], strict=True)],
        fontsize=8,
        padding=3,
    )
    left.set_xscale("log")
    left.set_title("connections per attack category")
    left.margins(x=0.3)
    labels = by_label.head(15).iloc[::-1]
    bars = right.barh(
        labels["label"],
        labels["connections"],
        color=[CATEGORY_COLOURS.get(c, "#7f7f7f") for c in labels["attack_category"]],
    )
    right.bar_label(bars, labels=[f"{n:,}" for n in labels["connections"]], fontsize=8, padding=3)
    right.set_xscale("log")
    right.set_title("the 15 most frequent labels (colour: category)")
    right.margins(x=0.2)
    figure.tight_layout()
    return _png(figure)


def services_chart(top) -> bytes:
    """Attacks per service for the most attacked services, coloured by their main attack category."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    figure, ax = plt.subplots(figsize=(10, 5))
    rows = top.iloc[::-1]
    colours = [CATEGORY_COLOURS.get(c, "#7f7f7f") for c in rows["top_category"]]
    bars = ax.barh(rows["service"], rows["attacks"], color=colours)
    labels = [
        f"{a:,} ({s:.0%} of its connections)"
        for a, s in zip(rows["attacks"], rows["attack_share"], strict=True)
    ]
    ax.bar_label(bars, labels=labels, fontsize=8, padding=3)
    ax.set_xscale("log")
    ax.margins(x=0.5)
    categories = sorted(set(rows["top_category"]))
    ax.legend(
        [Patch(color=CATEGORY_COLOURS.get(c, "#7f7f7f")) for c in categories],
        categories,
        title="main attack category",
        fontsize=8,
        loc="lower right",
    )
    ax.set_title(f"the {len(top)} services with the most attack connections")
    figure.tight_layout()
    return _png(figure)


def _markdown_table(frame, formats: dict[str, str]) -> str:
    columns = list(frame.columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.itertuples(index=False):
        cells = [format(value, formats.get(column, "")) for column, value in zip(columns, row, strict=True)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(output: str, frames: dict, valid: int, malformed: dict[str, int]) -> list[str]:
    """``output/report/``: three PNG charts and report.md; return their URIs."""
    warm_up()
    folder = f"{output.rstrip('/')}/report"
    if not valid:
        return [write_bytes(folder, "report.md", b"# KDD Cup 99 analysis\n\nNo valid connection was read.\n")]
    charts = {
        "attack_stats.png": attack_stats_chart(frames["attack_stats"]),
        "attack_categories.png": categories_chart(
            frames["connections_by_category"], frames["connections_by_label"]
        ),
        "top_attacked_services.png": services_chart(frames["top_attacked_services"]),
    }
    written = [write_bytes(folder, name, data) for name, data in charts.items()]
    rejected = sum(malformed.values())
    attacks = frames["attack_stats"].query("state == 'attack'")["connections"].sum()
    text = "\n\n".join(
        [
            "# KDD Cup 99 analysis",
            f"{valid + rejected:,} lines read: {valid:,} connections analysed, {rejected:,} malformed lines set aside "
            f"({', '.join(f'{kind} {n:,}' for kind, n in malformed.items())}; see ../malformed/). "
            f"{attacks:,} connections ({attacks / valid:.1%}) are attacks.",
            "## Per protocol and state (the lab's attack_stats)",
            "![attack stats](attack_stats.png)",
            _markdown_table(
                frames["attack_stats"],
                {
                    "connections": ",",
                    "mean_src_bytes": ",.2f",
                    "mean_dst_bytes": ",.2f",
                    "mean_duration": ",.2f",
                },
            ),
            "## Attack categories",
            "![attack categories](attack_categories.png)",
            _markdown_table(frames["connections_by_category"], {"connections": ",", "share": ".2%"}),
            "## Most attacked services",
            "![top attacked services](top_attacked_services.png)",
            _markdown_table(
                frames["top_attacked_services"], {"attacks": ",", "connections": ",", "attack_share": ".1%"}
            ),
        ]
    )
    written.append(write_bytes(folder, "report.md", (text + "\n").encode()))
    return written
