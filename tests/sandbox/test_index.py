"""The index (GET /), determinism, the command line, --calls and the synthetic big recording."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sandbox.pytest_plugin import start_sandbox

from .conftest import FFPROBE, entry

PROVIDERS = ("bandwidth", "truto", "envoy", "kaleyra", "ameyo")
REPO = Path(__file__).resolve().parents[2]


def test_the_index_describes_each_provider(sandbox, http):
    index = http.get(sandbox.url + "/").json()
    assert list(index["providers"]) == list(PROVIDERS)
    for name, info in index["providers"].items():
        assert info["base_url"].startswith(sandbox.url + "/" + name)
        assert info["credentials"] and info["options"] is not None
        assert info["seeded"]["calls"] >= 25 and info["seeded"]["recordings"] >= 20
    bw, tr, en, ka, am = (index["providers"][n] for n in PROVIDERS)
    assert bw["base_url"] == f"{sandbox.url}/bandwidth/api/v2"
    assert set(bw["credentials"]) == {"username", "password"} and bw["options"] == {"account_id": "9900000"}
    assert tr["base_url"] == f"{sandbox.url}/truto/unified/voice"
    assert set(tr["credentials"]) == {"token"} and set(tr["options"]) == {"integrated_account_id"}
    assert en["base_url"] == f"{sandbox.url}/envoy/api/v1"
    assert set(en["credentials"]) == {"token"} and set(en["options"]) == {"organization_id"}
    assert ka["base_url"] == f"{sandbox.url}/kaleyra/v1"
    assert set(ka["credentials"]) == {"api_key"} and set(ka["options"]) == {"sid"}
    assert ka["report_url"] == f"{sandbox.url}/_reports/kaleyra.csv"
    assert am["base_url"] == f"{sandbox.url}/ameyo"
    assert set(am["credentials"]) == {"username", "password"} and set(am["options"]) == {"campaign_id"}
    assert am["report_url"] == f"{sandbox.url}/_reports/ameyo.csv"


def test_base_urls_follow_the_host_the_request_came_to(sandbox, http):
    index = http.get(sandbox.url + "/", headers={"Host": "sandbox.example:8001"}).json()
    assert index["providers"]["bandwidth"]["base_url"] == "http://sandbox.example:8001/bandwidth/api/v2"
    assert index["providers"]["kaleyra"]["report_url"] == "http://sandbox.example:8001/_reports/kaleyra.csv"


def test_unknown_top_level_paths_are_404(sandbox, http):
    response = http.get(sandbox.url + "/nowhere")
    assert response.status_code == 404 and "GET /" in response.json()["error"]


def snapshot(handle) -> dict[str, bytes]:
    """Index, listings and reports, all fetched with the same Host header."""
    host = {"Host": "sandbox.test"}
    info = {n: entry(handle, n) for n in PROVIDERS}
    out = {"index": requests.get(handle.url + "/", headers=host).content}
    bw = info["bandwidth"]
    out["bandwidth"] = requests.get(
        f"{handle.url}/bandwidth/api/v2/accounts/9900000/recordings",
        headers=host,
        auth=(bw["credentials"]["username"], bw["credentials"]["password"]),
    ).content
    tr = info["truto"]
    for path in ("calls", "recordings"):
        out[f"truto/{path}"] = requests.get(
            f"{handle.url}/truto/unified/voice/{path}",
            params=tr["options"],
            headers={**host, "Authorization": f"Bearer {tr['credentials']['token']}"},
        ).content
    en = info["envoy"]
    out["envoy"] = requests.get(
        f"{handle.url}/envoy/api/v1/calls",
        params={"page_size": 100},
        headers={**host, "Authorization": f"Bearer {en['credentials']['token']}"},
    ).content
    out["kaleyra"] = requests.get(f"{handle.url}/_reports/kaleyra.csv", headers=host).content
    out["ameyo"] = requests.get(f"{handle.url}/_reports/ameyo.csv", headers=host).content
    return out


def test_the_same_seed_gives_byte_identical_index_and_listings(sandbox):
    twin = start_sandbox(seed=0)
    other = start_sandbox(seed=1)
    try:
        mine, theirs, different = snapshot(sandbox), snapshot(twin), snapshot(other)
        assert mine == theirs
        for key in mine:
            if key != "index":  # the index is the same apart from the seed, credentials are fixed
                assert mine[key] != different[key], key
        assert json.loads(different["index"])["sandbox"]["seed"] == 1
    finally:
        twin.stop()
        other.stop()


def test_the_same_seed_gives_byte_identical_audio_in_another_process(sandbox, tmp_path):
    specs = {}
    for name in PROVIDERS:
        for spec in sandbox.state.providers[name].media_specs():
            specs.setdefault((spec.fmt, spec.channels), spec)
    specs = sorted(specs.values(), key=lambda s: s.samples)[:6]
    expected = {s.digest: hashlib.sha256(sandbox.state.cache.ensure(s).read_bytes()).hexdigest() for s in specs}
    script = (
        "import hashlib, json, sys\n"
        "from pathlib import Path\n"
        "from sandbox.audio import AudioSpec, MediaCache\n"
        "cache = MediaCache(Path(sys.argv[1]))\n"
        "out = {}\n"
        "for s in json.loads(sys.argv[2]):\n"
        "    spec = AudioSpec(**s)\n"
        "    out[spec.digest] = hashlib.sha256(cache.ensure(spec).read_bytes()).hexdigest()\n"
        "print(json.dumps(out))\n"
    )
    arg = json.dumps([{"seed": s.seed, "samples": s.samples, "channels": s.channels, "fmt": s.fmt} for s in specs])
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), arg], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert json.loads(result.stdout) == expected
    assert {s.fmt for s in specs} == {"wav", "mp3", "mp4"}


def test_calls_sets_the_size_of_the_dataset():
    handle = start_sandbox(calls=5)
    try:
        for name in PROVIDERS:
            assert handle.index["providers"][name]["seeded"]["calls"] == 5
    finally:
        handle.stop()


def test_the_command_line_starts_fast_applies_faults_and_never_serves_partial_audio(tmp_path):
    t0 = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            "0",
            "--cache-dir",
            str(tmp_path),
            "--seed",
            "3",
            "--fault",
            "bandwidth:status=429,count=1,retry_after=2,path_contains=/recordings",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = process.stdout.readline()
        url = line.split("listening on ")[1].split()[0]
        index = requests.get(url + "/", timeout=5).json()
        assert time.monotonic() - t0 < 2.0  # answering GET / does not wait for the audio cache (cold here)
        assert index["sandbox"]["seed"] == 3
        bw = index["providers"]["bandwidth"]
        auth = (bw["credentials"]["username"], bw["credentials"]["password"])
        listing = f"{bw['base_url']}/accounts/9900000/recordings"
        first = requests.get(listing, auth=auth)
        assert first.status_code == 429 and first.headers["Retry-After"] == "2"
        assert requests.get(listing, auth=auth).status_code == 200
        long = bw["long_recording"]  # over an hour: generated on this request, while the warm-up runs too
        media = requests.get(
            f"{bw['base_url']}/accounts/9900000/calls/{long['call_id']}/recordings/{long['recording_id']}/media",
            auth=auth,
        )
        assert media.status_code == 200
        assert int(media.headers["Content-Length"]) == len(media.content) > 50_000_000
        assert int.from_bytes(media.content[40:44], "little") == len(media.content) - 44  # WAV data size
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_big_synthetic_recording(tmp_path):
    handle = start_sandbox(calls=3, big_recording_mb=40, cache_dir=tmp_path)
    try:
        bw = handle.index["providers"]["bandwidth"]
        big = bw["big_recording"]
        assert bw["seeded"]["recordings"] == len(handle.state.dataset["bandwidth"].recordings) + 1
        auth = (bw["credentials"]["username"], bw["credentials"]["password"])
        base = f"{bw['base_url']}/accounts/9900000/calls/{big['call_id']}/recordings/{big['recording_id']}"
        meta = requests.get(base, auth=auth).json()
        assert meta["fileFormat"] == "wav" and meta["channels"] == 1 and meta["duration"].startswith("PT")
        whole = requests.get(base + "/media", auth=auth)
        assert len(whole.content) == big["size_bytes"] == int(whole.headers["Content-Length"])
        assert abs(big["size_bytes"] - 40 * 1024 * 1024) < 4
        middle = big["size_bytes"] // 2 + 1
        part = requests.get(base + "/media", auth=auth, headers={"Range": f"bytes={middle}-{middle + 99_999}"})
        assert part.status_code == 206 and part.content == whole.content[middle : middle + 100_000]
        assert not list(tmp_path.iterdir())  # nothing written to disk
        host = bw["base_url"].split("//")[1]
        user, password = auth
        probe = subprocess.run(
            [
                FFPROBE,
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,channels,sample_rate:format=duration",
                "-of",
                "json",
                f"http://{user}:{password}@{host}/accounts/9900000/calls/{big['call_id']}/recordings/"
                f"{big['recording_id']}/media",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        info = json.loads(probe.stdout)
        assert info["streams"][0]["codec_name"] == "pcm_s16le" and info["streams"][0]["channels"] == 1
        assert float(info["format"]["duration"]) == pytest.approx((big["size_bytes"] - 44) / 2 / 8000, abs=0.01)
    finally:
        handle.stop()


def test_the_calls_option_takes_one_number_or_per_provider_counts():
    import argparse

    from sandbox.__main__ import parse_calls

    assert parse_calls("7") == 7
    assert parse_calls("bandwidth=1200,truto=5") == {"bandwidth": 1200, "truto": 5}
    for bad in ("many", "nobody=3", "bandwidth=x"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_calls(bad)
    handle = start_sandbox(calls={"truto": 4})
    try:
        assert handle.index["providers"]["truto"]["seeded"]["calls"] == 4
        assert handle.index["providers"]["envoy"]["seeded"]["calls"] == 30
    finally:
        handle.stop()
