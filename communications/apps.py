from django.apps import AppConfig


class CommunicationsConfig(AppConfig):
    name = "communications"
    verbose_name = "Communications"

    def ready(self) -> None:
        from customers import timeline as customer_timeline

        from . import timeline

        customer_timeline.register_source(
            {timeline.MESSAGE, timeline.INVOICE},
            timeline.message_events,
            labels={timeline.MESSAGE: "Messages", timeline.INVOICE: "Invoices"},
        )
        customer_timeline.register_source(
            {timeline.CONSENT}, timeline.consent_events, labels={timeline.CONSENT: "Consents"}
        )
