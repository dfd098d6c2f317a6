"""Envoy (tryenvoy.ai) API v1: calls in pages, and a fresh time-limited playback URL per recording request."""

from __future__ import annotations

import functools
import math
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.data import Call
from sandbox.providers.base import LinkSigner, Provider, SignedLinks, s3_error
from sandbox.server import HttpError, Request, Response, iso, json_response, serve_media

TOKEN = "envoy_sk_sandbox_2f8e6c4a1b9d7e5f"
ORGANIZATION_ID = "8d3c1a52-6f0e-4b7a-9c2d-5e4f3a2b1c0d"
CALL_STATUSES = ("COMPLETED", "NO_ANSWER", "FAILED", "BUSY")
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100  # README: page_size max 100; the default is a [guess]
CONTENT_TYPE = "audio/mp4"  # 001: content_type "audio/mp4 or video/mp4"


class Envoy(SignedLinks, Provider):
    name = "envoy"
    prefix = "/envoy"

    def __init__(self, state: Any) -> None:
        self.signer = LinkSigner(f"envoy/{state.dataset.seed}")
        super().__init__(state)
        self._newest_first = sorted(self.data.calls, key=lambda c: (c.start, c.id), reverse=True)

    def routes(self):
        return [
            (("GET",), r"/api/v1/calls", self.list_calls),
            (("GET",), r"/api/v1/calls/(?P<call>[^/]+)", self.get_call),
            (("GET",), r"/api/v1/calls/(?P<call>[^/]+)/recording", self.get_recording),
            (("GET",), r"/_media/(?P<id>[0-9a-f-]{36})\.mp4", self.media),
        ]

    # --- errors: FastAPI-style {"detail": ...}; 422 carries the list of validation errors ---

    def error(self, req: Request, status: int, message: str, **extra: Any) -> HttpError:
        if req.path.startswith(f"{self.prefix}/_media/"):
            codes = {403: "AccessDenied", 404: "NoSuchKey", 429: "SlowDown", 503: "SlowDown"}
            return HttpError(s3_error(status, codes.get(status, "InternalError"), message))
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        return HttpError(json_response(status, {"detail": message, **extra}, headers))

    def _invalid(self, errors: list[dict[str, Any]]) -> HttpError:
        return HttpError(json_response(422, {"detail": errors}))

    def _auth(self, req: Request) -> None:
        header = req.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if not header or scheme.lower() != "bearer":
            raise self.error(req, 401, "Not authenticated")
        if token.strip() != TOKEN:
            raise self.error(req, 401, "Invalid authentication credentials")
        org = req.headers.get("X-Organization-ID")
        if org is not None and org.strip() and org.strip() != ORGANIZATION_ID:  # optional header per 001
            raise self.error(req, 403, f"Not a member of organization {org.strip()}")

    def _call(self, req: Request, raw: str) -> Call:
        # 001 documents call_id with format "uuid" while ids are "call_<uuid>": both spellings are accepted
        bare = raw.removeprefix("call_")
        try:
            uuid.UUID(bare)
        except ValueError:
            raise self._invalid(
                [
                    {
                        "type": "uuid_parsing",
                        "loc": ["path", "call_id"],
                        "input": raw,
                        "msg": "Input should be a valid UUID, invalid character or length",
                    }
                ]
            ) from None
        call = self.data.call_by_id.get(f"call_{bare.lower()}")
        if call is None:
            raise self.error(req, 404, "Call not found")
        return call

    def call_json(self, call: Call) -> dict[str, Any]:
        return {
            "id": call.id,
            "status": call.status,
            "call_direction": call.extra["call_direction"],
            "from_number": call.from_number,
            "to_number": call.to_number,
            "phone_number": call.extra["phone_number"],
            "call_start_time": iso(call.start, "auto"),
            "call_end_time": iso(call.end, "auto"),
            "call_type": call.extra["call_type"],
            "recording_status": "AVAILABLE" if call.recordings else "NONE",
            "created_at": iso(call.extra["created_at"], "auto"),
            "updated_at": iso(call.extra["updated_at"], "auto"),
        }

    # --- handlers ---

    def list_calls(self, req: Request, m) -> Response:
        """GET /calls?status&start_date&end_date&page&page_size, newest first."""
        self._auth(req)
        errors: list[dict[str, Any]] = []
        page = self._int(req, "page", 1, errors, ge=1)
        size = self._int(req, "page_size", DEFAULT_PAGE_SIZE, errors, ge=1, le=MAX_PAGE_SIZE)
        status = req.arg("status")
        if status and status not in CALL_STATUSES:
            errors.append(
                {
                    "type": "enum",
                    "loc": ["query", "status"],
                    "input": status,
                    "msg": "Input should be " + ", ".join(f"'{s}'" for s in CALL_STATUSES),
                    "ctx": {"expected": ", ".join(f"'{s}'" for s in CALL_STATUSES)},
                }
            )
        start = self._moment(req, "start_date", errors, end_of_day=False)
        end = self._moment(req, "end_date", errors, end_of_day=True)
        if errors:
            raise self._invalid(errors)
        calls = self._filtered(status, start, end)
        total = len(calls)
        pages = math.ceil(total / size)
        return json_response(
            200,
            {
                "data": [self.call_json(c) for c in calls[(page - 1) * size : page * size]],
                "pagination": {
                    "page": page,
                    "page_size": size,
                    "total_count": total,
                    "total_pages": pages,
                    "has_next": page < pages,
                    "has_prev": page > 1,
                },
            },
        )

    @functools.lru_cache(maxsize=32)  # noqa: B019 - the provider lives as long as the server; pages reuse it
    def _filtered(self, status: str | None, start: datetime | None, end: datetime | None) -> tuple[Call, ...]:
        return tuple(
            c
            for c in self._newest_first
            if (not status or c.status == status)
            and (start is None or c.start >= start)
            and (end is None or c.start < end)
        )

    def get_call(self, req: Request, m) -> Response:
        self._auth(req)
        return json_response(200, self.call_json(self._call(req, m["call"])))

    def get_recording(self, req: Request, m) -> Response:
        """001: "Get a time-limited playback URL for a call recording": a fresh URL with expires_at each time."""
        self._auth(req)
        call = self._call(req, m["call"])
        if not call.recordings:
            raise self.error(req, 404, "Recording not found")
        rec = call.recordings[0]
        media = self.state.media_for(rec.audio, CONTENT_TYPE)
        expires = int(self.state.now() + self.state.config.link_ttl)
        url = (
            f"{req.base}{self.prefix}/_media/{rec.id}.mp4?expires={expires}&sig={self.signer.sign(rec.id, expires, 0)}"
        )
        return json_response(
            200,
            {
                "call_id": call.id,
                "url": url,
                "content_type": CONTENT_TYPE,
                "expires_at": iso(datetime.fromtimestamp(expires, UTC)),
                "recording_status": "AVAILABLE",
                "duration_seconds": rec.duration,
                "file_size_bytes": media.size,
                "recording_start_time": iso(rec.start, "auto"),
            },
        )

    def media(self, req: Request, m) -> Response:
        """The playback URL: an object-store link with Range; refused with 403 once expired."""
        expires, sig = req.arg("expires") or "", req.arg("sig") or ""
        if not expires.isdigit() or not sig:
            raise self.error(req, 403, "Query-string authentication requires the expires and sig parameters")
        verdict = self.signer.check(m["id"], int(expires), 0, sig, self.state.now())
        if verdict == "ok" and self.take_fault("expire_links", req):
            verdict = "expired"
        if verdict == "bad":
            raise HttpError(
                s3_error(
                    403,
                    "SignatureDoesNotMatch",
                    "The request signature we calculated does not match the signature you provided.",
                )
            )
        if verdict == "expired":
            raise HttpError(
                s3_error(
                    403,
                    "AccessDenied",
                    "Request has expired",
                    Expires=iso(datetime.fromtimestamp(int(expires), UTC)),
                    ServerTime=iso(self.state.utcnow()),
                )
            )
        rec = self.data.recording_by_id.get(m["id"])
        if rec is None:
            raise HttpError(s3_error(404, "NoSuchKey", "The specified key does not exist."))
        media = self.state.media_for(rec.audio, CONTENT_TYPE)
        return serve_media(
            req,
            media,
            ranges=True,
            unsatisfiable=lambda: s3_error(416, "InvalidRange", "The requested range is not satisfiable"),
        )

    # --- FastAPI-like query validation ---

    @staticmethod
    def _int(req: Request, name: str, default: int, errors: list, ge: int, le: int | None = None) -> int:
        raw = req.arg(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            errors.append(
                {
                    "type": "int_parsing",
                    "loc": ["query", name],
                    "input": raw,
                    "msg": "Input should be a valid integer, unable to parse string as an integer",
                }
            )
            return default
        if value < ge:
            errors.append(
                {
                    "type": "greater_than_equal",
                    "loc": ["query", name],
                    "input": raw,
                    "msg": f"Input should be greater than or equal to {ge}",
                    "ctx": {"ge": ge},
                }
            )
        elif le is not None and value > le:
            errors.append(
                {
                    "type": "less_than_equal",
                    "loc": ["query", name],
                    "input": raw,
                    "msg": f"Input should be less than or equal to {le}",
                    "ctx": {"le": le},
                }
            )
        return value

    @staticmethod
    def _moment(req: Request, name: str, errors: list, end_of_day: bool) -> datetime | None:
        """A date (whole day, end_date inclusive) or a date-time; [guess] both filter on call_start_time."""
        raw = req.arg(name)
        if not raw:
            return None
        try:
            if len(raw) == 10:
                day = date.fromisoformat(raw)
                moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
                return moment + timedelta(days=1) if end_of_day else moment
            moment = datetime.fromisoformat(raw.replace(" ", "+") if "T" in raw else raw)
        except ValueError:
            errors.append(
                {
                    "type": "datetime_from_date_parsing",
                    "loc": ["query", name],
                    "input": raw,
                    "msg": "Input should be a valid datetime or date",
                }
            )
            return None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return moment + timedelta(microseconds=1) if end_of_day else moment

    def index_entry(self, base: str) -> dict[str, Any]:
        return {
            "base_url": f"{base}{self.prefix}/api/v1",
            "credentials": {"token": TOKEN},
            "options": {"organization_id": ORGANIZATION_ID},
            "seeded": self.data.seeded,
            "link_ttl_seconds": self.state.config.link_ttl,
            "page_size": {"default": DEFAULT_PAGE_SIZE, "max": MAX_PAGE_SIZE},
        }
