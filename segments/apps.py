from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "segments"
    verbose_name = "Segments and data quality"

    def ready(self) -> None:
        from customers import services as customer_services

        from .models import CustomerSegment

        # A customer's segment row is derived from it: it goes with a customer
        # whose import is undone.
        customer_services.register_removed_with_customer(CustomerSegment, "customer")
