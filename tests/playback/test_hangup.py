"""Through gunicorn: a listener who hangs up closes the upstream download within a second."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest


def recording_ids(portal_server, provider: str) -> list[int]:
    rows = portal_server.query(
        "SELECT r.id FROM recordings_recording r JOIN recordings_provideraccount a ON a.id = r.account_id "
        "WHERE a.provider = ? AND r.status = 'available' ORDER BY r.duration DESC",
        (provider,),
    )
    return [row[0] for row in rows]


@pytest.mark.parametrize(
    ("provider", "media_path"),
    [("bandwidth", "/media"), ("truto", "/recordings/download"), ("ameyo", "/downloadVoiceLog")],
)
def test_hanging_up_stops_the_upstream_download(provider, media_path, portal_server, sandbox_clean):
    session = portal_server.login("supervisor")
    pk = recording_ids(portal_server, provider)[0]
    # A steady 1 MB/s from the provider: the file cannot hide in socket buffers before we hang up.
    sandbox_clean.fault(provider, "slow_body", bytes_per_second=1_000_000, path_contains=media_path)
    since = sandbox_clean.last_log_id()
    response = session.get(f"{portal_server.url}/recordings/{pk}/audio", stream=True, timeout=30)
    assert response.status_code == 200
    total = int(response.headers["Content-Length"])
    received = 0
    for chunk in response.iter_content(64 * 1024):
        received += len(chunk)
        if received >= 256 * 1024:
            break
    response.close()
    session.close()
    hung_up = datetime.now(UTC)

    deadline = time.monotonic() + 5
    while True:
        entries = [e for e in sandbox_clean.log(provider, since=since, settle=0) if media_path in e["path"]]
        if entries and entries[-1]["ended_at"]:
            break
        assert time.monotonic() < deadline, json.dumps(entries)
        time.sleep(0.05)
    (entry,) = entries
    assert entry["client_disconnected"], entry
    assert not entry["completed"]
    assert entry["bytes_sent"] < total / 2
    ended = datetime.fromisoformat(entry["ended_at"].replace("Z", "+00:00"))
    assert (ended - hung_up).total_seconds() < 1.0, (ended, hung_up)
