"""Kaleyra emulation: signed S3 links (JSON or 301), link expiry like S3, Invalid Id / Id Expired, the report."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from .conftest import entry

REPORT_COLUMNS = [
    "Call ID", "Caller Number", "Called Number", "Direction", "Start Time", "End Time", "Duration", "Status",
    "Agent", "Recording ID", "Recording Duration",
]  # fmt: skip


@pytest.fixture
def kaleyra(sandbox, http):
    info = entry(sandbox, "kaleyra")

    class Client:
        url = f"{info['base_url']}/{info['options']['sid']}/voice/recordings"
        headers = {"api-key": info["credentials"]["api_key"]}

        def post(self, data, headers=None, **kw):
            return http.post(self.url, data=data, headers=headers if headers is not None else self.headers, **kw)

    client = Client()
    client.info = info
    return client


@pytest.fixture
def report(kaleyra, http):
    response = http.get(kaleyra.info["report_url"])
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def ist_now():
    return datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=5, minutes=30)  # naive IST, as in the report


def fresh_ids(report):
    cutoff = ist_now() - timedelta(days=182)
    return [
        r["Recording ID"]
        for r in report
        if r["Recording ID"] and datetime.strptime(r["Start Time"], "%Y-%m-%d %H:%M:%S") > cutoff
    ]


def test_the_report_lists_calls_with_recording_ids(kaleyra, report, http):
    header = http.get(kaleyra.info["report_url"]).text.splitlines()[0]
    assert header.split(",") == REPORT_COLUMNS
    assert len(report) == kaleyra.info["seeded"]["calls"]
    assert sum(1 for r in report if r["Recording ID"]) == kaleyra.info["seeded"]["recordings"]
    for row in report:
        start = datetime.strptime(row["Start Time"], "%Y-%m-%d %H:%M:%S")
        end = datetime.strptime(row["End Time"], "%Y-%m-%d %H:%M:%S")
        assert end > start
        assert row["Direction"] in ("Inbound", "Outbound")
        assert row["Caller Number"].startswith("+91")
        assert int(row["Duration"]) >= 0
        if row["Recording ID"]:
            assert row["Status"] == "ANSWERED" and row["Recording ID"].endswith("==")
            assert int(row["Recording Duration"]) >= 29
    old = [
        r for r in report if datetime.strptime(r["Start Time"], "%Y-%m-%d %H:%M:%S") < ist_now() - timedelta(days=183)
    ]
    assert len(old) == kaleyra.info["expired_recordings"] >= 2


def test_download_0_answers_json_with_a_signed_link(kaleyra, report, http):
    rec_id = fresh_ids(report)[0]
    response = kaleyra.post({"id": rec_id, "validity": "10", "download": "0"})
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Request successfully executed!" and body["code"].startswith("RBC3")
    assert body["error"] == {}
    link = body["data"]["link"]
    assert "/_s3/" in link and "X-Amz-Signature=" in link and "X-Amz-Expires=600" in link
    media = http.get(link)
    assert media.status_code == 200
    assert media.headers["Content-Type"] in ("audio/mpeg", "audio/wav")
    assert media.headers["Accept-Ranges"] == "bytes" and media.headers["ETag"]
    part = http.get(link, headers={"Range": "bytes=0-3"})
    assert part.status_code == 206 and part.content == media.content[:4]
    assert part.content in (b"RIFF", b"\xff\xe3\x28\xc4")
    beyond = http.get(link, headers={"Range": f"bytes={len(media.content)}-"})
    assert beyond.status_code == 416 and b"InvalidRange" in beyond.content


def test_download_1_redirects_with_301_to_the_link(kaleyra, report, http):
    rec_id = fresh_ids(report)[1]
    response = kaleyra.post({"id": rec_id, "download": "1"}, allow_redirects=False)
    assert response.status_code == 301
    assert "X-Amz-Expires=300" in response.headers["Location"]  # the default validity is 5 minutes
    followed = kaleyra.post({"id": rec_id, "download": "1"})
    assert followed.status_code == 200 and followed.history[0].status_code == 301
    assert followed.content == http.get(response.headers["Location"]).content


def test_get_with_query_parameters_works_too(kaleyra, report, http):
    rec_id = fresh_ids(report)[2]
    response = http.get(kaleyra.url, params={"id": rec_id}, headers=kaleyra.headers)
    assert response.status_code == 200 and response.json()["data"]["link"]


def test_an_expired_link_is_refused_as_s3_does(kaleyra, report, sandbox, http):
    rec_id = fresh_ids(report)[0]
    link = kaleyra.post({"id": rec_id, "validity": "1"}).json()["data"]["link"]
    assert http.get(link, headers={"Range": "bytes=0-0"}).status_code == 206
    sandbox.advance_clock(61)
    response = http.get(link)
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/xml"
    assert b"<Code>AccessDenied</Code>" in response.content
    assert b"<Message>Request has expired</Message>" in response.content
    assert b"<X-Amz-Expires>60</X-Amz-Expires>" in response.content


def test_a_tampered_or_unsigned_link_is_refused(kaleyra, report, http):
    link = kaleyra.post({"id": fresh_ids(report)[0]}).json()["data"]["link"]
    tampered = http.get(link.replace("X-Amz-Signature=", "X-Amz-Signature=00"))
    assert tampered.status_code == 403 and b"SignatureDoesNotMatch" in tampered.content
    unsigned = http.get(link.split("?")[0])
    assert unsigned.status_code == 403 and b"AccessDenied" in unsigned.content


def test_invalid_and_expired_ids(kaleyra, report):
    invalid = kaleyra.post({"id": "abcd1234==", "validity": "5", "download": "0"})
    assert invalid.status_code == 400
    assert invalid.json()["message"] == "Invalid Id"
    assert invalid.json()["error"] == {"id": "Invalid id"}
    assert invalid.json()["data"] == {"id": "abcd1234==", "validity": "5", "download": "0"}
    cutoff = ist_now() - timedelta(days=183)
    old = next(
        r["Recording ID"]
        for r in report
        if r["Recording ID"] and datetime.strptime(r["Start Time"], "%Y-%m-%d %H:%M:%S") < cutoff
    )
    expired = kaleyra.post({"id": old})
    assert expired.status_code == 400
    assert expired.json()["message"] == "Id Expired" and expired.json()["error"] == {"id": "Id Expired"}


@pytest.mark.parametrize(("data", "field"), [({"validity": "ten"}, "validity"), ({"download": "2"}, "download")])
def test_bad_parameters(kaleyra, report, data, field):
    response = kaleyra.post({"id": fresh_ids(report)[0], **data})
    assert response.status_code == 400 and field in response.json()["error"]


@pytest.mark.parametrize(
    ("headers", "sid", "status"),
    [({}, None, 401), ({"api-key": "wrong"}, None, 401), (None, "HXIN0000000000XX", 403)],
)
def test_auth_failures(kaleyra, report, http, headers, sid, status):
    url = kaleyra.url if sid is None else kaleyra.url.replace(kaleyra.info["options"]["sid"], sid)
    response = http.post(
        url, data={"id": fresh_ids(report)[0]}, headers=headers if headers is not None else kaleyra.headers
    )
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"code", "message", "data", "error"}


def test_the_expire_links_fault(kaleyra, report, sandbox, http):
    link = kaleyra.post({"id": fresh_ids(report)[0], "validity": "60"}).json()["data"]["link"]
    assert http.get(link, headers={"Range": "bytes=0-0"}).status_code == 206
    assert sandbox.fault("kaleyra", "expire_links")["applied"] is True
    refused = http.get(link)
    assert refused.status_code == 403 and b"Request has expired" in refused.content
    fresh = kaleyra.post({"id": fresh_ids(report)[0], "validity": "60"}).json()["data"]["link"]
    assert http.get(fresh, headers={"Range": "bytes=0-0"}).status_code == 206
    sandbox.fault("kaleyra", "expire_links", count=1)
    assert http.get(fresh).status_code == 403
    assert http.get(fresh, headers={"Range": "bytes=0-0"}).status_code == 206
