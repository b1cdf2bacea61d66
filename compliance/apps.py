from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self) -> None:
        from customers import services as customer_services
        from customers import timeline as customer_timeline

        from . import roles, screening, timeline

        roles.connect_role_conflict_guard()
        customer_timeline.register_source(
            {timeline.CATEGORY}, timeline.kyc_events, labels={timeline.CATEGORY: timeline.LABEL}
        )
        customer_services.register_identity_hook(screening.customer_screen_on_change)
        customer_services.register_bulk_change_hook(screening.screening_after_bulk_change)
        # A hit goes with its customer when the import that created it is undone.
        from .models import ScreeningHit

        customer_services.register_removed_with_customer(ScreeningHit, "customer")
