"""Views: permission, form, one service or selector call, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import selectors
from .models import Call
from .search import display_zone, neighbours
from .services.playback import call_listeners, unavailable_message


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers: the database answers, and when a worker last did something."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except DatabaseError:
        database = "unreachable"
    last_seen = selectors.worker_last_seen() if database == "ok" else None
    body = {
        "status": "ok" if database == "ok" else "error",
        "database": database,
        "worker_last_seen": last_seen.isoformat() if last_seen else None,
    }
    return JsonResponse(body, status=200 if database == "ok" else 503)


@login_required
@permission_required("recordings.listen_recording", raise_exception=True)
def call_detail(request: HttpRequest, pk: int) -> HttpResponse:
    call = get_object_or_404(Call.objects.select_related("account"), pk=pk)
    can_download = request.user.has_perm("recordings.download_recording")
    recordings = [
        {
            "recording": recording,
            "audio_url": reverse("recording_audio", args=[recording.pk]),
            "download_url": reverse("recording_download", args=[recording.pk]) if can_download else "",
            "transcript": getattr(recording, "transcript", None),
            "unavailable": unavailable_message(recording),
        }
        for recording in call.recordings.select_related("transcript", "account")
    ]
    context = {"call": call, "recordings": recordings, "listeners": call_listeners(call)}
    context.update(_result_links(call, request.GET))
    with timezone.override(display_zone()):  # times as the search shows them (PORTAL_TIME_ZONE)
        return render(request, "recordings/call_detail.html", context)


def _result_links(call: Call, params) -> dict:
    """Back to the results, and the previous and next calls within them, when the page was opened from a search."""
    query = params.urlencode()
    if not query:
        return {}
    previous_id, next_id = neighbours(call, params)
    link = lambda pk: f"{reverse('call_detail', args=[pk])}?{query}" if pk else ""  # noqa: E731
    return {"results_url": f"{reverse('calls')}?{query}", "previous_url": link(previous_id), "next_url": link(next_id)}
