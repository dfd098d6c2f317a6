"""A real portal: gunicorn (threaded workers) on a fresh SQLite file, seeded from a sandbox; a db_worker if asked.

Used by end-to-end tests (the `portal_server` fixture, the browser tests) and by the bench scripts.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
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


class PortalProcess:
    """Migrate, seed the demo from `sandbox_url`, and serve with gunicorn until stop()."""

    def __init__(self, sandbox_url: str, *, workdir: Path | None = None, workers: int = 1, threads: int = 16,
                 extra_env: dict[str, str] | None = None) -> None:  # fmt: skip
        workdir = Path(workdir or tempfile.mkdtemp(prefix="portal-"))
        self.workdir = workdir
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.database = workdir / "portal.sqlite3"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DEBUG": "false",
            "HTTPS": "false",
            "SECRET_KEY": "e2e-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG",
            "FIELD_ENCRYPTION_KEYS": "dGVzdC1vbmx5LWZlcm5ldC1rZXktMzItYnl0ZXMtISE=",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": f"sqlite:///{self.database}",
            "STATIC_ROOT": str(workdir / "static"),
            "MEDIA_CACHE_DIR": str(workdir / "media-cache"),
            "VAR_DIR": str(workdir / "var"),
            "PORT": str(port),
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
            "GUNICORN_ACCESSLOG": "",
            "SANDBOX_URL": sandbox_url,
            "DEMO_PASSWORD": PASSWORD,
            "TASKS_BACKEND": "db",
            **(extra_env or {}),
        }
        self.process: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self) -> PortalProcess:
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        self.manage("seed_demo")
        gunicorn = Path(sys.executable).with_name("gunicorn")
        # The log goes to a file: a pipe nobody reads fills up with the portal's log lines and blocks gunicorn.
        self.process = self._popen([str(gunicorn), "portal.wsgi"], "gunicorn.log")
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{self.url}/healthz", timeout=5)
                return self
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or its first request is slow
                assert self.process.poll() is None, self.log("gunicorn.log")
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)

    def start_worker(self, interval: float = 0.2) -> subprocess.Popen:
        """A `db_worker` on the portal's database (exports, admin actions) until stop(); its log in worker.log."""
        self.worker = self._popen([sys.executable, "manage.py", "db_worker", "--interval", str(interval)], "worker.log")
        return self.worker

    def _popen(self, command: list[str], log_name: str) -> subprocess.Popen:
        with open(self.workdir / log_name, "ab") as log:
            return subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def log(self, name: str = "gunicorn.log") -> str:
        """The last lines of a process's log (gunicorn.log, worker.log), for assertion messages."""
        path = self.workdir / name
        return "\n".join(path.read_text(errors="replace").splitlines()[-60:]) if path.exists() else ""

    def shell(self, code: str) -> str:
        """Run Python in `manage.py shell` against the portal's database; its standard output."""
        return self.manage("shell", "-c", code)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children]

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
            allow_redirects=False,
        )
        assert response.status_code == 302 and "sessionid" in session.cookies, response.text[:500]
        return session

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        import sqlite3

        with sqlite3.connect(self.database) as conn:
            return conn.execute(sql, params).fetchall()

    def stop(self) -> None:
        for process in (self.worker, self.process):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


@pytest.fixture(scope="session")
def portal_server(sandbox, tmp_path_factory):
    """gunicorn serving the portal, its demo seeded from the session's sandbox."""
    server = PortalProcess(sandbox.url, workdir=tmp_path_factory.mktemp("portal")).start()
    yield server
    server.stop()
