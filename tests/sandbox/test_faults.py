"""Fault injection (status, latency, dropped and slow bodies, expired links), the request log and the control API."""

from __future__ import annotations

import csv
import io
import time

import pytest
import requests

from sandbox.faults import FaultError, parse_cli, validate

from .conftest import entry


@pytest.fixture
def bw(sandbox):
    info = entry(sandbox, "bandwidth")
    auth = (info["credentials"]["username"], info["credentials"]["password"])
    base = f"{info['base_url']}/accounts/9900000"
    recs = requests.get(f"{base}/recordings", auth=auth).json()

    class Client:
        def get(self, path, **kw):
            return requests.get(base + path, auth=auth, **kw)

        def media_path(self, rec):
            return f"/calls/{rec['callId']}/recordings/{rec['recordingId']}/media"

    client = Client()
    client.recs, client.base, client.auth, client.info = recs, base, auth, info
    return client


def provider_requests(sandbox):
    """One authenticated request per provider, for the error body checks."""
    bw, tr, en, ka, am = (entry(sandbox, n) for n in ("bandwidth", "truto", "envoy", "kaleyra", "ameyo"))
    return {
        "bandwidth": lambda: requests.get(
            f"{bw['base_url']}/accounts/9900000/recordings",
            auth=(bw["credentials"]["username"], bw["credentials"]["password"]),
        ),
        "truto": lambda: requests.get(
            f"{tr['base_url']}/calls",
            params=tr["options"],
            headers={"Authorization": f"Bearer {tr['credentials']['token']}"},
        ),
        "envoy": lambda: requests.get(
            f"{en['base_url']}/calls", headers={"Authorization": f"Bearer {en['credentials']['token']}"}
        ),
        "kaleyra": lambda: requests.post(
            f"{ka['base_url']}/{ka['options']['sid']}/voice/recordings",
            headers={"api-key": ka["credentials"]["api_key"]},
            data={"id": "x"},
        ),
        "ameyo": lambda: requests.post(
            f"{am['base_url']}/ameyorestapi/session/userLogin",
            json={"userId": am["credentials"]["username"], "token": am["credentials"]["password"]},
        ),
    }


def test_429_for_the_next_n_requests_with_retry_after(sandbox, bw):
    fault = sandbox.fault("bandwidth", "status", status=429, count=3, retry_after=2)
    assert fault["remaining"] == 3
    since = sandbox.last_log_id()
    for _ in range(3):
        response = bw.get("/recordings")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "2"
        assert response.json() == {"type": "too-many-requests", "description": "Too Many Requests"}
    assert bw.get("/recordings").status_code == 200
    log = sandbox.log("bandwidth", since=since)
    assert [e["status"] for e in log] == [429, 429, 429, 200]
    assert [e["faults"] for e in log] == [["status"]] * 3 + [[]]


@pytest.mark.parametrize(
    ("provider", "status", "check"),
    [
        (
            "bandwidth",
            500,
            lambda r: r.json() == {"type": "internal-server-error", "description": "Internal Server Error"},
        ),
        (
            "truto",
            503,
            lambda r: (
                r.json() == {"statusCode": 503, "error": "Service Unavailable", "message": "Service Unavailable"}
                and "ratelimit-limit" in r.headers
            ),
        ),
        ("truto", 429, lambda r: r.headers["ratelimit-remaining"] == "0" and r.headers["Retry-After"] == "1"),
        ("envoy", 500, lambda r: r.json() == {"detail": "Internal Server Error"}),
        ("envoy", 429, lambda r: r.json() == {"detail": "Too Many Requests"} and r.headers["Retry-After"] == "1"),
        ("kaleyra", 500, lambda r: set(r.json()) == {"code", "message", "data", "error"}),
        ("ameyo", 500, lambda r: r.json()["code"] == 500 and r.json()["message"]),
    ],
)
def test_status_faults_answer_the_providers_error_body(sandbox, provider, status, check):
    sandbox.fault(provider, "status", status=status)
    response = provider_requests(sandbox)[provider]()
    assert response.status_code == status
    assert check(response)
    assert provider_requests(sandbox)[provider]().status_code != status  # count defaults to 1


def test_a_status_fault_on_a_signed_link_answers_s3_xml(sandbox, http):
    ka = entry(sandbox, "kaleyra")
    rows = list(csv.DictReader(io.StringIO(http.get(ka["report_url"]).text)))
    rec_id = max(rows, key=lambda r: r["Start Time"] if r["Recording ID"] else "")["Recording ID"]  # the newest
    sandbox.fault("kaleyra", "status", status=503, path_contains="/_s3/")
    link_response = http.post(
        f"{ka['base_url']}/{ka['options']['sid']}/voice/recordings",
        headers={"api-key": ka["credentials"]["api_key"]},
        data={"id": rec_id},
    )
    response = http.get(link_response.json()["data"]["link"])
    assert response.status_code == 503 and b"<Code>SlowDown</Code>" in response.content


def test_latency_is_added_and_can_be_scoped_to_a_path(sandbox, bw):
    sandbox.fault("bandwidth", "latency", ms=400, path_contains="/media")
    t0 = time.monotonic()
    assert bw.get("/recordings").status_code == 200
    assert time.monotonic() - t0 < 0.3
    t0 = time.monotonic()
    assert bw.get(bw.media_path(bw.recs[3]), headers={"Range": "bytes=0-9"}).status_code == 206
    assert time.monotonic() - t0 >= 0.4
    assert sandbox.log("bandwidth")[-1]["faults"] == ["latency"]


def test_the_connection_drops_after_k_bytes_of_the_body(sandbox, bw):
    rec = bw.recs[3]
    full = int(bw.get(bw.media_path(rec), stream=True).headers["Content-Length"])
    sandbox.fault("bandwidth", "drop_after", bytes=1000, path_contains="/media")
    since = sandbox.last_log_id()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        bw.get(bw.media_path(rec)).content
    entry_ = sandbox.log("bandwidth", since=since)[-1]
    assert entry_["bytes_sent"] == 1000 and entry_["body_length"] == full
    assert entry_["completed"] is False and entry_["client_disconnected"] is False
    assert entry_["faults"] == ["drop_after"]
    assert len(bw.get(bw.media_path(rec)).content) == full  # count defaults to 1


def test_a_slow_body_is_throttled(sandbox, bw):
    rec = bw.recs[3]
    sandbox.fault("bandwidth", "slow_body", bytes_per_second=40_000, path_contains="/media")
    t0 = time.monotonic()
    body = bw.get(bw.media_path(rec), headers={"Range": "bytes=0-39999"}).content
    elapsed = time.monotonic() - t0
    assert len(body) == 40_000
    assert 0.9 <= elapsed < 3
    entry_ = sandbox.log("bandwidth")[-1]
    assert entry_["completed"] is True and entry_["faults"] == ["slow_body"]


def test_a_client_hang_up_stops_the_download_and_is_logged(sandbox, bw):
    long = bw.info["long_recording"]
    path = f"/calls/{long['call_id']}/recordings/{long['recording_id']}/media"
    bw.get(path, headers={"Range": "bytes=0-0"})  # make sure the file exists before timing anything
    since = sandbox.last_log_id()
    response = bw.get(path, stream=True)
    size = int(response.headers["Content-Length"])
    got = 0
    for chunk in response.iter_content(64 * 1024):
        got += len(chunk)
        if got >= 256 * 1024:
            break
    hung_up_at = time.monotonic()
    response.close()  # hang up mid-body (as a closed browser tab does)
    deadline = time.monotonic() + 5
    while True:
        entry_ = sandbox.log("bandwidth", since=since, settle=0)[-1]
        if entry_["ended_at"] or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert entry_["client_disconnected"] is True and entry_["completed"] is False
    assert entry_["body_length"] == size
    assert got <= entry_["bytes_sent"] < size // 4
    assert time.monotonic() - hung_up_at < 2


def test_expire_links_refuses_links_already_handed_out(sandbox, http):
    en = entry(sandbox, "envoy")
    headers = {"Authorization": f"Bearer {en['credentials']['token']}"}
    call = next(
        c
        for c in http.get(f"{en['base_url']}/calls", headers=headers).json()["data"]
        if c["recording_status"] == "AVAILABLE"
    )
    url = http.get(f"{en['base_url']}/calls/{call['id']}/recording", headers=headers).json()["url"]
    assert http.get(url, headers={"Range": "bytes=0-0"}).status_code == 206
    assert sandbox.fault("envoy", "expire_links")["applied"] is True
    refused = http.get(url)
    assert refused.status_code == 403 and b"Request has expired" in refused.content
    fresh = http.get(f"{en['base_url']}/calls/{call['id']}/recording", headers=headers).json()["url"]
    assert http.get(fresh, headers={"Range": "bytes=0-0"}).status_code == 206
    sandbox.fault("envoy", "expire_links", count=1)
    assert http.get(fresh).status_code == 403
    assert http.get(fresh, headers={"Range": "bytes=0-0"}).status_code == 206


def test_the_wildcard_provider_applies_everywhere(sandbox):
    sandbox.fault("*", "status", status=502, count=5)
    for name, call in provider_requests(sandbox).items():
        assert call().status_code == 502, name


def test_the_log_records_each_request(sandbox, bw, http):
    since = sandbox.last_log_id()
    bw.get(bw.media_path(bw.recs[2]), headers={"Range": "bytes=10-29"})
    bw.get("/recordings")
    entries = sandbox.log(since=since)
    assert len(entries) == 2
    media, listing = entries
    assert set(media) == {
        "id",
        "provider",
        "method",
        "path",
        "range",
        "status",
        "bytes_sent",
        "body_length",
        "completed",
        "client_disconnected",
        "faults",
        "started_at",
        "ended_at",
        "duration_ms",
    }
    assert media["provider"] == "bandwidth" and media["method"] == "GET" and media["status"] == 206
    assert media["range"] == "bytes=10-29" and media["bytes_sent"] == media["body_length"] == 20
    assert media["completed"] is True and media["client_disconnected"] is False
    assert listing["id"] == media["id"] + 1 and listing["path"].endswith("/recordings")
    assert sandbox.log("truto", since=since) == []
    assert http.delete(sandbox.url + "/_control/log").json() == {"entries": []}
    assert sandbox.log(since=0) == []


def test_signatures_are_redacted_in_the_log(sandbox, http):
    en = entry(sandbox, "envoy")
    headers = {"Authorization": f"Bearer {en['credentials']['token']}"}
    call = next(
        c
        for c in http.get(f"{en['base_url']}/calls", headers=headers).json()["data"]
        if c["recording_status"] == "AVAILABLE"
    )
    url = http.get(f"{en['base_url']}/calls/{call['id']}/recording", headers=headers).json()["url"]
    http.get(url, headers={"Range": "bytes=0-0"})
    assert sandbox.log("envoy")[-1]["path"].endswith("&sig=REDACTED")


def test_the_control_api(sandbox, http):
    url = sandbox.url + "/_control"
    summary = http.get(url + "/").json()
    assert {"faults", "config", "clock", "endpoints"} <= set(summary)
    a = http.post(url + "/faults", json={"provider": "truto", "kind": "latency", "ms": 1}).json()
    b = http.post(url + "/faults", json=[{"provider": "envoy", "kind": "slow_body", "bytes_per_second": 1e6}]).json()
    assert a["kind"] == "latency" and a["remaining"] is None and b["faults"][0]["provider"] == "envoy"
    assert len(http.get(url + "/faults").json()["faults"]) == 2
    assert http.delete(f"{url}/faults/{a['id']}").status_code == 204
    assert http.delete(f"{url}/faults/{a['id']}").status_code == 404
    assert [f["id"] for f in http.get(url + "/faults").json()["faults"]] == [b["faults"][0]["id"]]
    assert http.delete(url + "/faults").json() == {"faults": []}
    for bad in (
        {"provider": "nobody", "kind": "latency", "ms": 1},
        {"provider": "truto", "kind": "explode"},
        {"provider": "truto", "kind": "latency"},
        {"provider": "truto", "kind": "status", "status": 200},
        {"provider": "truto", "kind": "expire_sessions"},
        {"provider": "bandwidth", "kind": "expire_links"},
        {"provider": "truto", "kind": "latency", "ms": 1, "colour": "red"},
    ):
        response = http.post(url + "/faults", json=bad)
        assert response.status_code == 400 and response.json()["error"], bad
    assert http.post(url + "/faults", data="{").status_code == 400
    config = http.post(url + "/config", json={"session_ttl": 5}).json()
    assert config["session_ttl"] == 5
    assert http.post(url + "/config", json={"nope": 1}).status_code == 400
    clock = http.post(url + "/clock", json={"advance": 60}).json()
    assert clock["offset"] == 60
    assert http.post(url + "/clock", json={"offset": 0}).json()["offset"] == 0
    assert http.post(url + "/clean").json() == {"clean": True}
    assert http.get(url + "/config").json()["session_ttl"] == 1800
    assert http.get(url + "/nothing").status_code == 404


def test_warm_generates_every_file(sandbox):
    result = sandbox.warm("envoy")
    assert result["files"] == entry(sandbox, "envoy")["seeded"]["recordings"]


def test_reset_restores_faults_log_and_data(sandbox, bw, restore):
    rec = bw.recs[8]
    assert (
        requests.delete(f"{bw.base}/calls/{rec['callId']}/recordings/{rec['recordingId']}", auth=bw.auth).status_code
        == 204
    )
    sandbox.fault("truto", "latency", ms=5)
    sandbox.reset()
    assert bw.get(f"/calls/{rec['callId']}/recordings/{rec['recordingId']}").status_code == 200
    assert requests.get(sandbox.url + "/_control/faults").json()["faults"] == []
    assert len(sandbox.log(since=0)) == 1  # only the GET just made


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "bandwidth:status=429,count=3,retry_after=2",
            {"provider": "bandwidth", "kind": "status", "status": "429", "count": "3", "retry_after": "2"},
        ),
        ("truto:latency=250", {"provider": "truto", "kind": "latency", "ms": "250"}),
        (
            "envoy:drop_after=5000,path_contains=/_media/",
            {"provider": "envoy", "kind": "drop_after", "bytes": "5000", "path_contains": "/_media/"},
        ),
        ("*:slow_body=32000", {"provider": "*", "kind": "slow_body", "bytes_per_second": "32000"}),
        ("ameyo:expire_sessions,count=2", {"provider": "ameyo", "kind": "expire_sessions", "count": "2"}),
    ],
)
def test_the_cli_fault_syntax(text, expected):
    assert parse_cli(text) == expected
    validate(parse_cli(text))


@pytest.mark.parametrize(
    "text",
    [
        "bandwidth",
        "bandwidth:",
        "bandwidth:status=429,count",
        "ameyo:expire_sessions=1",
        "truto:status=abc",
        "kaleyra:latency=-5",
    ],
)
def test_bad_cli_faults_are_refused(text):
    with pytest.raises(FaultError):
        validate(parse_cli(text))
