"""The kernel relay (recordings/zerocopy.py) over real TCP sockets: exact bytes, early ends, stalls, hang-ups; and
through gunicorn, the relayed bodies against the same bytes sent by the Python path."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time

import pytest
import requests

from recordings import zerocopy
from recordings.providers.errors import UpstreamError, UpstreamTimeout
from recordings.streaming import KERNEL_RELAY_MIN_BYTES
from tests.playback.test_hangup import recording_ids
from tests.portal_server import PortalProcess

BODY = os.urandom(8 * 1024 * 1024)


class Upstream:
    """A one-shot HTTP server on a real socket: answers each request with `body`, cut after `send` bytes, then
    closes (`then="close"`) or goes silent (`then="stall"`). The first body bytes go out with the headers, so
    http.client's reader holds some of them before the relay starts."""

    def __init__(self, body: bytes, *, send: int | None = None, then: str = "close", headers: str = "") -> None:
        self.body, self.send, self.then, self.headers = body, len(body) if send is None else send, then, headers
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/media"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(self.body)}\r\n{self.headers}\r\n".encode()
            try:
                conn.sendall(head + self.body[:1000])
                conn.sendall(self.body[1000 : self.send])
            except OSError:
                return  # the relay's side hung up
            if self.then == "stall":
                self.stop.wait(10)

    def open(self, timeout: float = 5) -> requests.Response:
        return requests.get(self.url, stream=True, timeout=timeout)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


class Listener:
    """The listener's side: a real TCP connection whose far end reads everything (or hangs up after `keep`)."""

    def __init__(self, keep: int | None = None) -> None:
        server = socket.create_server(("127.0.0.1", 0))
        self.reader = socket.create_connection(server.getsockname())
        self.sock, _ = server.accept()
        server.close()
        self.keep = keep
        self.received = bytearray()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while data := self.reader.recv(1024 * 1024):
            self.received += data
            if self.keep is not None and len(self.received) >= self.keep:
                self.reader.close()
                return

    def finish(self) -> bytes:
        self.sock.close()
        self.thread.join(10)
        return bytes(self.received)


@pytest.fixture
def upstreams():
    made = []

    def make(*args, **kwargs) -> Upstream:
        made.append(Upstream(*args, **kwargs))
        return made[-1]

    yield make
    for upstream in made:
        upstream.close()


def test_a_plain_upstream_body_is_relayed_exactly_including_what_the_reader_had_buffered(upstreams):
    response = upstreams(BODY).open()
    source = zerocopy.socket_source(response, len(BODY))
    assert source is not None
    assert zerocopy._spliceable(source.body) is not None  # the splice path, not the buffer one
    listener = Listener()
    counted = []
    assert zerocopy.relay_socket(source, listener.sock, on_sent=counted.append) == len(BODY)
    response.close()
    assert listener.finish() == BODY
    assert sum(counted) == len(BODY)


def test_the_buffer_relay_used_for_tls_upstreams_sends_the_same_bytes(upstreams):
    response = upstreams(BODY).open()
    source = zerocopy.socket_source(response, len(BODY))
    listener = Listener()
    assert zerocopy._relay_buffered(source, listener.sock, None) == len(BODY)
    response.close()
    assert listener.finish() == BODY


@pytest.mark.parametrize("relay", ["splice", "buffer"])
def test_an_upstream_that_ends_early_is_an_upstream_error(relay, upstreams):
    response = upstreams(BODY, send=3 * 1024 * 1024).open()
    source = zerocopy.socket_source(response, len(BODY))
    listener = Listener()
    with pytest.raises(UpstreamError, match="stopped sending"):
        if relay == "splice":
            zerocopy.relay_socket(source, listener.sock)
        else:
            zerocopy._relay_buffered(source, listener.sock, None)
    response.close()
    assert listener.finish() == BODY[: 3 * 1024 * 1024]


def test_an_upstream_that_goes_silent_times_out_at_its_read_timeout(upstreams):
    response = upstreams(BODY, send=2 * 1024 * 1024, then="stall").open(timeout=0.5)
    source = zerocopy.socket_source(response, len(BODY))
    listener = Listener()
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        zerocopy.relay_socket(source, listener.sock)
    assert 0.4 < time.monotonic() - started < 3
    response.close()
    assert listener.finish() == BODY[: 2 * 1024 * 1024]


def test_what_has_arrived_reaches_the_listener_while_the_upstream_pauses(upstreams):
    # The relay gathers up to FLUSH_BYTES before writing, but never holds bytes back for longer than a pause.
    sent = 2 * 1024 * 1024 + 12345  # not a multiple of the flush size
    response = upstreams(BODY, send=sent, then="stall").open(timeout=3)
    source = zerocopy.socket_source(response, len(BODY))
    listener = Listener()
    errors = []
    relay = threading.Thread(target=lambda: errors.append(_raises(zerocopy.relay_socket, source, listener.sock)))
    relay.start()
    deadline = time.monotonic() + 2
    while len(listener.received) < sent and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bytes(listener.received) == BODY[:sent]  # all of it, long before the upstream's 3 s read timeout
    relay.join(10)
    assert errors and isinstance(errors[0], UpstreamTimeout)
    response.close()
    assert listener.finish() == BODY[:sent]


def _raises(fn, *args):
    try:
        fn(*args)
    except Exception as exc:
        return exc
    return None


def test_a_listener_who_hangs_up_stops_the_relay(upstreams):
    big = BODY * 8  # 64 MB: far more than the socket buffers hold
    response = upstreams(big).open()
    source = zerocopy.socket_source(response, len(big))
    listener = Listener(keep=1024 * 1024)
    with pytest.raises(zerocopy.ClientGone):
        zerocopy.relay_socket(source, listener.sock)
    assert source.remaining > 0
    response.close()
    listener.finish()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ("Content-Encoding: gzip\r\n", len(BODY)),  # must be decoded: not as it is
        ("", len(BODY) - 1),  # not the length the caller is about to announce
    ],
)
def test_bodies_that_cannot_be_relayed_as_they_are_are_refused_unread(headers, expected, upstreams):
    response = upstreams(BODY, headers=headers).open()
    assert zerocopy.socket_source(response, expected) is None
    # Nothing was read: the usual path still gets the whole body.
    assert len(response.raw.read(len(BODY), decode_content=False)) == len(BODY)
    response.close()


def test_a_body_already_read_from_is_refused(upstreams):
    response = upstreams(BODY).open()
    response.raw.read(10)
    assert zerocopy.socket_source(response, len(BODY)) is None
    response.close()


def test_a_cached_file_is_sent_from_its_offset(tmp_path):
    path = tmp_path / "copy.wav"
    path.write_bytes(BODY)
    listener = Listener()
    with open(path, "rb") as handle:
        assert zerocopy.relay_file(handle, 12345, 5_000_000, listener.sock) == 5_000_000
    assert listener.finish() == BODY[12345 : 12345 + 5_000_000]


def test_a_cached_file_shorter_than_announced_is_an_error(tmp_path):
    path = tmp_path / "short.wav"
    path.write_bytes(BODY[:1000])
    listener = Listener()
    with open(path, "rb") as handle, pytest.raises(UpstreamError, match="ended after 1000"):
        zerocopy.relay_file(handle, 0, 5000, listener.sock)
    assert listener.finish() == BODY[:1000]


def test_only_gunicorns_own_plain_socket_is_written_to(rf):
    request = rf.get("/")
    assert zerocopy.server_response(request.META) is None  # Django's test client: no server socket
    request.META["portal.server_response"] = object()
    assert zerocopy.server_response(request.META) is None


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def debug_portal(sandbox, tmp_path_factory):
    """gunicorn serving the portal with DEBUG logs: recordings.streaming says when, and how, it relayed a body."""
    server = PortalProcess(sandbox.url, workdir=tmp_path_factory.mktemp("portal"), extra_env={"LOG_LEVEL": "DEBUG"})
    yield server.start()
    server.stop()


def relayed(portal: PortalProcess) -> list[str]:
    log = (portal.workdir / "gunicorn.log").read_text(errors="replace")
    return re.findall(r"Audio body of (\d+) bytes relayed in the kernel \((\w+)\)", log)


@pytest.mark.parametrize(("provider", "how"), [("bandwidth", "splice"), ("truto", "sendfile")])
def test_through_gunicorn_relayed_bodies_equal_the_python_paths_bytes(provider, how, debug_portal):
    """Bandwidth: its plain-HTTP upstream is spliced, and ranges below KERNEL_RELAY_MIN_BYTES go through Python
    (the reference). Truto: its first play goes through Python while it fills the cache (the reference), every
    later range is sent from the cached copy with sendfile."""
    portal_server = debug_portal
    before = len(relayed(portal_server))
    session = portal_server.login("supervisor")
    pk = recording_ids(portal_server, provider)[0]
    url = f"{portal_server.url}/recordings/{pk}/audio"
    whole = session.get(url, timeout=60)
    assert whole.status_code == 200
    total = len(whole.content)
    assert total == int(whole.headers["Content-Length"]) >= 2 * KERNEL_RELAY_MIN_BYTES
    assert whole.headers["Content-Type"].startswith("audio/")

    step = KERNEL_RELAY_MIN_BYTES // 2
    pieces = []
    for first in range(0, total, step):
        piece = session.get(url, headers={"Range": f"bytes={first}-{first + step - 1}"}, timeout=30)
        assert piece.status_code == 206
        pieces.append(piece.content)
    assert sha(b"".join(pieces)) == sha(whole.content)

    middle = total // 3
    last = middle + KERNEL_RELAY_MIN_BYTES + 12345
    ranged = session.get(url, headers={"Range": f"bytes={middle}-{last}"}, timeout=30)
    assert ranged.status_code == 206
    assert ranged.headers["Content-Range"] == f"bytes {middle}-{last}/{total}"
    assert sha(ranged.content) == sha(whole.content[middle : last + 1])

    # The kernel relay did serve: Bandwidth the whole body and the long range; Truto every range after its first play.
    kernel = relayed(portal_server)[before:]
    assert ((str(last - middle + 1), how)) in kernel
    assert {method for _, method in kernel} == {how}
    assert len(kernel) == (2 if provider == "bandwidth" else 1 + len(pieces))
