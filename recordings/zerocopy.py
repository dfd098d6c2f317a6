"""Relaying audio in the kernel: bytes go from the provider's socket (or the media cache's file) to the listener's
socket without being copied through Python.

A relay in Python costs two copies per byte (kernel to user on recv, user to kernel on send) plus the
interpreter's work per chunk: about 0.48 CPU-s per GB in the gunicorn worker, on two cores shared with the
provider and the listener (docs/benchmarks.md). Here:

- a plain-HTTP upstream body is moved with `splice(2)` through a 1 MiB pipe: socket -> pipe -> socket, page
  references rather than copies (about 0.2-0.25 CPU-s per GB), written out in pieces of up to 512 KiB;
- a TLS upstream body (it must be decrypted in user space) is read into one reused 1 MiB buffer and sent from it:
  no new bytes object per chunk, no read-ahead thread;
- a cached file is sent with `sendfile(2)` (`socket.sendfile`).

Only where that is safe and exact, otherwise the caller streams chunks as before:
- the listener's side must be gunicorn's own plain TCP socket (never TLS: bytes written under a TLS socket would
  go out unencrypted), reached through the WSGI server's response object that `portal.wsgi` puts in the environ,
  with its headers set but not sent, for a body of exactly the length being relayed;
- the upstream body must be neither chunked nor content-encoded, of that known length, and not read from yet
  (what http.client's reader had already buffered is sent first).

Real providers answer over HTTPS, so for them splice does not apply (the buffer relay and cached files do); a
plain-HTTP upstream is the sandbox, or a provider reached through a TLS-terminating egress gateway on the private
network.
"""

from __future__ import annotations

import fcntl
import http.client
import os
import select
import socket
from dataclasses import dataclass

import requests

from .providers.errors import UpstreamError, UpstreamTimeout

RELAY_BUFFER = 1024 * 1024  # the pipe (or, for TLS, the one reused buffer) of a stream
# Written to the listener in one go once this much is in the pipe, or when the upstream has paused for
# FLUSH_WAIT_MS: on shared cores, waking the listener for every segment that arrives is much of a relay's cost
# (bench/playback.py, "CPU-s per GB").
FLUSH_BYTES = 512 * 1024
FLUSH_WAIT_MS = 5
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
STOPPED = "The provider stopped sending, try again."


class ClientGone(Exception):
    """The listener hung up (or its connection broke) while the relay was writing."""


def server_response(environ) -> object | None:
    """gunicorn's Response for this request when the body may be written to its socket directly, else None.

    It must be gunicorn's (it sends the status line and headers, counts what was sent for the access log, and
    can be told to close the connection) over a plain TCP socket: not TLS, not a test client.
    """
    response = environ.get("portal.server_response")
    if response is None or not type(response).__module__.startswith("gunicorn."):
        return None
    sock = getattr(response, "sock", None)
    cfg = getattr(response, "cfg", None)
    if type(sock) is not socket.socket or cfg is None or getattr(cfg, "is_ssl", True):
        return None
    if not all(hasattr(response, name) for name in ("send_headers", "force_close", "sent", "headers_sent")):
        return None
    return response


def server_ready(response, length: int) -> bool:
    """Whether the server's response, once its headers are set (start_response has run: the body is being
    iterated), sends exactly `length` body bytes as they are: not chunked, not a HEAD, headers not yet sent."""
    return (
        getattr(response, "status", None) is not None
        and not getattr(response, "chunked", True)
        and not getattr(response, "_omits_body", True)
        and not getattr(response, "headers_sent", True)
        and getattr(response, "response_length", None) == length
    )


@dataclass
class SocketSource:
    """An upstream body of a known length, unread: http.client's response, read into one reused buffer."""

    body: http.client.HTTPResponse
    remaining: int


def socket_source(response: requests.Response, expected: int) -> SocketSource | None:
    """Take over a streamed, unread, identity-encoded response body of `expected` bytes, or None (having read
    nothing) when it is not one (then stream it as usual).

    After this the response must not be read; closing it (as always) closes the upstream connection.
    """
    # urllib3 2.x internals (pinned in pyproject.toml): `_fp` is http.client's response, `_fp_bytes_read` and
    # `_decoded_buffer` what urllib3 has read. Read defensively: a different urllib3 gives None, not a wrong relay.
    raw = response.raw
    body = getattr(raw, "_fp", None)
    if not isinstance(body, http.client.HTTPResponse):
        return None
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity") or body.chunked or body.length != expected:
        return None
    if getattr(raw, "_fp_bytes_read", 1) != 0 or len(getattr(raw, "_decoded_buffer", b"x")) != 0:
        return None  # somebody read from it already
    return SocketSource(body, expected)


def relay(source: SocketSource | FileSource, length: int, client: socket.socket, *, on_sent=None) -> str:
    """Send `length` bytes of `source` to `client`; how it went: "sendfile", "splice" or "buffer"."""
    if isinstance(source, FileSource):
        relay_file(source.handle, source.offset, length, client, on_sent=on_sent)
        return "sendfile"
    how = "splice" if _spliceable(source.body) is not None else "buffer"
    relay_socket(source, client, on_sent=on_sent)
    return how


def relay_socket(source: SocketSource, client: socket.socket, *, on_sent=None) -> int:
    """Send `source.remaining` bytes of the upstream body to `client`. Returns the bytes sent.

    A plain upstream socket goes through a pipe with splice(2); a TLS one (its bytes must be decrypted in user
    space) is read into one reused buffer. Raises ClientGone when the listener hangs up, UpstreamTimeout when the
    upstream sends nothing for its read timeout, UpstreamError when it ends early or breaks.
    """
    upstream = _spliceable(source.body)
    if upstream is None:
        return _relay_buffered(source, client, on_sent)
    # What http.client's reader holds is sent first: peek() gives its buffer, or (when empty) reads the socket once.
    try:
        held = len(source.body.fp.peek(1))
    except TimeoutError as exc:
        raise UpstreamTimeout(STOPPED) from exc
    except (OSError, ValueError) as exc:
        raise UpstreamError(STOPPED) from exc
    sent = _relay_buffered(source, client, on_sent, limit=held) if held else 0
    if source.remaining:
        sent += _splice(upstream, source, client, on_sent)
    return sent


def _relay_buffered(source: SocketSource, client: socket.socket, on_sent, limit: int | None = None) -> int:
    """Read into one reused buffer and send from it: all of the body, or its first `limit` bytes."""
    limit = source.remaining if limit is None else limit
    buffer = memoryview(bytearray(min(RELAY_BUFFER, limit)))
    sent = 0
    while source.remaining and sent < limit:
        want = min(source.remaining, len(buffer), limit - sent)
        try:
            n = source.body.readinto(buffer[:want])
        except TimeoutError as exc:
            raise UpstreamTimeout(STOPPED) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise UpstreamError(STOPPED) from exc
        if not n:
            raise UpstreamError(f"The provider stopped sending after {sent} bytes, try again.")
        try:
            client.sendall(buffer[:n])
        except OSError as exc:
            raise ClientGone() from exc
        source.remaining -= n
        sent += n
        if on_sent:
            on_sent(n)
    return sent


def _spliceable(body: http.client.HTTPResponse) -> socket.socket | None:
    """The upstream's plain TCP socket, where splice(2) exists; None for TLS (or elsewhere)."""
    raw = getattr(getattr(body, "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    return sock if type(sock) is socket.socket and hasattr(os, "splice") else None


def _splice(upstream: socket.socket, source: SocketSource, client: socket.socket, on_sent) -> int:
    """socket -> pipe -> socket with splice(2): the bytes stay in the kernel (page references, not copies).

    Both sockets may be non-blocking (a socket with a timeout is): poll() waits for them, the upstream for at most
    its timeout, the listener as long as a write to it would block.
    """
    timeout = upstream.gettimeout()
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        try:
            pipe_size = fcntl.fcntl(write_fd, F_SETPIPE_SZ, RELAY_BUFFER)
        except OSError:
            pipe_size = 64 * 1024
        up_poll, out_poll = select.poll(), select.poll()
        up_poll.register(upstream.fileno(), select.POLLIN)
        out_poll.register(client.fileno(), select.POLLOUT)
        sent = 0
        pending = 0  # bytes in the pipe
        ended = False  # the upstream closed before the whole body: what it sent still goes out, then the error
        while (source.remaining and not ended) or pending:
            # Fill the pipe with what has arrived (up to its size) before writing it out: fewer, larger writes
            # wake the listener less often, which on shared cores is most of what a relay costs.
            while source.remaining and not ended and pending < pipe_size:
                try:
                    n = os.splice(upstream.fileno(), write_fd, min(pipe_size - pending, source.remaining))
                except BlockingIOError:
                    if not pending:  # nothing to send: wait for the upstream, at most its read timeout
                        if not up_poll.poll(None if timeout is None else timeout * 1000):
                            raise UpstreamTimeout(STOPPED) from None
                        continue
                    # The first bytes go at once; after them, wait a little for more (up to FLUSH_BYTES go out in
                    # one write: the listener wakes less often), never longer than FLUSH_WAIT_MS.
                    if sent and pending < FLUSH_BYTES and up_poll.poll(FLUSH_WAIT_MS):
                        continue
                    break
                except OSError as exc:
                    raise UpstreamError(STOPPED) from exc
                if not n:
                    ended = True
                    break
                source.remaining -= n
                pending += n
            while pending:
                try:
                    out = os.splice(read_fd, client.fileno(), pending)
                except BlockingIOError:
                    out_poll.poll()
                    continue
                except OSError as exc:
                    raise ClientGone() from exc
                pending -= out
                sent += out
                if on_sent:
                    on_sent(out)
        if ended:
            raise UpstreamError(f"The provider stopped sending after {sent} bytes, try again.")
        return sent
    finally:
        os.close(read_fd)
        os.close(write_fd)


@dataclass
class FileSource:
    """A complete file (the media cache's copy), open, and where the body starts in it."""

    handle: object
    offset: int


def relay_file(handle, offset: int, count: int, client: socket.socket, *, on_sent=None) -> int:
    """Send `count` bytes of an open file from `offset` with sendfile(2). Raises ClientGone on a hang-up."""
    try:
        sent = client.sendfile(handle, offset=offset, count=count)
    except OSError as exc:
        raise ClientGone() from exc
    if on_sent:
        on_sent(sent)
    if sent != count:
        raise UpstreamError(f"The cached copy ended after {sent} of {count} bytes.")
    return sent
