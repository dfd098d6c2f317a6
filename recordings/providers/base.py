"""The shared base of provider adapters: HTTP session, timeouts, retries, error mapping, shared dataclasses.

A provider module only builds requests and parses answers into these dataclasses (django-anymail's pattern).
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import requests
import urllib3
from django.conf import settings

from ..zerocopy import socket_source
from .errors import (
    AuthenticationFailed,
    BlockedAddress,
    Expired,
    Misconfigured,
    NotFound,
    NotSupported,
    ProviderError,
    RangeNotSatisfiable,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)

if TYPE_CHECKING:
    from recordings.models import ProviderAccount, Recording

logger = logging.getLogger(__name__)

USER_AGENT = "RecordingPortal/0.1 (+https://github.com/recording-portal) python-requests"
# Large enough that per-chunk Python overhead stays small against the copy (see bench/playback.py).
CHUNK_SIZE = 1024 * 1024


@dataclass(frozen=True)
class AccountField:
    """One setting an account of a provider needs. Credentials are encrypted and write-only."""

    key: str
    label: str
    secret: bool = False
    required: bool = True
    help_text: str = ""


# --- Shared dataclasses --------------------------------------------------------------------------------------


@dataclass
class RemoteRecording:
    """A recording as the provider describes it."""

    remote_id: str
    status: str = "available"  # one of Recording.Status values
    content_type: str = ""
    format: str = ""
    duration: float | None = None
    size_bytes: int | None = None
    channels: int | None = None
    started_at: datetime | None = None
    locator: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass
class RemoteCall:
    """A call as the provider describes it, with its recordings."""

    remote_id: str
    started_at: datetime
    direction: str = "unknown"  # inbound | outbound | unknown
    from_number: str = ""
    to_number: str = ""
    ended_at: datetime | None = None
    duration: float | None = None
    agent: str = ""
    campaign: str = ""
    disposition: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    recordings: list[RemoteRecording] = field(default_factory=list)


@dataclass
class TranscriptSegment:
    speaker: str
    start: float | None
    end: float | None
    text: str
    confidence: float | None = None


@dataclass
class RemoteTranscript:
    status: str  # requested | processing | available | failed
    text: str = ""
    segments: list[TranscriptSegment] = field(default_factory=list)
    error: str = ""


@dataclass
class MediaStream:
    """An opened media download. Iterate `chunks`; always call `close()` (it closes the upstream connection)."""

    status: int  # 200 (whole file) or 206 (the asked range)
    content_type: str
    content_length: int | None
    chunks: Iterator[bytes]
    close: Callable[[], None]
    # For a 206: (first byte, last byte, total size or None).
    content_range: tuple[int, int, int | None] | None = None
    etag: str = ""
    last_modified: str = ""
    # For the audio route's kernel relay (recordings/zerocopy.py): the unread body as a socket, or None.
    direct: Callable[[int], object | None] | None = None

    @property
    def total_size(self) -> int | None:
        if self.content_range is not None:
            return self.content_range[2]
        return self.content_length


# --- Retries ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Only transient errors of idempotent requests are retried."""

    attempts: int = 4
    backoff: float = 0.5  # first wait after a 5xx or timeout; doubles each time
    max_retry_after: float = 30.0  # a 429 asking for longer than this is reported, not waited for


BACKGROUND = RetryPolicy()
# A person is waiting (playback): try once more, never wait long.
INTERACTIVE = RetryPolicy(attempts=2, backoff=0.2, max_retry_after=2.0)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date (RFC 9110, 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    """`bytes 0-99/1234` or `bytes 0-99/*`."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        span, _, total = value[6:].partition("/")
        first, _, last = span.partition("-")
        return int(first), int(last), None if total == "*" else int(total)
    except ValueError:
        return None


# --- Address guard ---------------------------------------------------------------------------------------------


def _is_internal(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast or ip.is_unspecified


def host_key(url: str) -> tuple[str, str]:
    """(hostname, hostname:port) of a URL, lower-cased."""
    parts = urlsplit(url)
    hostname = (parts.hostname or "").lower()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return hostname, f"{hostname}:{port}"


def check_followup_url(url: str, *, account_base_url: str) -> None:
    """Refuse provider-supplied URLs that resolve inside our network, unless allowed.

    Allowed: the account's own base_url host, or a host (or host:port) in MEDIA_URL_ALLOWLIST.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedAddress("The provider's media link is not an http(s) URL; it was not fetched.")
    hostname, hostport = host_key(url)
    _, base_hostport = host_key(account_base_url)
    allow = {entry.strip().lower() for entry in settings.MEDIA_URL_ALLOWLIST if entry.strip()}
    if hostport == base_hostport or hostname in allow or hostport in allow:
        return
    try:
        infos = socket.getaddrinfo(hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise UpstreamError("The provider's media host could not be resolved.") from exc
    if any(_is_internal(info[4][0]) for info in infos):
        raise BlockedAddress()


# --- The base adapter ------------------------------------------------------------------------------------------

_sessions: dict[tuple[int, str], requests.Session] = {}
_sessions_lock = threading.Lock()


class Provider:
    """A provider adapter for one account. Subclasses declare fields and capabilities and implement the calls."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    credential_fields: ClassVar[tuple[AccountField, ...]] = ()
    option_fields: ClassVar[tuple[AccountField, ...]] = ()

    can_sync: ClassVar[bool] = False
    """Calls and recordings are listed by the provider's API (otherwise a report is imported)."""
    can_import_report: ClassVar[bool] = False
    """Calls enter by importing the provider's CSV report."""
    supports_range: ClassVar[bool] = False
    """The upstream media answers byte ranges; otherwise the media cache gives seeking."""
    can_delete: ClassVar[bool] = False
    """The whole recording can be deleted at the provider."""
    can_delete_media: ClassVar[bool] = False
    """Only the media can be deleted at the provider, keeping the metadata."""
    can_transcribe: ClassVar[bool] = False
    """A transcription can be requested and fetched."""

    def __init__(self, account: ProviderAccount, *, policy: RetryPolicy = BACKGROUND) -> None:
        self.account = account
        self.base_url = account.effective_base_url
        self.credentials: dict[str, str] = account.credentials or {}
        self.options: dict[str, str] = account.options or {}
        self.policy = policy
        self.timeout = (settings.PROVIDER_CONNECT_TIMEOUT, settings.PROVIDER_READ_TIMEOUT)
        if not self.base_url:
            raise Misconfigured(f"{self.label} account {account.name!r} has no base URL.", provider=self.name)

    # Declarations ------------------------------------------------------------------------------------------

    @classmethod
    def capabilities(cls) -> dict[str, bool]:
        return {
            "sync": cls.can_sync,
            "import_report": cls.can_import_report,
            "range": cls.supports_range,
            "delete": cls.can_delete,
            "delete_media": cls.can_delete_media,
            "transcribe": cls.can_transcribe,
        }

    def credential(self, key: str) -> str:
        value = self.credentials.get(key)
        if not value:
            raise Misconfigured(f"The {self.label} account has no {key.replace('_', ' ')} set.", provider=self.name)
        return value

    def option(self, key: str, default: str | None = None) -> str:
        value = self.options.get(key) or default
        if value is None:
            raise Misconfigured(f"The {self.label} account has no {key.replace('_', ' ')} set.", provider=self.name)
        return value

    # HTTP --------------------------------------------------------------------------------------------------

    @property
    def session(self) -> requests.Session:
        """One requests.Session per account (connection reuse), rebuilt when the account changes."""
        key = (self.account.pk or 0, str(self.account.updated_at))
        with _sessions_lock:
            session = _sessions.get(key)
            if session is None:
                for stale in [k for k in _sessions if k[0] == key[0]]:
                    _sessions.pop(stale).close()
                session = requests.Session()
                session.headers["User-Agent"] = USER_AGENT
                self.configure_session(session)
                _sessions[key] = session
            return session

    def configure_session(self, session: requests.Session) -> None:
        """Set authentication on the session (override)."""

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool = True,
        stream: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request; retry transient failures of idempotent ones; map failures to ProviderError."""
        policy = self.policy
        for attempt in range(1, policy.attempts + 1):
            try:
                response = self.session.request(method, url, timeout=self.timeout, stream=stream, **kwargs)
            except requests.Timeout:
                error: ProviderError = UpstreamTimeout(f"{self.label} did not answer, try again.", provider=self.name)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                error = UpstreamError(f"Could not connect to {self.label}, try again.", provider=self.name)
            else:
                if response.status_code < 400:
                    return response
                if response.status_code == 416:
                    total = response.headers.get("Content-Range", "").rpartition("/")[2]  # `bytes */1234`
                    response.close()
                    raise RangeNotSatisfiable(
                        provider=self.name, status=416, total_size=int(total) if total.isdigit() else None
                    )
                error = self.error_for(response)
            if not idempotent or error.permanent or attempt >= policy.attempts:
                raise error
            if isinstance(error, RateLimited):
                wait = error.retry_after if error.retry_after is not None else policy.backoff * 2 ** (attempt - 1)
                if wait > policy.max_retry_after:
                    raise error
            else:
                wait = policy.backoff * 2 ** (attempt - 1)
            logger.info("%s: %s; retrying in %.1fs (attempt %d)", self.label, error.kind, wait, attempt)
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def error_for(self, response: requests.Response) -> ProviderError:
        """Map an error answer to the vocabulary. Reads (a bounded part of) the body and closes the response."""
        status = response.status_code
        try:
            # The first 16 KiB, whether or not the body was streamed.
            body = next(response.iter_content(16 * 1024), b"")
        except Exception:  # the body is only a hint for the message
            body = b""
        finally:
            response.close()
        detail = self.without_credentials(self.error_detail(status, body))
        return self.error_class_for(status, detail)(
            self.error_message(status, detail),
            provider=self.name,
            status=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")) if status == 429 else None,
        )

    def without_credentials(self, text: str) -> str:
        """`text` with the account's credential values cut out: a provider may echo what it was sent."""
        for value in self.credentials.values():
            if isinstance(value, str) and len(value) >= 4:
                text = text.replace(value, "<redacted>")
        return text

    def error_detail(self, status: int, body: bytes) -> str:
        """The provider's own words from an error body (override per provider's error format)."""
        import json

        try:
            data = json.loads(body)
        except ValueError:
            return body.decode("utf-8", "replace")[:200] if body and not body.lstrip().startswith(b"<") else ""
        if isinstance(data, dict):
            for key in ("description", "message", "detail", "error"):
                value = data.get(key)
                if isinstance(value, str) and value:
                    return value
        return ""

    def error_class_for(self, status: int, detail: str) -> type[ProviderError]:
        if status in (401, 403):
            return AuthenticationFailed
        if status == 404:
            return NotFound
        if status == 410:
            return Expired
        if status == 429:
            return RateLimited
        if status >= 500:
            return UpstreamError
        return _Rejected

    def error_message(self, status: int, detail: str) -> str:
        prefix = {
            401: f"{self.label} refused the credentials",
            403: f"{self.label} refused access",
            404: f"{self.label} has no such item",
            429: f"{self.label} is rate limiting us",
        }.get(status, f"{self.label} answered {status}" if status < 500 else f"{self.label} had an error ({status})")
        return f"{prefix}: {detail}" if detail else f"{prefix}."

    # Media -------------------------------------------------------------------------------------------------

    def stream_from(self, response: requests.Response) -> MediaStream:
        """Wrap a streamed media response."""
        length = response.headers.get("Content-Length")
        return MediaStream(
            status=response.status_code,
            content_type=response.headers.get("Content-Type", "application/octet-stream").split(";")[0].strip(),
            content_length=int(length) if length and length.isdigit() else None,
            content_range=parse_content_range(response.headers.get("Content-Range"))
            if response.status_code == 206
            else None,
            chunks=_available_chunks(response),
            close=response.close,
            etag=response.headers.get("ETag", ""),
            last_modified=response.headers.get("Last-Modified", ""),
            direct=partial(socket_source, response),
        )

    @staticmethod
    def range_header(byte_range: tuple[int | None, int | None] | None) -> dict[str, str]:
        if byte_range is None:
            return {}
        first, last = byte_range  # first None: the last `last` bytes (a suffix range)
        return {"Range": f"bytes={'' if first is None else first}-{'' if last is None else last}"}

    def fetch_followup(self, url: str, *, byte_range: tuple[int | None, int | None] | None = None) -> MediaStream:
        """GET a media URL the provider handed back (a signed link), after the address guard."""
        check_followup_url(url, account_base_url=self.base_url)
        response = self.request("GET", url, stream=True, headers=self.range_header(byte_range), auth=None)
        return self.stream_from(response)

    def open_fresh_link(self, link: Callable[[], str], *, byte_range=None) -> MediaStream:
        """Fetch a signed media link that `link()` gets from the provider. A link can expire between being handed
        out and being fetched (its host then refuses it): ask for a fresh one, once."""
        url = link()
        try:
            return self.fetch_followup(url, byte_range=byte_range)
        except (AuthenticationFailed, Expired):
            return self.fetch_followup(link(), byte_range=byte_range)

    # Operations (override what the provider can do) ---------------------------------------------------------

    def iter_calls(self, *, since: datetime | None, until: datetime) -> Iterator[RemoteCall]:
        raise NotSupported(f"{self.label} has no listing API; import its report instead.", provider=self.name)

    def parse_report_row(self, row: dict[str, str]) -> RemoteCall:
        raise NotSupported(f"{self.label} calls are synced, not imported.", provider=self.name)

    def open_media(
        self, recording: Recording, *, byte_range: tuple[int | None, int | None] | None = None
    ) -> MediaStream:
        raise NotSupported(f"{self.label} media cannot be played.", provider=self.name)

    def test_connection(self) -> str:
        raise NotSupported(provider=self.name)

    def delete_recording(self, recording: Recording) -> None:
        raise NotSupported(f"{self.label} cannot delete recordings.", provider=self.name)

    def delete_media(self, recording: Recording) -> None:
        raise NotSupported(f"{self.label} cannot delete recording media alone.", provider=self.name)

    def request_transcription(self, recording: Recording) -> None:
        raise NotSupported(f"{self.label} cannot transcribe recordings.", provider=self.name)

    def fetch_transcription(self, recording: Recording) -> RemoteTranscript:
        raise NotSupported(f"{self.label} cannot transcribe recordings.", provider=self.name)


def _available_chunks(response: requests.Response) -> Iterator[bytes]:
    """The body as it arrives: up to CHUNK_SIZE bytes, but whatever has come rather than waiting for a full chunk.

    A slow upstream then neither delays the listener nor a hang-up (iter_content waits for whole chunks).
    """
    raw = response.raw
    try:
        while True:
            data = raw.read1(CHUNK_SIZE, decode_content=True)
            if not data:
                return
            yield data
    except (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError, OSError) as exc:
        raise UpstreamError("The provider stopped sending, try again.") from exc


class _Rejected(UpstreamError):
    """A 4xx the provider gives for a request it will not take as sent: retrying will not help."""

    kind = "upstream"
    permanent = True


__all__ = [
    "BACKGROUND",
    "INTERACTIVE",
    "AccountField",
    "AuthenticationFailed",
    "Expired",
    "MediaStream",
    "NotFound",
    "Provider",
    "RemoteCall",
    "RemoteRecording",
    "RemoteTranscript",
    "RetryPolicy",
    "TranscriptSegment",
]
