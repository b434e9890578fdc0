"""Charts drawn on the server as inline SVG: no script, no style attribute (the CSP allows
neither), classes from safeeye.css, and a text alternative in every chart (``<title>``,
``<desc>``, ``aria-label``, and a ``<title>`` on each bar that a screen reader or a hover shows).

The callers pass translated texts; everything put into the SVG is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 220
LEFT = 44  # room for the value axis' labels
RIGHT = 8
TOP = 12
BOTTOM = 36  # room for the day labels


@dataclass(frozen=True)
class Bar:
    """One bar: its label (a day, a recipient), its value, and what a reader hears for it."""

    label: str
    value: float
    text: str


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _nice_top(largest: float) -> float:
    """A round value at or above ``largest`` for the top of the value axis (1, 2, 5 x 10^n)."""
    if largest <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= largest:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= largest:
            return step * factor
    return step * 10  # pragma: no cover


def _svg_open(
    chart_id: str, title: str, description: str, width: int, height: int, kind: str
) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {escape(kind)}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'aria-describedby="{escape(chart_id)}-desc" id="{escape(chart_id)}">',
        f"<title>{escape(title)}</title>",
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
    ]


def day_bars(
    chart_id: str,
    title: str,
    description: str,
    bars: Sequence[Bar],
    *,
    label_every: int = 7,
) -> Markup:
    """A vertical bar chart, one bar per day in order, with the value axis (0, half, top) and
    every ``label_every``-th day named under its bar (as MM-DD)."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    top = _nice_top(max((b.value for b in bars), default=0))
    parts = _svg_open(chart_id, title, description, WIDTH, HEIGHT, "bars")
    for share in (0.0, 0.5, 1.0):
        y = TOP + plot_h * (1 - share)
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_number(top * share))}</text>"
        )
    slot = plot_w / max(len(bars), 1)
    gap = min(2.0, slot * 0.2)
    for i, bar in enumerate(bars):
        height = plot_h * (bar.value / top) if top else 0
        x = LEFT + i * slot + gap / 2
        y = TOP + plot_h - height
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot - gap:.1f}" '
            f'height="{height:.1f}"><title>{escape(bar.text)}</title></rect>'
        )
        if i % label_every == 0 or i == len(bars) - 1:
            parts.append(
                f'<text class="axis" x="{x + (slot - gap) / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle">{escape(bar.label[5:] or bar.label)}</text>'
            )
    parts.append(
        f'<line class="baseline" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" '
        f'y2="{TOP + plot_h}"/>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def named_bars(chart_id: str, title: str, description: str, bars: Sequence[Bar]) -> Markup:
    """A horizontal bar chart, one row per named thing (a recipient), its value at the end."""
    row = 26
    label_w = 180
    height = TOP * 2 + row * max(len(bars), 1)
    plot_w = WIDTH - label_w - 60
    top = _nice_top(max((b.value for b in bars), default=0))
    parts = _svg_open(chart_id, title, description, WIDTH, height, "rows")
    for i, bar in enumerate(bars):
        y = TOP + i * row
        length = plot_w * (bar.value / top) if top else 0
        name = bar.label if len(bar.label) <= 28 else bar.label[:27] + "…"
        parts.append(
            f'<text class="axis" x="{label_w - 8}" y="{y + 17}" text-anchor="end">'
            f"{escape(name)}</text>"
        )
        parts.append(
            f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{length:.1f}" '
            f'height="{row - 8}"><title>{escape(bar.text)}</title></rect>'
        )
        parts.append(
            f'<text class="value" x="{label_w + length + 6:.1f}" y="{y + 17}">'
            f"{escape(_number(bar.value))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
