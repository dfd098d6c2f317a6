"""The job page: progress and every item's outcome, polled by htmx while the job runs."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from .models import Job


@require_GET
@login_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(Job.objects.select_related("created_by"), pk=pk)
    # Admins see every job; others only their own (and get a 404 for the rest: ids are not confirmed).
    if job.created_by_id != request.user.pk and not request.user.has_perm("recordings.view_job"):
        raise Http404("No such job.")
    template = "recordings/job_detail.html#progress" if request.htmx else "recordings/job_detail.html"
    return render(request, template, {"job": job, "items": job.items.all()[:2000]})
