# Consents, preferences, templates, messages and invoices arrive with the
# communications issue.
