"""The audio route: recordings streamed through the portal, with Range, for playing and downloading."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header, http_date
from django.views.decorators.http import require_http_methods

from . import zerocopy
from .models import Recording
from .providers.errors import AuthenticationFailed, Expired, NotFound, ProviderError, UpstreamTimeout
from .services.playback import playback_audit, recording_filename, safe_content_type, unavailable_message
from .streaming import ByteRange, Opened, ResponseBody, Unsatisfiable, open_recording, parse_range

logger = logging.getLogger(__name__)


@require_http_methods(["GET", "HEAD"])
@login_required
@permission_required("recordings.listen_recording", raise_exception=True)
def recording_audio(request: HttpRequest, pk: int) -> HttpResponse:
    return serve_recording(request, pk, download=False)


@require_http_methods(["GET", "HEAD"])
@login_required
@permission_required("recordings.download_recording", raise_exception=True)
def recording_download(request: HttpRequest, pk: int) -> HttpResponse:
    return serve_recording(request, pk, download=True)


def _error(message: str, status: int) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _etag(recording: Recording) -> str:
    # A recording's media never changes: its identity is a strong validator.
    return f'"rec-{recording.pk}-{recording.account_id}"'


def serve_recording(request: HttpRequest, pk: int, *, download: bool) -> HttpResponse:
    recording = get_object_or_404(Recording.objects.select_related("account", "call"), pk=pk)
    message = unavailable_message(recording)
    if message:
        return _error(message, 409 if recording.status == Recording.Status.PROCESSING else 410)
    byte_range = parse_range(request.headers.get("Range"))
    if_range = request.headers.get("If-Range")
    if byte_range is not None and if_range and if_range.strip() != _etag(recording):
        byte_range = None  # the client's copy is not ours: send the whole body (RFC 9110 13.1.5)
    label = recording.account.get_provider_display()
    try:
        opened = open_recording(recording, byte_range if request.method == "GET" else byte_range or ByteRange(0, 0))
    except Unsatisfiable as exc:
        response = _error("The requested range is not within the recording.", 416)
        response["Content-Range"] = f"bytes */{exc.total if exc.total is not None else '*'}"
        return response
    except (NotFound, Expired):
        return _error(f"This recording is no longer available at {label}.", 410)
    except UpstreamTimeout:
        return _error(f"{label} did not answer, try again.", 504)
    except AuthenticationFailed:
        return _error(f"The portal could not sign in to {label}; an administrator must check the account.", 502)
    except ProviderError as exc:
        logger.warning("Opening recording %s at %s failed: %s", recording.pk, label, exc.kind)
        return _error(f"{label} could not send this recording, try again.", 502)

    if request.method == "HEAD":
        opened.close()
        response = HttpResponse(status=206 if byte_range else 200)
        _headers(response, recording, opened, download=download, head_full=byte_range is None)
        return response
    playback_audit(request=request, recording=recording, download=download, first_byte=opened.first)
    server = zerocopy.server_response(request.META) if settings.AUDIO_KERNEL_RELAY else None
    body = ResponseBody(
        opened, on_error=lambda exc: logger.warning("Stream of %s stopped: %s", recording.pk, exc.kind), server=server
    )
    response = StreamingHttpResponse(body, status=206 if opened.partial else 200)
    _headers(response, recording, opened, download=download)
    return response


def _headers(response, recording: Recording, opened: Opened, *, download: bool, head_full: bool = False) -> None:
    content_type = safe_content_type(opened.content_type or recording.content_type)
    response["Content-Type"] = content_type
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = _etag(recording)
    response["Last-Modified"] = http_date(recording.created_at.timestamp())
    response["Cache-Control"] = "private, no-cache"
    response["Content-Disposition"] = content_disposition_header(download, recording_filename(recording, content_type))
    if head_full:
        if opened.total is not None:
            response["Content-Length"] = str(opened.total)
        return
    if opened.partial:
        response["Content-Range"] = opened.content_range
    if opened.length is not None:
        response["Content-Length"] = str(opened.length)
