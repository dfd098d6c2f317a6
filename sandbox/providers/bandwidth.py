"""Bandwidth Voice API v2 recordings: list (capped at 1000), metadata, media, delete, transcription, pause/resume."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import random
import re
import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.audio import SAMPLE_RATE, AudioSpec, utterances
from sandbox.data import Call, Recording, bandwidth_id
from sandbox.providers.base import Provider
from sandbox.server import HttpError, Media, Request, Response, iso, json_response, serve_media

ACCOUNT_ID = "9900000"
USERNAME = "sandbox-bw-user"
PASSWORD = "sandbox-bw-pass"
LIST_CAP = 1000  # 004 listAccountCallRecordings: "The list is capped at 1000 entries"
CONTENT_TYPES = {"wav": "audio/vnd.wave", "mp3": "audio/mpeg"}  # 004 downloadCallRecording "Accept"
# 004 transcribeCallRecording: "only for recordings of length greater than 500 milliseconds and less than 4 hours"
MIN_TRANSCRIBE, MAX_TRANSCRIBE = 0.5, 4 * 3600
ERROR_TYPES = {
    400: "validation",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    415: "unsupported-media-type",
    416: "range-not-satisfiable",
    429: "too-many-requests",
    500: "internal-server-error",
    502: "bad-gateway",
    503: "service-unavailable",
}

_ACCOUNT = r"/api/v2/accounts/(?P<account>[^/]+)"
_RECORDING = _ACCOUNT + r"/calls/(?P<call>[^/]+)/recordings/(?P<rec>[^/]+)"


def java_duration(seconds: float) -> str:
    """ISO-8601 as Java's Duration.toString() writes it: PT13.67S, PT1M15.5S, PT1H2M5.4S (Bandwidth is Java)."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, frac = divmod(rest, 1000)
    out = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if rest or not (hours or minutes):
        out += f"{whole}.{frac:03d}".rstrip("0").rstrip(".") + "S"
    return out


def _benchmark_call(state: Any) -> Call | None:
    """--big-recording-mb: one more call, whose WAV is computed from the byte offset (audio.SyntheticWav)."""
    wav = state.big_recording
    if wav is None:
        return None
    rng = random.Random(f"{state.dataset.seed}/bandwidth/big")
    call_id, rec_id, transcription_id = bandwidth_id(rng, "c"), bandwidth_id(rng, "r"), bandwidth_id(rng, "t")
    start = state.dataset.anchor - timedelta(hours=12)
    extra = {
        "status": "complete",
        "recording_name": "benchmark",
        "transcription_id": transcription_id,
        "transcribed": False,
    }
    rec = Recording(rec_id, call_id, start, AudioSpec("bandwidth/big", wav.samples, 1, "wav"), extra)
    end = start + timedelta(seconds=wav.seconds)
    return Call(
        call_id,
        start,
        end,
        "+19195550100",
        "+19195550199",
        "inbound",
        "completed",
        None,
        (rec,),
        {"application_id": "benchmark"},
    )


def parse_time(value: str) -> datetime:
    value = value.strip()
    if "T" in value:  # an unencoded '+' in the offset arrives as a space
        value = re.sub(r" (\d\d:?\d\d)$", r"+\1", value)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Bandwidth(Provider):
    name = "bandwidth"
    prefix = "/bandwidth"

    def __init__(self, state: Any) -> None:
        super().__init__(state)
        self.big_call = _benchmark_call(state)
        self.big = self.big_call.recordings[0] if self.big_call else None
        self._calls = calls = [*self.data.calls, *([self.big_call] if self.big_call else [])]
        self._recordings = sorted((r for c in calls for r in c.recordings), key=lambda r: (r.start, r.id))
        self._starts = [r.start for r in self._recordings]  # sorted: the time window is two bisections
        self._by_id = {r.id: r for r in self._recordings}
        self._call_of = {r.id: c for c in calls for r in c.recordings}

    def reset(self) -> None:
        self.deleted: set[str] = set()
        self.media_deleted: set[str] = set()
        # recording id -> None (transcription deleted) or (requested at, delay) for a requested one
        self.transcriptions: dict[str, tuple[float, float] | None] = {}
        self.live = dict.fromkeys(self.data.extra["live_calls"], "recording")

    def routes(self):
        return [
            (("GET",), _ACCOUNT + "/recordings", self.list_account),
            (("GET",), _ACCOUNT + r"/calls/(?P<call>[^/]+)/recordings", self.list_call),
            (("GET", "DELETE"), _RECORDING, self.recording),
            (("GET", "DELETE"), _RECORDING + "/media", self.media),
            (("GET", "POST", "DELETE"), _RECORDING + "/transcription", self.transcription),
            (("PUT",), _ACCOUNT + r"/calls/(?P<call>[^/]+)/recording", self.update_recording),
        ]

    # --- errors and auth: 004 lists 400/401/403/404/405/415/429/500 for every operation ---

    def error(self, req: Request, status: int, message: str, **extra: Any) -> HttpError:
        body = {"type": ERROR_TYPES.get(status, "error"), "description": message, **extra}
        headers = {"WWW-Authenticate": 'Basic realm="Bandwidth"'} if status == 401 else {}
        return HttpError(json_response(status, body, headers))

    def _auth(self, req: Request, account: str) -> None:
        header = req.headers.get("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            user = password = ""
        if scheme.lower() != "basic" or (user, password) != (USERNAME, PASSWORD):
            raise self.error(req, 401, "Authentication failed: missing or invalid Basic credentials")
        if account != ACCOUNT_ID:
            raise self.error(req, 403, f"Your credentials do not give access to account {account}")

    def _recording(self, req: Request, account: str, call_id: str, rec_id: str) -> Recording:
        self._auth(req, account)
        rec = self._by_id.get(rec_id)
        if rec is None or rec.call_id != call_id or rec_id in self.deleted:
            raise self.error(req, 404, f"Recording {rec_id} not found on call {call_id}")
        return rec

    # --- metadata ---

    def _transcription(self, rec: Recording) -> tuple[str, datetime | None]:
        if rec.id not in self.transcriptions:
            if rec.extra["transcribed"]:
                return "available", (rec.end + timedelta(minutes=3)).replace(microsecond=0)
            return "none", None
        requested = self.transcriptions[rec.id]
        if requested is None:
            return "none", None
        at, delay = requested
        if self.state.now() >= at + delay:
            return "available", datetime.fromtimestamp(at + delay, UTC)
        return "processing", None

    def metadata(self, base: str, rec: Recording) -> dict[str, Any]:
        call = self._call_of[rec.id]
        url = f"{base}{self.prefix}/api/v2/accounts/{ACCOUNT_ID}/calls/{call.id}/recordings/{rec.id}"
        status, completed = self._transcription(rec)
        return {
            "applicationId": call.extra["application_id"],
            "accountId": ACCOUNT_ID,
            "callId": call.id,
            "parentCallId": call.extra.get("parent_call_id"),
            "recordingId": rec.id,
            "to": call.to_number,
            "from": call.from_number,
            "transferCallerId": call.extra.get("transfer_caller_id"),
            "transferTo": call.extra.get("transfer_to"),
            "duration": java_duration(rec.duration),
            "direction": call.direction,
            "channels": rec.channels,
            "startTime": iso(rec.start, "milliseconds"),
            "endTime": iso(rec.end, "milliseconds"),
            "fileFormat": rec.fmt,
            # media-only delete keeps the metadata and says so: status "deleted" (an enum value in the SDK)
            "status": "deleted" if rec.id in self.media_deleted else rec.extra["status"],
            "mediaUrl": f"{url}/media",
            "transcription": {
                "id": rec.extra["transcription_id"] if status != "none" else None,
                "status": status,
                "completedTime": iso(completed, "milliseconds"),
                "url": f"{url}/transcription" if status == "available" else None,
            },
            "recordingName": rec.extra["recording_name"],
        }

    # --- handlers ---

    def list_account(self, req: Request, m) -> Response:
        """GET /accounts/{a}/recordings: filters from, to, minStartTime (inclusive), maxStartTime (exclusive)."""
        self._auth(req, m["account"])
        bounds = []
        for name in ("minStartTime", "maxStartTime"):
            value = req.arg(name)
            try:
                bounds.append(parse_time(value) if value else None)
            except ValueError:
                raise self.error(req, 400, f"{name} must be an ISO 8601 date-time, got {value!r}") from None
        lo = bisect.bisect_left(self._starts, bounds[0]) if bounds[0] else 0
        hi = bisect.bisect_left(self._starts, bounds[1]) if bounds[1] else len(self._starts)
        wanted_from, wanted_to = _number(req.arg("from")), _number(req.arg("to"))
        out = []
        for rec in self._recordings[lo:hi]:
            if rec.id in self.deleted:
                continue
            call = self._call_of[rec.id]
            if (wanted_from and call.from_number != wanted_from) or (wanted_to and call.to_number != wanted_to):
                continue
            out.append(self.metadata(req.base, rec))
            if len(out) == LIST_CAP:  # no paging: a caller must narrow the window itself
                break
        return json_response(200, out)

    def list_call(self, req: Request, m) -> Response:
        self._auth(req, m["account"])
        recs = [r for r in self._recordings if r.call_id == m["call"] and r.id not in self.deleted]
        return json_response(200, [self.metadata(req.base, r) for r in recs])  # "(potentially empty)"

    def recording(self, req: Request, m) -> Response:
        rec = self._recording(req, m["account"], m["call"], m["rec"])
        if req.method == "DELETE":
            # 004 deleteRecording: afterwards "neither the recording metadata nor the actual media nor its
            # transcription will be accessible anymore"
            with self.state.lock:
                self.deleted.add(rec.id)
            return Response(204)
        return json_response(200, self.metadata(req.base, rec))

    def media(self, req: Request, m) -> Response:
        rec = self._recording(req, m["account"], m["call"], m["rec"])
        if rec.id in self.media_deleted:
            raise self.error(req, 404, f"The media of recording {rec.id} has been deleted")
        if req.method == "DELETE":
            with self.state.lock:
                self.media_deleted.add(rec.id)
            return Response(204)
        return serve_media(
            req,
            self._media(rec),
            ranges=True,
            unsatisfiable=lambda: self.error(req, 416, "Range Not Satisfiable").response,
        )

    def _media(self, rec: Recording) -> Media:
        if rec is self.big and self.state.big_recording is not None:
            wav = self.state.big_recording
            return Media(wav.size, CONTENT_TYPES["wav"], f"big-{wav.size}", self.state.dataset.anchor, synthetic=wav)
        return self.state.media_for(rec.audio, CONTENT_TYPES[rec.fmt])

    def transcription(self, req: Request, m) -> Response:
        rec = self._recording(req, m["account"], m["call"], m["rec"])
        if req.method == "POST":
            return self._request_transcription(req, rec)
        status, _ = self._transcription(rec)
        if req.method == "DELETE":
            if status == "none":
                raise self.error(req, 404, f"Recording {rec.id} has no transcription")
            with self.state.lock:
                self.transcriptions[rec.id] = None
            return Response(204)
        if status != "available":
            raise self.error(req, 404, f"No transcription available for recording {rec.id} (status {status})")
        return json_response(200, self._transcripts(rec))

    def _request_transcription(self, req: Request, rec: Recording) -> Response:
        content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        if req.body.strip() and content_type != "application/json":
            raise self.error(req, 415, "Content-Type must be application/json")
        try:
            body = req.json() or {}
        except (ValueError, UnicodeDecodeError):
            raise self.error(req, 400, "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise self.error(req, 400, "Request body must be a JSON object")
        timeout = body.get("callbackTimeout")
        if timeout is not None and not (isinstance(timeout, int | float) and 1 <= timeout <= 25):
            raise self.error(req, 400, "callbackTimeout must be between 1 and 25 seconds")
        if body.get("callbackMethod", "POST") not in ("GET", "POST"):
            raise self.error(req, 400, "callbackMethod must be GET or POST")
        if rec.id in self.media_deleted:
            raise self.error(req, 404, f"The media of recording {rec.id} has been deleted")
        if not MIN_TRANSCRIBE < rec.duration < MAX_TRANSCRIBE:
            raise self.error(
                req,
                400,
                "Transcription can succeed only for recordings of length greater than 500 milliseconds "
                f"and less than 4 hours; recording {rec.id} lasts {java_duration(rec.duration)}",
            )
        delay = self.state.config.transcription_delay
        with self.state.lock:
            self.transcriptions[rec.id] = (self.state.now(), delay)
        if body.get("callbackUrl"):
            timer = threading.Timer(delay, self._callback, (req.base, rec, body))
            timer.daemon = True
            timer.start()
        return Response(204)

    def _transcripts(self, rec: Recording) -> dict[str, Any]:
        """004 getRecordingTranscription: two transcripts for a two-channel recording, plus timed clips."""
        turns = utterances(rec.audio)
        clips = [
            {
                "speaker": u.speaker,
                "text": u.text,
                "confidence": u.confidence,
                "startTimeSeconds": round(u.start, 2),
                "endTimeSeconds": round(u.end, 2),
            }
            for u in turns
        ]
        channels = [0, 1] if rec.channels == 2 else [None]
        transcripts = []
        for channel in channels:
            mine = [u for u in turns if channel is None or u.speaker == channel]
            confidence = round(sum(u.confidence for u in mine) / len(mine), 3) if mine else 0.0
            entry: dict[str, Any] = {"text": " ".join(u.text for u in mine), "confidence": confidence}
            if channel is not None:
                entry = {"speaker": channel, **entry}
            transcripts.append(entry)
        return {"transcripts": transcripts, "clips": clips}

    def _callback(self, base: str, rec: Recording, body: dict[str, Any]) -> None:
        """Best effort transcriptionAvailable webhook, as Bandwidth sends when callbackUrl is given."""
        event = {
            "eventType": "transcriptionAvailable",
            "eventTime": iso(self.state.utcnow(), "milliseconds"),
            "tag": body.get("tag"),
            **self.metadata(base, rec),
        }
        request = urllib.request.Request(  # noqa: S310 - the URL is the test's own callback
            body["callbackUrl"],
            data=json.dumps(event).encode() if body.get("callbackMethod", "POST") == "POST" else None,
            method=body.get("callbackMethod", "POST"),
            headers={"Content-Type": "application/json"},
        )
        if body.get("username"):
            token = base64.b64encode(f"{body['username']}:{body.get('password', '')}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            urllib.request.urlopen(request, timeout=body.get("callbackTimeout") or 15).close()  # noqa: S310
        except OSError:
            pass

    def update_recording(self, req: Request, m) -> Response:
        """PUT /accounts/{a}/calls/{c}/recording {"state": "paused"|"recording"}: only on an active call."""
        self._auth(req, m["account"])
        try:
            body = req.json() or {}
        except (ValueError, UnicodeDecodeError):
            raise self.error(req, 400, "Request body is not valid JSON") from None
        state = body.get("state") if isinstance(body, dict) else None
        if state not in ("paused", "recording"):
            raise self.error(req, 400, "state must be 'paused' or 'recording'")
        if m["call"] not in self.live:
            raise self.error(req, 404, f"Call {m['call']} is not an active call")
        with self.state.lock:
            self.live[m["call"]] = state
        return Response(200)

    # --- index ---

    def index_entry(self, base: str) -> dict[str, Any]:
        recs = self.data.recordings
        longest = max(recs, key=lambda r: r.duration)
        shortest = min(recs, key=lambda r: r.duration)
        entry: dict[str, Any] = {
            "base_url": f"{base}{self.prefix}/api/v2",
            "credentials": {"username": USERNAME, "password": PASSWORD},
            "options": {"account_id": ACCOUNT_ID},
            "seeded": {"calls": len(self._calls), "recordings": len(self._recordings)},
            "list_cap": LIST_CAP,
            "transcription_delay_seconds": self.state.config.transcription_delay,
            "live_calls": [{"call_id": c, "state": s} for c, s in self.live.items()],
            "long_recording": {"call_id": longest.call_id, "recording_id": longest.id},
            "short_recording": {"call_id": shortest.call_id, "recording_id": shortest.id},
        }
        if self.big:
            entry["big_recording"] = {
                "call_id": self.big.call_id,
                "recording_id": self.big.id,
                "size_bytes": self.state.big_recording.size,
                "sample_rate": SAMPLE_RATE,
            }
        return entry


def _number(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return "+" + value if value.isdigit() else value  # "+1919..." with an unencoded '+' arrives as " 1919..."
