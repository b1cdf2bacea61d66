"""Routes of the scan pages (scan now, progress)."""

from django.urls import path

from . import scan_views

urlpatterns: list = [
    path("scans/", scan_views.scan_list, name="scans"),
    path("scans/start/", scan_views.scan_start, name="scan_start"),
    path("scans/<int:pk>/progress/", scan_views.scan_progress, name="scan_progress"),
]
