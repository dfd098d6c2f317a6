"""Deterministic seeded calls and recordings for the five emulated providers (same seed, same data)."""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.audio import AudioSpec, units_for

PROVIDERS = ("bandwidth", "truto", "envoy", "kaleyra", "ameyo")
DEFAULT_CALLS = 30
IST = timedelta(hours=5, minutes=30)  # Kaleyra and Ameyo accounts report in India time
BUSY_DAY_AFTER = 40  # with --calls above 1000, Bandwidth calls past this index all fall on one day
KALEYRA_ID_LIFETIME = timedelta(days=182)  # "accessing a valid ID after 6 months" fails with "Id Expired"
AMEYO_CAMPAIGNS = {"110": "Inbound Support", "112": "Collections"}


@dataclass(frozen=True, eq=False, slots=True)
class Recording:
    """One seeded recording; `extra` holds provider-specific fields (documented in docs/sandbox.md)."""

    id: str
    call_id: str
    start: datetime
    audio: AudioSpec
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.audio.seconds

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.duration)

    @property
    def channels(self) -> int:
        return self.audio.channels

    @property
    def fmt(self) -> str:
        return self.audio.fmt


@dataclass(frozen=True, eq=False, slots=True)
class Call:
    """One seeded call with its recordings (possibly none)."""

    id: str
    start: datetime
    end: datetime
    from_number: str
    to_number: str
    direction: str  # "inbound" | "outbound"
    status: str  # in the provider's own vocabulary
    agent: str | None
    recordings: tuple[Recording, ...]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class ProviderData:
    """A provider's seeded calls (sorted by start) and recordings, with lookups by id."""

    name: str
    calls: tuple[Call, ...]
    extra: dict[str, Any] = field(default_factory=dict)
    recordings: tuple[Recording, ...] = ()
    call_by_id: dict[str, Call] = field(default_factory=dict)
    recording_by_id: dict[str, Recording] = field(default_factory=dict)
    call_of: dict[str, Call] = field(default_factory=dict)  # recording id -> call

    @classmethod
    def of(cls, name: str, calls: list[Call], **extra: Any) -> ProviderData:
        calls.sort(key=lambda c: (c.start, c.id))
        recordings = sorted((r for c in calls for r in c.recordings), key=lambda r: (r.start, r.id))
        return cls(
            name=name,
            calls=tuple(calls),
            extra=extra,
            recordings=tuple(recordings),
            call_by_id={c.id: c for c in calls},
            recording_by_id={r.id: r for r in recordings},
            call_of={r.id: c for c in calls for r in c.recordings},
        )

    @property
    def seeded(self) -> dict[str, int]:
        return {"calls": len(self.calls), "recordings": len(self.recordings)}


@dataclass(frozen=True, eq=False)
class Dataset:
    seed: int
    calls_per_provider: dict[str, int]
    anchor: datetime  # midnight UTC of the sandbox's "today": seeded calls all happen before it
    providers: dict[str, ProviderData]

    def __getitem__(self, name: str) -> ProviderData:
        return self.providers[name]


def build(seed: int = 0, calls: int | Mapping[str, int] = DEFAULT_CALLS, anchor: date | None = None) -> Dataset:
    """The whole seeded dataset; `calls` is per provider (one number for all, or by name, the rest default);
    `anchor` defaults to today (UTC) so the calls always look recent."""
    counts = {name: calls if isinstance(calls, int) else calls.get(name, DEFAULT_CALLS) for name in PROVIDERS}
    anchor = anchor or datetime.now(UTC).date()
    midnight = datetime(anchor.year, anchor.month, anchor.day, tzinfo=UTC)
    makers = {
        "bandwidth": _bandwidth,
        "truto": _truto,
        "envoy": _envoy,
        "kaleyra": _kaleyra,
        "ameyo": _ameyo,
    }
    providers = {name: make(random.Random(f"{seed}/{name}"), counts[name], midnight) for name, make in makers.items()}
    return Dataset(seed=seed, calls_per_provider=counts, anchor=midnight, providers=providers)


# --- helpers: every random choice goes through the provider's own Random, in a fixed order ---


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def bandwidth_id(rng: random.Random, prefix: str) -> str:
    # Bandwidth ids look like c-15ac29a2-1331029c-2cb0-4a07-b215-b22865662d85
    return f"{prefix}-{_hex(rng, 8)}-{_hex(rng, 8)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 12)}"


def _duration(rng: random.Random) -> float:
    """Seconds, skewed short as in a contact centre: most calls 30-180 s, a few up to 20 min."""
    r = rng.random()
    lo, hi = (30, 75) if r < 0.65 else (75, 180) if r < 0.90 else (180, 420) if r < 0.98 else (420, 1200)
    return round(rng.uniform(lo, hi), 2)


def _audio(seed: str, seconds: float, channels: int, fmt: str) -> AudioSpec:
    return AudioSpec(seed, units_for(seconds, fmt), channels, fmt)  # whole codec frames: 72 or 128 ms steps


def _start(rng: random.Random, midnight: datetime, days: tuple[int, int] = (1, 45), utc_hours=(13, 23)) -> datetime:
    day = rng.randint(*days)
    secs = rng.uniform(utc_hours[0] * 3600, utc_hours[1] * 3600)
    return (midnight - timedelta(days=day) + timedelta(seconds=secs)).replace(microsecond=0)


def _us_number(rng: random.Random) -> str:
    return f"+1{rng.choice(['919', '984', '415', '646', '312', '737'])}555{rng.randint(0, 9999):04d}"


def _in_mobile(rng: random.Random) -> str:
    return f"{rng.choice('6789')}{rng.randint(0, 999_999_999):09d}"


_AGENTS = ("priya.sharma", "rahul.verma", "anita.desai", "vikram.rao", "neha.kapoor", "arjun.mehta")
_US_AGENTS = ("jordan.lee", "maria.garcia", "sam.patel", "chris.nguyen", "taylor.brooks")


# --- Bandwidth: Basic auth, account 9900000, recordings API with a 1000-entry cap ---


def _bandwidth(rng: random.Random, n: int, midnight: datetime) -> ProviderData:
    application_id = _uuid(rng)
    our_numbers = [f"+1919555{rng.randint(1000, 1999)}" for _ in range(3)]
    calls: list[Call] = []
    busy_day = midnight - timedelta(days=3)
    for i in range(n):
        inbound = rng.random() < 0.6
        customer, ours = _us_number(rng), rng.choice(our_numbers)
        if n > 1000 and i >= BUSY_DAY_AFTER:
            start = busy_day + timedelta(milliseconds=rng.randrange(86_400_000))
        else:
            start = _start(rng, midnight) + timedelta(milliseconds=rng.randrange(1000))
        if i == 0:
            specs = [(3725.4, 1, "wav")]  # over an hour: long-recording paths (and a big file)
        elif i == 1:
            specs = [(0.32, 1, "wav")]  # under 0.5 s: transcription is refused for it
        elif i == 2:
            specs = [(round(rng.uniform(1140, 1200), 2), 2, "mp3")]
        else:
            specs = [(_duration(rng), 2 if rng.random() < 0.25 else 1, "wav" if rng.random() < 0.6 else "mp3")]
            if i % 7 == 3:  # a second recording on the same call (e.g. after a transfer)
                specs.append((_duration(rng), 1, specs[0][2]))
        call_id = bandwidth_id(rng, "c")
        transferred = i % 9 == 4
        recordings = []
        at = start + timedelta(milliseconds=rng.randint(800, 4000))
        for seconds, channels, fmt in specs:
            rec_id = bandwidth_id(rng, "r")
            audio = _audio(f"bandwidth/{rec_id}", seconds, channels, fmt)
            transcribed = i % 4 == 1 and 0.5 < seconds < 4 * 3600
            recordings.append(
                Recording(
                    rec_id,
                    call_id,
                    at,
                    audio,
                    {
                        "status": "partial" if i == 5 else "complete",
                        "recording_name": "support-queue" if i % 5 == 0 else None,
                        "transcription_id": bandwidth_id(rng, "t"),
                        "transcribed": transcribed,
                    },
                )
            )
            at += timedelta(seconds=seconds + rng.uniform(2, 20))
        end = at + timedelta(seconds=rng.uniform(1, 5))
        calls.append(
            Call(
                id=call_id,
                start=start,
                end=end,
                from_number=customer if inbound else ours,
                to_number=ours if inbound else customer,
                direction="inbound" if inbound else "outbound",
                status="completed",
                agent=rng.choice(_US_AGENTS),
                recordings=tuple(recordings),
                extra={
                    "application_id": application_id,
                    "parent_call_id": bandwidth_id(rng, "c") if transferred else None,
                    "transfer_caller_id": ours if transferred else None,
                    "transfer_to": _us_number(rng) if transferred else None,
                },
            )
        )
    live_calls = [bandwidth_id(rng, "c") for _ in range(2)]  # active calls being recorded: pause/resume targets
    return ProviderData.of("bandwidth", calls, application_id=application_id, live_calls=live_calls)


# --- Truto: unified voice API over a Vonage integration; ids are Vonage's uuids ---


def _truto(rng: random.Random, n: int, midnight: datetime) -> ProviderData:
    our_numbers = ["+447700900123", "+14155550142"]
    calls: list[Call] = []
    for i in range(n):
        inbound = rng.random() < 0.55
        customer = f"+4477009{rng.randint(0, 99999):05d}" if rng.random() < 0.5 else _us_number(rng)
        ours = rng.choice(our_numbers)
        start = _start(rng, midnight, utc_hours=(8, 20)) + timedelta(milliseconds=rng.randrange(1000))
        status = "completed" if i < 3 or rng.random() < 0.88 else rng.choice(["busy", "failed", "unanswered"])
        call_id = _uuid(rng)
        conversation = "CON-" + _uuid(rng)
        recordings = []
        end = start + timedelta(seconds=rng.uniform(5, 30))
        if status == "completed":
            seconds = round(rng.uniform(1080, 1200), 2) if i == 2 else _duration(rng)
            channels = 2 if rng.random() < 0.3 else 1  # Vonage "split" recordings are stereo
            at = start + timedelta(seconds=rng.uniform(1, 4))
            rec_id = _uuid(rng)
            audio = _audio(f"truto/{rec_id}", seconds, channels, "mp3")
            recordings.append(
                Recording(rec_id, call_id, at.replace(microsecond=0), audio, {"conversation_uuid": conversation})
            )
            end = at + timedelta(seconds=seconds + rng.uniform(0.5, 3))
        calls.append(
            Call(
                id=call_id,
                start=start,
                end=end,
                from_number=customer if inbound else ours,
                to_number=ours if inbound else customer,
                direction="inbound" if inbound else "outbound",
                status=status,
                agent=None,
                recordings=tuple(recordings),
                extra={"conversation_uuid": conversation, "network": rng.choice(["23410", "310260", "23415"])},
            )
        )
    return ProviderData.of("truto", calls)


# --- Envoy: AI voice agent platform; calls call_<uuid>, recordings as AAC in MP4 ---


def _envoy(rng: random.Random, n: int, midnight: datetime) -> ProviderData:
    org_number = "+16465550187"
    calls: list[Call] = []
    for i in range(n):
        inbound = rng.random() < 0.5
        customer = _us_number(rng)
        start = _start(rng, midnight).replace(microsecond=rng.randrange(1_000_000))
        status = "COMPLETED" if i < 3 or rng.random() < 0.87 else rng.choice(["NO_ANSWER", "FAILED", "BUSY"])
        call_id = "call_" + _uuid(rng)
        recordings = []
        end = start + timedelta(seconds=rng.uniform(5, 40))
        if status == "COMPLETED":
            seconds = round(rng.uniform(1080, 1200), 2) if i == 2 else _duration(rng)
            at = start + timedelta(seconds=rng.uniform(0.5, 2))
            audio = _audio(f"envoy/{call_id}", seconds, 2 if rng.random() < 0.35 else 1, "mp4")
            recordings.append(Recording(call_id.removeprefix("call_"), call_id, at, audio))
            end = at + timedelta(seconds=seconds + rng.uniform(0.2, 2))
        direction = "inbound" if inbound else "outbound"
        calls.append(
            Call(
                id=call_id,
                start=start,
                end=end,
                from_number=customer if inbound else org_number,
                to_number=org_number if inbound else customer,
                direction=direction,
                status=status,
                agent="Envoy Assistant",
                recordings=tuple(recordings),
                extra={
                    "phone_number": org_number,
                    "call_direction": None if i % 13 == 7 else direction.upper(),  # nullable in the doc
                    "call_type": "PHONE",
                    "created_at": start - timedelta(seconds=rng.uniform(1, 10)),
                    "updated_at": end + timedelta(seconds=rng.uniform(5, 90)),
                },
            )
        )
    return ProviderData.of("envoy", calls, phone_number=org_number)


# --- Kaleyra: no listing API; recording ids come from the "report with recording details" ---


def _kaleyra_id(rng: random.Random) -> str:
    # ids look like "1xxxxx8axxxxgiu587==" (base64); '+' and '/' are avoided so form/query encoding is a non-issue
    while True:
        text = base64.b64encode(rng.getrandbits(128).to_bytes(16, "big")).decode()
        if "+" not in text and "/" not in text:
            return text


def _kaleyra(rng: random.Random, n: int, midnight: datetime) -> ProviderData:
    our_number = "+918048850071"
    expired = max(2, n // 8)
    calls: list[Call] = []
    for i in range(n):
        inbound = rng.random() < 0.5
        customer = "+91" + _in_mobile(rng)
        if 3 <= i < 3 + expired:  # older than six months: still in the report, but "Id Expired" at the API
            start = _start(rng, midnight, days=(190, 240), utc_hours=(3, 13))
        else:
            start = _start(rng, midnight, utc_hours=(3, 13))
        status = "ANSWERED" if i < 3 + expired or rng.random() < 0.88 else rng.choice(["NOANSWER", "BUSY", "FAILED"])
        call_id = _uuid(rng).replace("-", "")
        recordings = []
        end = start + timedelta(seconds=rng.uniform(10, 40))
        if status == "ANSWERED":
            seconds = round(rng.uniform(1080, 1200), 2) if i == 2 else _duration(rng)
            rec_id = _kaleyra_id(rng)
            fmt = "mp3" if rng.random() < 0.6 else "wav"
            at = start + timedelta(seconds=rng.randint(3, 15))
            audio = _audio(f"kaleyra/{rec_id}", seconds, 1, fmt)
            recordings.append(Recording(rec_id, call_id, at, audio))
            end = at + timedelta(seconds=seconds + rng.randint(1, 4))
        calls.append(
            Call(
                id=call_id,
                start=start,
                end=end.replace(microsecond=0),
                from_number=customer if inbound else our_number,
                to_number=our_number if inbound else customer,
                direction="inbound" if inbound else "outbound",
                status=status,
                agent=rng.choice(_AGENTS) if status == "ANSWERED" else None,
                recordings=tuple(recordings),
            )
        )
    return ProviderData.of("kaleyra", calls, expired_ids=expired)


# --- Ameyo: on-premises contact centre; calls come from the call report, audio from downloadVoiceLog ---


def _ameyo(rng: random.Random, n: int, midnight: datetime) -> ProviderData:
    calls: list[Call] = []
    used: set[str] = set()
    for i in range(n):
        campaign = "110" if rng.random() < 0.75 else "112"
        inbound = campaign == "110"
        start = _start(rng, midnight, utc_hours=(3, 13))
        answered = i < 3 or rng.random() < 0.88
        while True:  # crtObjectId like d741-6904fad1-vce-daf-638729, callId like d741-6904fad1-vcall-10989826
            crt = f"d741-6904fad1-vce-{''.join(rng.choices('abcdef', k=3))}-{rng.randint(100000, 999999)}"
            if crt not in used:
                used.add(crt)
                break
        call_id = f"d741-6904fad1-vcall-{10_000_000 + i * 7919 + rng.randint(0, 7000)}"
        recordings = []
        end = start + timedelta(seconds=rng.randint(15, 45))
        if answered:
            seconds = round(rng.uniform(1080, 1200), 2) if i == 2 else _duration(rng)
            audio = _audio(f"ameyo/{crt}", seconds, 2 if rng.random() < 0.3 else 1, "mp3")
            recordings.append(Recording(crt, call_id, start, audio))
            end = start + timedelta(seconds=seconds)
            disposition = rng.choice(
                ["Resolved", "Callback Requested", "Payment Promised", "Escalated", "Not Interested"]
            )
        else:
            disposition = rng.choice(["No Answer", "Busy"])
        phone = _in_mobile(rng)
        calls.append(
            Call(
                id=call_id,
                start=start,
                end=end.replace(microsecond=0),
                from_number=phone if inbound else "08048850110",
                to_number="08048850110" if inbound else phone,
                direction="inbound" if inbound else "outbound",
                status=disposition,
                agent=rng.choice(_AGENTS),
                recordings=tuple(recordings),
                extra={
                    "crt_object_id": crt,
                    "campaign_id": campaign,
                    "phone": phone,
                    "call_type": "inbound.call.dial"
                    if inbound
                    else rng.choice(["outbound.manual.dial", "outbound.auto.dial"]),
                },
            )
        )
    return ProviderData.of("ameyo", calls, campaigns=AMEYO_CAMPAIGNS)
