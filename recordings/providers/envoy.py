"""Envoy calls API (../shared/providers/001_*.txt and README "Envoy")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import requests

from .base import AccountField, MediaStream, Provider, RemoteCall, RemoteRecording
from .parsing import normalize_number, parse_timestamp, seconds_between

# README: page_size max 100.
PAGE_SIZE = 100
DIRECTIONS = {"INBOUND": "inbound", "OUTBOUND": "outbound"}


class Envoy(Provider):
    name = "envoy"
    label = "Envoy"
    default_base_url = "https://tryenvoy.ai/api/v1"
    credential_fields = (AccountField("token", "API token", secret=True),)
    option_fields = (
        AccountField(
            "organization_id", "Organization ID", required=False, help_text="Sent as X-Organization-ID when set."
        ),
    )
    can_sync = True
    supports_range = True

    def configure_session(self, session: requests.Session) -> None:
        session.headers["Authorization"] = f"Bearer {self.credential('token')}"
        if self.options.get("organization_id"):
            session.headers["X-Organization-ID"] = self.options["organization_id"]

    def iter_calls(self, *, since: datetime | None, until: datetime) -> Iterator[RemoteCall]:
        page = 1
        while True:
            params: dict[str, object] = {"page": page, "page_size": PAGE_SIZE, "end_date": until.date().isoformat()}
            if since is not None:
                params["start_date"] = since.date().isoformat()
            body = self.request("GET", self.url("calls"), params=params).json()
            for item in body.get("data") or []:
                yield self.parse_call(item)
            if not (body.get("pagination") or {}).get("has_next"):
                return
            page += 1

    def parse_call(self, item: dict) -> RemoteCall:
        started = parse_timestamp(item.get("call_start_time")) or parse_timestamp(item.get("created_at"))
        ended = parse_timestamp(item.get("call_end_time"))
        recording_status = (item.get("recording_status") or "").upper()
        recordings = []
        if recording_status and recording_status not in ("NONE", "NULL"):
            # One recording per call, fetched through /calls/{id}/recording: its id is the call's.
            recordings.append(
                RemoteRecording(
                    remote_id=item["id"],
                    status="available" if recording_status == "AVAILABLE" else _recording_status(recording_status),
                    content_type="audio/mp4",
                    format="m4a",
                    duration=seconds_between(started, ended),
                    started_at=started,
                    locator={"call_id": item["id"]},
                )
            )
        return RemoteCall(
            remote_id=item["id"],
            started_at=started,
            ended_at=ended,
            duration=seconds_between(started, ended),
            direction=DIRECTIONS.get(item.get("call_direction") or "", "unknown"),
            from_number=normalize_number(item.get("from_number")),
            to_number=normalize_number(item.get("to_number") or item.get("phone_number")),
            disposition=str(item.get("status") or ""),
            raw=item,
            recordings=recordings,
        )

    def open_media(self, recording, *, byte_range=None) -> MediaStream:
        # "Get a time-limited playback URL" (Envoy's API reference, ../shared/providers/001_*.txt: `expires_at`, "When
        # the playback URL expires"): ask for a fresh one for every play, never store it.
        path = f"calls/{recording.locator.get('call_id', recording.remote_id)}/recording"
        return self.open_fresh_link(lambda: self.request("GET", self.url(path)).json()["url"], byte_range=byte_range)

    def test_connection(self) -> str:
        body = self.request("GET", self.url("calls"), params={"page": 1, "page_size": 1}).json()
        total = (body.get("pagination") or {}).get("total_count")
        return f"Connected to Envoy: {total if total is not None else 'some'} call(s) visible."


def _recording_status(value: str) -> str:
    if value in ("PROCESSING", "PENDING", "IN_PROGRESS"):
        return "processing"
    if value in ("DELETED",):
        return "deleted"
    if value in ("EXPIRED",):
        return "expired"
    return "error"
