"""Routes of the review queue, comparison, merge and unmerge pages."""

urlpatterns: list = []
