"""Kept for existing imports: the chart helpers live in cim.charts, shared by every app."""

from cim.charts import Bar, BarChart, bar_chart

__all__ = ["Bar", "BarChart", "bar_chart"]
