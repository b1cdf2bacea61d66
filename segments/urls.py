from django.urls import path

from . import views

app_name = "segments"

urlpatterns = [
    path("", views.segments_home, name="home"),
    path("customers/", views.segment_customer_list, name="customers"),
    path("recompute/", views.segments_recompute_request, name="recompute"),
    path("runs/<int:pk>/", views.segment_run_status, name="run_status"),
]
