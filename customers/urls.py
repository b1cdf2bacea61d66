from django.urls import path

from . import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="list"),
    path("new/", views.customer_create, name="create"),
    path("new/matches/", views.customer_create_matches, name="create_matches"),
    path("<int:pk>/", views.customer_detail, name="detail"),
    path("<int:pk>/edit/", views.customer_edit, name="edit"),
    path("<int:pk>/history/", views.customer_history, name="history"),
    path("<int:pk>/timeline/", views.customer_timeline, name="timeline"),
    path("<int:pk>/reveal/<str:field>/", views.identifier_reveal, name="reveal"),
    path("<int:pk>/interactions/new/", views.interaction_add, name="interaction_add"),
    path("<int:pk>/<str:kind>/new/", views.contact_point_add, name="contact_point_add"),
]
