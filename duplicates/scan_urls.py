"""Routes of the scan pages (scan now, progress)."""

urlpatterns: list = []
