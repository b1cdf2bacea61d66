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
    path("customers/<int:pk>/invoices/", views.customer_invoices, name="customer_invoices"),
    path("customers/<int:pk>/invoices/new/", views.invoice_new, name="invoice_new"),
    path("invoices/<int:pk>/status/", views.invoice_status, name="invoice_status"),
    path("invoices/import/", views.invoice_import, name="invoice_import"),
    path("bulk/new/", views.bulk_new, name="bulk_new"),
    path("bulk/<int:pk>/", views.bulk_detail, name="bulk_detail"),
    path("bulk/<int:pk>/progress/", views.bulk_progress, name="bulk_progress"),
    path("bulk/<int:pk>/cancel/", views.bulk_cancel, name="bulk_cancel"),
    path("analytics/", views.analytics, name="analytics"),
    path("webhooks/delivery/", views.delivery_webhook, name="delivery_webhook"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
