"""Charts as inline SVG, drawn on the server: no script, no CDN, nothing fetched at runtime.

The page's CSP forbids inline styles, so every look is an SVG presentation attribute
(fill, stroke, font-size), never a `style=`. Labels are escaped; values are plain numbers.
Each chart carries a <title> per mark, so hovering a bar or a point shows its value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

PALETTE = ("#0b5cad", "#d9480f", "#2b8a3e", "#862e9c", "#e67700", "#0c8599", "#c2255c")
FONT = "PingFang SC, Microsoft YaHei, WenQuanYi Micro Hei, Noto Sans CJK SC, sans-serif"
WIDTH, HEIGHT = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 52


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def _nice_max(value: float) -> float:
    """A round axis top at or above `value` (1, 2, 2.5, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}".rstrip("0")


def _text(x: float, y: float, label: str, *, anchor: str = "middle", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
        f'fill="#445566">{escape(label)}</text>'
    )


def _frame(chart_id: str, title: str, body: list[str], top: float) -> Markup:
    """The svg element, its y-axis grid (0..top) and the marks."""
    plot_h = HEIGHT - TOP - BOTTOM
    grid = []
    for i in range(5):
        value = top * i / 4
        y = HEIGHT - BOTTOM - plot_h * i / 4
        grid.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            f'stroke="#dde3ea" stroke-width="1"/>'
        )
        grid.append(_text(LEFT - 6, y + 4, _number(value), anchor="end", size=10))
    svg = (
        f'<svg id="{escape(chart_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" font-family="{FONT}">'
        f"<title>{escape(title)}</title>"
        + _text(WIDTH / 2, 16, title, size=13)
        + "".join(grid)
        + "".join(body)
        + "</svg>"
    )
    return Markup(svg)  # noqa: S704 - every label above went through html.escape


def _legend(names: Sequence[str]) -> list[str]:
    parts, x = [], float(LEFT)
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<rect x="{x:.1f}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>'
        )
        parts.append(_text(x + 14, HEIGHT - 5, name, anchor="start", size=11))
        x += 24 + 12 * len(name) + 4 * sum(1 for ch in name if ord(ch) > 0x2E80)
    return parts


def bar_chart(
    chart_id: str, title: str, categories: Sequence[str], series: Sequence[Series]
) -> Markup:
    """Grouped bars: one group per category (e.g. a region), one bar per series."""
    values = [v for s in series for v in s.values if v is not None]
    top = _nice_max(max(values, default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group_w = plot_w / max(len(categories), 1)
    bar_w = min(36.0, group_w * 0.8 / max(len(series), 1))
    body: list[str] = []
    for c, category in enumerate(categories):
        start = LEFT + c * group_w + (group_w - bar_w * len(series)) / 2
        for s, item in enumerate(series):
            value = item.values[c] if c < len(item.values) else None
            if value is None:
                continue
            h = plot_h * value / top
            x, y = start + s * bar_w, HEIGHT - BOTTOM - h
            body.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape(category)} · {escape(item.name)}: {_number(value)}</title></rect>"
            )
            body.append(_text(x + (bar_w - 2) / 2, y - 3, _number(value), size=10))
        body.append(_text(LEFT + (c + 0.5) * group_w, HEIGHT - BOTTOM + 15, category))
    if len(series) > 1:
        body += _legend([s.name for s in series])
    return _frame(chart_id, title, body, top)


def line_chart(
    chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series]
) -> Markup:
    """Trend lines over `labels` (e.g. days), one line per series; missing points are skipped."""
    values = [v for s in series for v in s.values if v is not None]
    top = _nice_max(max(values, default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels) - 1, 1)
    every = max(1, math.ceil(len(labels) / 8))  # at most ~8 axis labels
    body: list[str] = []
    last = len(labels) - 1
    for i, label in enumerate(labels):
        # Every n-th label, and the last one unless it would overlap the one before.
        if (i % every == 0 and last - i >= every / 2) or i == last:
            body.append(_text(LEFT + i * step, HEIGHT - BOTTOM + 15, label, size=10))
    for s, item in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        points = [
            (
                labels[i] if i < len(labels) else "",
                LEFT + i * step,
                HEIGHT - BOTTOM - plot_h * v / top,
                v,
            )
            for i, v in enumerate(item.values)
            if v is not None
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for _label, x, y, _v in points)
        body.append(
            f'<polyline class="line" points="{path}" fill="none" stroke="{colour}" '
            f'stroke-width="2"/>'
        )
        for label, x, y, v in points:
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(item.name)} {escape(label)}: {_number(v)}</title></circle>"
            )
    body += _legend([s.name for s in series])
    return _frame(chart_id, title, body, top)
