"""Truto unified voice API (../shared/providers/000_*.txt and README "Truto")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import requests

from .base import AccountField, MediaStream, Provider, RemoteCall, RemoteRecording
from .parsing import normalize_number, parse_timestamp, seconds_between

PAGE_SIZE = 100


def _number(value) -> str:
    # Unified models carry numbers as strings; some integrations nest them ({"number": ...}).
    if isinstance(value, dict):
        value = value.get("number") or value.get("phone_number") or ""
    return normalize_number(value if isinstance(value, str) else "")


class Truto(Provider):
    name = "truto"
    label = "Truto"
    default_base_url = "https://api.truto.one/unified/voice"
    credential_fields = (AccountField("token", "API token", secret=True),)
    option_fields = (
        AccountField("integrated_account_id", "Integrated account ID", help_text="The integrated account's UUID."),
    )
    can_sync = True

    def configure_session(self, session: requests.Session) -> None:
        session.headers["Authorization"] = f"Bearer {self.credential('token')}"

    @property
    def account_params(self) -> dict[str, str]:
        # "integrated_account_id ... required" on every call.
        return {"integrated_account_id": self.option("integrated_account_id")}

    def iter_pages(self, resource: str) -> Iterator[dict]:
        """Follow `next_cursor` until it is empty (README: `{result, next_cursor}` pages)."""
        cursor = None
        while True:
            params = {**self.account_params, "limit": PAGE_SIZE}
            if cursor:
                params["next_cursor"] = cursor
            page = self.request("GET", self.url(resource), params=params).json()
            yield from page.get("result") or []
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def iter_calls(self, *, since: datetime | None, until: datetime) -> Iterator[RemoteCall]:
        # No time filter is documented: list everything, keep what falls in the window.
        calls = {item["id"]: item for item in self.iter_pages("calls")}
        grouped: dict[str, list[dict]] = {}
        for item in self.iter_pages("recordings"):
            grouped.setdefault(item.get("call_id") or item["id"], []).append(item)
        # Every call, with or without recordings; recordings whose call is not listed still make a call.
        for call_id in dict.fromkeys([*calls, *grouped]):
            remote = self.parse_call(call_id, calls.get(call_id, {}), grouped.get(call_id, []))
            if since is None or remote.started_at >= since:
                yield remote

    def parse_call(self, call_id: str, call: dict, recordings: list[dict]) -> RemoteCall:
        parsed = [self.parse_recording(item) for item in recordings]
        started = parse_timestamp(call.get("created_at")) or min(r.started_at for r in parsed if r.started_at)
        # A call that is listed without a time has none of its own: the recording's start stands in.
        direction = (call.get("direction") or "").lower()
        return RemoteCall(
            remote_id=call_id,
            started_at=started,
            ended_at=max((r.started_at + _dur(r) for r in parsed if r.started_at and r.duration), default=None),
            duration=max((r.duration or 0 for r in parsed), default=None) or None,
            direction=direction if direction in ("inbound", "outbound") else "unknown",
            from_number=_number(call.get("from")),
            to_number=_number(call.get("to")),
            disposition=str(call.get("status") or ""),
            raw=call,
            recordings=parsed,
        )

    def parse_recording(self, item: dict) -> RemoteRecording:
        start = parse_timestamp(item.get("start_time")) or parse_timestamp(item.get("created_at"))
        end = parse_timestamp(item.get("end_time"))
        url = item.get("url") or ""
        fmt = url.rsplit(".", 1)[-1].lower() if "." in url.rsplit("/", 1)[-1] else ""
        return RemoteRecording(
            remote_id=item["id"],
            status="available" if url else "processing",
            format=fmt if fmt in ("mp3", "wav", "m4a", "mp4", "ogg") else "",
            duration=seconds_between(start, end),
            started_at=start,
            # The download endpoint takes the recording's url and remote_data back.
            locator={"url": url, "remote_data": item.get("remote_data") or {}},
            raw={k: v for k, v in item.items() if k != "url"},
        )

    def open_media(self, recording, *, byte_range=None) -> MediaStream:
        # `truto_response_format=stream` sends the whole file: Range is not honoured (the media cache seeks).
        response = self.request(
            "POST",
            self.url("recordings/download"),
            params={**self.account_params, "truto_response_format": "stream"},
            json={"url": recording.locator.get("url", ""), "remote_data": recording.locator.get("remote_data", {})},
            stream=True,
        )
        return self.stream_from(response)

    def test_connection(self) -> str:
        page = self.request("GET", self.url("calls"), params={**self.account_params, "limit": 1}).json()
        return f"Connected to Truto: integrated account answers ({len(page.get('result') or [])} call(s) on page 1)."


def _dur(recording: RemoteRecording):
    from datetime import timedelta

    return timedelta(seconds=recording.duration or 0)
