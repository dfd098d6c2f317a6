"""Every recording is real audio: ffprobe agrees with each provider's metadata, ffmpeg decodes it, content differs."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import tempfile
from array import array
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

from sandbox.audio import SAMPLE_RATE, iter_pcm

from .conftest import FFMPEG, entry
from .test_bandwidth import seconds as iso_seconds

CODECS = {"audio/vnd.wave": "pcm_s16le", "audio/wav": "pcm_s16le", "audio/mpeg": "mp3", "audio/mp4": "aac"}


def probe(ffprobe: str, data: bytes, decode: bool = False) -> dict:
    """ffprobe's view of the file; with `decode`, every frame is decoded too and any error message is kept."""
    with tempfile.NamedTemporaryFile() as f:  # a file, not a pipe: ffprobe reads durations from the whole file
        f.write(data)
        f.flush()
        result = subprocess.run(
            [
                ffprobe,
                "-v",
                "error",
                *(["-count_frames"] if decode else []),
                "-show_entries",
                "stream=codec_name,channels,sample_rate,nb_read_frames:format=duration",
                "-of",
                "json",
                f.name,
            ],
            capture_output=True,
        )
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert len(info["streams"]) == 1, info
    return {**info["streams"][0], "duration": float(info["format"]["duration"]), "errors": result.stderr.decode()}


def fetch_all(sandbox) -> list[dict]:
    """Every recording of every provider, fetched the way a client of that provider fetches it."""
    out = []
    state = sandbox.state
    bw = entry(sandbox, "bandwidth")
    auth = (bw["credentials"]["username"], bw["credentials"]["password"])
    for rec in requests.get(f"{bw['base_url']}/accounts/9900000/recordings", auth=auth).json():
        media = requests.get(rec["mediaUrl"], auth=auth)
        out.append(
            {
                "provider": "bandwidth",
                "id": rec["recordingId"],
                "response": media,
                "duration": iso_seconds(rec["duration"]),
                "tolerance": 0.005,
                "channels": rec["channels"],
            }
        )
    tr = entry(sandbox, "truto")
    headers = {"Authorization": f"Bearer {tr['credentials']['token']}"}
    recs = requests.get(f"{tr['base_url']}/recordings", params={**tr["options"], "limit": 500}, headers=headers).json()[
        "result"
    ]
    for rec in recs:
        media = requests.post(
            f"{tr['base_url']}/recordings/download",
            headers=headers,
            json={"url": rec["url"]},
            params={**tr["options"], "truto_response_format": "stream"},
        )
        span = datetime.fromisoformat(rec["end_time"]) - datetime.fromisoformat(rec["start_time"])
        out.append(
            {
                "provider": "truto",
                "id": rec["id"],
                "response": media,
                "duration": span.total_seconds(),
                "tolerance": 0.005,
                "channels": state.dataset["truto"].recording_by_id[rec["id"]].channels,
            }
        )
    en = entry(sandbox, "envoy")
    headers = {"Authorization": f"Bearer {en['credentials']['token']}"}
    calls = requests.get(f"{en['base_url']}/calls", params={"page_size": 100}, headers=headers).json()["data"]
    for call in calls:
        if call["recording_status"] != "AVAILABLE":
            continue
        info = requests.get(f"{en['base_url']}/calls/{call['id']}/recording", headers=headers).json()
        media = requests.get(info["url"])
        assert len(media.content) == info["file_size_bytes"]
        out.append(
            {
                "provider": "envoy",
                "id": call["id"],
                "response": media,
                "duration": info["duration_seconds"],
                "tolerance": 0.005,
                "channels": state.dataset["envoy"].call_by_id[call["id"]].recordings[0].channels,
            }
        )
    ka = entry(sandbox, "kaleyra")
    cutoff = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=5, minutes=30) - timedelta(days=182)
    for row in csv.DictReader(io.StringIO(requests.get(ka["report_url"]).text)):
        if not row["Recording ID"] or datetime.strptime(row["Start Time"], "%Y-%m-%d %H:%M:%S") < cutoff:
            continue
        media = requests.post(
            f"{ka['base_url']}/{ka['options']['sid']}/voice/recordings",
            headers={"api-key": ka["credentials"]["api_key"]},
            data={"id": row["Recording ID"], "download": "1"},
        )
        out.append(
            {
                "provider": "kaleyra",
                "id": row["Recording ID"],
                "response": media,
                "channels": 1,
                "duration": float(row["Recording Duration"]),
                "tolerance": 0.5,
            }
        )
    am = entry(sandbox, "ameyo")
    session = requests.post(
        f"{am['base_url']}/ameyorestapi/session/userLogin",
        json={"userId": am["credentials"]["username"], "token": am["credentials"]["password"]},
    ).json()["sessionId"]
    for row in csv.DictReader(io.StringIO(requests.get(am["report_url"]).text)):
        if row["talk_time"] == "00:00:00":
            continue
        h, m, s = (int(x) for x in row["talk_time"].split(":"))
        media = requests.get(
            f"{am['base_url']}/ameyorestapi/cc/downloadVoiceLog",
            headers={"Sessionid": session},
            params={
                "campaignId": row["campaign_id"],
                "crtObjectId": row["crt_object_id"],
                "targetFormat": "mp3",
                "filters": json.dumps({"callId": row["call_id"]}),
            },
        )
        channels = state.dataset["ameyo"].recording_by_id[row["crt_object_id"]].channels
        out.append(
            {
                "provider": "ameyo",
                "id": row["crt_object_id"],
                "response": media,
                "channels": channels,
                "duration": h * 3600 + m * 60 + s,
                "tolerance": 0.5,
            }
        )
    return out


def test_every_recording_decodes_and_matches_its_metadata(sandbox, ffprobe):
    sandbox.warm()
    items = fetch_all(sandbox)
    counts = {}
    for item in items:
        counts[item["provider"]] = counts.get(item["provider"], 0) + 1
    expected = {n: entry(sandbox, n)["seeded"]["recordings"] for n in ("bandwidth", "truto", "envoy", "ameyo")}
    expected["kaleyra"] = (
        entry(sandbox, "kaleyra")["seeded"]["recordings"] - entry(sandbox, "kaleyra")["expired_recordings"]
    )
    assert counts == expected  # nothing skipped: every recording that can be fetched was fetched

    def check(item):
        response = item["response"]
        assert response.status_code == 200, (item["provider"], item["id"], response.status_code)
        return item, probe(ffprobe, response.content, decode=True)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(check, items))
    longest = 0.0
    for item, info in results:
        label = f"{item['provider']} {item['id']}"
        content_type = item["response"].headers["Content-Type"]
        assert info["codec_name"] == CODECS[content_type], label
        assert info["channels"] == item["channels"], label
        assert int(info["sample_rate"]) == SAMPLE_RATE, label
        assert info["duration"] == pytest.approx(item["duration"], abs=item["tolerance"]), label
        assert info["errors"] == "" and int(info["nb_read_frames"]) > 0, f"{label}: {info['errors']}"
        assert info["duration"] >= 30 or item["provider"] == "bandwidth", label  # only Bandwidth's short one
        longest = max(longest, info["duration"])
    assert longest > 3600
    assert {i["response"].headers["Content-Type"] for i in items} == set(CODECS)
    assert {(i["provider"], i["channels"]) for i in items} >= {
        ("bandwidth", 2),
        ("truto", 2),
        ("envoy", 2),
        ("ameyo", 2),
    }


def test_ameyo_wav_and_mp3_of_a_voice_log_are_the_same_audio(sandbox, ffprobe):
    """The MP3 is spliced from pre-encoded frames: decoded, it must still match the PCM of the same recording."""
    rec = next(r for r in sandbox.state.dataset["ameyo"].recordings if r.channels == 2)
    mp3 = sandbox.state.cache.ensure(rec.audio).read_bytes()
    wav = sandbox.state.cache.ensure(rec.audio.with_format("wav")).read_bytes()
    assert probe(ffprobe, wav)["duration"] == pytest.approx(probe(ffprobe, mp3)["duration"], abs=0.001)
    decoded = decode_to_pcm(mp3)
    reference = array("h", wav[44:])
    # MP3 decoders delay the signal by 529 samples (the synthesis filter bank)
    assert snr(decoded[2 * 529 :], reference) > 12


def test_envoy_mp4_decodes_to_its_pcm(sandbox):
    rec = next(r for r in sandbox.state.dataset["envoy"].recordings if r.channels == 1)
    decoded = decode_to_pcm(sandbox.state.cache.ensure(rec.audio).read_bytes())
    reference = array("h", b"".join(iter_pcm(rec.audio)))
    assert len(decoded) == len(reference)
    assert snr(decoded, reference) > 12


def decode_to_pcm(data: bytes) -> array:
    result = subprocess.run(
        [FFMPEG, "-v", "error", "-i", "pipe:0", "-f", "s16le", "-acodec", "pcm_s16le", "-"],
        input=data,
        capture_output=True,
        check=True,
    )
    return array("h", result.stdout)


def snr(decoded: array, reference: array) -> float:
    n = min(len(decoded), len(reference))
    signal = sum(x * x for x in reference[:n])
    noise = sum((a - b) ** 2 for a, b in zip(decoded[:n], reference[:n], strict=True))
    return 10 * math.log10(signal / max(noise, 1))


def windows(samples: array, channels: int, channel: int, size: int = 800) -> list[float]:
    """RMS of each 100 ms window of one channel."""
    mono = samples[channel::channels]
    return [math.sqrt(sum(x * x for x in mono[i : i + size]) / size) for i in range(0, len(mono) - size, size)]


def test_recordings_sound_different_from_each_other(sandbox):
    recs = [r for r in sandbox.state.dataset["bandwidth"].recordings if r.fmt == "wav" and r.duration > 30][:5]
    heads = [
        array("h", sandbox.state.cache.ensure(r.audio).read_bytes()[44 : 44 + 2 * SAMPLE_RATE * 20 * r.channels])
        for r in recs
    ]
    mono_heads = [h[:: r.channels] for h, r in zip(heads, recs, strict=True)]
    for i in range(len(recs)):
        level = windows(mono_heads[i], 1, 0)
        assert max(level) > 1000 and min(level) < 100  # speech-like: loud turns and pauses
        for j in range(i + 1, len(recs)):
            assert mono_heads[i] != mono_heads[j]
            assert snr(mono_heads[i], mono_heads[j]) < 3  # not the same sound with noise on top


def test_stereo_recordings_carry_one_speaker_per_channel(sandbox):
    rec = next(r for r in sandbox.state.dataset["bandwidth"].recordings if r.fmt == "wav" and r.channels == 2)
    pcm = array("h", sandbox.state.cache.ensure(rec.audio).read_bytes()[44:])
    left, right = windows(pcm, 2, 0), windows(pcm, 2, 1)
    only_left = sum(1 for a, b in zip(left, right, strict=True) if a > 1000 and b < 200)
    only_right = sum(1 for a, b in zip(left, right, strict=True) if b > 1000 and a < 200)
    assert only_left > 20 and only_right > 20


def test_the_transcript_follows_the_audio(sandbox):
    """Bandwidth's clips are derived from the same plan as the audio: speech inside clips, not far outside."""
    rec = next(r for r in sandbox.state.dataset["bandwidth"].recordings if r.fmt == "wav" and r.channels == 2)
    from sandbox.audio import utterances

    pcm = array("h", sandbox.state.cache.ensure(rec.audio).read_bytes()[44:])
    for turn in utterances(rec.audio)[:20]:
        start, end = round(turn.start * SAMPLE_RATE), round(turn.end * SAMPLE_RATE)
        speaker = pcm[2 * start + turn.speaker : 2 * end : 2]
        assert max(abs(x) for x in speaker) > 2000


def test_wav_files_have_a_consistent_header(sandbox):
    rec = next(r for r in sandbox.state.dataset["kaleyra"].recordings if r.fmt == "wav")
    data = sandbox.state.cache.ensure(rec.audio).read_bytes()
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    assert re.match(rb"data", data[36:40])
