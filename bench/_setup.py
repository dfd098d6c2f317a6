"""Shared set-up for bench scripts: Django on a fresh database (DATABASE_URL, or a temporary SQLite file)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_on_fresh_database(*, label: str) -> str:
    """Configure Django for a bench run and migrate; returns a description of the database."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    if "DATABASE_URL" not in os.environ:
        path = Path(tempfile.mkdtemp(prefix=f"bench-{label}-")) / "bench.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    import django
    from django.core.management import call_command

    django.setup()
    from django.db import connection

    if connection.vendor == "postgresql":
        # A database of its own, so the bench never touches the test database's rows.
        from django.conf import settings

        name = f"bench_{label}"
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
            cursor.execute(f"CREATE DATABASE {name}")
        connection.close()
        settings.DATABASES["default"]["NAME"] = name
    call_command("migrate", verbosity=0)
    return f"{connection.vendor} ({connection.settings_dict['NAME']})"


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process, from /proc (Linux); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class SandboxProcess:
    """`python -m sandbox` in its own process (its own core, as `make run` starts it)."""

    def __init__(self, *args: str) -> None:
        import json
        import socket
        import subprocess
        import time
        import urllib.request

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--port", str(port), *args],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=5) as response:
                    self.index = json.load(response)
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("the sandbox did not start") from None
                time.sleep(0.2)

    def provider(self, name: str) -> dict:
        return self.index["providers"][name]

    def cpu_seconds(self) -> float | None:
        """CPU time the sandbox process has used (user + system), or None where /proc is not there."""
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
