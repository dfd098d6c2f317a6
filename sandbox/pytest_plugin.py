"""pytest fixtures: `sandbox` (one in-process server for the whole session) and `sandbox_clean` (per test)."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.server import SandboxServer, SandboxState


class SandboxHandle:
    """A running sandbox: its URL, its index (GET /), and helpers over the control API."""

    def __init__(self, server: SandboxServer, thread: threading.Thread) -> None:
        self.server = server
        self.state = server.state
        self._thread = thread
        self.url = server.url
        self.index: dict[str, Any] = self._call("GET", "/")

    def provider(self, name: str) -> dict[str, Any]:
        """The index entry of one provider: base_url, credentials, options, seeded, ..."""
        return self.index["providers"][name]

    def fault(self, provider: str, kind: str, **params: Any) -> dict[str, Any]:
        """Add a fault rule, e.g. fault("bandwidth", "status", status=429, count=3, retry_after=1)."""
        return self._call("POST", "/_control/faults", {"provider": provider, "kind": kind, **params})

    def clear_faults(self) -> None:
        self._call("DELETE", "/_control/faults")

    def log(self, provider: str | None = None, since: int = 0, settle: float = 2.0) -> list[dict[str, Any]]:
        """Request log entries (newest last); waits up to `settle` s for in-flight responses to finish."""
        query = f"?since={since}" + (f"&provider={provider}" if provider else "")
        deadline = time.monotonic() + settle
        while True:
            entries = self._call("GET", f"/_control/log{query}")["entries"]
            if all(e["ended_at"] for e in entries) or time.monotonic() > deadline:
                return entries
            time.sleep(0.02)

    def last_log_id(self) -> int:
        entries = self._call("GET", "/_control/log")["entries"]
        return entries[-1]["id"] if entries else 0

    def reset(self) -> None:
        """Seeded data, faults, log, clock and config back to the start."""
        self._call("POST", "/_control/reset")

    def clean(self) -> None:
        """Faults, clock and config back to the start; data and log kept."""
        self._call("POST", "/_control/clean")

    def config(self, **values: float) -> dict[str, Any]:
        """transcription_delay, session_ttl, link_ttl (seconds)."""
        return self._call("POST", "/_control/config", values)

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Move the sandbox clock forward: sessions and links expire, transcriptions complete."""
        return self._call("POST", "/_control/clock", {"advance": seconds})

    def warm(self, *providers: str) -> dict[str, Any]:
        """Generate the audio of every recording (of `providers`, or all) now."""
        return self._call("POST", "/_control/warm", {"providers": list(providers) or None})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"sandbox control {method} {path}: {exc.code} {exc.read().decode()}") from None
        return json.loads(raw) if raw else None


def start_sandbox(host: str = "127.0.0.1", port: int = 0, **state_options: Any) -> SandboxHandle:
    """Start a sandbox in a background thread (port 0: a free port); `state_options` go to SandboxState."""
    state_options.setdefault("cache_dir", os.environ.get("SANDBOX_CACHE_DIR") or ".sandbox-cache")
    server = SandboxServer((host, port), SandboxState(**state_options))
    thread = threading.Thread(target=server.serve_forever, name="sandbox", daemon=True)
    thread.start()
    return SandboxHandle(server, thread)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxHandle]:
    """One sandbox for the whole test session (seed from SANDBOX_SEED, default 0)."""
    handle = start_sandbox(seed=int(os.environ.get("SANDBOX_SEED", "0")))
    yield handle
    handle.stop()


@pytest.fixture
def sandbox_clean(sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    """The session sandbox with faults, clock and config reset before and after the test (data kept)."""
    sandbox.clean()
    yield sandbox
    sandbox.clean()
