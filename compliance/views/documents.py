from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from compliance import services
from compliance.access import kyc_case_for_user, kyc_document_for_user
from compliance.forms import DocumentForm
from compliance.services import Refusal

from . import refused


@require_http_methods(["GET", "POST"])
def kyc_document_upload(request, pk: int):
    case = kyc_case_for_user(request.user, pk)
    if not request.user.has_perm("compliance.add_kycdocument"):
        raise PermissionDenied(services.CANNOT_UPLOAD)
    form = DocumentForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            document = services.kyc_document_add(
                case=case,
                actor=request.user,
                upload=form.cleaned_data["file"],
                **{name: form.cleaned_data[name] for name in DocumentForm.Meta.fields},
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        except Refusal as refusal:
            return refused(request, refusal, case=case)
        else:
            messages.success(request, f"{document.get_doc_type_display()} added.")
            return redirect(case)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "compliance/document_upload.html", {"case": case, "form": form}, status=status
    )


@require_GET
@never_cache
def kyc_document_download(request, pk: int):
    """The only way a KYC document leaves the server: permission checked,
    access logged, sent as an attachment that is never cached."""
    document = kyc_document_for_user(request.user, pk)
    try:
        handle = services.kyc_document_open(document=document, actor=request.user)
    except Refusal as refusal:
        return refused(request, refusal, case=document.case)
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=document.original_name,
        content_type=document.content_type,
    )
    response["Cache-Control"] = "private, no-store"
    return response
