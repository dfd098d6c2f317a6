"""Ameyo emulation: userLogin sessions that expire, downloadVoiceLog (whole file), the call report CSV."""

from __future__ import annotations

import csv
import http.client
import io
import json
import re
from datetime import datetime
from urllib.parse import urlsplit

import pytest
import requests

from .conftest import entry

REPORT_COLUMNS = [
    "crt_object_id", "call_id", "call_time", "campaign", "campaign_id", "call_type", "agent", "disposition",
    "talk_time", "phone",
]  # fmt: skip


@pytest.fixture
def ameyo(sandbox, http):
    info = entry(sandbox, "ameyo")

    class Client:
        base = info["base_url"]

        def login(self, user=None, token=None):
            return http.post(
                f"{self.base}/ameyorestapi/session/userLogin",
                json={
                    "userId": user or info["credentials"]["username"],
                    "token": token or info["credentials"]["password"],
                    "forceLogin": True,
                    "terminalInfo": "sandbox-tests",
                },
            )

        def session(self):
            response = self.login()
            assert response.status_code == 200, response.text
            return response.json()["sessionId"]

        def download(self, row, session=None, fmt="mp3", **params):
            query = {
                "campaignId": row["campaign_id"],
                "crtObjectId": row["crt_object_id"],
                "targetFormat": fmt,
                "filters": json.dumps({"callId": row["call_id"]}),
                **params,
            }
            headers = {} if session is False else {"Sessionid": session or self.session()}
            return http.get(f"{self.base}/ameyorestapi/cc/downloadVoiceLog", params=query, headers=headers)

    client = Client()
    client.info = info
    return client


@pytest.fixture
def report(ameyo, http):
    response = http.get(ameyo.info["report_url"])
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


def recorded(report):
    return [r for r in report if r["talk_time"] != "00:00:00"]


def test_the_call_report(ameyo, report, http):
    assert http.get(ameyo.info["report_url"]).text.splitlines()[0].split(",") == REPORT_COLUMNS
    assert len(report) == ameyo.info["seeded"]["calls"]
    assert len(recorded(report)) == ameyo.info["seeded"]["recordings"]
    for row in report:
        datetime.strptime(row["call_time"], "%d/%m/%Y %H:%M:%S")
        assert re.fullmatch(r"d741-6904fad1-vce-[a-f]{3}-\d{6}", row["crt_object_id"])
        assert re.fullmatch(r"d741-6904fad1-vcall-\d+", row["call_id"])
        assert ameyo.info["campaigns"][row["campaign_id"]] == row["campaign"]
        assert re.fullmatch(r"\d\d:\d\d:\d\d", row["talk_time"])
        assert re.fullmatch(r"[6-9]\d{9}", row["phone"])
    assert len({r["campaign_id"] for r in report}) == 2


def test_login_answers_a_session_id(ameyo):
    response = ameyo.login()
    assert response.status_code == 200
    body = response.json()
    assert body["userId"] == ameyo.info["credentials"]["username"]
    assert body["sessionId"].startswith("d741-6904fad1-ses-")
    assert ameyo.login().json()["sessionId"] != body["sessionId"]


@pytest.mark.parametrize(("user", "token"), [("supervisor@sandbox", "wrong"), ("nobody", "sandbox-ameyo-pass")])
def test_login_with_bad_credentials_is_401(ameyo, user, token):
    response = ameyo.login(user, token)
    assert response.status_code == 401 and response.json()["message"]


def test_download_voice_log_streams_the_whole_file(ameyo, report):
    row = recorded(report)[0]
    session = ameyo.session()
    mp3 = ameyo.download(row, session)
    assert mp3.status_code == 200
    assert mp3.headers["Content-Type"] == "audio/mpeg"
    assert mp3.headers["Content-Disposition"] == f'attachment; filename="{row["crt_object_id"]}.mp3"'
    assert int(mp3.headers["Content-Length"]) == len(mp3.content) and mp3.content[:2] == b"\xff\xe3"
    wav = ameyo.download(row, session, fmt="wav")
    assert wav.status_code == 200 and wav.headers["Content-Type"] == "audio/wav" and wav.content[:4] == b"RIFF"


def test_download_ignores_range(ameyo, report, http):
    row = recorded(report)[1]
    session = ameyo.session()
    whole = ameyo.download(row, session)
    query = {
        "campaignId": row["campaign_id"],
        "crtObjectId": row["crt_object_id"],
        "targetFormat": "mp3",
        "filters": json.dumps({"callId": row["call_id"]}),
    }
    ranged = http.get(
        f"{ameyo.base}/ameyorestapi/cc/downloadVoiceLog",
        params=query,
        headers={"Sessionid": session, "Range": "bytes=10-20"},
    )
    assert ranged.status_code == 200 and ranged.content == whole.content


def test_the_literal_filters_form_of_the_doc_example_is_accepted(ameyo, report):
    row = recorded(report)[2]
    session = ameyo.session()
    # 003's curl sends filters={callId%d741-...} unencoded (curl --globoff)
    raw = (
        f"{ameyo.base}/ameyorestapi/cc/downloadVoiceLog?campaignId={row['campaign_id']}"
        f"&crtObjectId={row['crt_object_id']}&targetFormat=mp3&filters={{callId%{row['call_id']}}}"
    )
    url = urlsplit(raw)
    connection = http.client.HTTPConnection(url.netloc)
    connection.request("GET", f"{url.path}?{url.query}", headers={"Sessionid": session})  # sent byte for byte
    response = connection.getresponse()
    assert response.status == 200 and response.getheader("Content-Type") == "audio/mpeg"
    assert response.read()[:2] == b"\xff\xe3"
    connection.close()
    # requests percent-encodes the braces but keeps the bare %: accepted as well
    assert requests.get(raw, headers={"Sessionid": session}).status_code == 200


def test_sessions_expire_with_time(ameyo, report, sandbox):
    row = recorded(report)[0]
    session = ameyo.session()
    assert ameyo.download(row, session).status_code == 200
    sandbox.advance_clock(ameyo.info["session_ttl_seconds"] + 1)
    expired = ameyo.download(row, session)
    assert expired.status_code == 401 and "expired" in expired.json()["message"]
    assert ameyo.download(row, ameyo.session()).status_code == 200  # log in again on 401


def test_the_expire_sessions_fault(ameyo, report, sandbox):
    row = recorded(report)[0]
    session = ameyo.session()
    result = sandbox.fault("ameyo", "expire_sessions")
    assert result["applied"] is True and result["affected"] >= 1
    assert ameyo.download(row, session).status_code == 401
    fresh = ameyo.session()
    assert ameyo.download(row, fresh).status_code == 200
    sandbox.fault("ameyo", "expire_sessions", count=1)  # the next request presenting a session finds it expired
    assert ameyo.download(row, fresh).status_code == 401
    assert ameyo.download(row, fresh).status_code == 401  # that session is gone for good
    assert ameyo.download(row, ameyo.session()).status_code == 200


def test_missing_or_unknown_session_is_401(ameyo, report):
    row = recorded(report)[0]
    assert ameyo.download(row, session=False).status_code == 401
    unknown = ameyo.download(row, session="d741-6904fad1-ses-nobody-xyz-12345")
    assert unknown.status_code == 401 and unknown.json()["code"] == 401


def test_not_found_combinations_are_404(ameyo, report):
    session = ameyo.session()
    row = recorded(report)[0]
    other_campaign = next(c for c in ameyo.info["campaigns"] if c != row["campaign_id"])
    assert ameyo.download({**row, "campaign_id": other_campaign}, session).status_code == 404
    assert ameyo.download({**row, "crt_object_id": "d741-6904fad1-vce-aaa-000000"}, session).status_code == 404
    assert ameyo.download({**row, "call_id": "d741-6904fad1-vcall-1"}, session).status_code == 404
    unanswered = next(r for r in report if r["talk_time"] == "00:00:00")
    assert ameyo.download(unanswered, session).status_code == 404


@pytest.mark.parametrize(
    "params",
    [{"campaignId": "abc"}, {"targetFormat": "ogg"}, {"filters": "not json"}, {"crtObjectId": ""}],
)
def test_bad_parameters_are_400(ameyo, report, params):
    response = ameyo.download(recorded(report)[0], **params)
    assert response.status_code == 400 and response.json()["message"]
