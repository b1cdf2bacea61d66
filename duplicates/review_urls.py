"""Routes of the review queue, the comparison pages and the merges."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.queue, name="queue"),
    path("<int:pk>/", views.candidate_detail, name="candidate"),
    path("<int:pk>/merge/", views.candidate_merge, name="candidate_merge"),
    path("<int:pk>/not-duplicate/", views.candidate_not_duplicate, name="candidate_not_duplicate"),
    path("<int:pk>/skip/", views.candidate_skip, name="candidate_skip"),
    path("confirm/", views.merge_requests, name="merge_requests"),
    path("confirm/<str:token>/", views.merge_confirm, name="merge_confirm"),
    path("merges/", views.merge_list, name="merges"),
    path("merges/<int:pk>/", views.merge_detail, name="merge"),
    path("merges/<int:pk>/undo/", views.merge_undo, name="merge_undo"),
    path("customer/<int:pk>/", views.customer_candidates, name="customer_candidates"),
]
