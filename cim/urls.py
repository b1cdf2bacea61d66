from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("customers/", include("customers.urls")),
    path("imports/", include("customers.imports.urls")),
    path("compliance/", include("compliance.urls")),
    path("communications/", include("communications.urls")),
    path("segments/", include("segments.urls")),
    path("quality/", include("segments.quality_urls")),
    path("duplicates/", include("duplicates.urls")),
    path("admin/", admin.site.urls),
]
