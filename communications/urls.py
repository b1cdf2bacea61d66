from django.urls import path

from . import views

app_name = "communications"

urlpatterns = [
    path("", views.home, name="home"),
    path("messages/<int:pk>/", views.message_detail, name="message_detail"),
    path("templates/", views.template_list, name="template_list"),
    path("templates/new/", views.template_edit, name="template_new"),
    path("templates/<int:pk>/", views.template_edit, name="template_edit"),
    path("templates/<int:pk>/preview/", views.template_preview, name="template_preview"),
    path("customers/<int:pk>/consents/", views.customer_consents, name="customer_consents"),
    path(
        "customers/<int:pk>/preferences/", views.customer_preferences, name="customer_preferences"
    ),
    path("customers/<int:pk>/send/", views.customer_send, name="customer_send"),
    path("webhooks/delivery/", views.delivery_webhook, name="delivery_webhook"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
