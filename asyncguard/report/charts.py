"""Charts as inline SVG: matplotlib, drawn from plain numbers, deterministic (same data, same bytes).

Text stays text in the SVG (`svg.fonttype: none`), so the page is small, searchable and readable by a screen reader;
each chart also carries a `<title>` and, in the page, a table with the same numbers beside it.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

PERCENTILES = ("p50", "p90", "p95", "p99", "p999", "max")
PERCENTILE_LABELS = ("p50", "p90", "p95", "p99", "p99.9", "max")
SIDE_STYLES = {"flawed": {"color": "#c0392b", "linestyle": "-"}, "fixed": {"color": "#1e8449", "linestyle": "-"}}
EXTRA_FIX_STYLE = {"color": "#7dcea0", "linestyle": "--"}
TARGET_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000", "#f0e442")
"""The endpoints of your own app, each its own colour (Okabe and Ito's palette, told apart with colour blindness)."""
RC = {"svg.fonttype": "none", "svg.hashsalt": "asyncguard", "font.size": 9, "axes.spines.top": False,
      "axes.spines.right": False, "figure.dpi": 96, "text.parse_math": False, "text.usetex": False}
"""Labels are endpoint names: drawn as written, never typeset (`GET /price/$5` is no formula)."""
LARGEST_PLOTTED = 1e15
"""Beyond this magnitude (or not finite) a value is left off its chart, its number still in the table beside it:
matplotlib's tick arithmetic overflows near the largest float, and no measure comes near (1e15 ms: 30,000 years)."""


def plotted(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) and abs(value) <= LARGEST_PLOTTED else None


def line_style(side: str, index: int, bystander: bool = False) -> dict:
    """Flawed red, its first fix green, further fixes light green dashed; your own endpoints each a colour of
    their own; a run's bystander dotted, thinner."""
    if side == "target":
        style = {"color": TARGET_COLOURS[index % len(TARGET_COLOURS)], "linestyle": "-"}
    else:
        style = EXTRA_FIX_STYLE if side == "fixed" and index > 0 else SIDE_STYLES[side]
    return {**style, "linestyle": ":", "linewidth": 1.2} if bystander else {**style, "linewidth": 1.6}


def plain_numbers(axes) -> None:
    """Log axes labelled 20, 100, 500, not 2×10¹."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    low, high = axes.get_ylim()
    axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if high / max(low, 1e-9) < 300 else (1.0,)))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.yaxis.set_minor_formatter(NullFormatter())


def legend_below(figure, lines: list) -> None:
    """Under the plot, never over the lines; every line named, even one whose name starts with `_` (which
    matplotlib leaves out of a legend it gathers itself)."""
    figure.legend(lines, [line.get_label() for line in lines], loc="outside lower center", ncols=2, frameon=False,
                  fontsize=8)


def _svg(figure, title: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Title": title},
                   bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: the SVG is inlined in HTML


def _figure(height: float):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(5.6, height), layout="constrained")


def percentile_chart(series: Sequence[dict], title: str) -> str:
    """Latency percentiles of each run on one log axis: `series` items are {label, side, index, values}."""
    import matplotlib

    with matplotlib.rc_context(RC):
        figure = _figure(3.2)
        axes = figure.add_subplot()
        positions = range(len(PERCENTILES))
        lines = []
        for item in series:
            values = [math.nan if (v := plotted(value)) is None else max(v, 0.01) for value in item["values"]]
            lines += axes.plot(positions, values, marker="o", markersize=3, label=item["label"],
                               **line_style(item["side"], item["index"], item.get("bystander", False)))
        axes.set_xticks(list(positions), PERCENTILE_LABELS)
        axes.set_yscale("log")
        plain_numbers(axes)
        axes.set_ylabel("response time (ms)")
        axes.grid(True, which="major", axis="y", alpha=0.3)
        legend_below(figure, lines)
        return _svg(figure, title)


def timeline_chart(series: Sequence[dict], title: str, ylabel: str, log: bool = False,
                   threshold: float | None = None) -> str:
    """One value per second of each run: `series` items are {label, side, index, values (None for no data)}."""
    import matplotlib
    from matplotlib.ticker import MaxNLocator

    with matplotlib.rc_context(RC):
        figure = _figure(2.8)
        axes = figure.add_subplot()
        lines = []
        for item in series:
            points = [(second, value) for second, value in enumerate(map(plotted, item["values"])) if value is not None]
            if points:
                xs, ys = zip(*points)
                lines += axes.plot(xs, [max(y, 0.01) for y in ys] if log else ys, marker=".", markersize=3,
                                   label=item["label"], **line_style(item["side"], item["index"]))
        if threshold is not None:
            axes.axhline(threshold, color="#7f8c8d", linewidth=0.8, linestyle=":")
        if log:
            axes.set_yscale("log")
            plain_numbers(axes)
        else:
            axes.set_ylim(bottom=0)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("second of the measured window")
        axes.set_ylabel(ylabel)
        axes.grid(True, axis="y", alpha=0.3)
        legend_below(figure, lines)
        return _svg(figure, title)
