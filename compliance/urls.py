from django.urls import path

from .views import cases, documents, overview, screening

app_name = "compliance"

urlpatterns = [
    path("", overview.dashboard, name="dashboard"),
    path("kyc/", cases.kyc_list, name="kyc_list"),
    path("kyc/new/<int:customer_pk>/", cases.kyc_open, name="kyc_open"),
    path("kyc/<int:pk>/", cases.kyc_detail, name="kyc_detail"),
    path("kyc/<int:pk>/edit/", cases.kyc_edit, name="kyc_edit"),
    path("kyc/<int:pk>/checks/<int:check_pk>/", cases.kyc_check, name="kyc_check"),
    path("kyc/<int:pk>/documents/", documents.kyc_document_upload, name="kyc_documents"),
    path("kyc/<int:pk>/override/", cases.kyc_override, name="kyc_override"),
    path("kyc/<int:pk>/submit/", cases.kyc_submit, name="kyc_submit"),
    path("kyc/<int:pk>/approve/", cases.kyc_approve, name="kyc_approve"),
    path("kyc/<int:pk>/reject/", cases.kyc_reject, name="kyc_reject"),
    path("kyc/<int:pk>/request-changes/", cases.kyc_request_changes, name="kyc_request_changes"),
    path("documents/<int:pk>/", documents.kyc_document_download, name="document_download"),
    path("screening/", screening.hit_queue, name="hit_queue"),
    path("screening/<int:pk>/clear/", screening.hit_clear, name="hit_clear"),
    path("screening/<int:pk>/confirm/", screening.hit_confirm, name="hit_confirm"),
    path("watchlist/", screening.watchlist, name="watchlist"),
    path("watchlist/import/", screening.watchlist_import, name="watchlist_import"),
    path("countries/", overview.country_risk, name="country_risk"),
    path("countries/remove/", overview.country_risk_remove, name="country_risk_remove"),
    path("audit/", overview.audit_log, name="audit"),
]
