"""The shared SVG line chart: geometry on percentage axes, the reference line."""

from cim.charts import percent_line_chart


def test_points_map_onto_the_plot_and_the_reference_line_sits_at_its_share():
    chart = percent_line_chart(
        title="Pareto",
        x_label="Customers (%)",
        y_label="Revenue (%)",
        points=[(0, 0, "start"), (0.2, 0.8, "20% make 80%"), (1, 1, "all")],
        reference=0.8,
        reference_label="80%",
    )

    first, middle, last = chart.points
    assert (first.x, first.y) == (chart.left, chart.bottom)
    assert (last.x, last.y) == (chart.right, chart.top)
    assert middle.y == chart.reference_y
    assert [tick.label for tick in chart.x_ticks] == ["0%", "20%", "40%", "60%", "80%", "100%"]
    assert chart.path.count(",") == 3


def test_custom_x_ticks_replace_the_percentages():
    chart = percent_line_chart(
        title="Trend", x_label="Day", y_label="%", points=[], x_ticks=[(0, "1 Nov"), (1, "30 Nov")]
    )
    assert [tick.label for tick in chart.x_ticks] == ["1 Nov", "30 Nov"]
    assert chart.reference_y is None
