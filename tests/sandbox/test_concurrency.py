"""Many concurrent streams and keep-alive connections on one sandbox."""

from __future__ import annotations

import hashlib
import http.client
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests

from .conftest import entry


def test_sixty_concurrent_streams_all_complete(sandbox):
    info = entry(sandbox, "bandwidth")
    auth = (info["credentials"]["username"], info["credentials"]["password"])
    recs = requests.get(f"{info['base_url']}/accounts/9900000/recordings", auth=auth).json()
    targets = [r for r in recs if r["fileFormat"] == "wav" and "M" in r["duration"] and "H" not in r["duration"]][:6]
    expected = {
        r["mediaUrl"]: hashlib.sha256(requests.get(r["mediaUrl"], auth=auth).content).hexdigest() for r in targets
    }
    since = sandbox.last_log_id()

    def stream(i: int) -> bool:
        url = targets[i % len(targets)]["mediaUrl"]
        with requests.get(url, auth=auth, stream=True, timeout=30) as response:
            digest = hashlib.sha256()
            for chunk in response.iter_content(32 * 1024):
                digest.update(chunk)
        return response.status_code == 200 and digest.hexdigest() == expected[url]

    with ThreadPoolExecutor(max_workers=60) as pool:
        assert all(pool.map(stream, range(60)))
    entries = sandbox.log("bandwidth", since=since)
    assert len(entries) == 60 and all(e["completed"] and not e["client_disconnected"] for e in entries)


def test_keep_alive_serves_many_requests_on_one_connection(sandbox):
    info = entry(sandbox, "envoy")
    base = urlsplit(info["base_url"])
    connection = http.client.HTTPConnection(base.netloc, timeout=10)
    try:
        for page in range(1, 21):  # http.client would fail if the server closed the connection in between
            connection.request(
                "GET",
                f"{base.path}/calls?page={page % 3 + 1}",
                headers={"Authorization": f"Bearer {info['credentials']['token']}"},
            )
            response = connection.getresponse()
            assert response.status == 200 and response.getheader("Connection") != "close"
            assert len(response.read()) == int(response.getheader("Content-Length"))
        first_socket = connection.sock
        connection.request("GET", "/")
        assert connection.getresponse().read() and connection.sock is first_socket
    finally:
        connection.close()
