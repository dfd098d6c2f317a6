"""Serving audio through the portal: HTTP Range parsing, and opening a recording's bytes for a range.

Providers whose media answers Range get the range passed through; the others are served from the media cache
(see media_cache.py), which the first play fills while it streams.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from queue import Full, Queue

from . import zerocopy
from .providers import INTERACTIVE, adapter_for
from .providers.errors import ProviderError, RangeNotSatisfiable

logger = logging.getLogger(__name__)

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

# Upstream bodies at least this long go through the kernel relay when they can (a shorter one keeps its upstream
# connection for the next range request instead: the relay leaves it unfit for reuse). Cached files: any size.
KERNEL_RELAY_MIN_BYTES = 1024 * 1024


class Unsatisfiable(Exception):
    """The range lies outside the recording: answer 416 with `Content-Range: bytes */size`."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        super().__init__(f"range not satisfiable (size {total})")


@dataclass(frozen=True)
class ByteRange:
    """A single byte range as asked. `start` None means the last `end` bytes (a suffix range)."""

    start: int | None
    end: int | None

    def resolve(self, total: int) -> tuple[int, int]:
        """(first, last) inclusive within a body of `total` bytes, or raise Unsatisfiable."""
        if self.start is None:
            if not self.end or total == 0:
                raise Unsatisfiable(total)
            return max(0, total - self.end), total - 1
        if self.start >= total:
            raise Unsatisfiable(total)
        last = total - 1 if self.end is None else min(self.end, total - 1)
        return self.start, last

    def as_tuple(self) -> tuple[int | None, int | None]:
        return self.start, self.end


def parse_range(header: str | None) -> ByteRange | None:
    """A single `bytes=` range, or None when absent, malformed or multi-range (then the whole body is served,
    which RFC 9110 14.2 allows). Never raises."""
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if len(first) > 18 or len(last) > 18:
        return None  # beyond any recording (and beyond what int() parses by default at 4300 digits): ignore it
    if not first:
        return ByteRange(None, int(last))
    start, end = int(first), (int(last) if last else None)
    if end is not None and end < start:
        return None  # invalid: ignore it (RFC 9110 14.1.1)
    return ByteRange(start, end)


@dataclass
class Opened:
    """Bytes of a recording ready to send: a whole body (200) or a range of it (206)."""

    partial: bool
    content_type: str
    total: int | None  # size of the whole recording, when known
    first: int
    last: int | None  # inclusive
    chunks: Iterator[bytes]
    close: Callable[[], None]
    # The same bytes for the kernel relay (recordings/zerocopy.py): direct(length) gives a SocketSource or a
    # FileSource of exactly `length` bytes, or None (having read nothing) when it cannot. Set only where `chunks`
    # is the body as it is.
    direct: Callable[[int], object | None] | None = None

    @property
    def length(self) -> int | None:
        if self.last is None:
            return None
        return self.last - self.first + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.first}-{self.last}/{'*' if self.total is None else self.total}"


def window(chunks: Iterator[bytes], *, skip: int, limit: int | None) -> Iterator[bytes]:
    """Drop the first `skip` bytes, then yield at most `limit` bytes (None: all)."""
    remaining = limit
    for chunk in chunks:
        if skip:
            if len(chunk) <= skip:
                skip -= len(chunk)
                continue
            chunk, skip = chunk[skip:], 0
        if remaining is not None:
            if remaining <= 0:
                return
            chunk = chunk[:remaining]
            remaining -= len(chunk)
        if chunk:
            yield chunk
        if remaining == 0:
            return


def _relayable(stream, length: int | None):
    """The stream's kernel-relay source, for bodies long enough to be worth giving up the upstream connection."""
    if stream.direct is None or length is None or length < KERNEL_RELAY_MIN_BYTES:
        return None
    return stream.direct


def open_recording(recording, byte_range: ByteRange | None) -> Opened:
    """Open a recording's bytes for `byte_range` (None: all). Raises ProviderError or Unsatisfiable."""
    adapter = adapter_for(recording.account, policy=INTERACTIVE)
    if not adapter.supports_range:
        from .media_cache import media_cache

        return media_cache().open(recording, adapter, byte_range)
    try:
        stream = adapter.open_media(recording, byte_range=byte_range.as_tuple() if byte_range else None)
    except RangeNotSatisfiable as exc:
        raise Unsatisfiable(exc.total_size or recording.size_bytes) from exc
    content_type = stream.content_type or recording.content_type or "application/octet-stream"
    if stream.status == 206 and stream.content_range is not None:
        first, last, total = stream.content_range
        relay = _relayable(stream, last - first + 1)
        return Opened(True, content_type, total, first, last, stream.chunks, stream.close, relay)
    # A whole body: either none was asked, or the upstream ignored Range (then we cut it ourselves).
    total = stream.content_length
    if byte_range is None:
        last = None if total is None else total - 1
        return Opened(False, content_type, total, 0, last, stream.chunks, stream.close, _relayable(stream, total))
    if total is None:
        stream.close()
        raise Unsatisfiable(None)
    try:
        first, last = byte_range.resolve(total)
    except Unsatisfiable:
        stream.close()
        raise
    return Opened(True, content_type, total, first, last, window(stream.chunks, skip=first, limit=last - first + 1),
                  stream.close)  # fmt: skip


READ_AHEAD_MIN_BYTES = 1024 * 1024
READ_AHEAD_CHUNKS = 2


class _ReadAhead:
    """Read the upstream in a thread, up to a few chunks ahead, so receiving overlaps sending.

    A relay that alternates recv and send leaves each side idle half the time (see bench/playback.py).
    Memory stays bounded: at most READ_AHEAD_CHUNKS chunks wait in the queue.
    """

    _DONE = object()

    def __init__(self, chunks: Iterator[bytes], close_upstream: Callable[[], None]) -> None:
        self.queue: Queue = Queue(maxsize=READ_AHEAD_CHUNKS)
        self.stopped = threading.Event()
        self.close_upstream = close_upstream
        self.thread = threading.Thread(target=self._run, args=(chunks,), name="audio-read-ahead", daemon=True)
        self.thread.start()

    def _run(self, chunks: Iterator[bytes]) -> None:
        try:
            for chunk in chunks:
                if not self._put(chunk):
                    return
            self._put(self._DONE)
        except BaseException as exc:  # handed to the consumer
            self._put(exc)
        finally:
            # The upstream is closed by the thread that reads it (a generator cannot be closed while it runs).
            self.close_upstream()

    def _put(self, item) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def __iter__(self) -> Iterator[bytes]:
        while True:
            item = self.queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop: the reader sees it at its next chunk (a stalled upstream ends at the read timeout)."""
        self.stopped.set()
        self.thread.join(timeout=1)


class ResponseBody:
    """The body of an audio response. Django calls close() when the response ends, the client hung up, or it
    was never sent: close() always closes the upstream (a generator's `finally` would not run if it never started).

    `server` is the WSGI server's response object when the bytes may be written to its socket in the kernel
    (zerocopy.server_response); otherwise, or when the source cannot be relayed that way, chunks are yielded.
    """

    def __init__(self, opened: Opened, *, on_error: Callable[[Exception], None] | None = None,
                 server: object | None = None) -> None:  # fmt: skip
        self.opened = opened
        self.on_error = on_error
        self.server = server
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        if self.server is not None and self.opened.direct is not None and self.opened.length:
            try:
                if self._relay_in_kernel():
                    return
            except BaseException:
                self.close()
                raise
        chunks: Iterable[bytes] = self.opened.chunks
        length = self.opened.length
        if length is None or length >= READ_AHEAD_MIN_BYTES:
            self.read_ahead = _ReadAhead(self.opened.chunks, self._close_upstream)
            chunks = self.read_ahead
        try:
            yield from chunks
        except ProviderError as exc:
            # Headers are gone already: end the body early; the player retries with a Range request.
            if self.on_error is not None:
                self.on_error(exc)
        finally:
            self.close()

    read_ahead: _ReadAhead | None = None

    def _relay_in_kernel(self) -> bool:
        """Send the body with splice/sendfile; False (nothing read or sent) when this source cannot be."""
        server, length = self.server, self.opened.length
        if not zerocopy.server_ready(server, length):
            return False
        source = self.opened.direct(length)
        if source is None:
            return False

        def count(n: int) -> None:
            server.sent += n  # gunicorn's access log reports what was sent

        try:
            server.send_headers()
            how = zerocopy.relay(source, length, server.sock, on_sent=count)
            logger.debug("Audio body of %d bytes relayed in the kernel (%s)", length, how)
        except zerocopy.ClientGone:
            server.force_close()
        except ProviderError as exc:
            server.force_close()  # fewer bytes than Content-Length: close, so the player asks again with a Range
            if self.on_error is not None:
                self.on_error(exc)
        finally:
            self.close()
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.read_ahead is not None:
            self.read_ahead.close()  # its thread closes the upstream
        else:
            self._close_upstream()

    def _close_upstream(self) -> None:
        close_chunks = getattr(self.opened.chunks, "close", None)
        if close_chunks is not None:
            close_chunks()
        self.opened.close()
