"""A local, size-bounded cache of provider media: seeking for providers whose upstream has no Range.

The first play of a recording fills the cache while it streams (one fill at a time per recording, across
threads and processes, guarded by a `flock`); concurrent plays follow the file as it grows instead of
fetching again. Writes are atomic (a `.part` file renamed into place); least recently used files are evicted
to stay under MEDIA_CACHE_MAX_BYTES. A fill stops, and closes the upstream, when its client hangs up.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from .providers.errors import UpstreamError, UpstreamTimeout
from .streaming import ByteRange, Opened, Unsatisfiable, window
from .zerocopy import FileSource

CHUNK = 1024 * 1024
POLL_SECONDS = 0.02


class MediaCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True)

    # Paths -------------------------------------------------------------------------------------------------

    def _path(self, recording, suffix: str) -> Path:
        return self.root / f"{recording.pk}{suffix}"

    def cached(self, recording) -> tuple[Path, dict] | None:
        """(file, info) when the whole recording is cached."""
        media = self._path(recording, ".media")
        try:
            info = json.loads(self._path(recording, ".json").read_text())
            size = media.stat().st_size
        except (FileNotFoundError, ValueError):
            return None
        return (media, info) if size == info.get("size") else None

    def remove(self, recording) -> bool:
        """Delete the cached copy of a recording; True if there was one."""
        removed = False
        for suffix in (".media", ".json"):
            with contextlib.suppress(FileNotFoundError):
                self._path(recording, suffix).unlink()
                removed = True
        return removed

    def usage(self) -> int:
        return sum(entry.stat().st_size for entry in os.scandir(self.root) if entry.name.endswith(".media"))

    # Opening -----------------------------------------------------------------------------------------------

    def open(self, recording, adapter, byte_range: ByteRange | None) -> Opened:
        deadline = time.monotonic() + settings.PROVIDER_CONNECT_TIMEOUT + settings.PROVIDER_READ_TIMEOUT
        while True:
            hit = self.cached(recording)
            if hit is not None:
                os.utime(hit[0])  # least recently used goes first
                return _from_file(hit[0], hit[1], byte_range)
            lock = _try_lock(self._path(recording, ".lock"))
            if lock is not None:
                try:
                    hit = self.cached(recording)
                    if hit is not None:
                        _unlock(lock)
                        return _from_file(hit[0], hit[1], byte_range)
                    return self._fill(recording, adapter, byte_range, lock)
                except BaseException:
                    _unlock(lock)
                    raise
            info = _read_json(self._path(recording, ".fill"))
            if info is not None:
                opened = self._follow(recording, info, byte_range)
                if opened is not None:
                    return opened
            if time.monotonic() > deadline:
                raise UpstreamTimeout(f"{adapter.label} did not answer, try again.", provider=adapter.name)
            time.sleep(POLL_SECONDS)

    def _fill(self, recording, adapter, byte_range: ByteRange | None, lock: int) -> Opened:
        """Fetch the whole file from the provider, writing it to the cache while serving the asked range."""
        stream = adapter.open_media(recording)
        total = stream.content_length
        content_type = stream.content_type or recording.content_type or "application/octet-stream"
        if total is not None and total > self.max_bytes:
            # Too big to keep: pass it through (ranges by skipping), without caching.
            _unlock(lock)
            return _passthrough(stream, content_type, total, byte_range)
        if total is None and byte_range is not None:
            # Without a size there is no Content-Range to give: finish the fill first, then serve the range.
            for _ in self._filling(recording, stream, content_type, total, lock):
                pass
            hit = self.cached(recording)
            if hit is None:
                raise UpstreamError(f"{adapter.label} sent an incomplete file, try again.", provider=adapter.name)
            return _from_file(hit[0], hit[1], byte_range)
        if byte_range is None:
            first, last, partial = 0, (None if total is None else total - 1), False
        else:
            try:
                first, last = byte_range.resolve(total)
            except Unsatisfiable:
                stream.close()
                _unlock(lock)
                raise
            partial = True
        body = self._filling(recording, stream, content_type, total, lock)
        limit = None if last is None else last - first + 1
        chunks = window(body, skip=first, limit=limit)
        return Opened(partial, content_type, total, first, last, _finish_filling(chunks, body), body.close)

    def _filling(self, recording, stream, content_type: str, total: int | None, lock: int) -> _Fill:
        return _Fill(self, recording, stream, content_type, total, lock)

    def _follow(self, recording, info: dict, byte_range: ByteRange | None) -> Opened | None:
        """Serve from a file another request is filling; None if that fill is already over (look again)."""
        try:
            handle = open(self._path(recording, ".part"), "rb")
        except FileNotFoundError:
            return None
        total = info.get("size")
        if total is None:
            handle.close()
            return None  # wait for that fill to finish, then serve from the cache
        try:
            first, last = byte_range.resolve(total) if byte_range else (0, total - 1)
        except Unsatisfiable:
            handle.close()
            raise
        lock_path = self._path(recording, ".lock")
        chunks = _tail(handle, first, last, lock_path, self._path(recording, ".media"))

        def close() -> None:
            chunks.close()
            handle.close()  # also when the body was never iterated

        return Opened(byte_range is not None, info["content_type"], total, first, last, chunks, close)

    def evict(self) -> None:
        """Remove least recently used files until the cache is under its bound."""
        with open(self.root / ".evict.lock", "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            entries = []
            for entry in os.scandir(self.root):
                if entry.name.endswith(".media"):
                    with contextlib.suppress(FileNotFoundError):
                        stat = entry.stat()
                        entries.append((stat.st_mtime, stat.st_size, Path(entry.path)))
            used = sum(size for _, size, _ in entries)
            for _, size, path in sorted(entries):
                if used <= self.max_bytes:
                    break
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    path.with_suffix(".json").unlink(missing_ok=True)
                used -= size


def media_cache() -> MediaCache:
    return MediaCache(Path(settings.MEDIA_CACHE_DIR), settings.MEDIA_CACHE_MAX_BYTES)


# Helpers ---------------------------------------------------------------------------------------------------


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _unlock(fd: int) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _is_locked(path: Path) -> bool:
    fd = _try_lock(path)
    if fd is None:
        return True
    _unlock(fd)
    return False


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


class _Fill:
    """The upstream body, written to `<pk>.part` as it is read and renamed into place when complete.

    A class rather than a generator: close() must clean up (close the upstream, drop the partial file,
    release the lock) even when the body was never iterated, e.g. for a HEAD request.
    """

    def __init__(self, cache: MediaCache, recording, stream, content_type: str, total: int | None, lock: int) -> None:
        self.cache, self.stream, self.total, self.lock = cache, stream, total, lock
        self.part_path = cache._path(recording, ".part")
        self.media_path = cache._path(recording, ".media")
        self.meta_path = cache._path(recording, ".json")
        self.fill_path = cache._path(recording, ".fill")
        self.content_type = content_type
        self.written = 0
        self.completed = self.closed = False
        # Unbuffered: followers read what is written at once.
        self.part = open(self.part_path, "wb", buffering=0)
        self.chunks = iter(stream.chunks)
        _write_json(self.fill_path, {"content_type": content_type, "size": total})

    def __iter__(self) -> _Fill:
        return self

    def __next__(self) -> bytes:
        if self.closed:
            raise StopIteration
        try:
            chunk = next(self.chunks)
        except StopIteration:
            self._complete()
            raise
        except BaseException:
            self.close()
            raise
        self.part.write(chunk)
        self.written += len(chunk)
        return chunk

    def _complete(self) -> None:
        try:
            if self.total is not None and self.written != self.total:
                raise UpstreamError(f"The provider sent {self.written} of {self.total} bytes.")
            _write_json(self.meta_path, {"content_type": self.content_type, "size": self.written})
            os.replace(self.part_path, self.media_path)
            self.completed = True
        finally:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.stream.close()
        self.part.close()
        if not self.completed:
            with contextlib.suppress(FileNotFoundError):
                self.part_path.unlink()
        with contextlib.suppress(FileNotFoundError):
            self.fill_path.unlink()
        _unlock(self.lock)
        if self.completed:
            self.cache.evict()


def _finish_filling(chunks: Iterator[bytes], body: _Fill) -> Iterator[bytes]:
    """Yield from `chunks`; when the client is gone or the range is complete, finish or stop the fill."""
    try:
        yield from chunks
        # The client has its range; keep filling so the next seek is served from the cache.
        for _ in body:
            pass
    finally:
        body.close()


def _from_file(path: Path, info: dict, byte_range: ByteRange | None) -> Opened:
    total = info["size"]
    first, last = byte_range.resolve(total) if byte_range else (0, total - 1)
    handle = open(path, "rb")

    def chunks() -> Iterator[bytes]:
        handle.seek(first)
        remaining = last - first + 1
        while remaining > 0:
            data = handle.read(min(CHUNK, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data

    def direct(length: int) -> FileSource | None:
        return FileSource(handle, first) if length == last - first + 1 else None

    return Opened(byte_range is not None, info["content_type"], total, first, last, chunks(), handle.close, direct)


def _tail(handle, first: int, last: int, lock_path: Path, media_path: Path) -> Iterator[bytes]:
    """Read a file that is still being written, waiting for bytes until `last` or until the writer stops."""
    idle_limit = settings.PROVIDER_READ_TIMEOUT
    try:
        handle.seek(first)
        remaining = last - first + 1
        idle_since = time.monotonic()
        while remaining > 0:
            data = handle.read(min(CHUNK, remaining))
            if data:
                remaining -= len(data)
                idle_since = time.monotonic()
                yield data
                continue
            if not _is_locked(lock_path) and not media_path.exists():
                raise UpstreamError("The download this play was following stopped; play again.")
            if not _is_locked(lock_path) and media_path.exists():
                continue  # complete: the rest is already in the file we hold
            if time.monotonic() - idle_since > idle_limit:
                raise UpstreamTimeout("The provider stopped sending, try again.")
            time.sleep(POLL_SECONDS)
    finally:
        handle.close()


def _passthrough(stream, content_type: str, total: int, byte_range: ByteRange | None) -> Opened:
    if byte_range is None:
        return Opened(False, content_type, total, 0, total - 1, stream.chunks, stream.close)
    try:
        first, last = byte_range.resolve(total)
    except Unsatisfiable:
        stream.close()
        raise
    chunks = window(stream.chunks, skip=first, limit=last - first + 1)
    return Opened(True, content_type, total, first, last, chunks, stream.close)
