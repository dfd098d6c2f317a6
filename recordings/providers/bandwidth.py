"""Bandwidth Voice API recordings (../shared/providers/004_*.txt and README "Bandwidth")."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import requests

from .base import (
    AccountField,
    MediaStream,
    Provider,
    RemoteCall,
    RemoteRecording,
    RemoteTranscript,
    TranscriptSegment,
)
from .errors import NotSupported
from .parsing import normalize_number, parse_iso_duration, parse_timestamp

# "The list is capped at 1000 entries" (listAccountCallRecordings): a full answer means "maybe more".
LIST_CAP = 1000
# Windows are narrowed until under the cap; below this a window cannot be split further.
MIN_WINDOW = timedelta(seconds=1)
# Windows are sized from the density seen so far to hold about this many recordings: room under the cap for a
# busier stretch, so that few answers are thrown away.
TARGET = 800

# README: status processing|partial|complete|deleted|error; tolerate unknown values.
STATUS_MAP = {
    "complete": "available",
    "partial": "available",
    "processing": "processing",
    # A recording whose metadata still answers but is "deleted" had its media deleted
    # (deleteRecording makes the metadata itself inaccessible).
    "deleted": "media_deleted",
    "error": "error",
}
CONTENT_TYPES = {"wav": "audio/vnd.wave", "mp3": "audio/mpeg"}
# transcribeCallRecording: "only for recordings of length greater than 500 milliseconds and less than 4 hours".
TRANSCRIBE_MIN_SECONDS = 0.5
TRANSCRIBE_MAX_SECONDS = 4 * 3600


class Bandwidth(Provider):
    name = "bandwidth"
    label = "Bandwidth"
    default_base_url = "https://voice.bandwidth.com/api/v2"
    credential_fields = (
        AccountField("username", "API user"),
        AccountField("password", "API password", secret=True),
    )
    option_fields = (AccountField("account_id", "Account ID", help_text="Your Bandwidth account id, e.g. 9900000."),)
    can_sync = True
    supports_range = True
    can_delete = True
    can_delete_media = True
    can_transcribe = True

    def configure_session(self, session: requests.Session) -> None:
        session.auth = (self.credential("username"), self.credential("password"))
        session.headers["Accept"] = "application/json"

    @property
    def account_path(self) -> str:
        return f"accounts/{self.option('account_id')}"

    def recording_path(self, recording) -> str:
        call_id = recording.locator.get("call_id") or recording.call.remote_id
        return f"{self.account_path}/calls/{call_id}/recordings/{recording.remote_id}"

    # Listing -----------------------------------------------------------------------------------------------

    def list_window(self, start: datetime, end: datetime) -> list[dict]:
        params = {"minStartTime": _iso(start), "maxStartTime": _iso(end)}
        return self.request("GET", self.url(f"{self.account_path}/recordings"), params=params).json()

    def iter_windows(self, start: datetime, end: datetime) -> Iterator[list[dict]]:
        """Every recording in [start, end), oldest window first, in windows answered under the 1000 cap.

        There is no paging: a full answer may be missing recordings, so its window is narrowed and asked again.
        Each next window is sized from the density just seen, aiming at TARGET recordings (halving blindly threw
        away most answers on a busy day). Only answers under the cap are ever used, whatever the order of a full one.
        """
        width = end - start
        while start < end:
            stop = min(end, start + width)
            items = self.list_window(start, stop)
            if len(items) >= LIST_CAP and stop - start > MIN_WINDOW:
                width = max(MIN_WINDOW, _narrower(items, start, stop))
                continue
            yield items
            # At most 4 times wider than a window that held few or none: the density may change fast.
            width = max(MIN_WINDOW, (stop - start) * min(4.0, TARGET / max(len(items), 1)))
            start = stop

    def iter_calls(self, *, since: datetime | None, until: datetime) -> Iterator[RemoteCall]:
        start = since or until - timedelta(days=365)
        for items in self.iter_windows(start, until):
            for item in items:
                yield self.parse_recording(item)

    def parse_recording(self, item: dict) -> RemoteCall:
        fmt = (item.get("fileFormat") or "").lower()
        started = parse_timestamp(item.get("startTime"))
        ended = parse_timestamp(item.get("endTime"))
        duration = parse_iso_duration(item.get("duration"))
        status = STATUS_MAP.get((item.get("status") or "").lower(), "processing")
        recording = RemoteRecording(
            remote_id=item["recordingId"],
            status=status,
            content_type=CONTENT_TYPES.get(fmt, ""),
            format=fmt,
            duration=duration,
            channels=item.get("channels"),
            started_at=started,
            locator={"call_id": item["callId"]},
            raw=item,
        )
        direction = (item.get("direction") or "").lower()
        return RemoteCall(
            remote_id=item["callId"],
            started_at=started,
            ended_at=ended,
            duration=duration,
            direction=direction if direction in ("inbound", "outbound") else "unknown",
            from_number=normalize_number(item.get("from")),
            to_number=normalize_number(item.get("to")),
            raw={k: item.get(k) for k in ("applicationId", "accountId", "callId", "parentCallId", "from", "to")},
            recordings=[recording],
        )

    # Media and actions -------------------------------------------------------------------------------------

    def open_media(self, recording, *, byte_range=None) -> MediaStream:
        response = self.request(
            "GET", self.url(f"{self.recording_path(recording)}/media"), stream=True,
            headers={"Accept": "audio/vnd.wave, audio/mpeg", **self.range_header(byte_range)},
        )  # fmt: skip
        return self.stream_from(response)

    def test_connection(self) -> str:
        now = datetime.now(UTC)
        items = self.list_window(now - timedelta(days=1), now)
        return f"Connected to Bandwidth account {self.option('account_id')}: {len(items)} recording(s) in the last day."

    def get_recording(self, recording) -> dict:
        return self.request("GET", self.url(self.recording_path(recording))).json()

    def delete_recording(self, recording) -> None:
        self.request("DELETE", self.url(self.recording_path(recording)))

    def delete_media(self, recording) -> None:
        self.request("DELETE", self.url(f"{self.recording_path(recording)}/media"))

    def request_transcription(self, recording) -> None:
        duration = recording.duration
        if duration is not None and not (TRANSCRIBE_MIN_SECONDS < duration < TRANSCRIBE_MAX_SECONDS):
            raise NotSupported(
                "Bandwidth transcribes recordings longer than 0.5 s and shorter than 4 h; "
                f"this one is {duration:.1f} s.",
                provider=self.name,
            )
        # A POST, but asking twice for the same transcription is harmless: retry it like a read.
        self.request("POST", self.url(f"{self.recording_path(recording)}/transcription"), json={})

    def fetch_transcription(self, recording) -> RemoteTranscript:
        meta = self.get_recording(recording)
        state = ((meta.get("transcription") or {}).get("status") or "none").lower()
        if state in ("none", "processing"):
            return RemoteTranscript(status="processing" if state == "processing" else "requested")
        if state != "available":
            return RemoteTranscript(status="failed", error=f"Bandwidth transcription status: {state}")
        data = self.request("GET", self.url(f"{self.recording_path(recording)}/transcription")).json()
        segments = [
            TranscriptSegment(
                speaker=str(clip.get("speaker", "")),
                start=clip.get("startTimeSeconds"),
                end=clip.get("endTimeSeconds"),
                text=clip.get("text", ""),
                confidence=clip.get("confidence"),
            )
            for clip in data.get("clips") or []
        ]
        segments.sort(key=lambda s: (s.start is None, s.start or 0))
        text = "\n".join(t.get("text", "") for t in data.get("transcripts") or [] if t.get("text"))
        return RemoteTranscript(status="available", text=text, segments=segments)


def _narrower(items: list[dict], start: datetime, stop: datetime) -> timedelta:
    """A width for a window that came back full: half of it, or less where the answer shows where to cut.

    An answer in start order is taken to hold the window's earliest recordings (the sandbox lists so; the API
    documents no order): its TARGET-th start is where a window of about TARGET recordings ends. Whatever the
    answer, only an answer under the cap is ever used, so a wrong guess costs a request, never a recording.
    """
    half = (stop - start) / 2
    times = [_start_time(item) for item in items]
    if any(t is None or not start <= t < stop for t in times) or len(times) <= TARGET:
        return half
    in_order = all(a <= b for a, b in pairwise(times))
    cut = sorted(times)[TARGET] - start
    if cut <= timedelta(0):
        return half
    return cut if in_order else min(cut, half)


def _start_time(item: dict) -> datetime | None:
    try:
        return parse_timestamp(item.get("startTime"))
    except (TypeError, ValueError):
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
