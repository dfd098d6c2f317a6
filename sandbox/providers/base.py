"""What every emulated provider shares: routing below its prefix, error bodies for faults, signed links."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar
from xml.sax.saxutils import escape

from sandbox.audio import AudioSpec
from sandbox.faults import Fault
from sandbox.server import HttpError, Request, Response, text_response

if TYPE_CHECKING:
    from sandbox.server import SandboxState

Handler = Callable[[Request, re.Match[str]], Response]


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class Provider:
    """One emulated provider mounted at `prefix`; subclasses declare routes and their error body format."""

    name: ClassVar[str]
    prefix: ClassVar[str]

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.data = state.dataset[self.name]
        self._routes = [(methods, re.compile(pattern), handler) for methods, pattern, handler in self.routes()]
        self.reset()

    # --- to override ---

    def routes(self) -> list[tuple[tuple[str, ...], str, Handler]]:
        raise NotImplementedError

    def error(self, req: Request, status: int, message: str, **extra: Any) -> HttpError:
        """The provider's own error body for `status`, wrapped to be raised."""
        raise NotImplementedError

    def index_entry(self, base: str) -> dict[str, Any]:
        raise NotImplementedError

    def reset(self) -> None:
        """Undo every change made through the API (deletes, transcriptions, sessions, links)."""

    def expire(self, kind: str) -> int:
        """Act on the one-shot faults expire_sessions / expire_links; returns how many things expired."""
        return 0

    # A sandbox-only CSV report (Kaleyra, Ameyo: providers with no listing API), served at report_path.
    report_path: ClassVar[str | None] = None
    report_filename: ClassVar[str] = ""
    report_columns: ClassVar[tuple[str, ...]] = ()

    def report_rows(self) -> Iterable[list[Any]]:
        return ()

    def report(self, req: Request) -> Response | None:
        """The provider's CSV report, or None if `req` is not for it."""
        if self.report_path is None or req.path != self.report_path:
            return None
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(self.report_columns)
        writer.writerows(self.report_rows())
        disposition = f'attachment; filename="{self.report_filename}"'
        return text_response(200, out.getvalue(), "text/csv; charset=utf-8", **{"Content-Disposition": disposition})

    def media_specs(self) -> list[AudioSpec]:
        return [r.audio for r in self.data.recordings]

    # --- shared ---

    def route(self, req: Request) -> Response:
        path = req.path[len(self.prefix) :]
        method = "GET" if req.method == "HEAD" else req.method
        path_matched = False
        for methods, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match:
                path_matched = True
                if method in methods:
                    return handler(req, match)
        if path_matched:
            raise self.error(req, 405, "Method Not Allowed")
        raise self.error(req, 404, f"No route for {req.method} {req.path}")

    def fault_response(self, req: Request, fault: Fault) -> Response:
        """What an injected status fault answers: the provider's error body, plus Retry-After when set."""
        status = fault.params["status"]
        response = self.error(req, status, fault.params.get("message") or reason(status)).response
        if "retry_after" in fault.params:
            response.headers["Retry-After"] = str(fault.params["retry_after"])
        return response

    def take_fault(self, kind: str, req: Request) -> Fault | None:
        return self.state.faults.take(kind, self.name, req.path)


# --- links to an object store (Kaleyra's S3 link, Envoy's playback URL) ---


class SignedLinks:
    """Mixin for providers whose media sit behind signed, expiring links (`self.signer`, a LinkSigner):
    the expire_links fault invalidates every link handed out so far."""

    signer: LinkSigner

    def reset(self) -> None:
        self.signer.epoch = 0

    def expire(self, kind: str) -> int:
        if kind != "expire_links":
            return 0
        self.signer.epoch += 1
        return 1


class LinkSigner:
    """HMAC-signed, time-limited links; expire_links bumps an epoch so every link handed out before is refused."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()
        self.epoch = 0

    def sign(self, resource: str, issued: int, ttl: int, epoch: int | None = None) -> str:
        message = f"{resource}|{issued}|{ttl}|{self.epoch if epoch is None else epoch}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def check(self, resource: str, issued: int, ttl: int, signature: str, now: float) -> str:
        """ "ok", "expired" (too old, or revoked by expire_links) or "bad" (not a signature we made)."""
        for epoch in range(self.epoch, -1, -1):
            if hmac.compare_digest(self.sign(resource, issued, ttl, epoch), signature):
                if epoch != self.epoch or now > issued + ttl:
                    return "expired"
                return "ok"
        return "bad"


def s3_error(status: int, code: str, message: str, **fields: str) -> Response:
    """An S3-style XML error, as a presigned object-store link answers."""
    extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{extra}"
        f"<RequestId>{hashlib.sha256(message.encode()).hexdigest()[:16].upper()}</RequestId></Error>"
    )
    return text_response(status, body, "application/xml")
