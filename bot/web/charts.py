"""Charts drawn on the server as SVG (no JavaScript): the spider web of the six dimensions and
small trend lines for measurements. Pure functions; text is escaped."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

SIZE = 420
CENTRE = SIZE / 2
RADIUS = 140
MARGIN = 120


@dataclass(frozen=True)
class Axis:
    label: str
    now: int | None
    before: int | None = None
    highlight: bool = False  # the patient wants to talk about it


def _point(index: int, count: int, value: float) -> tuple[float, float]:
    angle = -math.pi / 2 + 2 * math.pi * index / count
    r = RADIUS * value / 10
    return CENTRE + r * math.cos(angle), CENTRE + r * math.sin(angle)


def _polygon(axes: Sequence[Axis], attr: str) -> str:
    points = []
    for i, axis in enumerate(axes):
        value = getattr(axis, attr)
        x, y = _point(i, len(axes), value if value is not None else 0)
        points.append(f"{x:.1f},{y:.1f}")
    return " ".join(points)


def spider_web(axes: Sequence[Axis], title: str, now_label: str, before_label: str) -> str:
    """The six dimensions, 0-10: the current intake filled, the previous one dashed."""
    count = len(axes)
    parts = [
        # Room left and right for the dimension names.
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{-MARGIN} 0 {SIZE + 2 * MARGIN} {SIZE}" '
        f'role="img" aria-labelledby="web-title" class="spider-web" width="{SIZE + 2 * MARGIN}" '
        f'height="{SIZE}">',
        f'<title id="web-title">{escape(title)}</title>',
    ]
    for ring in (2, 4, 6, 8, 10):
        ring_points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (_point(i, count, ring) for i in range(count)))
        parts.append(f'<polygon points="{ring_points}" class="ring" fill="none" stroke="#c8c8c8"/>')
    for i, axis in enumerate(axes):
        x, y = _point(i, count, 10)
        parts.append(f'<line x1="{CENTRE}" y1="{CENTRE}" x2="{x:.1f}" y2="{y:.1f}" stroke="#c8c8c8"/>')
        lx, ly = _point(i, count, 12.2)
        anchor = "middle" if abs(lx - CENTRE) < 20 else ("start" if lx > CENTRE else "end")
        weight = "bold" if axis.highlight else "normal"
        mark = " 💬" if axis.highlight else ""
        score = "-" if axis.now is None else str(axis.now)
        css = "axis-label talk" if axis.highlight else "axis-label"
        parts.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" font-size="13" font-weight="{weight}" '
            f'class="{css}">{escape(axis.label)} ({score}){mark}</text>'
        )
    if any(a.before is not None for a in axes):
        parts.append(
            f'<polygon points="{_polygon(axes, "before")}" class="before" fill="none" stroke="#6b6b6b" '
            f'stroke-width="2" stroke-dasharray="6 4"><title>{escape(before_label)}</title></polygon>'
        )
    parts.append(
        f'<polygon points="{_polygon(axes, "now")}" class="now" fill="#1f6feb" fill-opacity="0.25" '
        f'stroke="#1f4fbf" stroke-width="3"><title>{escape(now_label)}</title></polygon>'
    )
    for i, axis in enumerate(axes):
        if axis.now is not None:
            x, y = _point(i, count, axis.now)
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#1f4fbf"/>')
    parts.append("</svg>")
    return "\n".join(parts)


def trend_line(values: Sequence[float], title: str, width: int = 160, height: int = 40) -> str:
    """A small line of measurement values (first number), oldest left."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1
    step = width / max(len(values) - 1, 1)
    points = " ".join(
        f"{i * step:.1f},{height - 4 - (v - low) / span * (height - 8):.1f}" for i, v in enumerate(values)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title)}" class="trend">'
        f'<polyline points="{points}" fill="none" stroke="#1f4fbf" stroke-width="2"/></svg>'
    )
