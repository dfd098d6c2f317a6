"""Truto emulation: calls and recordings in cursor pages, the stream download, auth and error bodies."""

from __future__ import annotations

import pytest

from .conftest import entry


@pytest.fixture
def truto(sandbox, http):
    info = entry(sandbox, "truto")

    class Client:
        base = info["base_url"]
        headers = {"Authorization": f"Bearer {info['credentials']['token']}"}
        params = {"integrated_account_id": info["options"]["integrated_account_id"]}

        def get(self, path, params=None, headers=None):
            return http.get(
                self.base + path,
                params={**self.params, **(params or {})},
                headers=headers if headers is not None else self.headers,
            )

        def download(self, url, fmt="stream", headers=None, **kw):
            return http.post(
                self.base + "/recordings/download",
                params={**self.params, "truto_response_format": fmt},
                headers={**self.headers, **(headers or {})},
                json={"url": url, "remote_data": {}},
                **kw,
            )

        def all(self, path, limit):
            items, cursor, pages = [], None, 0
            while True:
                response = self.get(path, {"limit": limit, **({"next_cursor": cursor} if cursor else {})})
                assert response.status_code == 200, response.text
                body = response.json()
                assert set(body) == {"result", "next_cursor"}
                items += body["result"]
                pages += 1
                cursor = body["next_cursor"]
                if cursor is None:
                    return items, pages

    client = Client()
    client.info = info
    return client


def test_calls_are_paged_with_cursors(truto):
    calls, pages = truto.all("/calls", limit=7)
    assert len(calls) == truto.info["seeded"]["calls"]
    assert pages == -(-len(calls) // 7)
    assert len({c["id"] for c in calls}) == len(calls)
    for call in calls:
        assert set(call) == {"id", "from", "to", "status", "direction", "created_at", "remote_data"}
        assert call["direction"] in ("inbound", "outbound")
        assert call["from"].startswith("+") and call["to"].startswith("+")
        assert call["remote_data"]["uuid"] == call["id"]
        assert call["remote_data"]["from"]["number"] == call["from"].lstrip("+")
    assert {c["status"] for c in calls} >= {"completed"}
    everything, one_page = truto.all("/calls", limit=500)
    assert everything == calls and one_page == 1


def test_recordings_are_paged_and_point_at_the_remote_file(truto):
    recs, _ = truto.all("/recordings", limit=10)
    assert len(recs) == truto.info["seeded"]["recordings"]
    call_ids = {c["id"] for c in truto.all("/calls", limit=100)[0]}
    for rec in recs:
        assert set(rec) == {"id", "call_id", "created_at", "start_time", "end_time", "url", "remote_data"}
        assert rec["call_id"] in call_ids
        assert rec["url"] == f"{truto.info['base_url'].removesuffix('/unified/voice')}/_remote/{rec['id']}.mp3"
        assert rec["start_time"] < rec["end_time"]
    by_call = truto.get("/recordings", {"call_id": recs[0]["call_id"]}).json()["result"]
    assert [r["id"] for r in by_call] == [recs[0]["id"]]


def test_a_bad_cursor_or_limit_is_a_400(truto):
    for params in ({"next_cursor": "garbage"}, {"limit": "0"}, {"limit": "ten"}):
        response = truto.get("/calls", params)
        assert response.status_code == 400
        assert response.json()["statusCode"] == 400 and response.json()["error"] == "Bad Request"


def test_the_stream_download_sends_the_whole_file_and_ignores_range(truto):
    rec = truto.get("/recordings").json()["result"][0]
    response = truto.download(rec["url"])
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "audio/mpeg"
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.content[:2] == b"\xff\xe3" and b"Info" in response.content[:40]  # MPEG-2.5 CBR, Info frame
    assert "Accept-Ranges" not in response.headers
    ranged = truto.download(rec["url"], headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 200 and ranged.content == response.content


def test_the_unified_and_raw_download_formats_answer_json(truto):
    rec = truto.get("/recordings").json()["result"][1]
    unified = truto.download(rec["url"], fmt="unified")
    assert unified.status_code == 200 and unified.json() == rec
    raw = truto.download(rec["url"], fmt="raw")
    assert raw.json() == rec["remote_data"]
    assert truto.download(rec["url"], fmt="xml").status_code == 400


def test_an_unknown_recording_url_is_a_remote_404(truto):
    response = truto.download("https://api.nexmo.com/v1/files/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    body = response.json()
    assert body["statusCode"] == 404 and body["error"] == "Not Found"
    assert body["truto_is_remote_error"] is True
    assert body["raw_response"]["title"] == "Not Found"


def test_a_missing_url_is_a_400(truto, http):
    response = http.post(truto.base + "/recordings/download", params=truto.params, headers=truto.headers, json={})
    assert response.status_code == 400 and "url" in response.json()["message"]


def test_the_remote_url_itself_wants_its_own_credentials(truto, http):
    rec = truto.get("/recordings").json()["result"][0]
    response = http.get(rec["url"])
    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized"


@pytest.mark.parametrize(
    ("headers", "params", "status"),
    [
        ({}, None, 401),
        ({"Authorization": "Bearer wrong"}, None, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, None, 401),
        (None, {"integrated_account_id": ""}, 400),
        (None, {"integrated_account_id": "not-a-uuid"}, 400),
        (None, {"integrated_account_id": "11111111-2222-4333-8444-555555555555"}, 404),
    ],
)
def test_auth_failures(truto, http, headers, params, status):
    response = http.get(
        truto.base + "/calls",
        headers=headers if headers is not None else truto.headers,
        params=params if params is not None else truto.params,
    )
    assert response.status_code == status
    body = response.json()
    assert set(body) >= {"statusCode", "error", "message"} and body["statusCode"] == status


def test_every_response_carries_the_rate_limit_headers(truto):
    first = truto.get("/calls")
    second = truto.get("/calls")
    for response in (first, second):
        assert int(response.headers["ratelimit-limit"]) > 0
        assert 0 <= int(response.headers["ratelimit-reset"]) <= 60
    assert int(second.headers["ratelimit-remaining"]) < int(first.headers["ratelimit-remaining"])
    assert "ratelimit-remaining" in truto.get("/calls", headers={}).headers  # errors too
