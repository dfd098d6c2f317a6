"""HTTP plumbing: routing to providers, Range, faults on the wire, the request log and the control API."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox import __version__, data
from sandbox.audio import AudioSpec, MediaCache, SyntheticWav
from sandbox.faults import Fault, FaultError, Faults

MAX_REQUEST_BODY = 10 * 1024 * 1024
CHUNK = 256 * 1024
REDACTED_PARAMS = ("sig", "X-Amz-Signature", "X-Amz-Credential")


# --- requests and responses as the providers see them ---


@dataclass
class Request:
    method: str
    path: str  # without the query string
    raw_query: str
    query: dict[str, list[str]]
    headers: Any  # email.message.Message: case-insensitive get()
    body: bytes
    base: str  # "http://host:port" as the client addressed us

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body.strip() else None

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    @property
    def is_head(self) -> bool:
        return self.method == "HEAD"


@dataclass
class Media:
    """A file to serve (a cached generated file or the synthetic big WAV) with its HTTP validators."""

    size: int
    content_type: str
    etag: str
    last_modified: datetime
    path: Path | None = None
    synthetic: SyntheticWav | None = None

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        if self.synthetic is not None:
            yield from self.synthetic.iter_range(start, end, CHUNK)
            return
        assert self.path is not None
        with open(self.path, "rb") as f:
            f.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = f.read(min(CHUNK, remaining))
                if not chunk:
                    raise OSError(f"{self.path} is shorter than expected")
                remaining -= len(chunk)
                yield chunk


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    media: Media | None = None
    media_range: tuple[int, int] | None = None  # [start, end) of media sent as the body

    @property
    def body_length(self) -> int:
        if self.media is not None and self.media_range is not None:
            return self.media_range[1] - self.media_range[0]
        return len(self.body)

    def chunks(self) -> Iterable[bytes]:
        if self.media is not None and self.media_range is not None:
            return self.media.iter_range(*self.media_range)
        return [self.body] if self.body else []


class HttpError(Exception):
    """Raised by a provider handler to answer with `response` (its own error body format)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None, indent: int | None = None) -> Response:
    body = json.dumps(obj, indent=indent, separators=None if indent else (",", ":")).encode()
    return Response(status, {"Content-Type": "application/json", **(headers or {})}, body)


def text_response(status: int, text: str, content_type: str = "text/plain; charset=utf-8", **headers: str) -> Response:
    return Response(status, {"Content-Type": content_type, **headers}, text.encode())


def http_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def iso(moment: datetime | None, timespec: str = "seconds") -> str | None:
    """RFC 3339 in UTC with a Z, as the providers' JSON uses."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """One byte range [start, end) from a Range header; "unsatisfiable", or None to send the whole file.

    Multiple ranges and malformed headers are ignored (RFC 9110 allows answering 200 with the whole file).
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                return "unsatisfiable" if suffix == 0 else None
            return (max(0, size - suffix), size) if size else "unsatisfiable"
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start < 0 or (last and end <= start):
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size)


def serve_media(
    req: Request,
    media: Media,
    *,
    ranges: bool,
    unsatisfiable: Callable[[], Response] | None = None,
    headers: dict[str, str] | None = None,
    validators: bool = True,
) -> Response:
    """200 with the file, or (when `ranges`) 206 for one satisfiable byte range and 416 otherwise.

    `validators` adds ETag and Last-Modified, as an object store does; a streamed download has neither.
    """
    base = {"Content-Type": media.content_type}
    if validators:
        base["Last-Modified"] = http_date(media.last_modified)
        base["ETag"] = f'"{media.etag}"'
    base.update(headers or {})
    if ranges:
        base["Accept-Ranges"] = "bytes"
        wanted = parse_range(req.headers.get("Range"), media.size)
        if_range = req.headers.get("If-Range")
        if wanted is not None and if_range and if_range not in (base.get("ETag"), base.get("Last-Modified")):
            wanted = None  # the client's copy is stale: send the whole file
        if wanted == "unsatisfiable":
            resp = unsatisfiable() if unsatisfiable else Response(416)
            resp.headers["Content-Range"] = f"bytes */{media.size}"
            return resp
        if isinstance(wanted, tuple):
            start, end = wanted
            base["Content-Range"] = f"bytes {start}-{end - 1}/{media.size}"
            return Response(206, base, media=media, media_range=(start, end))
    return Response(200, base, media=media, media_range=(0, media.size))


# --- the request log ---


class RequestLog:
    """What the server answered, for tests: bytes sent, whether the body completed or the client hung up."""

    def __init__(self, maxlen: int = 20_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._next = 1

    def start(self, provider: str | None, method: str, path: str, range_header: str | None) -> dict[str, Any]:
        with self._lock:
            entry = {
                "id": self._next,
                "provider": provider,
                "method": method,
                "path": path,
                "range": range_header,
                "status": None,
                "bytes_sent": 0,
                "body_length": None,
                "completed": False,
                "client_disconnected": False,
                "faults": [],
                "started_at": _now_iso(),
                "ended_at": None,
                "duration_ms": None,
            }
            self._next += 1
            self._entries.append(entry)
            entry["_t0"] = time.monotonic()
            return entry

    @staticmethod
    def finish(entry: dict[str, Any]) -> None:
        entry["ended_at"] = _now_iso()
        entry["duration_ms"] = round((time.monotonic() - entry["_t0"]) * 1000, 1)

    def entries(self, provider: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            snapshot = list(self._entries)
        return [
            {k: v for k, v in e.items() if not k.startswith("_")}
            for e in snapshot
            if e["id"] > since and (provider is None or e["provider"] == provider)
        ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _redact(path: str, raw_query: str) -> str:
    if not raw_query:
        return path
    parts = []
    for pair in raw_query.split("&"):
        name, eq, _value = pair.partition("=")
        parts.append(f"{name}=REDACTED" if eq and name in REDACTED_PARAMS else pair)
    return f"{path}?{'&'.join(parts)}"


# --- shared state ---


@dataclass
class Config:
    """Runtime knobs (CLI flags; changeable through POST /_control/config)."""

    transcription_delay: float = 1.5  # seconds a Bandwidth transcription stays "processing"
    session_ttl: float = 1800.0  # seconds an Ameyo session lives
    link_ttl: float = 900.0  # seconds an Envoy playback URL lives

    def update(self, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name not in self.__dataclass_fields__:
                raise FaultError(f"unknown config key {name!r}")
            if not isinstance(value, int | float) or value < 0:
                raise FaultError(f"{name} must be a non-negative number")
            setattr(self, name, float(value))


class SandboxState:
    """Everything the providers share: the dataset, media cache, clock, faults, config and the log."""

    def __init__(
        self,
        *,
        seed: int = 0,
        calls: int | dict[str, int] = data.DEFAULT_CALLS,
        anchor: date | None = None,
        cache_dir: Path | str = ".sandbox-cache",
        config: Config | None = None,
        big_recording_mb: int = 0,
    ) -> None:
        self.dataset = data.build(seed, calls, anchor)
        self.cache = MediaCache(Path(cache_dir) / f"v{_cache_version()}")
        self.initial_config = config or Config()
        self.config = Config(**vars(self.initial_config))
        self.faults = Faults()
        self.initial_faults: list[dict[str, Any]] = []  # --fault rules, reinstalled by reset and clean
        self.log = RequestLog()
        self.clock_offset = 0.0
        self.lock = threading.RLock()
        self.big_recording = SyntheticWav(big_recording_mb * 1024 * 1024) if big_recording_mb else None
        from sandbox.providers import build_providers  # providers import this module

        self.providers = build_providers(self)

    def now(self) -> float:
        """The sandbox clock (epoch seconds): real time plus the offset set through /_control/clock."""
        return time.time() + self.clock_offset

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def media_for(self, spec: AudioSpec, content_type: str) -> Media:
        """The cached file for `spec`, generated now if needed (a request never sees a partial file)."""
        path = self.cache.ensure(spec)
        stat = path.stat()
        return Media(
            size=stat.st_size,
            content_type=content_type,
            etag=spec.digest,
            last_modified=self.dataset.anchor,
            path=path,
        )

    def reset(self) -> None:
        with self.lock:
            for provider in self.providers.values():
                provider.reset()
            self.log.clear()
            self.clean()

    def clean(self) -> None:
        """Between tests: faults, clock and config back to their start values; data and log untouched."""
        from sandbox.control import add_fault

        with self.lock:
            self.faults.clear()
            for spec in self.initial_faults:
                add_fault(self, spec)
            self.clock_offset = 0.0
            self.config = Config(**vars(self.initial_config))

    def all_specs(self, providers: Iterable[str] | None = None) -> list[AudioSpec]:
        names = list(providers) if providers else list(self.providers)
        return [spec for name in names for spec in self.providers[name].media_specs()]

    def index(self, base: str) -> dict[str, Any]:
        return {
            "sandbox": {
                "version": __version__,
                "seed": self.dataset.seed,
                "calls_per_provider": self.dataset.calls_per_provider,
                "anchor_date": self.dataset.anchor.date().isoformat(),
                "control": f"{base}/_control/",
                "docs": "docs/sandbox.md",
            },
            "providers": {name: p.index_entry(base) for name, p in self.providers.items()},
        }


def _cache_version() -> int:
    from sandbox.audio import GENERATOR_VERSION

    return GENERATOR_VERSION


# --- the server ---


class _Dropped(Exception):
    """The drop_after fault closed the connection mid-body."""


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 50+ concurrent streams plus their keep-alive neighbours
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SandboxState, verbose: bool = False) -> None:
        self.state = state
        self.verbose = verbose
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with Content-Length
    server_version = f"sandbox/{__version__}"
    sys_version = ""
    timeout = 120  # idle keep-alive connections and stalled readers give their thread back
    server: SandboxServer

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACK stall small answers 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"sandbox: {self.address_string()} {format % args}\n")

    # --- one request ---

    def _dispatch(self) -> None:
        state = self.server.state
        split = urlsplit(self.path)
        path = split.path or "/"
        try:
            body = self._read_body()
        except ValueError as exc:
            self.close_connection = True  # the rest of the body is still on the wire
            self._write(json_response(400, {"error": str(exc)}), None, None, None)
            return
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        req = Request(
            method=self.command,
            path=path,
            raw_query=split.query,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
            base=f"http://{host}",
        )
        if path.startswith("/_control"):
            self._write(self._control(req), None, None, None)
            return
        provider = next((p for p in state.providers.values() if path.startswith(p.prefix + "/")), None)
        name = provider.name if provider else None
        entry = state.log.start(name, req.method, _redact(path, split.query), req.headers.get("Range"))
        response: Response
        try:
            if provider is None:
                response = self._sandbox_route(req)
            else:
                response = self._provider_route(provider, req, entry)
        except HttpError as exc:
            response = exc.response
        except Exception:
            traceback.print_exc()
            response = (
                provider.error(req, 500, "Internal Server Error").response
                if provider
                else json_response(500, {"error": "internal error"})
            )
        drop = slow = None
        if provider is not None and not req.is_head:
            length = response.body_length
            drop = state.faults.take("drop_after", name, path, lambda f: f.params["bytes"] < length)
            slow = state.faults.take("slow_body", name, path)
            entry["faults"] += [f.kind for f in (drop, slow) if f]
        self._write(response, entry, drop, slow)

    def _provider_route(self, provider: Any, req: Request, entry: dict[str, Any]) -> Response:
        state = self.server.state
        latency = state.faults.take("latency", provider.name, req.path)
        if latency:
            entry["faults"].append("latency")
            time.sleep(latency.params["ms"] / 1000)
        status = state.faults.take("status", provider.name, req.path)
        if status:
            entry["faults"].append("status")
            return provider.fault_response(req, status)
        return provider.route(req)

    def _sandbox_route(self, req: Request) -> Response:
        state = self.server.state
        if req.path == "/" and req.method in ("GET", "HEAD"):
            return json_response(200, state.index(req.base), indent=2)
        for provider in state.providers.values():
            report = provider.report(req)
            if report is not None:
                return report
        return json_response(404, {"error": f"no route for {req.method} {req.path}; see GET / and docs/sandbox.md"})

    def _control(self, req: Request) -> Response:
        from sandbox.control import handle

        try:
            return handle(self.server.state, req)
        except FaultError as exc:
            return json_response(400, {"error": str(exc)})
        except json.JSONDecodeError as exc:
            return json_response(400, {"error": f"invalid JSON: {exc}"})

    # --- the wire ---

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > MAX_REQUEST_BODY:
                    raise ValueError("request body too large")
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length else b""

    def _write(self, resp: Response, entry: dict[str, Any] | None, drop: Fault | None, slow: Fault | None) -> None:
        length = resp.body_length
        if entry is not None:
            entry["status"] = resp.status
            entry["body_length"] = 0 if self.command == "HEAD" else length
        try:
            self.send_response(resp.status)
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(length))  # a dropped body still promises its full length
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self._send_body(resp, entry, drop, slow)
            if entry is not None:
                entry["completed"] = True
        except _Dropped:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True
            if entry is not None:
                entry["client_disconnected"] = True
        finally:
            if entry is not None:
                RequestLog.finish(entry)

    def _send_body(self, resp: Response, entry: dict[str, Any] | None, drop: Fault | None, slow: Fault | None) -> None:
        limit = drop.params["bytes"] if drop else None
        rate = slow.params["bytes_per_second"] if slow else None
        sock = self.connection
        sent = 0
        t0 = time.monotonic()
        for chunk in resp.chunks():
            view = memoryview(chunk)
            while view:
                piece = view
                if limit is not None:
                    piece = piece[: limit - sent]
                if rate is not None:
                    piece = piece[: max(1, int(rate) // 20)]  # ~20 writes per second
                    wait = t0 + sent / rate - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                if piece:
                    sock.sendall(piece)
                    sent += len(piece)
                    if entry is not None:
                        entry["bytes_sent"] = sent
                view = view[len(piece) :]
                if limit is not None and sent >= limit:
                    raise _Dropped
