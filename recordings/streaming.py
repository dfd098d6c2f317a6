"""Serving audio through the portal: HTTP Range parsing, and opening a recording's bytes for a range.

Providers whose media answers Range get the range passed through; the others are served from the media cache
(see media_cache.py), which the first play fills while it streams.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .providers import INTERACTIVE, adapter_for
from .providers.errors import RangeNotSatisfiable

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


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
        return Opened(True, content_type, total, first, last, stream.chunks, stream.close)
    # A whole body: either none was asked, or the upstream ignored Range (then we cut it ourselves).
    total = stream.content_length
    if byte_range is None:
        last = None if total is None else total - 1
        return Opened(False, content_type, total, 0, last, stream.chunks, stream.close)
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
