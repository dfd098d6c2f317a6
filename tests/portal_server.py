"""A real portal for end-to-end tests: gunicorn (threaded workers) on a fresh SQLite file, seeded from the sandbox."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "e2e-Password-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PortalServer:
    def __init__(self, url: str, env: dict[str, str], process: subprocess.Popen) -> None:
        self.url = url
        self.env = env
        self.process = process

    def login(self, username: str) -> requests.Session:
        """A requests session logged in through the real login form (CSRF and all)."""
        session = requests.Session()
        page = session.get(f"{self.url}/accounts/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = session.post(
            f"{self.url}/accounts/login/",
            data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{self.url}/accounts/login/"},
            timeout=10,
        )
        assert response.ok and "Log out" in response.text, response.text[:500]
        return session

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture(scope="session")
def portal_server(sandbox, tmp_path_factory):
    """gunicorn serving the portal, its demo seeded from the session's sandbox."""
    tmp = tmp_path_factory.mktemp("portal")
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DEBUG": "false",
        "HTTPS": "false",
        "SECRET_KEY": "e2e-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG",
        "FIELD_ENCRYPTION_KEYS": "dGVzdC1vbmx5LWZlcm5ldC1rZXktMzItYnl0ZXMtISE=",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": f"sqlite:///{tmp / 'portal.sqlite3'}",
        "STATIC_ROOT": str(tmp / "static"),
        "MEDIA_CACHE_DIR": str(tmp / "media-cache"),
        "VAR_DIR": str(tmp / "var"),
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "16",
        "GUNICORN_ACCESSLOG": "",
        "SANDBOX_URL": sandbox.url,
        "DEMO_PASSWORD": PASSWORD,
        "TASKS_BACKEND": "db",
    }
    env.pop("DATABASE_URL_TEST", None)
    server = PortalServer(f"http://127.0.0.1:{port}", env, None)
    server.manage("migrate", "--noinput", "-v0")
    server.manage("collectstatic", "--noinput", "-v0")
    server.manage("seed_demo")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen(
        [str(gunicorn), "portal.wsgi"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    server.process = process
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{server.url}/healthz", timeout=2)
            break
        except requests.ConnectionError:
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)
    yield server
    process.terminate()
    process.wait(timeout=15)
