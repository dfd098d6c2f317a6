"""Bandwidth emulation: recordings list and its cap, metadata, media with Range, deletes, transcription, pause."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

import pytest
import requests

from sandbox.pytest_plugin import start_sandbox

from .conftest import entry

ISO_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")
METADATA_FIELDS = {
    "applicationId", "accountId", "callId", "parentCallId", "recordingId", "to", "from", "transferCallerId",
    "transferTo", "duration", "direction", "channels", "startTime", "endTime", "fileFormat", "status", "mediaUrl",
    "transcription", "recordingName",
}  # fmt: skip


def seconds(duration: str) -> float:
    h, m, s = ISO_DURATION.match(duration).groups()
    return int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@pytest.fixture
def bw(sandbox, http):
    info = entry(sandbox, "bandwidth")
    base = f"{info['base_url']}/accounts/{info['options']['account_id']}"
    auth = (info["credentials"]["username"], info["credentials"]["password"])

    class Client:
        def get(self, path, **kw):
            return http.get(base + path, auth=kw.pop("auth", auth), **kw)

        def request(self, method, path, **kw):
            return http.request(method, base + path, auth=kw.pop("auth", auth), **kw)

        def recordings(self, **params):
            response = self.get("/recordings", params=params)
            assert response.status_code == 200, response.text
            return response.json()

    client = Client()
    client.base, client.info, client.auth = base, info, auth
    return client


def rec_path(rec):
    return f"/calls/{rec['callId']}/recordings/{rec['recordingId']}"


def test_it_lists_every_seeded_recording_with_the_documented_fields(bw):
    recs = bw.recordings()
    assert len(recs) == bw.info["seeded"]["recordings"]
    assert len({r["callId"] for r in recs}) == bw.info["seeded"]["calls"]
    for rec in recs:
        assert set(rec) == METADATA_FIELDS
        assert rec["accountId"] == "9900000"
        assert rec["callId"].startswith("c-") and rec["recordingId"].startswith("r-")
        assert ISO_DURATION.match(rec["duration"]), rec["duration"]
        assert rec["direction"] in ("inbound", "outbound")
        assert rec["channels"] in (1, 2)
        assert rec["fileFormat"] in ("wav", "mp3")
        assert rec["status"] in ("complete", "partial")
        assert rec["mediaUrl"] == f"{bw.base}{rec_path(rec)}/media"
        assert set(rec["transcription"]) == {"id", "status", "completedTime", "url"}
        assert abs((parse(rec["endTime"]) - parse(rec["startTime"])).total_seconds() - seconds(rec["duration"])) < 0.01
    starts = [r["startTime"] for r in recs]
    assert starts == sorted(starts)
    assert any(r["transcription"]["status"] == "available" for r in recs)
    assert any(r["transcription"]["status"] == "none" for r in recs)


def test_it_filters_by_number_and_start_time_window(bw):
    recs = bw.recordings()
    pivot = recs[len(recs) // 2]
    assert all(r["from"] == pivot["from"] for r in bw.recordings(**{"from": pivot["from"]}))
    assert pivot in bw.recordings(**{"from": pivot["from"]})
    assert pivot in bw.recordings(to=pivot["to"])
    # minStartTime is inclusive, maxStartTime exclusive
    assert bw.recordings(minStartTime=pivot["startTime"])[0] == pivot
    assert pivot not in bw.recordings(maxStartTime=pivot["startTime"])
    window = bw.recordings(minStartTime=recs[3]["startTime"], maxStartTime=recs[7]["startTime"])
    assert window == recs[3:7]
    assert bw.recordings(minStartTime="2000-01-01T00:00:00Z", maxStartTime="2000-01-02T00:00:00Z") == []


def test_it_rejects_a_malformed_time_filter(bw):
    response = bw.get("/recordings", params={"minStartTime": "yesterday"})
    assert response.status_code == 400
    assert response.json()["type"] == "validation"
    assert "minStartTime" in response.json()["description"]


def test_it_caps_the_list_at_1000_with_no_paging():
    handle = start_sandbox(calls=1100)
    try:
        info = handle.index["providers"]["bandwidth"]
        assert info["seeded"]["recordings"] > 1000
        auth = (info["credentials"]["username"], info["credentials"]["password"])
        url = f"{info['base_url']}/accounts/9900000/recordings"
        everything = requests.get(url, auth=auth).json()
        assert len(everything) == 1000
        days = {}
        for rec in everything:
            days[rec["startTime"][:10]] = days.get(rec["startTime"][:10], 0) + 1
        busy = max(days, key=days.get)
        day = requests.get(
            url, auth=auth, params={"minStartTime": f"{busy}T00:00:00Z", "maxStartTime": f"{busy}T23:59:59.999Z"}
        ).json()
        assert len(day) == 1000  # more than 1000 in one day: a sync must split the day itself
        first_half = requests.get(
            url, auth=auth, params={"minStartTime": f"{busy}T00:00:00Z", "maxStartTime": f"{busy}T12:00:00Z"}
        ).json()
        second_half = requests.get(
            url, auth=auth, params={"minStartTime": f"{busy}T12:00:00Z", "maxStartTime": f"{busy}T23:59:59.999Z"}
        ).json()
        assert len(first_half) < 1000 and len(second_half) < 1000
        assert len(first_half) + len(second_half) > 1000
        assert not {r["recordingId"] for r in first_half} & {r["recordingId"] for r in second_half}
    finally:
        handle.stop()


def test_it_gets_metadata_and_lists_a_calls_recordings(bw):
    rec = bw.recordings()[5]
    response = bw.get(rec_path(rec))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == rec
    per_call = bw.get(f"/calls/{rec['callId']}/recordings").json()
    assert rec in per_call
    assert bw.get("/calls/c-unknown/recordings").json() == []


def test_media_is_served_with_the_documented_content_types_and_ranges(bw):
    for rec in bw.recordings()[:12]:
        response = bw.get(rec_path(rec) + "/media")
        assert response.status_code == 200
        expected = {"wav": "audio/vnd.wave", "mp3": "audio/mpeg"}[rec["fileFormat"]]
        assert response.headers["Content-Type"] == expected
        assert response.headers["Accept-Ranges"] == "bytes"
        assert int(response.headers["Content-Length"]) == len(response.content)
        body = response.content
        part = bw.get(rec_path(rec) + "/media", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == body[100:200]
        assert part.headers["Content-Range"] == f"bytes 100-199/{len(body)}"
        tail = bw.get(rec_path(rec) + "/media", headers={"Range": "bytes=-50"})
        assert tail.status_code == 206 and tail.content == body[-50:]
        open_ended = bw.get(rec_path(rec) + "/media", headers={"Range": f"bytes={len(body) - 10}-"})
        assert open_ended.content == body[-10:]
        beyond = bw.get(rec_path(rec) + "/media", headers={"Range": f"bytes={len(body)}-"})
        assert beyond.status_code == 416
        assert beyond.headers["Content-Range"] == f"bytes */{len(body)}"
        assert beyond.json()["type"] == "range-not-satisfiable"
        multi = bw.get(rec_path(rec) + "/media", headers={"Range": "bytes=0-1,5-6"})
        assert multi.status_code == 200 and multi.content == body  # multiple ranges: the whole file


def test_head_on_media_gives_the_length_without_a_body(bw, http):
    rec = bw.recordings()[3]
    head = http.head(bw.base + rec_path(rec) + "/media", auth=bw.auth)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["Content-Length"]) == len(bw.get(rec_path(rec) + "/media").content)


def test_deleting_a_recording_hides_metadata_media_and_transcription(bw, restore):
    rec = bw.recordings()[4]
    assert bw.request("DELETE", rec_path(rec)).status_code == 204
    for suffix in ("", "/media", "/transcription"):
        response = bw.get(rec_path(rec) + suffix)
        assert response.status_code == 404
        assert response.json()["type"] == "not-found"
    assert rec["recordingId"] not in {r["recordingId"] for r in bw.recordings()}
    assert bw.request("DELETE", rec_path(rec)).status_code == 404
    restore.reset()
    assert bw.get(rec_path(rec)).status_code == 200


def test_deleting_only_the_media_keeps_metadata_with_status_deleted(bw, restore):
    rec = bw.recordings()[6]
    assert bw.request("DELETE", rec_path(rec) + "/media").status_code == 204
    meta = bw.get(rec_path(rec)).json()
    assert meta["status"] == "deleted"
    assert meta["recordingId"] == rec["recordingId"]
    media = bw.get(rec_path(rec) + "/media")
    assert media.status_code == 404 and "deleted" in media.json()["description"]
    assert rec["recordingId"] in {r["recordingId"] for r in bw.recordings()}


def test_a_transcription_goes_processing_then_available_with_two_transcripts_for_stereo(sandbox, bw, restore):
    sandbox.config(transcription_delay=0.4)
    rec = next(r for r in bw.recordings() if r["channels"] == 2 and r["transcription"]["status"] == "none")
    response = bw.request("POST", rec_path(rec) + "/transcription", json={"callbackTimeout": 5.5, "tag": "t1"})
    assert response.status_code == 204 and response.content == b""
    assert bw.get(rec_path(rec)).json()["transcription"]["status"] == "processing"
    assert bw.get(rec_path(rec) + "/transcription").status_code == 404
    time.sleep(0.5)
    meta = bw.get(rec_path(rec)).json()["transcription"]
    assert meta["status"] == "available"
    assert meta["url"] == bw.base + rec_path(rec) + "/transcription"
    assert parse(meta["completedTime"])
    body = bw.get(rec_path(rec) + "/transcription").json()
    assert set(body) == {"transcripts", "clips"}
    assert len(body["transcripts"]) == 2
    assert [t["speaker"] for t in body["transcripts"]] == [0, 1]
    assert all(t["text"] and 0 <= t["confidence"] <= 1 for t in body["transcripts"])
    assert body["clips"]
    total = seconds(rec["duration"])
    for clip in body["clips"]:
        assert set(clip) == {"speaker", "text", "confidence", "startTimeSeconds", "endTimeSeconds"}
        assert clip["speaker"] in (0, 1)
        assert 0 <= clip["startTimeSeconds"] < clip["endTimeSeconds"] <= total
    # a second GET returns the same transcript; DELETE removes it
    assert bw.get(rec_path(rec) + "/transcription").json() == body
    assert bw.request("DELETE", rec_path(rec) + "/transcription").status_code == 204
    assert bw.get(rec_path(rec)).json()["transcription"]["status"] == "none"


def test_a_mono_recording_has_one_transcript(bw):
    rec = next(r for r in bw.recordings() if r["channels"] == 1 and r["transcription"]["status"] == "available")
    body = bw.get(rec_path(rec) + "/transcription").json()
    assert len(body["transcripts"]) == 1
    assert {c["speaker"] for c in body["clips"]} == {0, 1}  # clips still say who spoke


def test_transcription_is_refused_for_a_recording_of_half_a_second_or_less(bw, restore):
    short = bw.info["short_recording"]
    response = bw.request(
        "POST", f"/calls/{short['call_id']}/recordings/{short['recording_id']}/transcription", json={}
    )
    assert response.status_code == 400
    assert response.json()["type"] == "validation"
    assert "500 milliseconds" in response.json()["description"]
    meta = bw.get(f"/calls/{short['call_id']}/recordings/{short['recording_id']}").json()
    assert seconds(meta["duration"]) <= 0.5
    assert meta["transcription"]["status"] == "none"


def test_transcription_request_validation(bw):
    rec = bw.recordings()[7]
    bad_timeout = bw.request("POST", rec_path(rec) + "/transcription", json={"callbackTimeout": 30})
    assert bad_timeout.status_code == 400 and bad_timeout.json()["type"] == "validation"
    not_json = bw.request(
        "POST",
        rec_path(rec) + "/transcription",
        data="x=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert not_json.status_code == 415 and not_json.json()["type"] == "unsupported-media-type"


def test_the_transcription_callback_is_sent(bw, sandbox, restore, httpserver):
    sandbox.config(transcription_delay=0.1)
    httpserver.expect_request("/cb", method="POST").respond_with_data("")
    rec = next(r for r in bw.recordings() if r["transcription"]["status"] == "none" and seconds(r["duration"]) > 1)
    response = bw.request(
        "POST",
        rec_path(rec) + "/transcription",
        json={"callbackUrl": httpserver.url_for("/cb"), "username": "u", "password": "p"},
    )
    assert response.status_code == 204
    deadline = time.monotonic() + 5
    while not httpserver.log and time.monotonic() < deadline:
        time.sleep(0.05)
    request, _ = httpserver.log[0]
    assert request.json["eventType"] == "transcriptionAvailable"
    assert request.json["recordingId"] == rec["recordingId"]
    assert request.authorization.username == "u"


def test_pause_and_resume_a_live_recording(bw, sandbox, restore):
    live = bw.info["live_calls"][0]["call_id"]
    response = bw.request("PUT", f"/calls/{live}/recording", json={"state": "paused"})
    assert response.status_code == 200
    states = {
        c["call_id"]: c["state"] for c in requests.get(sandbox.url + "/").json()["providers"]["bandwidth"]["live_calls"]
    }
    assert states[live] == "paused"
    assert bw.request("PUT", f"/calls/{live}/recording", json={"state": "recording"}).status_code == 200
    bad = bw.request("PUT", f"/calls/{live}/recording", json={"state": "stopped"})
    assert bad.status_code == 400 and bad.json()["type"] == "validation"
    finished = bw.recordings()[0]["callId"]
    gone = bw.request("PUT", f"/calls/{finished}/recording", json={"state": "paused"})
    assert gone.status_code == 404 and gone.json()["type"] == "not-found"


@pytest.mark.parametrize(
    ("auth", "account", "status", "error_type"),
    [
        (None, "9900000", 401, "unauthorized"),
        (("sandbox-bw-user", "wrong"), "9900000", 401, "unauthorized"),
        (("someone", "sandbox-bw-pass"), "9900000", 401, "unauthorized"),
        (("sandbox-bw-user", "sandbox-bw-pass"), "1234567", 403, "forbidden"),
    ],
)
def test_auth_failures(bw, http, auth, account, status, error_type):
    url = f"{bw.info['base_url']}/accounts/{account}/recordings"
    response = http.get(url, auth=auth)
    assert response.status_code == status
    assert response.json()["type"] == error_type
    assert response.json()["description"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_unknown_ids_paths_and_methods(bw):
    rec = bw.recordings()[0]
    assert bw.get(f"/calls/{rec['callId']}/recordings/r-nope").status_code == 404
    other_call = bw.get(f"/calls/c-other/recordings/{rec['recordingId']}")
    assert other_call.status_code == 404 and other_call.json()["type"] == "not-found"
    assert bw.get("/nothing-here").status_code == 404
    method = bw.request("PATCH", rec_path(rec))
    assert method.status_code == 405 and method.json()["type"] == "method-not-allowed"


def test_durations_are_iso8601_as_java_writes_them():
    from sandbox.providers.bandwidth import java_duration

    assert java_duration(13.67) == "PT13.67S"
    assert java_duration(75.5) == "PT1M15.5S"
    assert java_duration(3725.4) == "PT1H2M5.4S"
    assert java_duration(60) == "PT1M"
    assert java_duration(0) == "PT0S"
    assert seconds(java_duration(3725.4)) == pytest.approx(3725.4)


def test_the_long_recording_is_over_an_hour(bw):
    long = bw.info["long_recording"]
    meta = bw.get(f"/calls/{long['call_id']}/recordings/{long['recording_id']}").json()
    assert seconds(meta["duration"]) > 3600
    assert timedelta(seconds=seconds(meta["duration"])) > timedelta(hours=1)


def test_transcription_is_refused_for_a_recording_of_four_hours_or_more(tmp_path):
    handle = start_sandbox(calls=3, big_recording_mb=240, cache_dir=tmp_path)  # 240 MiB of 8 kHz mono: 4.4 h
    try:
        info = handle.index["providers"]["bandwidth"]
        big = info["big_recording"]
        url = f"{info['base_url']}/accounts/9900000/calls/{big['call_id']}/recordings/{big['recording_id']}"
        auth = (info["credentials"]["username"], info["credentials"]["password"])
        assert seconds(requests.get(url, auth=auth).json()["duration"]) >= 4 * 3600
        refused = requests.post(url + "/transcription", auth=auth, json={})
        assert refused.status_code == 400 and "less than 4 hours" in refused.json()["description"]
    finally:
        handle.stop()
