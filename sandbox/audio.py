"""Deterministic synthetic call audio (two tone "voices" talking in turns) as WAV, MP3 or AAC-in-MP4."""

from __future__ import annotations

import functools
import hashlib
import io
import math
import os
import random
import struct
import threading
from array import array
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

SAMPLE_RATE = 8000  # telephony narrow-band: small files, fast encoding
GENERATOR_VERSION = 4  # bump when the synthesis changes, so cached files are regenerated
MP3_FRAME = 576  # samples in an MPEG-2.5 Layer III frame (8 kHz)
AAC_FRAME = 1024  # samples in an AAC-LC frame
MP3_BITRATES = {1: 16_000, 2: 24_000}  # CBR: frames of exactly 144 and 216 bytes at 8 kHz
AAC_BITRATES = {1: 16_000, 2: 24_000}

_VOICE_F0 = (98.0, 112.0, 126.0, 141.0, 172.0, 191.0, 214.0, 238.0)  # eight distinguishable "speakers"
_PITCH_STEPS = (0.89, 1.0, 1.12, 1.26, 1.41)
_SYLLABLE_MS = (90, 140, 200)
_TIMBRES = ((1.0, 0.55, 0.30, 0.15), (1.0, 0.25, 0.45, 0.20))
_DTMF = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "4": (770, 1209), "5": (770, 1336), "6": (770, 1477),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "*": (941, 1209), "0": (941, 1336), "#": (941, 1477),
}  # fmt: skip
_HOLD_NOTES = tuple(261.63 * 2 ** (semitone / 12) for semitone in (0, 2, 4, 7, 9, 12, 14, 16, 19, 21))
_NOISE_VARIANTS = 4


def unit(fmt: str) -> int:
    """The grid every piece of a recording is aligned to: the codec's frame (WAV shares MP3's grid)."""
    return AAC_FRAME if fmt == "mp4" else MP3_FRAME


def units_for(seconds: float, fmt: str) -> int:
    """The exact sample count closest to `seconds` that is a whole number of codec frames (at least one)."""
    step = unit(fmt)
    return max(1, round(seconds * SAMPLE_RATE / step)) * step


_AGENT_LINES = (
    "Thank you for calling, my name is Alex, how can I help you today?",
    "Can I have your account number, please?",
    "Let me pull that up for you.",
    "I can see the order here.",
    "Is there anything else I can help you with?",
    "I will put you on a short hold while I check.",
    "Thanks for holding.",
    "That has been updated on your account.",
    "You will receive a confirmation by email.",
    "Could you confirm the address on file?",
)
_CALLER_LINES = (
    "Hi, I am calling about my last invoice.",
    "Sure, it is four five seven two nine.",
    "The delivery did not arrive yesterday.",
    "Yes, that is correct.",
    "Can you tell me when it will be fixed?",
    "No, that is all, thank you.",
    "I was charged twice this month.",
    "It is the one on Maple Street.",
    "Okay, that sounds good.",
    "Could you send me the details?",
)


@dataclass(frozen=True)
class AudioSpec:
    """What one recording's audio is: a seed for its content, an exact length, a channel count and a format."""

    seed: str
    samples: int  # a whole number of unit(fmt)
    channels: int
    fmt: str

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    @property
    def digest(self) -> str:
        key = f"{GENERATOR_VERSION}|{self.seed}|{self.samples}|{self.channels}|{self.fmt}"
        return hashlib.sha256(key.encode()).hexdigest()[:24]

    def with_format(self, fmt: str) -> AudioSpec:
        if unit(fmt) != unit(self.fmt):
            raise ValueError(f"{self.fmt} and {fmt} use different frame grids")
        return replace(self, fmt=fmt)


@dataclass(frozen=True)
class Utterance:
    """One turn of the conversation: speaker 0 is the caller (left channel), 1 the agent (right channel)."""

    speaker: int
    start: float
    end: float
    text: str
    confidence: float


# --- sound banks: small buffers computed once, then only concatenated (fast enough for hour-long files) ---

_pcm_items: dict[tuple, bytes] = {}
_pcm_lock = threading.Lock()


@functools.lru_cache(maxsize=64)
def _envelope(n: int) -> tuple[float, ...]:
    """A linear attack over the first eighth, a release over the last quarter: items start and end silent."""
    attack, release = max(1, n // 8), max(1, n // 4)
    return tuple(min(1.0, i / attack, (n - 1 - i) / release) for i in range(n))


def _tones(freqs: tuple[float, ...], n: int, amp: float) -> array:
    """Unrelated sine tones (DTMF)."""
    step = 2 * math.pi / SAMPLE_RATE
    env = _envelope(n)
    return array("h", (int(amp * env[i] * sum(math.sin(step * f * i) for f in freqs)) for i in range(n)))


def _harmonics(f0: float, weights: tuple[float, float, float, float], n: int, amp: float, glide: float = 0.0) -> array:
    """Four harmonics of a gliding f0, sin(k*x) by recurrence: the hot loop of a cold start, kept lean."""
    w1, w2, w3, w4 = (amp * w for w in weights)
    step = 2 * math.pi * f0 / SAMPLE_RATE
    bend = step * glide / n
    sin, cos = math.sin, math.cos
    out = []
    phase = 0.0
    for i, env in enumerate(_envelope(n)):
        phase += step + bend * i
        s1 = sin(phase)
        c2 = 2.0 * cos(phase)
        s2 = c2 * s1
        s3 = c2 * s2 - s1
        out.append(int(env * (w1 * s1 + w2 * s2 + w3 * s3 + w4 * (c2 * s3 - s2))))
    return array("h", out)


@functools.lru_cache(maxsize=4096)
def _mono_item(key: tuple) -> array:
    """Keys end with (lead, n): n samples, of which the first `lead` are digital silence."""
    kind, lead, n = key[0], key[-2], key[-1]
    size = n - lead
    if kind == "syl":
        _, voice, pitch, timbre, _, _ = key
        glide = random.Random(f"glide/{key[:4]}/{size}").uniform(-0.08, 0.08)
        body = _harmonics(_VOICE_F0[voice] * _PITCH_STEPS[pitch], _TIMBRES[timbre], size, 4200.0, glide)
    elif kind == "dtmf":
        body = _tones(_DTMF[key[1]], size, 3800.0)
    elif kind == "note":
        body = _harmonics(_HOLD_NOTES[key[1]], (1.0, 0.2, 0.1, 0.0), size, 3500.0)
    elif kind == "noise":  # quiet line noise between the words
        rng = random.Random(f"noise/{key[1]}/{size}")
        body = array("h", (rng.randint(-70, 70) for _ in range(size)))
    elif kind == "zero":
        body = array("h", bytes(2 * size))
    else:
        raise ValueError(key)
    return array("h", bytes(2 * lead)) + body


def _item(key: tuple, layout: str) -> bytes:
    """A bank item as interleaved s16le PCM.

    layout: "mono"; or for stereo "left"/"right" (the speaker on one channel, line noise on the other),
    "both" (the same sound on both channels) and "pair" (two different noises).
    """
    found = _pcm_items.get((key, layout))
    if found is not None:
        return found
    mono = _mono_item(key)
    if layout == "mono":
        data = mono.tobytes()
    else:
        n = len(mono)
        other = (key[1] + 2) % _NOISE_VARIANTS if key[0] == "noise" else 3
        quiet = _mono_item(("noise", other, 0, n)) if key[0] != "zero" else mono
        stereo = array("h", bytes(4 * n))
        stereo[0::2] = mono if layout in ("left", "both", "pair") else quiet
        stereo[1::2] = mono if layout in ("right", "both") else quiet
        data = stereo.tobytes()
    with _pcm_lock:
        _pcm_items[(key, layout)] = data
    return data


def _units(ms: float, step: int) -> int:
    return max(1, round(ms * SAMPLE_RATE / 1000 / step))


@dataclass(frozen=True)
class _Grid:
    """How a plan is cut for one codec: every item is whole frames, and on the AAC grid every sound starts
    with one frame of digital silence, which makes splicing encoded AAC frames exact (see _bank_aac)."""

    step: int
    lead: int

    def sound(self, ms: float) -> int:
        return self.lead + _units(ms, self.step) * self.step

    def pauses(self, ms: float) -> int:
        if self.lead:  # the sounds bring their own silence
            return round(ms * SAMPLE_RATE / 1000 / self.step)
        return _units(ms, self.step)

    def pause(self, index: int) -> tuple[tuple, str]:
        if self.lead:
            return ("zero", 0, 0, self.step), "both"
        return ("noise", index % _NOISE_VARIANTS, 0, self.step), "pair"


_GRIDS = {MP3_FRAME: _Grid(MP3_FRAME, 0), AAC_FRAME: _Grid(AAC_FRAME, AAC_FRAME)}


# --- the plan: which bank items follow each other; also the source of Bandwidth's transcripts ---

Segment = tuple[tuple, str, int]  # (bank key, stereo layout, how many grid units of the item are used)


def plan(spec: AudioSpec) -> tuple[tuple[Segment, ...], tuple[Utterance, ...]]:
    """The recording's timeline: a DTMF signature, then turns of two voices, with hold music in long calls."""
    return _plan(spec.seed, spec.samples, unit(spec.fmt))  # the same content in every format of a grid


@functools.lru_cache(maxsize=64)
def _plan(seed: str, total: int, step: int) -> tuple[tuple[Segment, ...], tuple[Utterance, ...]]:
    grid = _GRIDS[step]
    rng = random.Random(f"plan/{GENERATOR_VERSION}/{seed}")
    words = random.Random(f"text/{GENERATOR_VERSION}/{seed}")
    segments: list[Segment] = []
    utterances: list[Utterance] = []
    pos = 0

    def add(key: tuple, layout: str) -> None:
        nonlocal pos
        used = min(key[-1], total - pos) // step
        if used > 0:
            segments.append((key, layout, used))
            pos += used * step

    def pause(ms: float) -> None:
        for _ in range(grid.pauses(ms)):
            add(*grid.pause(pos // step))

    for digit in rng.choices(list(_DTMF), k=rng.randint(3, 6)):  # an audible per-recording signature
        add(("dtmf", digit, grid.lead, grid.sound(100)), "both")
        pause(60)
    voices = rng.sample(range(len(_VOICE_F0)), 2)
    speaker = rng.randrange(2)
    hold_at = total * rng.uniform(0.3, 0.6) if total > 240 * SAMPLE_RATE else None
    while pos < total:
        if hold_at is not None and pos >= hold_at:
            hold_at = None
            melody = rng.sample(range(len(_HOLD_NOTES)), 6)
            for i in range(rng.randint(40, 150)):
                add(("note", melody[i % len(melody)], grid.lead, grid.sound(300)), "both")
            pause(rng.uniform(250, 750))
            continue
        start = last_end = pos
        pitch = rng.randrange(len(_PITCH_STEPS))
        syllables = rng.randint(3, 14)
        for _ in range(syllables):
            pitch = min(len(_PITCH_STEPS) - 1, max(0, pitch + rng.choice((-1, 0, 0, 1))))
            key = ("syl", voices[speaker], pitch, rng.randrange(2), grid.lead, grid.sound(rng.choice(_SYLLABLE_MS)))
            add(key, "left" if speaker == 0 else "right")
            last_end = pos
            pause(rng.uniform(30, 90))
        if last_end > start:
            lines = _AGENT_LINES if speaker == 1 else _CALLER_LINES
            text = " ".join(words.sample(lines, 1 + syllables // 8))
            confidence = round(words.uniform(0.78, 0.98), 3)
            utterances.append(Utterance(speaker, start / SAMPLE_RATE, last_end / SAMPLE_RATE, text, confidence))
        pause(rng.uniform(250, 1200))
        if rng.random() > 0.15:
            speaker = 1 - speaker
    return tuple(segments), tuple(utterances)


def utterances(spec: AudioSpec) -> tuple[Utterance, ...]:
    return plan(spec)[1]


def iter_pcm(spec: AudioSpec, chunk_bytes: int = 1 << 16) -> Iterator[bytes]:
    """Interleaved signed 16-bit little-endian PCM, exactly spec.samples frames."""
    segments, _ = plan(spec)
    step_bytes = unit(spec.fmt) * 2 * spec.channels
    parts: list[bytes] = []
    size = 0
    for key, layout, used in segments:
        data = _item(key, "mono" if spec.channels == 1 else layout)[: used * step_bytes]
        parts.append(data)
        size += len(data)
        if size >= chunk_bytes:
            yield b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)


# --- MP3 and AAC without encoding every file: each bank item is encoded once, files splice its frames ---
# LAME with its bit reservoir off makes self-contained frames, all the same size at 8 kHz CBR; AAC frames are
# self-contained too, and a leading silent frame on every AAC item makes the overlap between frames vanish at
# every splice. So a file is the concatenation of its items' frames: no encoder runs per file.

_banks: dict[tuple[str, int], tuple[dict[tuple, list[bytes]], bytes]] = {}
_banks_lock = threading.Lock()


def _mp3_frame_bytes(channels: int) -> int:
    return MP3_FRAME * MP3_BITRATES[channels] // 8 // SAMPLE_RATE  # 144 (mono) or 216 (stereo)


def _encode_packets(fmt: str, pcm: bytes, channels: int) -> tuple[list[bytes], bytes]:
    """Encode PCM in one run: the packets, and the codec's extradata (AAC's AudioSpecificConfig)."""
    import av  # imported lazily: startup must stay fast

    layout = "mono" if channels == 1 else "stereo"
    if fmt == "mp3":
        container = av.open(io.BytesIO(), "w", format="mp3")
        # fastest LAME mode; no bit reservoir (frames independent); plain stereo (the channels are two speakers)
        options = {"compression_level": "9", "reservoir": "0", "joint_stereo": "0"}
        stream = container.add_stream("libmp3lame", rate=SAMPLE_RATE, layout=layout, options=options)
        stream.bit_rate = MP3_BITRATES[channels]
    else:
        container = av.open(io.BytesIO(), "w", format="adts")
        stream = container.add_stream("aac", rate=SAMPLE_RATE, layout=layout, options={"aac_coder": "fast"})
        stream.bit_rate = AAC_BITRATES[channels]
    stream.codec_context.flags |= av.codec.context.Flags.bitexact.value
    frame = av.AudioFrame(format="s16", layout=layout, samples=len(pcm) // (2 * channels))
    frame.planes[0].update(pcm)
    frame.sample_rate = SAMPLE_RATE
    packets = [bytes(p) for p in stream.encode(frame)] + [bytes(p) for p in stream.encode(None)]
    extradata = bytes(stream.codec_context.extradata or b"")
    container.close()
    return packets, extradata


def _all_items(step: int, channels: int) -> list[tuple[tuple, str]]:
    """Every (bank key, layout) a plan on this grid can use, in a fixed order."""
    grid = _GRIDS[step]
    mono = channels == 1
    lead = grid.lead
    items: list[tuple[tuple, str]] = []
    for voice in range(len(_VOICE_F0)):
        for pitch in range(len(_PITCH_STEPS)):
            for timbre in range(len(_TIMBRES)):
                for length in sorted({grid.sound(ms) for ms in _SYLLABLE_MS}):
                    key = ("syl", voice, pitch, timbre, lead, length)
                    items += [(key, layout) for layout in (("mono",) if mono else ("left", "right"))]
    items += [(("dtmf", digit, lead, grid.sound(100)), "both") for digit in _DTMF]
    items += [(("note", n, lead, grid.sound(300)), "both") for n in range(len(_HOLD_NOTES))]
    items += [grid.pause(n) for n in range(1 if lead else _NOISE_VARIANTS)]
    return [(key, "mono" if mono else layout) for key, layout in items]


def _bank(fmt: str, channels: int) -> tuple[dict[tuple, list[bytes]], bytes]:
    """Every bank item's frames, from one encoder run over all items in a fixed order (same bytes every time)."""
    with _banks_lock:
        if (fmt, channels) in _banks:
            return _banks[(fmt, channels)]
        step = unit(fmt)
        items = _all_items(step, channels)
        gap = bytes(step * 2 * channels)
        pcm = bytearray()
        offsets = []
        for key, layout in items:
            offsets.append(len(pcm) // (2 * channels))
            pcm += _item(key, layout) + gap  # each item is encoded between silent frames
        packets, extradata = _encode_packets(fmt, bytes(pcm + gap * 2), channels)
        if fmt == "mp3" and any(len(p) != _mp3_frame_bytes(channels) for p in packets):
            raise RuntimeError("LAME produced frames of unexpected sizes; MP3 splicing needs strict CBR")
        frames = {}
        for (key, layout), offset in zip(items, offsets, strict=True):
            first = offset // step + 1  # both encoders delay their output by exactly one frame at 8 kHz
            frames[(key, layout)] = packets[first : first + key[-1] // step]
        _banks[(fmt, channels)] = (frames, extradata)
        return frames, extradata


def _info_frame(header: bytes, channels: int, frames: int, file_size: int) -> bytes:
    """A Xing "Info" frame (what LAME writes first in a CBR file): exact frame count, hence exact duration."""
    side_info = 9 if channels == 1 else 17  # MPEG-2/2.5 Layer III side information
    tag = b"Info" + struct.pack(">III", 0x3, frames, file_size)  # flags: frame and byte counts present
    body = header[:4] + bytes(side_info) + tag
    return body + bytes(_mp3_frame_bytes(channels) - len(body))


def _write_mp3(spec: AudioSpec, f: io.BufferedWriter) -> None:
    segments, _ = plan(spec)
    bank, _ = _bank("mp3", spec.channels)
    frames = spec.samples // MP3_FRAME
    mono = spec.channels == 1
    header = next(iter(bank.values()))[0][:4]
    f.write(_info_frame(header, spec.channels, frames, (frames + 1) * _mp3_frame_bytes(spec.channels)))
    for key, layout, used in segments:
        f.write(b"".join(bank[(key, "mono" if mono else layout)][:used]))


def wav_header(samples: int, channels: int, sample_rate: int = SAMPLE_RATE) -> bytes:
    data_len = samples * channels * 2
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_len)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * channels * 2, channels * 2, 16)
        + b"data"
        + struct.pack("<I", data_len)
    )


def _write_mp4(spec: AudioSpec, path: Path) -> None:
    import av  # imported lazily: startup must stay fast

    segments, _ = plan(spec)
    bank, extradata = _bank("mp4", spec.channels)
    layout = "mono" if spec.channels == 1 else "stereo"
    # faststart puts the index first, as a streaming playback URL's file has it; bitexact keeps bytes stable
    container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
    container.flags |= av.container.Flags.bitexact.value
    stream = container.add_stream("aac", rate=SAMPLE_RATE, layout=layout)
    stream.bit_rate = AAC_BITRATES[spec.channels]
    stream.codec_context.extradata = extradata
    time_base = Fraction(1, SAMPLE_RATE)
    pts = 0
    try:
        for key, item_layout, used in segments:
            for payload in bank[(key, "mono" if spec.channels == 1 else item_layout)][:used]:
                packet = av.Packet(payload)
                packet.stream = stream
                packet.pts = packet.dts = pts
                packet.duration = AAC_FRAME
                packet.time_base = time_base
                container.mux(packet)
                pts += AAC_FRAME
    finally:
        container.close()


def write_audio(spec: AudioSpec, path: Path) -> None:
    """Write the whole file: WAV in plain Python; MP3 and AAC-in-MP4 spliced from pre-encoded frames."""
    if spec.fmt == "mp4":
        _write_mp4(spec, path)
        return
    with open(path, "wb") as f:
        if spec.fmt == "mp3":
            _write_mp3(spec, f)
        elif spec.fmt == "wav":
            f.write(wav_header(spec.samples, spec.channels))
            for chunk in iter_pcm(spec):
                f.write(chunk)
        else:
            raise ValueError(f"unknown format {spec.fmt!r}")


class MediaCache:
    """Generated files on disk, keyed by spec digest; each file is written once, atomically, under a per-key lock."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path_for(self, spec: AudioSpec) -> Path:
        return self.root / f"{spec.digest}.{spec.fmt}"

    def ensure(self, spec: AudioSpec) -> Path:
        path = self.path_for(spec)
        if path.exists():
            return path
        with self._guard:
            lock = self._locks.setdefault(spec.digest + spec.fmt, threading.Lock())
        with lock:
            if not path.exists():
                self.root.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
                try:
                    write_audio(spec, tmp)
                    os.replace(tmp, path)  # readers never see a partial file
                finally:
                    tmp.unlink(missing_ok=True)
        return path

    def warm(self, specs: list[AudioSpec], workers: int = 2) -> None:
        """Generate every missing file (two workers: one writes files while the other builds a codec's bank)."""
        missing = [s for s in dict.fromkeys(specs) if not self.path_for(s).exists()]
        # longest first keeps the two workers busy until the end
        missing.sort(key=lambda s: s.samples * (0.1 if s.fmt == "wav" else 1.0), reverse=True)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox-warm") as pool:
            list(pool.map(self.ensure, missing))


class SyntheticWav:
    """A large mono WAV computed from the byte offset (a looping melody): no disk, any Range, for benchmarks."""

    def __init__(self, size_bytes: int) -> None:
        cycle = array("h")
        for i in range(75):  # 75 notes of 300 ms: a 22.5 s cycle
            cycle.frombytes(_item(("note", (i * 7) % len(_HOLD_NOTES), 0, 2400), "mono"))
        self._cycle = cycle.tobytes()
        samples = max(0, (size_bytes - 44) // 2)
        self.samples = samples
        self._header = wav_header(samples, 1)
        self.size = len(self._header) + 2 * samples

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE

    def iter_range(self, start: int, end: int, chunk: int = 1 << 16) -> Iterator[bytes]:
        """Bytes [start, end) of the file."""
        pos = start
        if pos < len(self._header):
            piece = self._header[pos:end]
            yield piece
            pos += len(piece)
        cycle = self._cycle
        while pos < end:
            offset = (pos - len(self._header)) % len(cycle)
            piece = cycle[offset : offset + min(chunk, end - pos)]
            yield piece
            pos += len(piece)
