"""Kaleyra.io call recording extraction (../shared/providers/002_*.txt and README "Kaleyra")."""

from __future__ import annotations

import requests

from .base import AccountField, MediaStream, Provider, RemoteCall, RemoteRecording
from .errors import Expired, NotFound, ProviderError
from .parsing import normalize_number, parse_clock_duration, parse_direction, parse_report_datetime
from .reports import ReportColumns

# Minutes the signed link stays valid ("VALIDITY ... default validity time is 5 minutes"): enough to
# start playback and to finish an export of one file; a fresh link is asked for every open.
LINK_VALIDITY_MINUTES = 10

# The "report with recording details" (Voice > Reports). Aliases cover header spellings seen in exports.
REPORT_COLUMNS = ReportColumns(
    required={
        "started_at": ("start_time", "start time", "call_time", "date", "starttime", "call start time"),
    },
    optional={
        # Unanswered calls have no recording id; every row needs a call id or a recording id.
        "recording_id": ("recording_id", "recording id", "recordingid", "recording"),
        "call_id": ("call_id", "call id", "callid", "call_uuid", "uuid"),
        "from_number": ("caller", "from", "caller_number", "caller id", "callerid", "source"),
        "to_number": ("called", "to", "called_number", "called number", "destination", "receiver"),
        "duration": ("recording_duration", "recording duration", "duration", "call_duration", "billsec"),
        "direction": ("direction", "call_type", "type"),
        "status": ("status", "call_status"),
        "agent": ("agent", "agent_name", "agent number"),
        "campaign": ("campaign", "campaign_name"),
    },
)


class Kaleyra(Provider):
    name = "kaleyra"
    label = "Kaleyra"
    default_base_url = "https://api.kaleyra.io/v1"
    credential_fields = (AccountField("api_key", "API key", secret=True),)
    option_fields = (
        AccountField("sid", "Account SID", help_text="The SID in the API path, e.g. HXXXXXXX071US."),
        AccountField("time_zone", "Report time zone", required=False, help_text="Of the report's times; UTC if blank."),
    )
    can_import_report = True
    supports_range = True
    report_columns = REPORT_COLUMNS

    def configure_session(self, session: requests.Session) -> None:
        session.headers["api-key"] = self.credential("api_key")

    def parse_report_row(self, row: dict[str, str]) -> RemoteCall:
        values = self.report_columns.extract(row)
        started = parse_report_datetime(values["started_at"], tz=self.options.get("time_zone") or "UTC")
        duration = parse_clock_duration(values.get("duration"))
        recording_id = values.get("recording_id") or ""
        call_id = values.get("call_id") or recording_id
        if not call_id:
            raise ValueError("the row has neither a call id nor a recording id")
        recordings = (
            [RemoteRecording(remote_id=recording_id, duration=duration, started_at=started)] if recording_id else []
        )
        return RemoteCall(
            remote_id=call_id,
            started_at=started,
            duration=duration,
            direction=parse_direction(values.get("direction")),
            from_number=normalize_number(values.get("from_number")),
            to_number=normalize_number(values.get("to_number")),
            agent=values.get("agent") or "",
            campaign=values.get("campaign") or "",
            disposition=values.get("status") or "",
            raw=dict(row),
            recordings=recordings,
        )

    def signed_link(self, recording) -> str:
        response = self.request(
            "POST",
            self.url(f"{self.option('sid')}/voice/recordings"),
            data={"id": recording.remote_id, "validity": LINK_VALIDITY_MINUTES, "download": 0},
        )
        body = response.json()
        link = (body.get("data") or {}).get("link") if isinstance(body.get("data"), dict) else None
        if not link:
            raise self.error_class_for(response.status_code, body.get("message", ""))(
                f"Kaleyra gave no link: {body.get('message', 'no message')}", provider=self.name
            )
        return link

    def error_detail(self, status: int, body: bytes) -> str:
        import json

        try:
            data = json.loads(body)
        except ValueError:
            return super().error_detail(status, body)
        # {"code", "message": "Invalid Id" | "Id Expired", "error": {"id": ...}}
        return str(data.get("message") or "") if isinstance(data, dict) else ""

    def error_class_for(self, status: int, detail: str) -> type[ProviderError]:
        if detail == "Invalid Id":
            return NotFound
        if detail == "Id Expired":
            return Expired
        return super().error_class_for(status, detail)

    def open_media(self, recording, *, byte_range=None) -> MediaStream:
        # A fresh signed link for every open: links are valid for `validity` minutes only (Kaleyra's recordings API,
        # ../shared/providers/002_*.txt, "Resource validity in minutes ... default 5"), so one may lapse before use.
        return self.open_fresh_link(lambda: self.signed_link(recording), byte_range=byte_range)

    def test_connection(self) -> str:
        # There is no read-only endpoint: ask for a link to an id that cannot exist; "Invalid Id" proves the
        # key and SID are accepted, 401/403 that they are not.
        try:
            self.request("POST", self.url(f"{self.option('sid')}/voice/recordings"), data={"id": "connection-test"})
        except NotFound:
            return f"Connected to Kaleyra: the API key is accepted for SID {self.option('sid')}."
        return f"Connected to Kaleyra: SID {self.option('sid')} answers."
