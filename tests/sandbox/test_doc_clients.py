"""Clients written only from each provider's documentation (../shared/providers/), pointed at the sandbox.

Each test is shaped like the doc's own curl/python/SDK example; only the host part of the URL and the
credentials come from the sandbox's index, exactly what a ProviderAccount would hold.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import time

import requests

from .conftest import entry


def test_truto_python_example(sandbox):
    # 000: "import requests / url = .../unified/voice/recordings/download / requests.post(url, headers=..., params=...,
    # json=payload)", with truto_response_format=stream to get the bytes
    info = entry(sandbox, "truto")
    token, account = info["credentials"]["token"], info["options"]["integrated_account_id"]
    listing = requests.get(
        f"{info['base_url']}/recordings",
        headers={"Authorization": f"Bearer {token}"},
        params={"integrated_account_id": account, "limit": 5},
    )
    recording = listing.json()["result"][0]

    url = f"{info['base_url']}/recordings/download"
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
    }
    params = {
        "integrated_account_id": account,
        "truto_response_format": "stream",
    }
    payload = {
        "url": recording["url"],
        "remote_data": {},
    }
    response = requests.post(url, headers=headers, params=params, json=payload, stream=True)
    audio = b"".join(response.iter_content(65536))
    assert response.status_code == 200 and len(audio) == int(response.headers["Content-Length"]) > 10_000


def test_envoy_curl_example(sandbox):
    # 001: curl https://tryenvoy.ai/api/v1/calls/call_id/recording -H "Authorization: Bearer <token>"
    info = entry(sandbox, "envoy")
    auth = {"Authorization": f"Bearer {info['credentials']['token']}"}
    calls = requests.get(f"{info['base_url']}/calls", headers=auth, params={"page": 1, "page_size": 50}).json()
    call_id = next(c["id"] for c in calls["data"] if c["recording_status"] == "AVAILABLE")
    recording = requests.get(f"{info['base_url']}/calls/{call_id}/recording", headers=auth).json()
    assert recording["call_id"] == call_id and recording["content_type"] in ("audio/mp4", "video/mp4")
    # "ask for a fresh one for each play": fetch the time-limited URL as it is, no credentials
    audio = requests.get(recording["url"])
    assert audio.status_code == 200 and len(audio.content) == recording["file_size_bytes"]


def test_kaleyra_curl_example(sandbox):
    # 002: curl -X POST '<URL>/v1/{SID}/voice/recordings?id={{id}}' -H 'Content-Type: application/x-www-form-urlencoded'
    #      -H 'api-key: <API_KEY>' -d 'id=<RECORDING_ID>' -d 'validity=<VALIDITY>' -d 'download=<DOWNLOAD>'
    info = entry(sandbox, "kaleyra")
    rows = list(csv.DictReader(io.StringIO(requests.get(info["report_url"]).text)))
    recording_id = max((r for r in rows if r["Recording ID"]), key=lambda r: r["Start Time"])["Recording ID"]
    sid, api_key = info["options"]["sid"], info["credentials"]["api_key"]
    url = f"{info['base_url']}/{sid}/voice/recordings"
    headers = {"Content-Type": "application/x-www-form-urlencoded", "api-key": api_key}

    response = requests.post(
        url, params={"id": recording_id}, headers=headers, data={"id": recording_id, "validity": "10", "download": "0"}
    )
    assert response.json()["message"] == "Request successfully executed!"
    link = response.json()["data"]["link"]
    assert requests.get(link).status_code == 200

    redirected = requests.post(
        url, params={"id": recording_id}, headers=headers, data={"id": recording_id, "validity": "10", "download": "1"}
    )
    assert redirected.history[0].status_code == 301 and redirected.status_code == 200
    assert redirected.headers["Content-Type"] in ("audio/mpeg", "audio/wav")


def test_ameyo_curl_examples(sandbox):
    # developer.exotel.com login: curl --location '.../ameyorestapi/session/userLogin' --header 'Content-Type:
    # application/json' --data '{"token": ..., "userId": ..., "forceLogin": true, "terminalInfo": "test"}'
    info = entry(sandbox, "ameyo")
    login = requests.post(
        f"{info['base_url']}/ameyorestapi/session/userLogin",
        headers={"Content-Type": "application/json"},
        data=json.dumps(
            {
                "token": info["credentials"]["password"],
                "userId": info["credentials"]["username"],
                "forceLogin": True,
                "terminalInfo": "test",
            }
        ),
    )
    session_id = login.json()["sessionId"]
    row = next(
        r for r in csv.DictReader(io.StringIO(requests.get(info["report_url"]).text)) if r["talk_time"] != "00:00:00"
    )
    # 003: curl --location --globoff '.../ameyorestapi/cc/downloadVoiceLog?campaignId=110&crtObjectId=...
    #      &targetFormat=mp3&filters={callId%...}' --header 'Sessionid: ...'; "process the response as a stream"
    response = requests.get(
        f"{info['base_url']}/ameyorestapi/cc/downloadVoiceLog",
        params={
            "campaignId": row["campaign_id"],
            "crtObjectId": row["crt_object_id"],
            "targetFormat": "mp3",
            "filters": json.dumps({"callId": row["call_id"]}),
        },
        headers={"Sessionid": session_id},
        stream=True,
    )
    assert response.status_code == 200 and response.headers["Content-Type"] == "audio/mpeg"
    with io.BytesIO() as recording_mp3:
        for chunk in response.iter_content(chunk_size=8192):
            recording_mp3.write(chunk)
        assert recording_mp3.tell() == int(response.headers["Content-Length"])


def test_bandwidth_sdk_shaped_calls(sandbox, restore):
    # 004: the RecordingsApi operations, as the SDK issues them: Basic auth, JSON in and out
    info = entry(sandbox, "bandwidth")
    account_id = info["options"]["account_id"]
    api = f"{info['base_url']}/accounts/{account_id}"
    token = base64.b64encode(f"{info['credentials']['username']}:{info['credentials']['password']}".encode())
    headers = {"Authorization": f"Basic {token.decode()}", "Accept": "application/json"}

    # listAccountCallRecordings(accountId, to, from, minStartTime, maxStartTime)
    everything = requests.get(f"{api}/recordings", headers=headers).json()
    first = everything[0]
    window = requests.get(
        f"{api}/recordings",
        headers=headers,
        params={
            "to": first["to"],
            "from": first["from"],
            "minStartTime": first["startTime"],
            "maxStartTime": everything[-1]["endTime"],
        },
    ).json()
    assert first in window
    # listCallRecordings / getCallRecording
    call_recordings = requests.get(f"{api}/calls/{first['callId']}/recordings", headers=headers).json()
    recording = requests.get(f"{api}/calls/{first['callId']}/recordings/{first['recordingId']}", headers=headers).json()
    assert recording in call_recordings
    # downloadCallRecording: Accept audio/vnd.wave, audio/mpeg
    media = requests.get(recording["mediaUrl"], headers={**headers, "Accept": "audio/vnd.wave, audio/mpeg"})
    assert media.headers["Content-Type"] in ("audio/vnd.wave", "audio/mpeg")
    # transcribeCallRecording(transcribeRecording) then getRecordingTranscription
    sandbox.config(transcription_delay=0.2)
    short = info["short_recording"]["recording_id"]
    target = next(r for r in everything if r["transcription"]["status"] == "none" and r["recordingId"] != short)
    path = f"{api}/calls/{target['callId']}/recordings/{target['recordingId']}"
    created = requests.post(
        f"{path}/transcription",
        headers={**headers, "Content-Type": "application/json"},
        json={"callbackTimeout": 5, "detectLanguage": False},
    )
    assert created.status_code == 204
    while requests.get(path, headers=headers).json()["transcription"]["status"] != "available":
        time.sleep(0.1)
    transcription = requests.get(f"{path}/transcription", headers=headers).json()
    assert transcription["transcripts"] and transcription["clips"]
    # deleteRecordingMedia, then the metadata says so
    assert requests.delete(f"{path}/media", headers=headers).status_code == 204
    assert requests.get(path, headers=headers).json()["status"] == "deleted"
    # updateCallRecordingState on an active call
    live = info["live_calls"][0]["call_id"]
    paused = requests.put(
        f"{api}/calls/{live}/recording",
        headers={**headers, "Content-Type": "application/json"},
        json={"state": "paused"},
    )
    assert paused.status_code == 200
