"""Envoy emulation: paged calls, filters, FastAPI-style errors, and the time-limited playback URL with Range."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from .conftest import entry


@pytest.fixture
def envoy(sandbox, http):
    info = entry(sandbox, "envoy")

    class Client:
        base = info["base_url"]
        headers = {"Authorization": f"Bearer {info['credentials']['token']}"}

        def get(self, path, params=None, headers=None):
            return http.get(self.base + path, params=params, headers=headers if headers is not None else self.headers)

        def calls(self, **params):
            response = self.get("/calls", params)
            assert response.status_code == 200, response.text
            return response.json()

        def all_calls(self, **params):
            out, page = [], 1
            while True:
                body = self.calls(page=page, page_size=100, **params)
                out += body["data"]
                if not body["pagination"]["has_next"]:
                    return out
                page += 1

    client = Client()
    client.info = info
    return client


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_calls_are_paged(envoy):
    first = envoy.calls(page=1, page_size=7)
    total = envoy.info["seeded"]["calls"]
    assert first["pagination"] == {
        "page": 1,
        "page_size": 7,
        "total_count": total,
        "total_pages": -(-total // 7),
        "has_next": True,
        "has_prev": False,
    }
    seen = []
    for page in range(1, first["pagination"]["total_pages"] + 1):
        body = envoy.calls(page=page, page_size=7)
        assert body["pagination"]["has_prev"] == (page > 1)
        seen += body["data"]
    assert len(seen) == total and len({c["id"] for c in seen}) == total
    starts = [parse(c["call_start_time"]) for c in seen]
    assert starts == sorted(starts, reverse=True)  # newest first
    beyond = envoy.calls(page=99, page_size=7)
    assert beyond["data"] == [] and beyond["pagination"]["has_next"] is False
    default = envoy.calls()
    assert default["pagination"]["page_size"] == 20


def test_call_fields(envoy):
    calls = envoy.all_calls()
    fields = {
        "id",
        "status",
        "call_direction",
        "from_number",
        "to_number",
        "phone_number",
        "call_start_time",
        "call_end_time",
        "call_type",
        "recording_status",
        "created_at",
        "updated_at",
    }
    for call in calls:
        assert set(call) == fields
        assert call["id"].startswith("call_") and len(call["id"]) == 41
        assert call["call_direction"] in ("INBOUND", "OUTBOUND", None)
        assert call["recording_status"] in ("AVAILABLE", "NONE")
        assert parse(call["call_start_time"]) < parse(call["call_end_time"])
    assert sum(c["recording_status"] == "AVAILABLE" for c in calls) == envoy.info["seeded"]["recordings"]
    assert any(c["call_direction"] is None for c in calls)
    one = envoy.get(f"/calls/{calls[0]['id']}")
    assert one.status_code == 200 and one.json() == calls[0]


def test_calls_filter_by_status_and_dates(envoy):
    calls = envoy.all_calls()
    completed = envoy.all_calls(status="COMPLETED")
    assert completed == [c for c in calls if c["status"] == "COMPLETED"]
    pivot = calls[len(calls) // 2]
    day = pivot["call_start_time"][:10]
    on_day = envoy.all_calls(start_date=day, end_date=day)
    assert pivot in on_day and all(c["call_start_time"][:10] == day for c in on_day)
    since = envoy.all_calls(start_date=pivot["call_start_time"])
    assert pivot in since and all(parse(c["call_start_time"]) >= parse(pivot["call_start_time"]) for c in since)


@pytest.mark.parametrize(
    ("params", "loc", "error_type"),
    [
        ({"page_size": 101}, "page_size", "less_than_equal"),
        ({"page_size": 0}, "page_size", "greater_than_equal"),
        ({"page": 0}, "page", "greater_than_equal"),
        ({"page": "two"}, "page", "int_parsing"),
        ({"status": "DONE"}, "status", "enum"),
        ({"start_date": "last week"}, "start_date", "datetime_from_date_parsing"),
    ],
)
def test_invalid_queries_are_422_with_fastapi_details(envoy, params, loc, error_type):
    response = envoy.get("/calls", params)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["query", loc] and detail[0]["type"] == error_type and detail[0]["msg"]


def test_a_bad_call_id_is_422_and_an_unknown_one_404(envoy):
    bad = envoy.get("/calls/not-a-uuid/recording")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["path", "call_id"]
    unknown = envoy.get("/calls/call_00000000-0000-0000-0000-000000000000/recording")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Call not found"}
    no_recording = next(c for c in envoy.all_calls() if c["recording_status"] == "NONE")
    missing = envoy.get(f"/calls/{no_recording['id']}/recording")
    assert missing.status_code == 404 and missing.json() == {"detail": "Recording not found"}


def test_the_recording_answers_a_fresh_time_limited_url(envoy, http):
    call = next(c for c in envoy.all_calls() if c["recording_status"] == "AVAILABLE")
    first = envoy.get(f"/calls/{call['id']}/recording").json()
    assert set(first) == {
        "call_id",
        "url",
        "content_type",
        "expires_at",
        "recording_status",
        "duration_seconds",
        "file_size_bytes",
        "recording_start_time",
    }
    assert first["call_id"] == call["id"] and first["content_type"] == "audio/mp4"
    assert first["recording_status"] == "AVAILABLE"
    assert 0 < (parse(first["expires_at"]) - datetime.now(parse(first["expires_at"]).tzinfo)).total_seconds() <= 900
    time.sleep(1.05)
    second = envoy.get(f"/calls/{call['id'].removeprefix('call_')}/recording").json()  # the bare uuid works too
    assert second["url"] != first["url"] and second["expires_at"] > first["expires_at"]
    media = http.get(first["url"])
    assert media.status_code == 200
    assert media.headers["Content-Type"] == "audio/mp4" and media.headers["Accept-Ranges"] == "bytes"
    assert len(media.content) == first["file_size_bytes"]
    assert media.content[4:8] == b"ftyp"
    part = http.get(first["url"], headers={"Range": "bytes=1000-"})
    assert part.status_code == 206 and part.content == media.content[1000:]
    assert part.headers["Content-Range"] == f"bytes 1000-{len(media.content) - 1}/{len(media.content)}"
    beyond = http.get(first["url"], headers={"Range": f"bytes={len(media.content) + 5}-"})
    assert beyond.status_code == 416 and b"<Code>InvalidRange</Code>" in beyond.content


def test_the_url_is_refused_once_expired_or_tampered(envoy, sandbox, http):
    call = next(c for c in envoy.all_calls() if c["recording_status"] == "AVAILABLE")
    url = envoy.get(f"/calls/{call['id']}/recording").json()["url"]
    assert http.get(url, headers={"Range": "bytes=0-9"}).status_code == 206
    tampered = http.get(url.replace("sig=", "sig=0"))
    assert tampered.status_code == 403 and b"SignatureDoesNotMatch" in tampered.content
    unsigned = http.get(url.split("?")[0])
    assert unsigned.status_code == 403
    sandbox.advance_clock(901)
    expired = http.get(url)
    assert expired.status_code == 403
    assert b"<Code>AccessDenied</Code>" in expired.content and b"Request has expired" in expired.content
    fresh = envoy.get(f"/calls/{call['id']}/recording").json()["url"]
    assert http.get(fresh).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        ({}, 401, "Not authenticated"),
        ({"Authorization": "Bearer nope"}, 401, "Invalid authentication credentials"),
        ({"Authorization": "Token x"}, 401, "Not authenticated"),
    ],
)
def test_auth_failures(envoy, headers, status, detail):
    response = envoy.get("/calls", headers=headers)
    assert response.status_code == status and response.json() == {"detail": detail}


def test_the_organization_header_is_optional_but_must_match(envoy):
    org = envoy.info["options"]["organization_id"]
    assert envoy.get("/calls", headers={**envoy.headers, "X-Organization-ID": org}).status_code == 200
    wrong = envoy.get("/calls", headers={**envoy.headers, "X-Organization-ID": "another-org"})
    assert wrong.status_code == 403 and "organization" in wrong.json()["detail"]
