"""Charts as inline SVG, drawn with matplotlib: no script, nothing to fetch when the page opens.

Labels come from untrusted logs: text is kept as SVG text (which matplotlib
escapes) and never parsed as mathtext, so a brand like ``$\\frac{}`` or
``<script>`` is shown as written.
"""

import io
from collections.abc import Sequence

from matplotlib import rc_context
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

_STYLE = {
    "svg.fonttype": "none",  # text stays text: smaller files, and escaped as XML text
    "text.parse_math": False,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
_COLORS = ["#4C72B0", "#DD8452", "#C44E52", "#55A868", "#8172B3", "#937860"]
WIDE, SMALL = (9.0, 3.2), (4.4, 3.0)
# plain numbers: with mathtext off, matplotlib's default log labels would show as TeX source
_THOUSANDS = FuncFormatter(lambda value, _: f"{value:,.0f}")


def _svg(figure: Figure, name: str) -> str:
    buffer = io.StringIO()
    # the salt keeps the ids of different charts apart on one page
    with rc_context({**_STYLE, "svg.hashsalt": name}):
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _figure(size: tuple[float, float]) -> Figure:
    with rc_context(_STYLE):
        return Figure(figsize=size, layout="constrained")


def events_over_time(rows: list[dict], event_types: Sequence[str], unit: str) -> str:
    figure = _figure(WIDE)
    with rc_context(_STYLE):
        axes = figure.subplots()
        times = [r["at"] for r in rows]
        for color, event_type in zip(_COLORS, event_types, strict=False):
            counts = [r[event_type] or 0 for r in rows]
            if any(counts):
                axes.plot(times, counts, label=event_type, color=color, linewidth=1)
        axes.set_yscale("symlog", linthresh=1)
        axes.yaxis.set_major_formatter(_THOUSANDS)
        axes.set_ylabel(f"events per {unit} (log scale)")
        _date_ticks(axes)
        # above the plot, never on the lines
        figure.legend(loc="outside upper left", ncols=max(1, len(event_types)), frameon=False)
    return _svg(figure, "events_over_time")


def _date_ticks(axes) -> None:
    """Few enough date ticks for their labels to fit side by side, written briefly
    (the month and year once, where they change)."""
    locator = AutoDateLocator(minticks=3, maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def funnel(rows: list[dict]) -> str:
    figure = _figure(WIDE)
    with rc_context(_STYLE):
        panels = figure.subplots(1, 2)
        for axes, level in zip(panels, ("session", "user"), strict=True):
            steps = [r for r in rows if r["level"] == level]
            labels = [r["step"] for r in steps][::-1]
            entered = [r["entered"] for r in steps][::-1]
            bars = axes.barh(labels, entered, color=_COLORS[0])
            notes = [_entered_note(r) for r in steps][::-1]
            axes.bar_label(bars, notes, padding=3)
            axes.set_title(f"per {level}")
            axes.set_xlim(0, max(entered or [1]) * 1.45)
            axes.xaxis.set_major_locator(MaxNLocator(4))
            axes.xaxis.set_major_formatter(_THOUSANDS)
            axes.grid(False)
    return _svg(figure, "funnel")


def _entered_note(step: dict) -> str:
    rate = step["conversion_from_previous"]
    return f"{step['entered']:,}" + (f" ({rate:.1%})" if rate is not None else "")


def bars(labels: list[str], values: list[float], name: str, xlabel: str, size=SMALL) -> str:
    figure = _figure(size)
    with rc_context(_STYLE):
        axes = figure.subplots()
        axes.barh(labels[::-1], values[::-1], color=_COLORS[0])
        axes.set_xlabel(xlabel)
        axes.xaxis.set_major_locator(MaxNLocator(4))
        axes.xaxis.set_major_formatter(_THOUSANDS)
        axes.grid(axis="y", visible=False)
    return _svg(figure, name)


def daily(rows: list[dict], bar: str, lines: Sequence[str], name: str, ylabel: str, percent: bool) -> str:
    """Bars of one daily figure, lines of others on a second axis."""
    figure = _figure(WIDE)
    with rc_context(_STYLE):
        axes = figure.subplots()
        dates = [r["date"] for r in rows]
        axes.bar(dates, [r[bar] or 0 for r in rows], color=_COLORS[0], alpha=0.6, label=bar.replace("_", " "))
        axes.set_ylabel(bar.replace("_", " "))
        axes.yaxis.set_major_formatter(_THOUSANDS)
        other = axes.twinx()
        for color, line in zip(_COLORS[1:], lines, strict=False):
            values = [(r[line] or 0) * (100 if percent else 1) for r in rows]
            other.plot(dates, values, color=color, marker="o", markersize=3, label=line.replace("_", " "))
        other.set_ylabel(ylabel)
        other.yaxis.set_major_formatter(_THOUSANDS)
        other.grid(False)
        _date_ticks(axes)
        handles = axes.get_legend_handles_labels()[0] + other.get_legend_handles_labels()[0]
        # above the plot, never on the bars and lines
        figure.legend(handles=handles, loc="outside upper left", frameon=False, ncols=1 + len(lines))
    return _svg(figure, name)
