from django.urls import path

from . import views

app_name = "quality"

urlpatterns = [
    path("", views.quality_home, name="home"),
    path("customers/", views.quality_customer_list, name="customers"),
]
