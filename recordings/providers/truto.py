"""Truto unified voice API (../shared/providers/000_*.txt and README "Truto")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

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

    def iter_pages(self, resource: str) -> Iterator[list[dict]]:
        """Follow `next_cursor` until it is empty (README: `{result, next_cursor}` pages)."""
        cursor = None
        while True:
            params = {**self.account_params, "limit": PAGE_SIZE}
            if cursor:
                params["next_cursor"] = cursor
            page = self.request("GET", self.url(resource), params=params).json()
            yield page.get("result") or []
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def iter_calls(self, *, since: datetime | None, until: datetime) -> Iterator[RemoteCall]:
        # No time filter is documented: list everything, keep what falls in the window.
        calls: dict[str, dict] = {}
        given: set[str] = set()
        waiting: dict[str, list[dict]] = {}

        def ready(call_id: str, items: list[dict]) -> Iterator[RemoteCall]:
            given.add(call_id)
            remote = self.parse_call(call_id, calls[call_id], items)
            if since is None or remote.started_at >= since:
                yield remote

        # Calls and recordings are listed a page of each in turn, and a recording is given, with its call, as soon
        # as both are known (the sync merges a call given in parts, its times spanning them all): storing then
        # overlaps listing. A recording waits for its call; a call without a time of its own starts at its earliest
        # recording, so its recordings all wait to the end, as do those whose call is never listed.
        listings = {"calls": self.iter_pages("calls"), "recordings": self.iter_pages("recordings")}
        while listings:
            for resource, pages in list(listings.items()):
                page = next(pages, None)
                if page is None:
                    del listings[resource]
                elif resource == "calls":
                    for item in page:
                        calls[item["id"]] = item
                        if item.get("created_at") and item["id"] in waiting:
                            yield from ready(item["id"], waiting.pop(item["id"]))
                else:
                    for item in page:
                        call_id = item.get("call_id") or item["id"]
                        if calls.get(call_id, {}).get("created_at"):
                            yield from ready(call_id, [item])
                        else:
                            waiting.setdefault(call_id, []).append(item)
        # Then every call without recordings, and the calls whose recordings waited.
        for call_id in dict.fromkeys([*calls, *waiting]):
            if call_id not in given:
                remote = self.parse_call(call_id, calls.get(call_id, {}), waiting.get(call_id, []))
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


def _dur(recording: RemoteRecording) -> timedelta:
    return timedelta(seconds=recording.duration or 0)
