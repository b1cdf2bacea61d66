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


@dataclass(frozen=True)
class Point:
    x: float  # pixels
    y: float
    label: str


@dataclass(frozen=True)
class Tick:
    position: float  # pixels along the axis
    label: str


@dataclass(frozen=True)
class LineChart:
    """A line over a 0-100% x 0-100% plot, with an optional horizontal reference line."""

    title: str
    x_label: str
    y_label: str
    points: list[Point]
    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    reference_y: float | None
    reference_label: str

    @property
    def path(self) -> str:
        return " ".join(f"{point.x:.1f},{point.y:.1f}" for point in self.points)

    @property
    def bottom(self) -> int:
        return self.top + self.plot_height

    @property
    def right(self) -> int:
        return self.left + self.plot_width


def percent_line_chart(
    *,
    title: str,
    x_label: str,
    y_label: str,
    points: list[tuple[float, float, str]],
    reference: float | None = None,
    reference_label: str = "",
    x_ticks: list[tuple[float, str]] | None = None,
    width: int = 560,
    height: int = 320,
) -> LineChart:
    """A line through `points` given as (x share 0..1, y share 0..1, label), drawn on
    percentage axes with ticks every 20%; `reference` draws a dashed horizontal line
    at that share (the Pareto chart's 80%). `x_ticks` (share, label) replace the
    percentage ticks of the x axis, e.g. with dates."""
    left, top, right_pad, bottom_pad = 56, 28, 16, 44
    plot_width, plot_height = width - left - right_pad, height - top - bottom_pad

    def x_at(share: float) -> float:
        return left + plot_width * min(max(share, 0.0), 1.0)

    def y_at(share: float) -> float:
        return top + plot_height * (1 - min(max(share, 0.0), 1.0))

    ticks = [step / 5 for step in range(6)]
    return LineChart(
        title=title,
        x_label=x_label,
        y_label=y_label,
        points=[Point(x=x_at(x), y=y_at(y), label=label) for x, y, label in points],
        width=width,
        height=height,
        left=left,
        top=top,
        plot_width=plot_width,
        plot_height=plot_height,
        x_ticks=[
            Tick(position=x_at(share), label=label)
            for share, label in (x_ticks or [(t, f"{t:.0%}") for t in ticks])
        ],
        y_ticks=[Tick(position=y_at(t), label=f"{t:.0%}") for t in ticks],
        reference_y=y_at(reference) if reference is not None else None,
        reference_label=reference_label,
    )
