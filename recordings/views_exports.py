"""Exports: create one from the search page, watch it being built, download it; and the results as CSV."""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_http_methods, require_safe

from .csvsafe import csv_lines
from .models import AuditEvent, Job, JobItem, ProviderAccount
from .search import CallSearchForm, Cursor, display_zone, search_calls
from .services.audit import audit_record
from .services.exports import ExportRefused, export_create, export_file, export_filename, selection_calls

SCOPES = {"selected", "search"}


@require_http_methods(["GET", "POST"])
@login_required
@permission_required("recordings.export_recordings", raise_exception=True)
def export_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _export_create(request)
    jobs = Job.objects.filter(kind=Job.Kind.EXPORT, created_by=request.user)[:50]
    ttl_days = max(1, round(settings.EXPORT_TTL / 86400))
    return render(request, "recordings/export_list.html", {"jobs": jobs, "ttl_days": ttl_days})


def _export_create(request: HttpRequest) -> HttpResponse:
    scope = request.POST.get("scope", "")
    if scope not in SCOPES:
        return HttpResponseBadRequest("Choose what to export: the selected calls or everything matching the search.")
    form = CallSearchForm(request.POST)
    back = form.url(skip_invalid=True)
    if scope == "selected":
        raw = request.POST.getlist("call")
        if not all(value.isdigit() and len(value) < 19 for value in raw):
            return HttpResponseBadRequest("The selected calls are not valid.")
        call_ids = selection_calls(call_ids=[int(value) for value in raw])
        description = f"{len(call_ids)} selected call(s)"
    else:
        if not form.is_valid():
            messages.error(request, "Some filters are not valid; correct them before exporting.")
            return redirect(back)
        with timezone.override(display_zone()):
            call_ids = selection_calls(search=form.search)
        query = form.querystring()
        description = f"Calls matching {query}" if query else "All calls"
    try:
        job = export_create(actor=request.user, call_ids=call_ids, description=description)
    except ExportRefused as exc:
        messages.error(request, str(exc))
        return redirect(back)
    return redirect("export_detail", pk=job.pk)


def _own_export(request: HttpRequest, pk: int) -> Job:
    job = get_object_or_404(Job.objects.select_related("created_by"), pk=pk, kind=Job.Kind.EXPORT)
    # The owner and admins; everyone else gets a 404, so export ids are not confirmed.
    if job.created_by_id != request.user.pk and not request.user.has_perm("recordings.view_job"):
        raise Http404("No such export.")
    return job


@require_safe
@login_required
@permission_required("recordings.export_recordings", raise_exception=True)
def export_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _own_export(request, pk)
    template = "recordings/export_detail.html#progress" if request.htmx else "recordings/export_detail.html"
    failed = job.items.filter(target_type="recording", status=JobItem.Status.FAILED) if job.is_finished else None
    context = {"job": job, "available": export_file(job) is not None, "failed": failed}
    return render(request, template, context)


@require_safe
@login_required
@permission_required("recordings.export_recordings", raise_exception=True)
def export_download(request: HttpRequest, pk: int) -> HttpResponse:
    job = _own_export(request, pk)
    path = export_file(job)
    if path is None:
        if job.is_finished:
            return render(request, "recordings/export_gone.html", {"job": job}, status=410)
        return render(request, "recordings/export_gone.html", {"job": job, "not_ready": True}, status=409)
    if request.method == "GET":
        audit_record(action=AuditEvent.Action.EXPORT_DOWNLOAD, target=job, request=request,
                     details={"bytes": path.stat().st_size})  # fmt: skip
    # FileResponse sets Content-Length from the file and streams it in blocks.
    response = FileResponse(open(path, "rb"), as_attachment=True, filename=export_filename(job))
    response["Content-Type"] = "application/zip"
    response["Cache-Control"] = "private, no-store"
    return response


CSV_COLUMNS = [
    ("call_id", lambda c: c.pk),
    ("provider", lambda c: c.provider),
    ("account", lambda c: c.account.name),
    ("remote_id", lambda c: c.remote_id),
    ("started_at", lambda c: timezone.localtime(c.started_at).isoformat()),
    ("direction", lambda c: c.direction),
    ("from_number", lambda c: c.from_number),
    ("to_number", lambda c: c.to_number),
    ("agent", lambda c: c.agent),
    ("campaign", lambda c: c.campaign),
    ("duration_seconds", lambda c: c.duration),
    ("has_transcript", lambda c: "yes" if c.has_transcript else "no"),
]


@require_safe
@login_required
@permission_required("recordings.export_recordings", raise_exception=True)
def results_csv(request: HttpRequest) -> HttpResponse:
    """Every call of the search as CSV, streamed page by page (keyset), cells safe from spreadsheet formulas."""
    form = CallSearchForm(request.GET)
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items())
        return HttpResponseBadRequest(f"Some filters are not valid ({errors}).", content_type="text/plain")
    zone = display_zone()
    search = form.search
    audit_record(action=AuditEvent.Action.EXPORT, request=request,
                 details={"format": "csv", "selection": form.querystring()[:300]})  # fmt: skip

    def rows() -> Iterator[list]:
        yield [name for name, _ in CSV_COLUMNS]
        cursor = None
        with timezone.override(zone):
            while True:
                page = search_calls(search=search, cursor=cursor, page_size=500)
                for call in _with_accounts(page.calls):
                    yield [value(call) for _, value in CSV_COLUMNS]
                if not page.next_cursor:
                    return
                cursor = Cursor.decode(page.next_cursor)

    response = StreamingHttpResponse(csv_lines(rows()), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime(timezone.now(), zone).strftime("%Y-%m-%d_%H%M")
    response["Content-Disposition"] = content_disposition_header(True, f"calls_{stamp}.csv")
    response["Cache-Control"] = "private, no-store"
    return response


def _with_accounts(calls: list) -> list:
    """Attach each call's account from one query (the page's calls come without it)."""
    accounts = ProviderAccount.objects.in_bulk({call.account_id for call in calls})
    for call in calls:
        call.account = accounts[call.account_id]
    return calls
