import csv

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from cim.spreadsheets import neutralise
from customers.models import ImportJob

from . import services
from .forms import ConfirmForm, MappingForm, RevertForm, UploadForm

IMPORT = "customers.import_customers"
JOBS_SHOWN = 50


@permission_required(IMPORT, raise_exception=True)
def import_list(request):
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = services.import_job_create(
                actor=request.user,
                source=form.cleaned_data["source"],
                original_name=upload.name,
                chunks=upload.chunks(),
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return redirect("imports:detail", pk=job.pk)
    jobs = ImportJob.objects.select_related("created_by")[:JOBS_SHOWN]
    return render(request, "imports/list.html", {"form": form, "jobs": jobs})


@permission_required(IMPORT, raise_exception=True)
def import_detail(request, pk: int):
    job = get_object_or_404(ImportJob.objects.select_related("created_by", "reverted_by"), pk=pk)
    mapping_form = MappingForm(request.POST or None, job=job)
    if request.method == "POST" and mapping_form.is_valid():
        try:
            services.import_job_preview_request(
                actor=request.user, job=job, mapping=mapping_form.mapping()
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        return redirect("imports:detail", pk=job.pk)
    context = {
        "mapping_form": mapping_form,
        "confirm_form": ConfirmForm(),
        "revert_form": RevertForm(),
        **_progress_context(job),
    }
    return render(request, "imports/detail.html", context)


def _progress_context(job: ImportJob) -> dict:
    """What the progress partial reads, on the page and in its poll."""
    return {
        "job": job,
        "stalled": services.import_job_is_stalled(job),
        "undo_stalled": services.import_undo_is_stalled(job),
    }


@permission_required(IMPORT, raise_exception=True)
def import_progress(request, pk: int):
    job = get_object_or_404(ImportJob.objects.select_related("reverted_by"), pk=pk)
    response = render(
        request,
        "imports/partials/_progress.html",
        _progress_context(job),
    )
    if not job.is_active and request.htmx:
        # The job is over: reload the page so it shows the outcome and actions.
        response["HX-Refresh"] = "true"
    return response


def _act(request, pk: int, action, **kwargs):
    job = get_object_or_404(ImportJob, pk=pk)
    try:
        action(actor=request.user, job=job, **kwargs)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("imports:detail", pk=pk)


@require_POST
@permission_required(IMPORT, raise_exception=True)
def import_confirm(request, pk: int):
    form = ConfirmForm(request.POST)
    lenient = form.cleaned_data["lenient"] if form.is_valid() else False
    return _act(request, pk, services.import_job_confirm, lenient=lenient)


@require_POST
@permission_required(IMPORT, raise_exception=True)
def import_cancel(request, pk: int):
    return _act(request, pk, services.import_job_cancel)


@require_POST
@permission_required(IMPORT, raise_exception=True)
def import_resume(request, pk: int):
    return _act(request, pk, services.import_job_resume)


@require_POST
@permission_required(IMPORT, raise_exception=True)
def import_revert(request, pk: int):
    form = RevertForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["confirm"]))
        return redirect("imports:detail", pk=pk)
    return _act(request, pk, services.import_job_revert_request)


@permission_required(IMPORT, raise_exception=True)
def import_errors_csv(request, pk: int):
    job = get_object_or_404(ImportJob, pk=pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-issues.csv"'
    writer = csv.writer(response)
    writer.writerow(["row", "level", "column", "reason", *job.headers])
    for issue in job.issues.iterator(chunk_size=2000):
        writer.writerow(
            neutralise([issue.row_number, issue.level, issue.column, issue.message, *issue.cells])
        )
    return response
