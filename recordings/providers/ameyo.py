"""Ameyo (Exotel contact centre) voice log download (../shared/providers/003_*.txt and README "Ameyo")."""

from __future__ import annotations

import json
import threading

import requests

from .base import AccountField, MediaStream, Provider, RemoteCall, RemoteRecording
from .errors import AuthenticationFailed, UpstreamError
from .parsing import normalize_number, parse_clock_duration, parse_direction, parse_report_datetime
from .reports import ReportColumns

# The call report (README: "columns seen in the field").
REPORT_COLUMNS = ReportColumns(
    required={
        "crt_object_id": ("crt_object_id", "crtobjectid", "crt object id"),
        "call_id": ("call_id", "callid", "call id"),
        "started_at": ("call_time", "call time", "start_time", "date_time", "calltime"),
    },
    optional={
        "campaign_id": ("campaign_id", "campaignid", "campaign id"),
        "campaign": ("campaign", "campaign_name"),
        "agent": ("agent", "agent_id", "agent_name", "user_id"),
        "disposition": ("disposition", "disposition_code", "system_disposition"),
        "duration": ("talk_time", "talktime", "duration", "call_duration"),
        "phone": ("phone", "phone_number", "customer_number", "dialed_number"),
        # e.g. inbound.call.dial, outbound.manual.dial
        "direction": ("direction", "call_type", "type"),
    },
)

# Ameyo's sessions live on the server until they expire; keep one per account and log in again on 401.
_session_ids: dict[int, str] = {}
_session_lock = threading.Lock()


class Ameyo(Provider):
    name = "ameyo"
    label = "Ameyo"
    # On-premises deployments are common: there is no single public host, base_url is set per account.
    default_base_url = ""
    credential_fields = (
        AccountField("username", "User ID"),
        AccountField("password", "Password / token", secret=True),
    )
    option_fields = (
        AccountField("campaign_id", "Default campaign ID", required=False, help_text="When the report has none."),
        AccountField("target_format", "Audio format", required=False, help_text="mp3 (default) or wav."),
        AccountField("time_zone", "Report time zone", required=False, help_text="Of the report's times; UTC if blank."),
    )
    can_import_report = True
    report_columns = REPORT_COLUMNS

    # Session ----------------------------------------------------------------------------------------------

    def login(self) -> str:
        response = self.request(
            "POST",
            self.url("ameyorestapi/session/userLogin"),
            json={
                "userId": self.credential("username"),
                "token": self.credential("password"),
                "forceLogin": True,
                "terminalInfo": "recording-portal",
            },
        )
        session_id = (response.json() or {}).get("sessionId")
        if not session_id:
            raise AuthenticationFailed("Ameyo accepted the login but gave no session id.", provider=self.name)
        with _session_lock:
            _session_ids[self.account.pk] = session_id
        return session_id

    def session_id(self) -> str:
        with _session_lock:
            session_id = _session_ids.get(self.account.pk)
        return session_id or self.login()

    def with_session(self, method: str, url: str, **kwargs) -> requests.Response:
        """Send with the account's Sessionid; on 401 log in again once (sessions expire)."""
        for attempt in (1, 2):
            headers = {**kwargs.pop("headers", {}), "Sessionid": self.session_id()}
            try:
                return self.request(method, url, headers=headers, **kwargs)
            except AuthenticationFailed:
                with _session_lock:
                    _session_ids.pop(self.account.pk, None)
                if attempt == 2:
                    raise
                kwargs["headers"] = {k: v for k, v in headers.items() if k != "Sessionid"}
        raise AssertionError("unreachable")  # pragma: no cover

    # Reports and media ------------------------------------------------------------------------------------

    def parse_report_row(self, row: dict[str, str]) -> RemoteCall:
        values = self.report_columns.extract(row)
        started = parse_report_datetime(values["started_at"], tz=self.options.get("time_zone") or "UTC")
        duration = parse_clock_duration(values.get("duration"))
        campaign_id = values.get("campaign_id") or self.options.get("campaign_id") or ""
        if not campaign_id:
            raise ValueError("campaign id is empty and the account has no default campaign id")
        if not campaign_id.isdigit():
            raise ValueError(f"campaign id {campaign_id!r} is not a number")
        fmt = (self.options.get("target_format") or "mp3").lower()
        recordings = []
        # An unanswered call (no talk time) has a crtObjectId but no voice log to download.
        if duration is None or duration > 0:
            recordings.append(
                RemoteRecording(
                    remote_id=values["crt_object_id"],
                    format=fmt,
                    content_type="audio/mpeg" if fmt == "mp3" else "audio/wav",
                    duration=duration,
                    started_at=started,
                    locator={"campaign_id": campaign_id, "call_id": values["call_id"]},
                )
            )
        return RemoteCall(
            remote_id=values["call_id"],
            started_at=started,
            duration=duration,
            direction=parse_direction(values.get("direction")),
            from_number=normalize_number(values.get("phone")),
            agent=values.get("agent") or "",
            campaign=values.get("campaign") or campaign_id,
            disposition=values.get("disposition") or "",
            raw=dict(row),
            recordings=recordings,
        )

    def open_media(self, recording, *, byte_range=None) -> MediaStream:
        # downloadVoiceLog streams the raw file; it does not honour Range (the media cache gives seeking).
        params = {
            "campaignId": recording.locator.get("campaign_id") or self.option("campaign_id"),
            "crtObjectId": recording.remote_id,
            "targetFormat": (self.options.get("target_format") or "mp3").lower(),
            "filters": json.dumps({"callId": recording.locator.get("call_id") or recording.call.remote_id}),
        }
        response = self.with_session("GET", self.url("ameyorestapi/cc/downloadVoiceLog"), params=params, stream=True)
        if response.headers.get("Content-Type", "").startswith(("application/json", "text/")):
            response.close()
            raise UpstreamError("Ameyo answered with a message instead of audio.", provider=self.name)
        return self.stream_from(response)

    def test_connection(self) -> str:
        with _session_lock:
            _session_ids.pop(self.account.pk, None)
        self.login()
        return "Connected to Ameyo: logged in and got a session."
