"""Security headers on every kind of page, a strict CSP that the pages (the admin's included) actually satisfy, and the
production settings: HSTS, secure cookies, SSL redirect behind the proxy's header."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from tests.test_settings import PRODUCTION, run_manage

from .conftest import drain

ROOT = Path(__file__).resolve().parents[2]

CSP = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "media-src": {"'self'"},
    "connect-src": {"'self'"},
    "frame-ancestors": {"'none'"},
    "form-action": {"'self'"},
    "base-uri": {"'none'"},
    "object-src": {"'none'"},
}
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def parse_csp(header: str) -> dict[str, set[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        assert name not in directives, f"{name} twice"
        directives[name] = set(values)
    return directives


def assert_security_headers(response) -> None:
    assert parse_csp(response["Content-Security-Policy"]) == CSP
    for name, value in HEADERS.items():
        assert response[name] == value, name
    policy = response["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()"):
        assert feature in policy


class InlineCode(HTMLParser):
    """Collects what a strict CSP blocks: inline <script> and <style>, on*= and style= attributes, javascript: URLs,
    and htmx's hx-on (code in an attribute)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._script = False

    def handle_starttag(self, tag, attrs) -> None:
        names = {name.lower(): value or "" for name, value in attrs}
        if tag == "script":
            # JSON data (json_script) is never executed, so the policy does not block it.
            self._script = "src" not in names and names.get("type") != "application/json"
        if tag == "style":
            self.found.append("<style> block")
        for name, value in names.items():
            if name.startswith("on") or name.startswith("hx-on"):
                self.found.append(f"<{tag} {name}=…>")
            if name == "style":
                self.found.append(f"<{tag} style=…>")
            if name in ("href", "src", "action", "formaction") and value.strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:…>")

    def handle_data(self, data) -> None:
        if self._script and data.strip():
            self.found.append(f"inline <script>: {data.strip()[:60]}")

    def handle_endtag(self, tag) -> None:
        if tag == "script":
            self._script = False


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    parser.close()
    return parser.found


def test_the_inline_code_finder_finds_what_the_policy_blocks():
    html = (
        '<script>alert(1)</script><script src="/x.js"></script><style>p{}</style><p style="color:red" onclick="x()">'
        '<a href="javascript:go()">x</a><button hx-on:click="y()">b</button><script type="application/json">{}</script>'
    )
    assert len(inline_code(html)) == 6


TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT / "templates")))
def test_no_template_has_inline_script_or_style(template):
    assert not inline_code(template.read_text())


def test_the_templates_were_found():
    assert len(TEMPLATES) >= 10


def test_scripts_need_no_eval_or_style_attributes():
    for script in (ROOT / "static" / "js").glob("*.js"):
        if script.name == "htmx.min.js":
            continue
        code = script.read_text()
        for forbidden in ("eval(", "new Function", 'setAttribute("style"', "setAttribute('style'", ".innerHTML"):
            assert forbidden not in code, f"{script.name}: {forbidden}"


def test_htmx_injects_no_indicator_style_and_evaluates_nothing(clients):
    html = clients["supervisor"].get(reverse("calls")).content.decode()
    config = json.loads(re.search(r'<meta name="htmx-config" content=\'([^\']*)\'', html).group(1))
    assert config["includeIndicatorStyles"] is False
    assert config["allowEval"] is False
    # htmx 2 appends an indicator <style> unless told not to; the vendored copy honours the flag.
    htmx = (ROOT / "static" / "js" / "htmx.min.js").read_text()
    assert 'version:"2.' in htmx and "includeIndicatorStyles!==false" in htmx


def pages(world) -> dict[str, list[str]]:
    """Pages each role can open, by role: every one must carry the headers and satisfy the policy."""
    rec, call, export = world.recording, world.call, world.export
    admin_pages = ["/admin/", "/admin/recordings/", "/admin/password_change/"]
    for label, instance in world.objects.items():
        if label.startswith("recordings."):
            base = f"/admin/{label.replace('.', '/')}/"
            admin_pages += [base, f"{base}{instance.pk}/change/", f"{base}{instance.pk}/history/"]
    admin_pages += [
        "/admin/recordings/provideraccount/add/",
        f"/admin/recordings/provideraccount/{world.account.pk}/import/",
        "/admin/recordings/auditevent/?action=sync",
        "/admin/recordings/call/?q=Ada&direction=inbound",
    ]
    return {
        "anonymous": ["/accounts/login/", "/admin/login/", "/no-such-page/"],
        "supervisor": ["/calls/", f"/calls/{call.pk}/", "/calls/?q=%3Cscript%3E", "/exports/", "/admin/login/"],
        "exporter": ["/exports/", f"/exports/{export.pk}/", f"/jobs/{world.own_job.pk}/", f"/calls/{call.pk}/"],
        "admin": [*admin_pages, f"/jobs/{world.admin_job.pk}/", f"/recordings/{rec.pk}/audio"],
    }


def test_every_page_of_every_role_carries_the_headers_and_no_inline_code(world, clients):
    seen = 0
    for role, urls in pages(world).items():
        for url in urls:
            response = clients[role].get(url, HTTP_RANGE="bytes=0-9")
            drain(response)
            assert response.status_code in (200, 206, 403, 404), f"{role} {url}: {response.status_code}"
            assert_security_headers(response)
            if response["Content-Type"].startswith("text/html"):
                assert not inline_code(response.content.decode()), f"{role} {url}"
                seen += 1
    assert seen >= 30


def test_admin_action_pages_satisfy_the_policy(world, clients):
    url = reverse("admin:recordings_recording_changelist")
    data = {"action": "delete_at_provider", "_selected_action": [world.recording.pk], "index": 0}
    response = clients["admin"].post(url, data)
    assert b"Are you sure?" in response.content
    assert_security_headers(response)
    assert not inline_code(response.content.decode())


def test_the_player_and_htmx_talk_only_to_the_portal(world, clients):
    html = clients["supervisor"].get(f"/calls/{world.call.pk}/").content.decode()
    sources = re.findall(r'<audio[^>]*\ssrc="([^"]+)"', html)
    assert sources == [f"/recordings/{world.recording.pk}/audio"]  # same origin: media-src 'self'
    for attribute in re.findall(r'\shx-(?:get|post)="([^"]+)"', clients["supervisor"].get("/calls/").content.decode()):
        assert attribute.startswith("/")  # same origin: connect-src 'self'
    assert re.findall(r'<script src="([^"]+)"', html) == ["/static/js/htmx.min.js", "/static/js/player.js"]


def test_the_lockout_page_and_errors_carry_the_headers(client, users):
    for _ in range(5):
        response = client.post(reverse("login"), {"username": "supervisor", "password": "x"})
    assert response.status_code == 429
    assert_security_headers(response)
    assert not inline_code(response.content.decode())


def test_json_and_audio_answers_are_not_sniffed(world, clients):
    response = clients["anonymous"].get("/healthz")
    assert response["X-Content-Type-Options"] == "nosniff"
    response = clients["supervisor"].get(f"/recordings/{world.recording.pk}/audio", HTTP_RANGE="bytes=0-9")
    drain(response)
    assert response.status_code == 206
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"].startswith("audio/")


# -- production ----------------------------------------------------------------------------------------------------

PROBE = """
import json
from django.conf import settings
from django.test import Client
client = Client(HTTP_HOST="portal.example.com")
plain = client.get("/")
proxied = client.get("/", HTTP_X_FORWARDED_PROTO="https")
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "proxied": [proxied.status_code, proxied.get("Strict-Transport-Security"), proxied.get("Content-Security-Policy")],
    "settings": {name: getattr(settings, name) for name in (
        "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SECURE_SSL_REDIRECT",
        "SECURE_PROXY_SSL_HEADER", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
        "DEBUG")},
}))
"""


def test_production_redirects_to_https_and_sends_hsts_behind_the_proxy(tmp_path):
    result = run_manage("shell", "-c", PROBE, env={**PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"})
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["plain"] == [301, "https://portal.example.com/"]
    status, hsts, csp = probe["proxied"]
    assert status == 302  # / -> /calls/, now over https
    assert hsts == "max-age=31536000; includeSubDomains; preload"
    assert parse_csp(csp) == CSP
    assert probe["settings"] == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "DEBUG": False,
    }


def test_the_test_settings_send_the_same_policy():
    assert {k: set(v) for k, v in settings.CONTENT_SECURITY_POLICY["DIRECTIVES"].items()} == CSP
