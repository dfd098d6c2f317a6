"""Browser tests: Debian's Chromium, driven by Playwright, against a real portal (gunicorn, db_worker, sandbox).

One portal serves the whole package: `PortalProcess` on its own SQLite file, seeded by `seed_demo` from the
session's sandbox, with a `db_worker` next to it for exports and admin actions. Pages are opened already logged
in (`open_as("exporter")`, cookies from a real login) except where logging in is what is tested.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserType, Page, Playwright, sync_playwright

from tests.portal_server import PortalProcess

from .helpers import PROVIDERS

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 800}

# What an admin's "Refresh transcription" would bring in: the transcripts the sandbox's Bandwidth already has.
FETCH_TRANSCRIPTS = """
from recordings.models import Recording
from recordings.providers import adapter_for
from recordings.services.actions import recording_transcription_fetch

for recording in Recording.objects.filter(account__provider="bandwidth", status="available", duration__lt=600):
    meta = adapter_for(recording.account).get_recording(recording)
    if (meta.get("transcription") or {}).get("status") == "available":
        recording_transcription_fetch(recording=recording)
"""


# --- Playwright, confined to this package ----------------------------------------------------------------------
# pytest-playwright's own fixtures are session-scoped, and while its `playwright` object lives an asyncio loop
# counts as running in the main thread: Django then refuses every database query of the tests that follow
# (SynchronousOnlyOperation). Re-declared with package scope, Playwright stops when the browser tests are done.


@pytest.fixture(scope="package")
def playwright(_pw_api_request_contexts) -> Iterator[Playwright]:
    pw = sync_playwright().start()
    if _pw_api_request_contexts:
        _pw_api_request_contexts.instrument(pw)
    yield pw
    pw.stop()


@pytest.fixture(scope="package")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def browser_type_launch_args(pytestconfig) -> dict[str, Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests run in Debian's Chromium. Install it with "
            "`apt-get install chromium` (.ci/run does); Playwright's own browser download is not used.",
            pytrace=False,
        )
    # No --no-sandbox needed: Playwright launches Chromium without its sandbox unless asked (we may run as root).
    return {"executable_path": str(CHROMIUM), "headless": not pytestconfig.getoption("--headed")}


@pytest.fixture(scope="package")
def launch_browser(browser_type_launch_args: dict, browser_type: BrowserType) -> Callable[..., Browser]:
    def launch(**kwargs: Any) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser: Callable[..., Browser]) -> Iterator[Browser]:
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_context_args(portal: PortalProcess, pytestconfig, _pw_artifacts_folder) -> dict[str, Any]:
    args: dict[str, Any] = {
        "base_url": portal.url,
        "viewport": VIEWPORT,
        "locale": "en-GB",
        "timezone_id": "Europe/London",
        # Smooth scrolling off: screenshots and transcript scrolling settle at once.
        "reduced_motion": "reduce",
    }
    if pytestconfig.getoption("--video") in ("on", "retain-on-failure"):
        args["record_video_dir"] = _pw_artifacts_folder.name
    return args


# --- The portal ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def portal(sandbox, tmp_path_factory) -> Iterator[PortalProcess]:
    """gunicorn and a db_worker on a demo seeded from the sandbox, with the Bandwidth transcripts fetched."""
    server = PortalProcess(sandbox.url, workdir=tmp_path_factory.mktemp("browser-portal"))
    try:
        server.start()
        server.start_worker()
        server.shell(FETCH_TRANSCRIPTS)
        yield server
    finally:
        server.stop()
        sandbox.reset()  # a recording was deleted at the sandbox's Bandwidth: later tests see the seeded data


@dataclass(frozen=True)
class Played:
    call: int
    recording: int
    duration: float


@dataclass(frozen=True)
class Demo:
    """Rows of the seeded demo that the scenarios use, each for one purpose so the scenarios stay independent."""

    playable: dict[str, Played]  # provider -> an ordinary recent recording (30 s to 2 min), no transcript
    transcribed: Played  # a Bandwidth recording with a transcript
    segments: list[dict]  # its transcript's segments
    to_delete: tuple[int, str, int]  # (recording pk, remote id, call pk): a Bandwidth recording nobody else uses
    users: dict[str, int]  # username -> user pk


@pytest.fixture(scope="package")
def demo(portal: PortalProcess) -> Demo:
    playable = {}
    for provider in PROVIDERS:
        rows = portal.query(
            "SELECT r.call_id, r.id, r.duration FROM recordings_recording r "
            "JOIN recordings_call c ON c.id = r.call_id LEFT JOIN recordings_transcript t ON t.recording_id = r.id "
            "WHERE c.provider = ? AND r.status = 'available' AND r.duration BETWEEN 30 AND 120 AND t.id IS NULL "
            "ORDER BY c.started_at DESC LIMIT 1",  # the newest: Kaleyra's oldest recording ids have expired
            (provider,),
        )
        assert rows, f"the demo has no playable {provider} recording"
        playable[provider] = Played(*rows[0])
    rows = portal.query(
        "SELECT r.call_id, r.id, r.duration, t.segments FROM recordings_transcript t "
        "JOIN recordings_recording r ON r.id = t.recording_id "
        "WHERE t.status = 'available' AND r.duration BETWEEN 30 AND 120 "
        "AND (SELECT count(*) FROM recordings_recording o WHERE o.call_id = r.call_id) = 1 "  # one player on the page
        "ORDER BY r.duration DESC LIMIT 1"
    )
    assert rows, "no Bandwidth transcript was fetched from the sandbox"
    *transcribed, segments = rows[0]
    used = [p.recording for p in playable.values()] + [transcribed[1]]
    to_delete = portal.query(
        "SELECT r.id, r.remote_id, r.call_id FROM recordings_recording r "
        "JOIN recordings_call c ON c.id = r.call_id LEFT JOIN recordings_transcript t ON t.recording_id = r.id "
        "WHERE c.provider = 'bandwidth' AND r.status = 'available' AND r.duration > 5 AND t.id IS NULL "
        f"AND r.id NOT IN ({','.join('?' * len(used))}) ORDER BY r.duration LIMIT 1",
        tuple(used),
    )[0]
    users = dict(portal.query("SELECT username, id FROM auth_user"))
    return Demo(playable, Played(*transcribed), json.loads(segments), to_delete, users)


@pytest.fixture
def open_as(new_context, portal: PortalProcess) -> Iterator[Callable[[str | None], Page]]:
    """open_as("supervisor"): a page in a fresh browser context, logged in as that demo user (None: anonymous).

    Uncaught script errors and Content-Security-Policy refusals on any of its pages fail the test.
    """
    problems: list[str] = []

    def open_as(username: str | None) -> Page:
        context = new_context()
        context.set_default_timeout(10_000)  # an action that cannot happen fails in 10 s, not Playwright's 30 s
        if username:
            cookies = portal.login(username).cookies
            context.add_cookies([{"name": c.name, "value": c.value, "url": portal.url} for c in cookies])
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
        page.on(
            "console",
            lambda message: (
                problems.append(f"{page.url}: {message.text}")
                if message.type == "error" and "Content Security Policy" in message.text
                else None
            ),
        )
        return page

    yield open_as
    assert not problems, "\n".join(problems)
