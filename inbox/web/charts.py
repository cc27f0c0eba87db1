"""Server-rendered SVG charts: the geometry here (pure Python), the markup in
``templates/inbox/_charts.html``. No script and no inline style (the CSP forbids both): shapes
carry presentation attributes and a ``series-N`` class whose colour ``analytics.css`` sets with
CSS variables for light and dark mode; text and axes use ``currentColor``. Every chart is
``role="img"`` with a title, and the page shows the same numbers in a table beside it.

Labels arrive formatted (the caller formats them with ``shopbase.formatting`` for the reader).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Chart", "stacked_bars", "line_chart", "hbars", "nice_max"]

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28


@dataclass
class Rect:
    x: float
    y: float
    w: float
    h: float
    series: int
    tip: str


@dataclass
class Line:
    points: str
    series: int
    dots: list[tuple[float, float, str]] = field(default_factory=list)


@dataclass
class Chart:
    kind: str
    width: int
    height: int
    rects: list[Rect] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    yticks: list[tuple[float, str]] = field(default_factory=list)  # (y, label)
    xlabels: list[tuple[float, float, str, str]] = field(default_factory=list)  # (x, y, anchor, label)
    legend: list[tuple[int, str]] = field(default_factory=list)
    empty: bool = False
    plot: tuple[float, float, float, float] = (LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM)


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ at or above ``value`` (1 for nothing)."""
    if value <= 0:
        return 1.0
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    while magnitude > value:
        magnitude /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _yticks(top: float, fmt: Callable[[float], str], n: int = 4) -> list[tuple[float, str]]:
    plot_h = HEIGHT - TOP - BOTTOM
    return [(TOP + plot_h - plot_h * i / n, fmt(top * i / n)) for i in range(n + 1)]


def _xlabels(labels: Sequence[str], centers: Sequence[float]) -> list[tuple[float, float, str, str]]:
    if not labels:
        return []
    every = max(1, -(-len(labels) // 8))  # at most 8 labels
    right = WIDTH - RIGHT - 30  # a label centred nearer the edge would be cut off: end it there
    return [(x, HEIGHT - BOTTOM + 18, "end" if x > right else "middle", label)
            for i, (x, label) in enumerate(zip(centers, labels)) if i % every == 0 or i == len(labels) - 1]


def stacked_bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float]]],
                 fmt: Callable[[float], str], tip: Callable[[str, str, float], str]) -> Chart:
    """One bar per label, stacked by series (name, values)."""
    chart = Chart("bars", WIDTH, HEIGHT, legend=[(i, name) for i, (name, _) in enumerate(series)])
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    top = nice_max(max(totals, default=0))
    chart.empty = not any(totals)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(labels))
    width = max(1.0, slot * 0.7)
    for i, label in enumerate(labels):
        base = float(TOP + plot_h)
        for s, (name, values) in enumerate(series):
            if values[i] <= 0:
                continue
            h = plot_h * values[i] / top
            base -= h
            chart.rects.append(Rect(round(LEFT + slot * i + (slot - width) / 2, 2), round(base, 2), round(width, 2),
                                    round(h, 2), s, tip(label, name, values[i])))
    chart.yticks = _yticks(top, fmt)
    chart.xlabels = _xlabels(labels, [LEFT + slot * (i + 0.5) for i in range(len(labels))])
    return chart


def line_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]],
               fmt: Callable[[float], str], tip: Callable[[str, str, float], str], *, top: float | None = None) -> Chart:
    """One line per series (a gap where a value is None), points at each label."""
    chart = Chart("lines", WIDTH, HEIGHT, legend=[(i, name) for i, (name, _) in enumerate(series)])
    values = [v for _, vs in series for v in vs if v is not None]
    chart.empty = not values
    top = top if top is not None else nice_max(max(values, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(labels) - 1) if len(labels) > 1 else 0
    xs = [LEFT + step * i if len(labels) > 1 else LEFT + plot_w / 2 for i in range(len(labels))]
    for s, (name, vs) in enumerate(series):
        segments: list[list[str]] = [[]]
        line = Line("", s)
        for x, label, v in zip(xs, labels, vs):
            if v is None:
                segments.append([])
                continue
            y = TOP + plot_h - plot_h * min(v, top) / top
            segments[-1].append(f"{round(x, 1)},{round(y, 1)}")  # SVG coordinates: a machine format
            line.dots.append((round(x, 1), round(y, 1), tip(label, name, v)))
        line.points = " M ".join(" L ".join(seg) for seg in segments if seg)
        chart.lines.append(line)
    chart.yticks = _yticks(top, fmt)
    chart.xlabels = _xlabels(labels, xs)
    return chart


def hbars(rows: Sequence[tuple[str, float]], fmt: Callable[[float], str], *, top: float | None = None) -> Chart:
    """Horizontal bars, one per (label, value), the value written at the bar's end."""
    row_h = 26
    height = TOP + row_h * max(1, len(rows)) + 8
    chart = Chart("hbars", WIDTH, height, empty=not rows)
    label_w = 200
    plot_w = WIDTH - label_w - 90
    top = top if top is not None else nice_max(max((v for _, v in rows), default=0))
    for i, (label, value) in enumerate(rows):
        y = TOP + row_h * i
        w = plot_w * max(0.0, value) / top if top else 0
        chart.rects.append(Rect(label_w, y + 4, round(max(w, 1.0), 2), row_h - 8, 0, f"{label}: {fmt(value)}"))
        chart.xlabels.append((label_w - 8, y + row_h / 2 + 4, "end", label))
        chart.xlabels.append((label_w + w + 6, y + row_h / 2 + 4, "start", fmt(value)))
    chart.plot = (label_w, TOP, label_w + plot_w, height - 8)
    return chart


def series_of(rows: Sequence[Sequence[Any]], column: int) -> list[float]:
    return [float(r[column] or 0) for r in rows]
