"""The usage history chart: one bar per day, drawn by the server as SVG geometry.

No script draws it, so it shows with JavaScript off; the table beside it carries the same
numbers for screen readers and for copying.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import attrs

from domain.usage_history import HistoryRow

WIDTH = 720
HEIGHT = 240
LEFT = 64
BOTTOM = 28
TOP = 12
TICKS = 4


@attrs.frozen
class Bar:
    x: float
    width: float
    own_y: float
    own_height: float
    platform_y: float
    platform_height: float
    title: str


@attrs.frozen
class Tick:
    y: float
    label: str


@attrs.frozen
class DayLabel:
    x: float
    label: str


@attrs.frozen
class Chart:
    width: int
    height: int
    left: int
    plot_bottom: float
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    days: tuple[DayLabel, ...]
    summary: str


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (at least 1)."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def compact(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1_000:
        return f"{value / 1_000:g}k"
    return str(value)


def day_chart(rows: Sequence[HistoryRow]) -> Chart:
    """Bars of tokens per day, own-key tokens stacked on platform tokens, against an axis
    rounded up to a readable top; day labels thinned to at most about ten."""
    top_value = nice_ceiling(max((row.tokens() for row in rows), default=0))
    plot_height = HEIGHT - TOP - BOTTOM
    plot_bottom = float(HEIGHT - BOTTOM)
    slot = (WIDTH - LEFT) / max(1, len(rows))
    bars = []
    for index, row in enumerate(rows):
        platform_h = plot_height * row.platform_tokens / top_value
        own_h = plot_height * row.own_key_tokens / top_value
        x = LEFT + index * slot + slot * 0.15
        bars.append(
            Bar(
                x=round(x, 2),
                width=round(slot * 0.7, 2),
                platform_y=round(plot_bottom - platform_h, 2),
                platform_height=round(platform_h, 2),
                own_y=round(plot_bottom - platform_h - own_h, 2),
                own_height=round(own_h, 2),
                title=f"{row.key}: {row.tokens():,} tokens, {row.messages:,} messages",
            )
        )
    ticks = tuple(
        Tick(
            y=round(plot_bottom - plot_height * n / TICKS, 2), label=compact(top_value * n // TICKS)
        )
        for n in range(TICKS + 1)
    )
    every = max(1, -(-len(rows) // 10))
    days = tuple(
        DayLabel(x=round(LEFT + i * slot + slot / 2, 2), label=_short_day(row.key))
        for i, row in enumerate(rows)
        if i % every == 0
    )
    total = sum(row.tokens() for row in rows)
    busiest = max(rows, key=lambda r: r.tokens(), default=None)
    summary = f"{total:,} tokens over {len(rows)} days"
    if busiest is not None and busiest.tokens():
        summary += f"; the busiest day was {busiest.key} with {busiest.tokens():,} tokens"
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        plot_bottom=plot_bottom,
        bars=tuple(bars),
        ticks=ticks,
        days=days,
        summary=summary + ".",
    )


def _short_day(iso: str) -> str:
    day = date.fromisoformat(iso)
    return f"{day:%d %b}"
