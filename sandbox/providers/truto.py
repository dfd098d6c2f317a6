"""Truto unified voice API (over a Vonage integration): calls, recordings (cursor pages) and the stream download."""

from __future__ import annotations

import base64
import json
import math
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from sandbox.data import Call, Recording
from sandbox.providers.base import Provider, reason
from sandbox.server import HttpError, Request, Response, iso, json_response, serve_media

TOKEN = "truto-sandbox-token-5d0c2f7a9b1e4c3d"
INTEGRATED_ACCOUNT_ID = "62f44730-dd91-461e-bd6a-aedd9e0ad79d"  # the example id in 000's query parameters
DEFAULT_LIMIT, MAX_LIMIT = 100, 500  # [guess] Truto's page size defaults
RATE_LIMIT, RATE_WINDOW = 600, 60  # [guess] values for the documented ratelimit-* headers
RESPONSE_FORMATS = ("unified", "raw", "normalized", "stream")  # 000 truto_response_format


def _vonage_number(number: str) -> dict[str, str]:
    return {"type": "phone", "number": number.lstrip("+")}  # Vonage writes numbers without the '+'


class Truto(Provider):
    name = "truto"
    prefix = "/truto"

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._rate_lock = threading.Lock()
        self._window_start = 0.0
        self._window_count = 0

    def routes(self):
        return [
            (("GET",), r"/unified/voice/calls", self.list_calls),
            (("GET",), r"/unified/voice/recordings", self.list_recordings),
            (("POST",), r"/unified/voice/recordings/download", self.download),
            (("GET",), r"/_remote/(?P<rec>[0-9a-f-]+)\.mp3", self.remote_file),
        ]

    # --- errors: {statusCode, error, message}; remote failures add truto_is_remote_error and raw_response ---

    def error(self, req: Request, status: int, message: str, **extra: Any) -> HttpError:
        body = {"statusCode": status, "error": reason(status), "message": message, **extra}
        return HttpError(json_response(status, body))

    def route(self, req: Request) -> Response:
        try:
            response = super().route(req)
        except HttpError as exc:
            response = exc.response
        response.headers.update(self._rate_headers())
        return response

    def fault_response(self, req: Request, fault: Any) -> Response:
        response = super().fault_response(req, fault)
        response.headers.update(self._rate_headers(exhausted=fault.params["status"] == 429))
        return response

    def _rate_headers(self, exhausted: bool = False) -> dict[str, str]:
        """README: rate-limit headers ratelimit-limit, ratelimit-remaining, ratelimit-reset (counted, not enforced)."""
        now = self.state.now()
        with self._rate_lock:
            if now - self._window_start >= RATE_WINDOW:
                self._window_start, self._window_count = now, 0
            self._window_count += 1
            remaining = 0 if exhausted else max(0, RATE_LIMIT - self._window_count)
            reset = math.ceil(self._window_start + RATE_WINDOW - now)
        return {
            "ratelimit-limit": str(RATE_LIMIT),
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": str(reset),
        }

    def _auth(self, req: Request) -> None:
        header = req.headers.get("Authorization") or ""
        if not header:
            raise self.error(req, 401, "Missing Authorization header")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != TOKEN:
            raise self.error(req, 401, "Invalid API token")
        account = req.arg("integrated_account_id")
        if not account:
            raise self.error(req, 400, "integrated_account_id is required")
        try:
            uuid.UUID(account)
        except ValueError:
            raise self.error(req, 400, "integrated_account_id must be a UUID") from None
        if account != INTEGRATED_ACCOUNT_ID:
            raise self.error(req, 404, f"Integrated account {account} not found")

    # --- unified models ---

    def _remote_url(self, base: str, rec: Recording) -> str:
        return f"{base}{self.prefix}/_remote/{rec.id}.mp3"

    def call_json(self, call: Call) -> dict[str, Any]:
        seconds = round((call.end - call.start).total_seconds()) if call.recordings else 0
        return {
            "id": call.id,
            "from": call.from_number,
            "to": call.to_number,
            "status": call.status,
            "direction": call.direction,
            "created_at": iso(call.start, "milliseconds"),
            "remote_data": {
                "uuid": call.id,
                "conversation_uuid": call.extra["conversation_uuid"],
                "to": _vonage_number(call.to_number),
                "from": _vonage_number(call.from_number),
                "status": call.status,
                "direction": call.direction,
                "rate": "0.01200000",
                "price": f"{0.012 * seconds / 60:.8f}",
                "duration": str(seconds),
                "start_time": iso(call.start),
                "end_time": iso(call.end),
                "network": call.extra["network"],
            },
        }

    def recording_json(self, base: str, rec: Recording) -> dict[str, Any]:
        url = self._remote_url(base, rec)
        return {
            "id": rec.id,
            "call_id": rec.call_id,
            "created_at": iso(rec.end, "milliseconds"),
            "start_time": iso(rec.start, "milliseconds"),
            "end_time": iso(rec.end, "milliseconds"),
            "url": url,
            "remote_data": {
                "recording_uuid": rec.id,
                "recording_url": url,
                "conversation_uuid": rec.extra["conversation_uuid"],
                "start_time": iso(rec.start),
                "end_time": iso(rec.end),
                "format": "mp3",
            },
        }

    # --- handlers ---

    def _page(self, req: Request, kind: str, items: Sequence[Any]) -> tuple[Sequence[Any], str | None]:
        """Cursor pages: `limit` and an opaque `next_cursor` (null on the last page)."""
        raw_limit = req.arg("limit") or str(DEFAULT_LIMIT)
        if not raw_limit.isdigit() or int(raw_limit) < 1:
            raise self.error(req, 400, "limit must be a positive integer")
        limit = min(int(raw_limit), MAX_LIMIT)
        offset = 0
        cursor = req.arg("next_cursor")
        if cursor:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
                if decoded["k"] != kind:
                    raise ValueError
                offset = int(decoded["o"])
            except (ValueError, KeyError, TypeError):
                raise self.error(req, 400, "Invalid next_cursor") from None
        page = items[offset : offset + limit]
        following = offset + limit
        if following >= len(items):
            return page, None
        token = base64.urlsafe_b64encode(json.dumps({"k": kind, "o": following}).encode()).decode().rstrip("=")
        return page, token

    def list_calls(self, req: Request, m) -> Response:
        self._auth(req)
        page, cursor = self._page(req, "calls", self.data.calls)
        return json_response(200, {"result": [self.call_json(c) for c in page], "next_cursor": cursor})

    def list_recordings(self, req: Request, m) -> Response:
        self._auth(req)
        recs: Sequence[Recording] = self.data.recordings
        if req.arg("call_id"):  # [guess] a filter by call
            recs = [r for r in recs if r.call_id == req.arg("call_id")]
        page, cursor = self._page(req, "recordings", recs)
        return json_response(200, {"result": [self.recording_json(req.base, r) for r in page], "next_cursor": cursor})

    def download(self, req: Request, m) -> Response:
        """POST /recordings/download {url, remote_data}; truto_response_format=stream answers the audio bytes."""
        self._auth(req)
        response_format = req.arg("truto_response_format") or "unified"
        if response_format not in RESPONSE_FORMATS:
            raise self.error(req, 400, f"truto_response_format must be one of {', '.join(RESPONSE_FORMATS)}")
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            raise self.error(req, 400, "Request body must be JSON") from None
        url = body.get("url") if isinstance(body, dict) else None
        if not url or not isinstance(url, str):
            raise self.error(req, 400, '"url" is required')
        rec_id = url.rsplit("/", 1)[-1].removesuffix(".mp3")
        rec = self.data.recording_by_id.get(rec_id)
        if rec is None or f"{self.prefix}/_remote/" not in url:
            raise self.error(
                req,
                404,
                "The remote API responded with 404",
                truto_is_remote_error=True,
                raw_response={
                    "type": "https://developer.nexmo.com/api-errors#not-found",
                    "title": "Not Found",
                    "detail": f"File {rec_id} not found",
                },
            )
        if response_format == "stream":
            # a streamed download: the whole file every time, Range ignored; the remote Content-Type passes through
            media = self.state.media_for(rec.audio, "audio/mpeg")
            return serve_media(req, media, ranges=False, validators=False)
        if response_format == "raw":
            return json_response(200, self.recording_json(req.base, rec)["remote_data"])
        return json_response(200, self.recording_json(req.base, rec))

    def remote_file(self, req: Request, m) -> Response:
        """The recording `url` itself: the remote (Vonage) wants its own JWT, so a direct fetch is refused."""
        return json_response(
            401,
            {
                "type": "https://developer.nexmo.com/api-errors#unauthorized",
                "title": "Unauthorized",
                "detail": "You did not provide correct credentials.",
                "instance": str(uuid.uuid4()),
            },
        )

    def index_entry(self, base: str) -> dict[str, Any]:
        return {
            "base_url": f"{base}{self.prefix}/unified/voice",
            "credentials": {"token": TOKEN},
            "options": {"integrated_account_id": INTEGRATED_ACCOUNT_ID},
            "seeded": self.data.seeded,
            "page_size": {"default": DEFAULT_LIMIT, "max": MAX_LIMIT},
        }
