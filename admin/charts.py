"""Small charts for the console, drawn on the server as SVG shapes (no front-end build, no script).

A chart is geometry only: the template draws it with SVG attributes (the console's CSP allows no inline style)
and hides it from screen readers, which read the same numbers from the table beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

WIDTH, HEIGHT = 340, 80
BAR_HEIGHT, BAR_GAP, LABEL_WIDTH = 18, 6, 150


@dataclass(frozen=True)
class Column:
    x: float
    y: float
    width: float
    height: float
    label: str  # the day, for the tooltip
    value: int


@dataclass(frozen=True)
class Bar:
    y: float
    width: float
    label: str
    value: int
    kind: str  # a CSS class suffix, e.g. the outcome


@dataclass(frozen=True)
class ColumnChart:
    """One column per day, scaled to the busiest day."""

    columns: tuple[Column, ...]
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def total(self) -> int:
        return sum(c.value for c in self.columns)

    @property
    def peak(self) -> int:
        return max((c.value for c in self.columns), default=0)


@dataclass(frozen=True)
class BarChart:
    """One horizontal bar per label, scaled to the largest."""

    bars: tuple[Bar, ...]
    width: int = WIDTH
    label_width: int = LABEL_WIDTH

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * (BAR_HEIGHT + BAR_GAP)


def columns(days: tuple[date, ...], values: tuple[int, ...]) -> ColumnChart:
    peak = max(values, default=0) or 1
    step = WIDTH / max(1, len(days))
    out = []
    for i, (day, value) in enumerate(zip(days, values, strict=True)):
        height = round(value / peak * (HEIGHT - 2), 1) if value else 0.0
        out.append(Column(round(i * step + 1, 1), round(HEIGHT - height, 1), round(max(1.0, step - 2), 1), height,
                          f"{day:%d %b}", value))
    return ColumnChart(tuple(out))


def bars(items: dict[str, int], labels: dict[str, str] | None = None) -> BarChart:
    labels = labels or {}
    peak = max(items.values(), default=0) or 1
    room = WIDTH - LABEL_WIDTH - 40  # room for the number after the bar
    return BarChart(tuple(
        Bar(i * (BAR_HEIGHT + BAR_GAP), round(max(2.0, value / peak * room), 1), labels.get(key, key), value, key)
        for i, (key, value) in enumerate(items.items())))


def duration_words(seconds: float | None) -> str:
    """"2 min 5 s", "45 s", or "no verified calls yet"."""
    if seconds is None:
        return "no verified calls yet"
    whole = round(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
