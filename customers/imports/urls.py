from django.urls import path

from . import views

app_name = "imports"

urlpatterns = [
    path("", views.import_list, name="list"),
    path("<int:pk>/", views.import_detail, name="detail"),
    path("<int:pk>/progress/", views.import_progress, name="progress"),
    path("<int:pk>/confirm/", views.import_confirm, name="confirm"),
    path("<int:pk>/cancel/", views.import_cancel, name="cancel"),
    path("<int:pk>/resume/", views.import_resume, name="resume"),
    path("<int:pk>/revert/", views.import_revert, name="revert"),
    path("<int:pk>/issues.csv", views.import_errors_csv, name="issues_csv"),
]
