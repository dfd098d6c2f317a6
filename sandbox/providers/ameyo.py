"""Ameyo (Exotel contact centre) REST API: userLogin sessions and downloadVoiceLog; the call report CSV."""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sandbox.audio import AudioSpec
from sandbox.data import IST, Call
from sandbox.providers.base import Provider
from sandbox.server import HttpError, Request, Response, iso, json_response, serve_media

USER_ID = "supervisor@sandbox"
PASSWORD = "sandbox-ameyo-pass"
DEFAULT_CAMPAIGN = "110"
CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav"}  # 003: "check the Content-Type (e.g. audio/mpeg)"
REPORT_PATH = "/_reports/ameyo.csv"
REPORT_COLUMNS = (
    "crt_object_id",
    "call_id",
    "call_time",
    "campaign",
    "campaign_id",
    "call_type",
    "agent",
    "disposition",
    "talk_time",
    "phone",
)
# 003's curl example sends filters={callId%d741-6904fad1-vcall-10989826} as is (an HTTP library may encode the braces)
_LITERAL_FILTER = re.compile(r"(?:\{|%7[bB])callId%([0-9A-Za-z_.-]+)(?:\}|%7[dD])")


class Ameyo(Provider):
    name = "ameyo"
    prefix = "/ameyo"
    report_path = REPORT_PATH
    report_filename = "ameyo-call-report.csv"
    report_columns = REPORT_COLUMNS

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self._by_crt: dict[str, Call] = {c.extra["crt_object_id"]: c for c in self.data.calls}

    def reset(self) -> None:
        self.sessions: dict[str, float] = {}  # session id -> expiry (sandbox clock)

    def expire(self, kind: str) -> int:
        if kind != "expire_sessions":
            return 0
        with self.state.lock:
            count = len(self.sessions)
            self.sessions.clear()
        return count

    def routes(self):
        return [
            (("POST",), r"/ameyorestapi/session/userLogin", self.login),
            (("GET",), r"/ameyorestapi/cc/downloadVoiceLog", self.download_voice_log),
        ]

    def error(self, req: Request, status: int, message: str, **extra: Any) -> HttpError:
        # [guess] an on-premises Java server: a small JSON body; 003 only names the status codes
        return HttpError(json_response(status, {"status": "FAILURE", "code": status, "message": message, **extra}))

    # --- handlers ---

    def login(self, req: Request, m) -> Response:
        """POST /ameyorestapi/session/userLogin {userId, token, forceLogin, terminalInfo} -> {sessionId, ...}."""
        try:
            body = json.loads(req.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise self.error(req, 400, "Request body must be JSON") from None
        if not isinstance(body, dict) or not body.get("userId") or not body.get("token"):
            raise self.error(req, 400, "userId and token are required")
        if (body["userId"], body["token"]) != (USER_ID, PASSWORD):
            raise self.error(req, 401, "Authentication failed: invalid userId or token")
        # ids look like d898-690087a3-ses-doc_admin-IYsFDHJigg...-1373 (developer.exotel.com login example)
        alphabet = string.ascii_letters + string.digits
        session_id = (
            f"d741-6904fad1-ses-{body['userId']}-{''.join(secrets.choice(alphabet) for _ in range(64))}"
            f"-{secrets.randbelow(90000) + 10000}"
        )
        now = self.state.now()
        with self.state.lock:
            self.sessions = {k: v for k, v in self.sessions.items() if v > now}
            self.sessions[session_id] = now + self.state.config.session_ttl
        return json_response(
            200,
            {
                "userId": body["userId"],
                "terminalInfo": str(body.get("terminalInfo") or "0.0.0.0"),  # noqa: S104 - as in the login example
                "sessionId": session_id,
                "loginTime": iso(datetime.fromtimestamp(now, UTC), "milliseconds"),
                "sessionTimeoutSeconds": int(self.state.config.session_ttl),
            },
        )

    def _session(self, req: Request) -> None:
        """003: 401 "when the provided Sessionid is missing, expired, or invalid"."""
        session_id = (req.headers.get("Sessionid") or "").strip()
        if not session_id:
            raise self.error(req, 401, "Sessionid header is missing")
        with self.state.lock:
            expiry = self.sessions.get(session_id)
            if expiry is not None and (expiry <= self.state.now() or self.take_fault("expire_sessions", req)):
                del self.sessions[session_id]
                expiry = None
        if expiry is None:
            raise self.error(req, 401, "Session is invalid or has expired; log in again")

    def download_voice_log(self, req: Request, m) -> Response:
        """GET /ameyorestapi/cc/downloadVoiceLog?campaignId&crtObjectId&targetFormat&filters: the raw audio."""
        self._session(req)
        campaign, crt, target = req.arg("campaignId"), req.arg("crtObjectId"), (req.arg("targetFormat") or "")
        for name, value in (("campaignId", campaign), ("crtObjectId", crt), ("targetFormat", target)):
            if not value:
                raise self.error(req, 400, f"{name} is required")
        if not campaign.isdigit():
            raise self.error(req, 400, "campaignId must be an integer")
        if target.lower() not in CONTENT_TYPES:
            raise self.error(req, 400, f"targetFormat {target!r} is not supported (mp3, wav)")
        call_id = self._filter_call_id(req)
        call = self._by_crt.get(crt)
        # 003: 404 "if the file identified by the combination of crtObjectId and campaignId cannot be located"
        if call is None or call.extra["campaign_id"] != campaign or not call.recordings:
            raise self.error(req, 404, f"Voice log not found for crtObjectId {crt} in campaign {campaign}")
        # case-insensitive: an HTTP library re-encoding the literal "%d741..." form may upper-case it to "%D741..."
        if call_id.lower() != call.id.lower():
            raise self.error(req, 404, f"Voice log not found: filters callId {call_id} does not match {crt}")
        fmt = target.lower()
        spec: AudioSpec = call.recordings[0].audio.with_format(fmt)
        media = self.state.media_for(spec, CONTENT_TYPES[fmt])
        # 003: "streams the raw audio file data": the whole file, Range ignored
        return serve_media(
            req,
            media,
            ranges=False,
            validators=False,
            headers={"Content-Disposition": f'attachment; filename="{crt}.{fmt}"'},
        )

    def _filter_call_id(self, req: Request) -> str:
        """`filters` is a URL-encoded JSON object {"callId": ...}; 003's literal {callId%...} form is accepted too."""
        literal = _LITERAL_FILTER.search(req.raw_query)  # read before percent-decoding mangles "%d7..."
        if literal:
            return literal.group(1)
        raw = req.arg("filters")
        if not raw:
            raise self.error(req, 400, 'filters is required, e.g. {"callId":"..."}')
        literal = _LITERAL_FILTER.fullmatch(raw)  # the same literal form, properly percent-encoded
        if literal:
            return literal.group(1)
        try:
            value = json.loads(raw)
            call_id = value.get("callId") if isinstance(value, dict) else None
        except ValueError:
            call_id = None
        if not call_id:
            raise self.error(req, 400, "filters must be a JSON object with callId")
        return str(call_id)

    # --- the call report (a sandbox convenience: Ameyo has no public call-history API) ---

    def report_rows(self) -> Iterable[list[Any]]:
        for call in self.data.calls:
            talk = round(call.recordings[0].duration) if call.recordings else 0
            yield [
                call.extra["crt_object_id"],
                call.id,
                (call.start.astimezone(UTC) + IST).strftime("%d/%m/%Y %H:%M:%S"),  # e.g. 03/10/2026 14:05:22 (IST)
                self.data.extra["campaigns"][call.extra["campaign_id"]],
                call.extra["campaign_id"],
                call.extra["call_type"],
                call.agent,
                call.status,
                f"{talk // 3600:02d}:{talk % 3600 // 60:02d}:{talk % 60:02d}",
                call.extra["phone"],
            ]

    def index_entry(self, base: str) -> dict[str, Any]:
        return {
            "base_url": f"{base}{self.prefix}",
            "credentials": {"username": USER_ID, "password": PASSWORD},
            "options": {"campaign_id": DEFAULT_CAMPAIGN},
            "seeded": self.data.seeded,
            "campaigns": self.data.extra["campaigns"],
            "session_ttl_seconds": self.state.config.session_ttl,
            "report_url": f"{base}{REPORT_PATH}",
            "report_timezone": "Asia/Kolkata",
        }
