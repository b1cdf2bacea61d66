from django.apps import AppConfig


class DuplicatesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "duplicates"
    verbose_name = "Duplicates and merges"

    def ready(self) -> None:
        from customers import services as customer_services

        from . import hooks

        customer_services.register_identity_hook(hooks.match_keys_on_change)
        customer_services.register_bulk_change_hook(hooks.scan_after_bulk_change)
        # Derived from the customer: they go with it when its import is undone.
        from .models import DuplicateCandidate, MatchKey, MatchProfile

        customer_services.register_removed_with_customer(MatchKey, "customer")
        customer_services.register_removed_with_customer(MatchProfile, "customer")
        customer_services.register_removed_with_customer(
            DuplicateCandidate, "customer_a", "customer_b"
        )

        # Merges and unmerges on the 360 timeline (review queue, issue 5).
        from customers import timeline as customer_timeline

        from . import timeline

        customer_timeline.register_source(
            {timeline.CATEGORY}, timeline.merge_events, labels={timeline.CATEGORY: timeline.LABEL}
        )
