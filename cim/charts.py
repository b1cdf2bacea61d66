"""Server-side SVG bar charts: geometry computed here, drawn by a template.

No JavaScript chart library: the page must work offline and under a strict
Content Security Policy, and a few bars need none. Colours come from the
stylesheet through class names, never from style attributes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    y: int
    width: int
    css_class: str = ""


@dataclass(frozen=True)
class BarChart:
    title: str
    bars: list[Bar]
    width: int
    height: int
    label_width: int
    bar_height: int
    bar_area: int

    @property
    def text_offset(self) -> int:
        return self.bar_height - 6


def bar_chart(
    *,
    title: str,
    items: list[tuple[str, int, str]],
    width: int = 560,
    label_width: int = 170,
    bar_height: int = 22,
    gap: int = 8,
) -> BarChart:
    """Horizontal bars scaled to the largest value; `items` are (label, value,
    css class). Room is left on the right for the value printed after each bar."""
    bar_area = width - label_width - 50
    largest = max((value for _, value, _ in items), default=0) or 1
    bars = [
        Bar(
            label=label,
            value=value,
            y=index * (bar_height + gap),
            width=round(bar_area * value / largest) if value else 0,
            css_class=css_class,
        )
        for index, (label, value, css_class) in enumerate(items)
    ]
    height = max(len(items) * (bar_height + gap) - gap, bar_height)
    return BarChart(
        title=title,
        bars=bars,
        width=width,
        height=height,
        label_width=label_width,
        bar_height=bar_height,
        bar_area=bar_area,
    )
