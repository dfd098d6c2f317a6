"""Playback: opening a recording for the audio route, its audit rows, and safe file names."""

from __future__ import annotations

import re
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count, Max
from django.http import HttpRequest
from django.utils import timezone

from ..models import AuditEvent, Recording
from .audit import audit_record

# Range requests within this long of a user's last play of a recording belong to the same listening session.
LISTENING_SESSION = timedelta(minutes=30)

EXTENSIONS = {
    "audio/mpeg": "mp3",
    "audio/vnd.wave": "wav",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/mp4": "m4a",
    "video/mp4": "mp4",
    "audio/ogg": "ogg",
}
PLAYABLE_TYPES = ("audio/", "video/mp4")


def safe_content_type(value: str) -> str:
    """Only audio types reach the browser: anything else could be rendered as a page."""
    value = (value or "").split(";")[0].strip().lower()
    return value if value.startswith(PLAYABLE_TYPES) else "application/octet-stream"


def recording_filename(recording: Recording, content_type: str = "") -> str:
    """`bandwidth_2026-10-01_0930_c-123_r-456.wav`: informative, ASCII, no path separators."""
    call = recording.call
    ext = recording.format or EXTENSIONS.get(content_type, "") or "bin"
    started = recording.started_at or call.started_at
    parts = [recording.account.provider, f"{started:%Y-%m-%d_%H%M}", call.remote_id, recording.remote_id]
    stem = "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", part).strip(".-")[:60] for part in parts)
    return f"{stem}.{re.sub(r'[^a-z0-9]', '', ext.lower())[:5] or 'bin'}"


def unavailable_message(recording: Recording) -> str | None:
    """Why a recording cannot be played, or None if it can."""
    label = recording.account.get_provider_display()
    status = recording.status
    if status == Recording.Status.DELETED:
        when = recording.deleted_at or recording.gone_upstream_at
        suffix = f" on {timezone.localtime(when):%d %b %Y}" if when else ""
        return f"This recording was deleted at {label}{suffix}."
    if status == Recording.Status.MEDIA_DELETED:
        return f"The audio of this recording was deleted at {label}; its details are kept."
    if status == Recording.Status.EXPIRED:
        return f"This recording has expired at {label}."
    if status == Recording.Status.PROCESSING:
        return f"{label} is still processing this recording; try again in a few minutes."
    if status == Recording.Status.ERROR:
        return f"{label} reports an error for this recording."
    return None


def playback_audit(*, request: HttpRequest, recording: Recording, download: bool, first_byte: int) -> None:
    """One row per listening session (not per range request), one per download."""
    if download:
        if first_byte == 0:
            audit_record(action=AuditEvent.Action.DOWNLOAD, target=recording, request=request)
        return
    # A player sends many range requests per listen: skip the database for the ones this process has seen.
    if not cache.add(f"play:{request.user.pk}:{recording.pk}", 1, timeout=int(LISTENING_SESSION.total_seconds())):
        return
    recent = AuditEvent.objects.filter(
        action=AuditEvent.Action.PLAY,
        target_type="recording",
        target_id=str(recording.pk),
        actor=request.user,
        created_at__gte=timezone.now() - LISTENING_SESSION,
    )
    if not recent.exists():
        audit_record(action=AuditEvent.Action.PLAY, target=recording, request=request)


def call_listeners(call) -> list[dict]:
    """Who listened to a call's recordings: name, how many sessions, when last."""
    ids = [str(pk) for pk in call.recordings.values_list("pk", flat=True)]
    return list(
        AuditEvent.objects.filter(action=AuditEvent.Action.PLAY, target_type="recording", target_id__in=ids)
        .values("actor_username")
        .annotate(sessions=Count("id"), last=Max("created_at"))
        .order_by("-last")
    )
