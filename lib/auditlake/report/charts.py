"""The report's charts: matplotlib figures rendered to SVG text that the page inlines.

SVG keeps the page one file that needs nothing else to open, stays sharp when printed, and
with text drawn as paths looks the same on every machine whatever its fonts. Each chart gets
its own ``svg.hashsalt`` so the ids of several charts inlined in one page never collide.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Iterable

import matplotlib

matplotlib.use("Agg")  # no display; the Figure API below never touches pyplot's global state

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

COLORS = {
    "2xx": "#4c9f70",
    "3xx": "#5b8def",
    "4xx": "#f0a030",
    "5xx": "#d64545",
    "other": "#9aa0a6",
}
PALETTE = ("#3b6ea8", "#e08a2c", "#4c9f70", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c")
SPIKE = "#d64545"
NORMAL = "#5b7fa6"
_STYLE = {
    "svg.fonttype": "path",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#888888",
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": "#e3e3e3",
    "axes.axisbelow": True,
}


def _labels(days: list[dt.date]) -> list[str]:
    step = 1 if len(days) <= 14 else (len(days) + 13) // 14
    return [d.strftime("%a %d %b") if i % step == 0 or i == len(days) - 1 else "" for i, d in enumerate(days)]


def _svg(fig: Figure, name: str) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"auditlake-{name}"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight", pad_inches=0.05)
    text = buf.getvalue()
    # The page inlines the <svg> element itself: drop the XML prolog and DOCTYPE.
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, count=1, flags=re.S)
    return re.sub(r"<svg ", f'<svg role="img" data-chart="{name}" ', text, count=1)


def _figure() -> Figure:
    with matplotlib.rc_context(_STYLE):
        return Figure(figsize=(11, 2.3), layout="constrained")


def _finish(ax, days: list[dt.date], total: int, ylabel: str) -> None:
    ax.set_xticks(range(len(days)), _labels(days))
    ax.set_ylabel(ylabel)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(-0.6, len(days) - 0.4)
    if total == 0:
        ax.set_ylim(0, 1)
        ax.text(
            0.5, 0.5, "none in this window", transform=ax.transAxes, ha="center", va="center", color="#777777"
        )


def access_denied_chart(daily: list[tuple[dt.date, int]], spikes: Iterable[dt.date], *, day: dt.date) -> str:
    """Bars of AccessDenied-family events per day; spike days red and labelled, the report day outlined."""
    spikes = set(spikes)
    days = [d for d, _ in daily]
    counts = [c for _, c in daily]
    with matplotlib.rc_context(_STYLE):
        fig = _figure()
        ax = fig.subplots()
        bars = ax.bar(
            range(len(days)),
            counts,
            color=[SPIKE if d in spikes else NORMAL for d in days],
            edgecolor=["#222222" if d == day else "none" for d in days],
            linewidth=1.2,
        )
        ax.bar_label(
            bars,
            labels=[f"{c}" + (" spike" if d in spikes else "") if c else "" for d, c in daily],
            padding=2,
            fontsize=8,
        )
        ax.margins(y=0.18)
        _finish(ax, days, sum(counts), "denied calls")
        return _svg(fig, "access-denied")


def stacked_chart(
    rows: list[tuple[dt.date, str, int]],
    days: list[dt.date],
    *,
    name: str,
    ylabel: str,
    order: list[str] | None = None,
    colors: dict[str, str] | None = None,
    top: int = 6,
) -> str:
    """Stacked bars per day of ``(day, series, value)`` rows; the smaller series beyond ``top`` become "other"."""
    totals: dict[str, int] = {}
    for _, series, value in rows:
        totals[series] = totals.get(series, 0) + value
    if order is None:
        ranked = sorted(totals, key=lambda s: (-totals[s], s))
        keep = ranked if len(ranked) <= top + 1 else ranked[:top]
        order = keep + (["other"] if len(ranked) > len(keep) else [])
    index = {d: i for i, d in enumerate(days)}
    values = {s: [0] * len(days) for s in order}
    for d, series, value in rows:
        if d in index:
            values[series if series in values else "other"][index[d]] += value
    with matplotlib.rc_context(_STYLE):
        fig = _figure()
        ax = fig.subplots()
        bottom = [0] * len(days)
        for i, series in enumerate(order):
            if not any(values[series]):
                continue
            color = (colors or {}).get(series, PALETTE[i % len(PALETTE)])
            ax.bar(range(len(days)), values[series], bottom=bottom, label=series, color=color, width=0.7)
            bottom = [b + v for b, v in zip(bottom, values[series], strict=True)]
        for i, b in enumerate(bottom):
            if b:
                ax.text(i, b, f"{b}", ha="center", va="bottom", fontsize=8)
        ax.margins(y=0.15)
        _finish(ax, days, sum(bottom), ylabel)
        if sum(bottom):
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
        return _svg(fig, name)
