"""/duplicates/: the steward's review queue, merges and the scans.

The review and merge pages and the scan pages are built separately; each
keeps its own list of routes.
"""

from .review_urls import urlpatterns as review_urlpatterns
from .scan_urls import urlpatterns as scan_urlpatterns

app_name = "duplicates"

urlpatterns = review_urlpatterns + scan_urlpatterns
