"""Load and faults: the whole portal, as `make run` starts it, under a day's traffic for a fixed time.

    .venv/bin/python bench/load.py --seconds 120                   # the normal run, on a temporary SQLite file
    .venv/bin/python bench/load.py --seconds 120 --faults          # the same with the sandbox injecting faults
    .venv/bin/python bench/load.py --database-url postgres://postgres@127.0.0.1:5432/load_bench
    .venv/bin/python bench/load.py --listeners 100 --pace 16000 --search-rate 0 --exporters 0   # capacity

Starts, on loopback only, what `make run` starts (Procfile): the sandbox (`python -m sandbox`), `migrate`,
`seed_demo`, `jobs_resume` then one `db_worker`, and gunicorn with gunicorn.conf.py (gthread; WEB_CONCURRENCY x
GUNICORN_THREADS, 2 x 32 unless --workers/--threads say otherwise; only the access-log format is added, through
GUNICORN_CMD_ARGS, for the server-side times). Then, for --seconds:

- listeners (--listeners, each its own Supervisors user, logged in through the form): open a call page, play its
  recording with `Range: bytes=0-`, read a few hundred KB and hang up, seek (`bytes=N-`) two or three times,
  think, repeat; recordings of all five providers. Latency is the time to the first byte of audio.
- searches at a steady rate (--search-rate per second): full pages and htmx partials of /calls/ with the
  filters people use, now and then the results CSV.
- two exporters, each keeping one export in flight: `POST /exports/`, poll its page, download the ZIP and verify
  it (CRC, SHA256SUMS, manifest), start the next.
- an admin: "Sync now" on every account (every --sync-every seconds), "Test connection", "Request transcription"
  and "Remove the cached copy" through the admin's actions, each followed on its job page.
- /healthz twice a second: how long any request waits for a thread.
- with --faults, a schedule of sandbox faults (FAULT_PLAN: 429 bursts with Retry-After, 500/503, slow bodies,
  dropped connections, expired Ameyo sessions, expired links, latency); each is a window on one provider.

Afterwards every recording that failed is played again (a fault's damage must not last), the jobs are drained,
the processes stopped and bench/check_consistency.py checks every recording, transcript, job and audit row against
what the run did. Prints a report (markdown; --report writes it to a file): requests, errors by status and
p50/p95/p99 per route (client and server side), threads held by listeners, peak RSS and CPU of each process, the
exports, the fault windows, and the verdict: no 500, no 5xx (or broken connection) that a fault did not cause, no
consistency problem. Exits 1 otherwise. Every process it starts is stopped at the end, also on errors.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROVIDERS = ("bandwidth", "truto", "envoy", "kaleyra", "ameyo")
PASSWORD = "load-Password-123"
KB = 1024
MB = 1024 * 1024
# A portal answer that is a clear outcome of the request, not a failure.
OK_STATUSES = {200, 204, 206, 302, 416}
# Audio statuses that say "the provider failed": clear, and excused when a fault was active on that provider.
PROVIDER_STATUSES = {409, 410, 502, 503, 504}
FAULT_GRACE = 5.0  # seconds after a fault window in which its effects may still arrive (retries, long reads)


# --- Processes -----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child in its own process group (gunicorn's workers included), stopped with its whole group."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        except ProcessLookupError:
            pass

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


class Stack:
    """Sandbox, database, seed, db_worker and gunicorn, as `make run` starts them; stop() ends them all."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="load-"))
        self.procs: dict[str, Proc] = {}
        self.pg_admin: str | None = None
        self.pg_name: str | None = None
        self.database_url = args.database_url or f"sqlite:///{self.workdir / 'portal.sqlite3'}"
        self.sandbox_port = free_port()
        self.port = free_port()
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DEBUG": "false",
            "HTTPS": "false",
            "SECRET_KEY": "load-bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG",
            "FIELD_ENCRYPTION_KEYS": "bG9hZC1iZW5jaC1vbmx5LWZlcm5ldC1rZXktMzJieXQ=",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": self.database_url,
            "STATIC_ROOT": str(self.workdir / "static"),
            "VAR_DIR": str(self.workdir / "var"),
            "MEDIA_CACHE_DIR": str(self.workdir / "var" / "media-cache"),
            "EXPORT_DIR": str(self.workdir / "var" / "exports"),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "SANDBOX_URL": self.sandbox_url,
            "SANDBOX_PORT": str(self.sandbox_port),
            "DEMO_PASSWORD": PASSWORD,
            "TASKS_BACKEND": "db",
            "GUNICORN_ACCESSLOG": str(self.workdir / "access.log"),
            # The access log as `make run` writes it, plus what the report needs: the worker and the time taken.
            "GUNICORN_CMD_ARGS": "--access-logformat '%(p)s %(m)s %(U)s %(s)s %(B)s %(M)s'",
        }
        for name in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "REDIS_URL", "CACHE_URL"):
            self.env.pop(name, None)
        if args.workers:
            self.env["WEB_CONCURRENCY"] = str(args.workers)
        if args.threads:
            self.env["GUNICORN_THREADS"] = str(args.threads)
        self.index: dict = {}

    # The database ------------------------------------------------------------------------------------------

    def create_database(self) -> str:
        parts = urlsplit(self.database_url)
        if parts.scheme.startswith("sqlite"):
            return f"SQLite ({parts.path})"
        if not parts.scheme.startswith("postgres"):
            raise SystemExit("--database-url: sqlite:///FILE or postgres://USER@HOST:PORT/NAME")
        name = parts.path.lstrip("/")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name) or name in ("test", "postgres") or name.startswith("template"):
            raise SystemExit(f"--database-url: the bench creates and drops its database; {name!r} is not allowed")
        import psycopg

        self.pg_admin = parts._replace(path="/postgres").geturl().replace("postgres://", "postgresql://", 1)
        with psycopg.connect(self.pg_admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        self.pg_name = name
        return f"PostgreSQL ({name})"

    def drop_database(self) -> None:
        if self.pg_name and self.pg_admin and not self.args.keep:
            import psycopg

            with psycopg.connect(self.pg_admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {self.pg_name} WITH (FORCE)")

    # Starting ----------------------------------------------------------------------------------------------

    def manage(self, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def start(self) -> None:
        say(f"work directory {self.workdir}")
        self.database = self.create_database()
        self.procs["sandbox"] = Proc(
            "sandbox",
            [sys.executable, "-m", "sandbox", "--port", str(self.sandbox_port), "--calls", str(self.args.calls)],
            self.env,
            self.workdir / "sandbox.log",
        )
        self.index = self._wait_json(self.sandbox_url + "/", "the sandbox", self.procs["sandbox"])
        t0 = time.monotonic()
        warm = requests.post(self.sandbox_url + "/_control/warm", json={}, timeout=900).json()
        say(f"sandbox {self.sandbox_url}: {warm['files']} audio files ready in {time.monotonic() - t0:.0f} s")
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        t0 = time.monotonic()
        for line in self.manage("seed_demo", "--wait", "60").splitlines():
            if line.startswith("Sandbox"):
                say(f"  {line}")
        say(f"seed_demo in {time.monotonic() - t0:.0f} s ({self.database})")
        self.manage("shell", "-v0", "-c", CREATE_LISTENERS, env={"LOAD_LISTENERS": str(self.args.listeners)})
        self.manage("jobs_resume", "--older-than", "0")
        self.procs["db_worker"] = Proc(
            "db_worker", [sys.executable, "manage.py", "db_worker", "--interval", "1"], self.env,
            self.workdir / "worker.log",
        )  # fmt: skip
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self.procs["gunicorn"] = Proc("gunicorn", [gunicorn, "portal.wsgi"], self.env, self.workdir / "gunicorn.log")
        self._wait_json(self.url + "/healthz", "gunicorn", self.procs["gunicorn"])
        self.data = json.loads(self.manage("shell", "-v0", "-c", DUMP_DATA).strip().splitlines()[-1])

    def _wait_json(self, url: str, what: str, proc: Proc) -> dict:
        deadline = time.monotonic() + 120
        while True:
            try:
                response = requests.get(url, timeout=5)
                if response.status_code == 200:
                    return response.json()
            except requests.RequestException:
                pass
            if not proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start:\n{proc.tail()}")
            time.sleep(0.2)

    def gunicorn_workers(self) -> list[int]:
        pid = self.procs["gunicorn"].pid
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except FileNotFoundError:
            return []

    def stop(self, *names: str) -> None:
        for name in names or ("gunicorn", "db_worker", "sandbox"):
            proc = self.procs.get(name)
            if proc is not None:
                proc.stop()

    def cleanup(self) -> None:
        self.stop()
        self.drop_database()
        if not self.args.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)


CREATE_LISTENERS = """
import os
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from recordings.roles import SUPERVISORS
group = Group.objects.get(name=SUPERVISORS)
hashed = make_password(os.environ["DEMO_PASSWORD"])
for i in range(int(os.environ["LOAD_LISTENERS"])):
    user, _ = get_user_model().objects.update_or_create(
        username=f"listener{i:03d}", defaults={"password": hashed, "is_active": True})
    user.groups.set([group])
"""

DUMP_DATA = """
import json
from recordings.models import Call, ProviderAccount, Recording
print(json.dumps({
    "accounts": list(ProviderAccount.objects.values("id", "provider", "name")),
    "calls": [
        {**c, "started_at": c["started_at"].date().isoformat()}
        for c in Call.objects.values("id", "provider", "agent", "campaign", "from_number", "to_number", "remote_id",
                                     "direction", "started_at")
    ],
    "recordings": list(Recording.objects.values("id", "call_id", "account__provider", "status", "size_bytes",
                                                "duration")),
}))
"""


# --- Measurements --------------------------------------------------------------------------------------------


@dataclass
class Sample:
    route: str
    start: float  # seconds since the run started
    end: float
    ms: float  # latency: time to first byte for audio, time to the whole answer otherwise
    status: int | str  # HTTP status, or the transport error (reset, truncated, timeout)
    provider: str = ""
    nbytes: int = 0
    note: str = ""
    outcome: str = ""  # ok | clear (a refusal that says why) | fault (a fault window explains it) | fail
    target: int = 0  # the recording, for audio
    window: FaultWindow | None = None  # the fault that explains it


class Recorder:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.samples: list[Sample] = []
        self.lock = threading.Lock()
        self.played: set[tuple[str, int]] = set()  # (username, recording) with a successful audio answer
        self.tried: set[tuple[str, int]] = set()
        self.counts: Counter = Counter()  # logins, csv, export downloads... for the consistency check
        self.rechecked: dict[int, int | str] = {}  # recording -> status when played again after the faults

    def now(self) -> float:
        return time.monotonic() - self.t0

    def add(self, sample: Sample) -> Sample:
        with self.lock:
            self.samples.append(sample)
        return sample


class ProcessSampler(threading.Thread):
    """Peak RSS of each process every 0.25 s, and CPU seconds over the measured window."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True, name="rss")
        self.stack = stack
        self.stop_event = threading.Event()
        self.peak: dict[str, int] = defaultdict(int)  # role -> kB
        self.peak_sum_workers = 0
        self.worker_pids: set[int] = set()
        self.cpu_start: dict[int, float] = {}
        self.cpu_last: dict[int, float] = {}
        self.roles: dict[int, str] = {}
        self.sending: list[int] = []  # per sample: gunicorn threads blocked writing to a client
        self.receiving: list[int] = []  # per sample: gunicorn threads blocked reading (upstream or a request)
        self.window_threads: tuple[list[int], list[int]] = ([], [])
        self.states: Counter = Counter()  # system call -> thread-samples, for the gunicorn workers' threads
        self.pg_connections: list[int] = []  # PostgreSQL connections to the run's database, per sample
        self.pg_window: list[int] = []

    def pids(self) -> dict[int, str]:
        roles = {self.stack.procs[n].pid: n for n in ("sandbox", "db_worker")}
        roles[self.stack.procs["gunicorn"].pid] = "gunicorn master"
        for pid in self.stack.gunicorn_workers():
            roles[pid] = "gunicorn worker"
            self.worker_pids.add(pid)
        roles[os.getpid()] = "bench client"
        return roles

    def run(self) -> None:
        pg = None
        if self.stack.pg_name:
            import psycopg

            pg = psycopg.connect(self.stack.pg_admin, autocommit=True)
        try:
            while not self.stop_event.is_set():
                self.sample()
                if pg is not None:
                    (n,) = pg.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.stack.pg_name,)
                    ).fetchone()
                    self.pg_connections.append(n)
                self.stop_event.wait(0.25)
        finally:
            if pg is not None:
                pg.close()

    def sample(self) -> None:
        workers = 0
        for pid, role in self.pids().items():
            rss, cpu = read_proc(pid)
            if rss is None:
                continue
            self.roles[pid] = role
            self.peak[role] = max(self.peak[role], rss)
            if role == "gunicorn worker":
                workers += rss
            self.cpu_start.setdefault(pid, cpu)
            self.cpu_last[pid] = cpu
        self.peak_sum_workers = max(self.peak_sum_workers, workers)
        sending = receiving = 0
        for pid in self.stack.gunicorn_workers():
            for call in thread_syscalls(pid):
                sending += call in SENDING
                receiving += call in RECEIVING
                self.states[call] += 1
        self.sending.append(sending)
        self.receiving.append(receiving)

    def cpu_by_role(self) -> dict[str, float]:
        cpu: dict[str, float] = defaultdict(float)
        for pid, last in self.cpu_last.items():
            cpu[self.roles[pid]] += last - self.cpu_start[pid]
        return cpu


TICK = os.sysconf("SC_CLK_TCK")
# x86-64 system call numbers: what a blocked gunicorn thread is waiting in.
SENDING = {"1", "20", "40", "44", "46"}  # write, writev, sendfile, sendto, sendmsg: a client not reading yet
RECEIVING = {"0", "45", "47"}  # read, recvfrom, recvmsg


def thread_syscalls(pid: int) -> list[str]:
    """The system call each thread of a process is blocked in (its number), or "running"."""
    calls = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                calls.append(Path(f"/proc/{pid}/task/{tid}/syscall").read_text().split(" ", 1)[0].strip())
            except OSError:
                continue
    except OSError:
        pass
    return calls


def read_proc(pid: int) -> tuple[int | None, float]:
    """(VmRSS in kB, user+system CPU seconds) of a process; (None, 0) when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None, 0.0
    rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    fields = stat.rpartition(")")[2].split()
    return rss, (int(fields[11]) + int(fields[12])) / TICK


# --- Faults --------------------------------------------------------------------------------------------------


@dataclass
class FaultWindow:
    label: str
    providers: tuple[str, ...]
    start: float
    end: float | None = None
    rules: list[int] = field(default_factory=list)

    def covers(self, provider: str, start: float, end: float) -> bool:
        if provider not in self.providers and "*" not in self.providers:
            return False
        until = (self.end if self.end is not None else float("inf")) + FAULT_GRACE
        return start <= until and end >= self.start


# (fraction of the run when it starts, label, rules, calls a sync while it is on)
FAULT_PLAN: list[tuple[float, str, list[dict], bool]] = [
    (0.06, "Bandwidth media: 429 burst (Retry-After 1 s), next 40", [
        {"provider": "bandwidth", "kind": "status", "status": 429, "retry_after": 1, "count": 40,
         "path_contains": "/media"}], False),
    (0.14, "Truto download: 503 (Retry-After 1 s), next 12", [
        {"provider": "truto", "kind": "status", "status": 503, "count": 12, "path_contains": "/recordings/download"}],
     False),
    (0.22, "Envoy: 500, next 15", [{"provider": "envoy", "kind": "status", "status": 500, "count": 15}], False),
    (0.30, "Kaleyra links: slow body, 48 KB/s", [
        {"provider": "kaleyra", "kind": "slow_body", "bytes_per_second": 48000}], False),
    (0.38, "Bandwidth media: connection dropped after 150 KB, next 10", [
        {"provider": "bandwidth", "kind": "drop_after", "bytes": 150000, "count": 10, "path_contains": "/media"}],
     False),
    (0.46, "Ameyo: every session expired, then the next 2 sessions presented", [
        {"provider": "ameyo", "kind": "expire_sessions"},
        {"provider": "ameyo", "kind": "expire_sessions", "count": 2}], False),
    (0.54, "Kaleyra and Envoy: links handed out so far expired, next 5 Envoy links refused", [
        {"provider": "kaleyra", "kind": "expire_links"},
        {"provider": "envoy", "kind": "expire_links", "count": 5}], False),
    (0.62, "Sync under faults: Bandwidth listing 500 x5, Truto listing 429 (Retry-After 2 s) x2, Envoy 503 x2", [
        {"provider": "bandwidth", "kind": "status", "status": 500, "count": 5,
         "path_contains": "/accounts/9900000/recordings"},
        {"provider": "truto", "kind": "status", "status": 429, "retry_after": 2, "count": 2, "path_contains": "/calls"},
        {"provider": "envoy", "kind": "status", "status": 503, "count": 2, "path_contains": "/calls"}], True),
    (0.70, "Truto download: connection dropped after 100 KB, next 6", [
        {"provider": "truto", "kind": "drop_after", "bytes": 100000, "count": 6,
         "path_contains": "/recordings/download"}], False),
    (0.78, "Ameyo: 429 burst (Retry-After 5 s, above the player's 2 s), next 10", [
        {"provider": "ameyo", "kind": "status", "status": 429, "retry_after": 5, "count": 10}], False),
    (0.86, "All providers: 400 ms latency", [{"provider": "*", "kind": "latency", "ms": 400}], False),
]  # fmt: skip


class FaultScheduler(threading.Thread):
    def __init__(self, sandbox_url: str, recorder: Recorder, seconds: float, admin: Admin | None) -> None:
        super().__init__(daemon=True, name="faults")
        self.url = sandbox_url + "/_control/faults"
        self.recorder = recorder
        self.seconds = seconds
        self.admin = admin
        self.windows: list[FaultWindow] = []
        self.errors: list[str] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        try:
            self.schedule()
        except Exception as exc:  # reported with the verdict; the run goes on without faults
            self.errors.append(f"the fault schedule stopped: {exc!r}")
            self.clear()

    def schedule(self) -> None:
        session = requests.Session()
        length = max(6.0, 0.07 * self.seconds)
        for fraction, label, rules, sync in FAULT_PLAN:
            if self.stop_event.wait(max(0.0, fraction * self.seconds - self.recorder.now())):
                break
            window = FaultWindow(label, tuple(sorted({r["provider"] for r in rules})), self.recorder.now())
            self.windows.append(window)
            for rule in rules:
                response = session.post(self.url, json=rule, timeout=10)
                answer = response.json()
                if response.status_code != 201:
                    self.errors.append(f"{label}: the sandbox refused {rule}: {answer}")
                elif "id" in answer:
                    window.rules.append(answer["id"])
                else:  # a one-shot expiry acts at once
                    window.label += f" ({answer.get('affected', 0)} expired)"
            if sync and self.admin is not None:
                self.admin.sync_requested.set()
            self.stop_event.wait(length)
            if sync:  # the sync may still be queued behind an export: leave its faults until they are used
                deadline = time.monotonic() + length
                while time.monotonic() < deadline and not self.stop_event.is_set():
                    active = {f["id"] for f in session.get(self.url, timeout=10).json()["faults"]}
                    if not active & set(window.rules):
                        break
                    self.stop_event.wait(1)
            for rule_id in window.rules:
                session.delete(f"{self.url}/{rule_id}", timeout=10)  # 404 when its count is used up: fine
            window.end = self.recorder.now()
        self.clear(session)

    def clear(self, session: requests.Session | None = None) -> None:
        (session or requests).delete(self.url, timeout=10)
        for window in self.windows:
            if window.end is None:
                window.end = self.recorder.now()

    def explains(self, provider: str, start: float, end: float) -> FaultWindow | None:
        """The latest fault on that provider that was on (or had just ended) while the request ran."""
        covering = [w for w in self.windows if w.covers(provider, start, end) and w.start <= end]
        return max(covering, key=lambda w: w.start, default=None)


# --- Clients -------------------------------------------------------------------------------------------------


class Portal:
    """Requests to the portal, each timed and recorded."""

    def __init__(self, url: str, recorder: Recorder, timeout: tuple[float, float] = (10, 60)) -> None:
        self.url = url
        self.recorder = recorder
        self.timeout = timeout

    def login(self, username: str) -> requests.Session:
        session = requests.Session()
        start = self.recorder.now()
        t0 = time.perf_counter()
        page = session.get(f"{self.url}/accounts/login/", timeout=self.timeout)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = session.post(
            f"{self.url}/accounts/login/",
            data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
            timeout=self.timeout,
            allow_redirects=False,
        )
        ok = response.status_code == 302 and "sessionid" in session.cookies
        self.recorder.add(
            Sample("login", start, self.recorder.now(), (time.perf_counter() - t0) * 1000, response.status_code)
        )
        if not ok:
            raise RuntimeError(f"login of {username} failed: {response.status_code}")
        with self.recorder.lock:
            self.recorder.counts["login"] += 1
        return session

    def page(
        self, session: requests.Session, route: str, path: str, *, method: str = "GET", htmx: bool = False, **kwargs
    ) -> tuple[Sample, requests.Response | None]:
        headers = {"HX-Request": "true"} if htmx else {}
        start = self.recorder.now()
        t0 = time.perf_counter()
        response = None
        note = ""
        try:
            response, note = send(session, method, self.url + path, headers=headers, timeout=self.timeout, **kwargs)
            status: int | str = response.status_code
            nbytes = len(response.content)
        except requests.RequestException as exc:
            status, nbytes, note = transport_error(exc), 0, f"{note}{exc}"[:300]
        sample = Sample(route, start, self.recorder.now(), (time.perf_counter() - t0) * 1000, status, nbytes=nbytes)
        sample.note = note
        if response is not None and status not in OK_STATUSES:
            sample.note += response.text[:200]
        return self.recorder.add(sample), response


def send(session: requests.Session, method: str, url: str, **kwargs) -> tuple[requests.Response, str]:
    """One request; a GET whose connection closed before any answer is sent again once, as browsers do (a kept-alive
    connection the server closed as the request went out). The note says so; the report counts these."""
    try:
        return session.request(method, url, **kwargs), ""
    except requests.ConnectionError as exc:
        if method not in ("GET", "HEAD") or isinstance(exc, requests.Timeout):
            raise
        note = f"sent again after: {exc}"[:200] + "; "
    return session.request(method, url, **kwargs), note


def transport_error(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "truncated"
    if isinstance(exc, requests.ConnectionError):
        return "connection"
    return type(exc).__name__


def csrf_token(session: requests.Session, text: str) -> str:
    match = re.search(r'"X-CSRFToken": "([^"]+)"', text) or re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', text
    )
    return match.group(1) if match else session.cookies.get("csrftoken", "")


class Listener(threading.Thread):
    """One supervisor playing recordings: call page, first play, a few seeks, hang-ups, thinking in between."""

    def __init__(self, n: int, portal: Portal, data: dict, args, stop: threading.Event, session) -> None:
        super().__init__(daemon=True, name=f"listener{n:03d}")
        self.n = n
        self.username = f"listener{n:03d}"
        self.portal = portal
        self.recorder = portal.recorder
        self.session = session
        self.args = args
        self.stop_event = stop
        self.random = random.Random(n)
        self.by_provider = data["playable"]
        self.sizes: dict[int, int] = {}

    def run(self) -> None:
        turn = self.n
        while not self.stop_event.is_set():
            provider = PROVIDERS[turn % len(PROVIDERS)]
            turn += 1
            recording = self.random.choice(self.by_provider[provider])
            self.portal.page(self.session, "call page", f"/calls/{recording['call_id']}/")
            self.think()
            total = self.play(recording, provider, 0, "audio first")
            for _ in range(self.random.randint(2, 3)):
                if self.stop_event.is_set() or not total:
                    break
                self.think()
                self.play(recording, provider, self.random.randrange(0, total), "audio seek")
            self.think()

    def think(self) -> None:
        if self.args.think:
            self.stop_event.wait(self.random.uniform(0.5, 1.5) * self.args.think)

    def play(self, recording: dict, provider: str, offset: int, route: str) -> int | None:
        """One range request; returns the recording's total size from Content-Range."""
        pk = recording["id"]
        pace = self.args.pace
        want = (
            int(pace * self.random.uniform(0.5, 1.5) * self.args.listen)
            if pace
            else self.random.randint(100 * KB, 600 * KB)
        )
        start = self.recorder.now()
        t0 = time.perf_counter()
        ms = None
        nbytes = 0
        total = None
        note = ""
        with self.recorder.lock:
            self.recorder.tried.add((self.username, pk))
        try:
            response, note = send(
                self.session,
                "GET",
                f"{self.portal.url}/recordings/{pk}/audio",
                headers={"Range": f"bytes={offset}-"},
                stream=True,
                timeout=self.portal.timeout,
            )
            status: int | str = response.status_code
            with response:
                if status in (200, 206):
                    content_range = response.headers.get("Content-Range", "")
                    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", content_range)
                    if status == 206 and (not match or int(match.group(1)) != offset):
                        status, note = "bad range", note + content_range
                    total = int(match.group(3)) if match else int(response.headers.get("Content-Length") or 0)
                    expected = int(response.headers.get("Content-Length") or 0)
                    started = time.monotonic()
                    for chunk in response.iter_content(16 * KB if pace else 64 * KB):
                        if ms is None:
                            ms = (time.perf_counter() - t0) * 1000
                        nbytes += len(chunk)
                        if nbytes >= want or (self.stop_event.is_set() and not pace):
                            break
                        if pace:  # a player reads as fast as it plays
                            ahead = nbytes / pace - (time.monotonic() - started)
                            if ahead > 0 and self.stop_event.wait(ahead):
                                break
                    else:
                        if nbytes < min(want, expected):
                            status, note = "truncated", f"{note}{nbytes} of {expected} bytes"
                    with self.recorder.lock:
                        self.recorder.played.add((self.username, pk))
                else:
                    body = response.text[:200]
                    if status not in OK_STATUSES and not response.headers.get("Content-Type", "").startswith(
                        "application/json"
                    ):
                        body = "not JSON: " + body
                    note += body
        except requests.RequestException as exc:
            status = transport_error(exc)
            note = f"{note}{exc}"[:300]
        if ms is None:
            ms = (time.perf_counter() - t0) * 1000
        self.recorder.add(Sample(route, start, self.recorder.now(), ms, status, provider, nbytes, note, target=pk))
        return total


class Searcher(threading.Thread):
    """Searches at a steady rate (full pages and htmx partials, with the filters people use); now and then a CSV."""

    def __init__(self, portal: Portal, data: dict, rate: float, stop: threading.Event, sessions, csv_session) -> None:
        super().__init__(daemon=True, name="searcher")
        self.portal = portal
        self.rate = rate
        self.stop_event = stop
        self.sessions = sessions
        self.csv_session = csv_session
        self.random = random.Random(7)
        calls = data["calls"]
        self.agents = sorted({c["agent"] for c in calls if c["agent"]}) or ["agent"]
        self.campaigns = sorted({c["campaign"] for c in calls if c["campaign"]}) or ["campaign"]
        self.numbers = [re.sub(r"\D", "", c["from_number"] or c["to_number"]) for c in calls]
        self.numbers = [n for n in self.numbers if len(n) >= 6] or ["555"]
        self.days = sorted({c["started_at"] for c in calls})
        self.remote_ids = [c["remote_id"] for c in calls]
        self.threads: list[threading.Thread] = []
        self.semaphore = threading.Semaphore(8)

    def query(self) -> dict:
        r = self.random
        choices = [
            lambda: {"provider": r.choice(PROVIDERS)},
            lambda: {"q": r.choice(self.agents).split()[0].split(".")[0]},
            lambda: {"number": (n := r.choice(self.numbers))[-r.randint(4, 7) :]},
            lambda: {"direction": r.choice(["inbound", "outbound"]), "provider": r.choice(PROVIDERS)},
            lambda: {"date_from": (d := r.choice(self.days)), "date_to": d},
            lambda: {"min_duration": "1:00", "has_transcript": r.choice(["yes", "no"])},
            lambda: {"campaign": r.choice(self.campaigns)},
            lambda: {"agent": r.choice(self.agents)},
            lambda: {},
            lambda: {"q": r.choice(self.remote_ids)[:8]},
            lambda: {"max_duration": "2:00", "sort": "", "provider": r.choice(PROVIDERS)},
        ]
        return r.choice(choices)()

    def run(self) -> None:
        n = 0
        t0 = time.monotonic()
        while not self.stop_event.is_set():
            n += 1
            if self.stop_event.wait(max(0.0, t0 + n / self.rate - time.monotonic())):
                break
            if not self.semaphore.acquire(blocking=False):
                self.portal.recorder.add(Sample("search (skipped: 8 in flight)", self.portal.recorder.now(),
                                                self.portal.recorder.now(), 0, "skipped"))  # fmt: skip
                continue
            thread = threading.Thread(target=self.one, args=(n,), daemon=True)
            thread.start()
            self.threads.append(thread)
        for thread in self.threads:
            thread.join(timeout=70)

    def one(self, n: int) -> None:
        try:
            query = urlencode(self.query())
            if n % 25 == 0:
                sample, _ = self.portal.page(self.csv_session, "results CSV", f"/calls/export.csv?{query}")
                if sample.status == 200:
                    with self.portal.recorder.lock:
                        self.portal.recorder.counts["csv"] += 1
                return
            htmx = n % 2 == 0
            session = self.sessions[n % len(self.sessions)]
            self.portal.page(session, "search (htmx)" if htmx else "search (page)", f"/calls/?{query}", htmx=htmx)
        finally:
            self.semaphore.release()


class Probe(threading.Thread):
    """/healthz twice a second on a kept-alive connection: how long any request waits for a thread."""

    def __init__(self, portal: Portal, stop: threading.Event) -> None:
        super().__init__(daemon=True, name="probe")
        self.portal = portal
        self.stop_event = stop

    def run(self) -> None:
        session = requests.Session()
        while not self.stop_event.wait(0.5):
            self.portal.page(session, "healthz probe", "/healthz")


@dataclass
class ExportOutcome:
    pk: int
    selection: str
    recordings: int = 0
    status: str = ""
    files: int = 0
    failed: int = 0
    size: int = 0
    seconds: float = 0.0
    verified: str = ""


class Exporter(threading.Thread):
    """An exporter keeping one export in flight: create, follow, download, verify, again."""

    def __init__(self, n: int, portal: Portal, session, data: dict, stop: threading.Event, drain_until) -> None:
        super().__init__(daemon=True, name=f"exporter{n}")
        self.n = n
        self.portal = portal
        self.session = session
        self.stop_event = stop
        self.drain_until = drain_until
        self.random = random.Random(100 + n)
        self.calls_by_provider: dict[str, list[int]] = defaultdict(list)
        for call in data["calls"]:
            self.calls_by_provider[call["provider"]].append(call["id"])
        self.recordings_per_call = Counter(r["call_id"] for r in data["recordings"])
        self.outcomes: list[ExportOutcome] = []
        self.downloads = Path(tempfile.mkdtemp(prefix="load-exports-"))

    def run(self) -> None:
        turn = self.n
        try:
            while not self.stop_event.is_set():
                self.export_one(turn)
                turn += 2
                self.stop_event.wait(3)  # looks at it, picks the next selection
        finally:
            shutil.rmtree(self.downloads, ignore_errors=True)

    def export_one(self, turn: int) -> None:
        sample, page = self.portal.page(self.session, "search (page)", "/calls/")
        if page is None or sample.status != 200:
            self.stop_event.wait(2)
            return
        token = csrf_token(self.session, page.text)
        if self.n == 0:  # everything of one provider, through the search
            provider = PROVIDERS[turn // 2 % len(PROVIDERS)]
            data = {"scope": "search", "provider": provider}
            selection = f"search provider={provider}"
            recordings = sum(self.recordings_per_call[c] for c in self.calls_by_provider[provider])
        else:  # a selection across providers
            ids = [c for p in PROVIDERS for c in self.random.sample(self.calls_by_provider[p], 4)]
            data = {"scope": "selected", "call": [str(c) for c in ids]}
            selection = f"{len(ids)} selected calls"
            recordings = sum(self.recordings_per_call[c] for c in ids)
        t0 = time.monotonic()
        sample, response = self.portal.page(self.session, "export create", "/exports/", method="POST",
                                            data={**data, "csrfmiddlewaretoken": token},
                                            allow_redirects=False)  # fmt: skip
        match = re.search(r"/exports/(\d+)/", response.headers.get("Location", "")) if response is not None else None
        if not match:
            sample.note = f"no export created: {sample.note}"
            self.stop_event.wait(2)
            return
        outcome = ExportOutcome(int(match.group(1)), selection, recordings)
        self.outcomes.append(outcome)
        while True:  # the page's own polling: every second while it is being built
            time.sleep(1)
            sample, response = self.portal.page(self.session, "export page", f"/exports/{outcome.pk}/", htmx=True)
            if response is None or sample.status != 200:
                continue
            if 'hx-trigger="every 1s"' not in response.text:
                break
            if time.monotonic() > self.drain_until():
                outcome.status = "still building when the bench stopped waiting"
                return
        outcome.seconds = time.monotonic() - t0
        status = re.search(r'job-status job-status-(\w+)">', response.text)
        outcome.status = status.group(1) if status else "?"
        if 'id="export-download"' in response.text:
            self.download(outcome)

    def download(self, outcome: ExportOutcome) -> None:
        path = self.downloads / f"export-{outcome.pk}.zip"
        start = self.portal.recorder.now()
        t0 = time.perf_counter()
        try:
            with self.session.get(f"{self.portal.url}/exports/{outcome.pk}/download", stream=True,
                                  timeout=self.portal.timeout) as response, open(path, "wb") as out:  # fmt: skip
                status: int | str = response.status_code
                for chunk in response.iter_content(MB):
                    out.write(chunk)
        except requests.RequestException as exc:
            status = transport_error(exc)
        size = path.stat().st_size if path.exists() else 0
        self.portal.recorder.add(Sample("export download", start, self.portal.recorder.now(),
                                        (time.perf_counter() - t0) * 1000, status, nbytes=size))  # fmt: skip
        if status != 200:
            outcome.verified = f"download answered {status}"
            return
        with self.portal.recorder.lock:
            self.portal.recorder.counts["export_download"] += 1
        outcome.size = size
        outcome.verified = verify_zip(path, outcome)
        path.unlink()


def verify_zip(path: Path, outcome: ExportOutcome) -> str:
    """What a recipient would check: it opens, CRCs hold, SHA256SUMS matches every file, the manifest lists them."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad:
                return f"CRC error in {bad}"
            names = set(archive.namelist())
            sums = {}
            for line in archive.read("SHA256SUMS").decode().splitlines():
                digest, _, name = line.partition("  ")
                sums[name] = digest
            audio = {n for n in names if n.startswith("recordings/")}
            if set(sums) != audio:
                return "SHA256SUMS does not list exactly the audio files"
            for name, digest in sums.items():
                hasher = hashlib.sha256()
                with archive.open(name) as member:
                    while block := member.read(MB):
                        hasher.update(block)
                if hasher.hexdigest() != digest:
                    return f"checksum mismatch: {name}"
            rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8-sig"))))
            errors = []
            if "errors.csv" in names:
                errors = list(csv.DictReader(io.StringIO(archive.read("errors.csv").decode("utf-8-sig"))))
            outcome.files, outcome.failed = len(rows), len(errors)
            if {r["file"] for r in rows} != audio:
                return "manifest.csv does not list exactly the audio files"
            if len(rows) + len(errors) != outcome.recordings:
                return f"{len(rows)} files + {len(errors)} errors for {outcome.recordings} recordings"
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        return f"unreadable: {exc}"
    return "ok"


@dataclass
class AdminJob:
    pk: int
    kind: str
    created: float
    finished: float | None = None
    status: str = ""


class Admin(threading.Thread):
    """An admin running jobs from the Django admin: syncs, test connection, transcriptions, cache removal."""

    def __init__(self, portal: Portal, session, data: dict, args, stop: threading.Event, drain_until) -> None:
        super().__init__(daemon=True, name="admin")
        self.portal = portal
        self.session = session
        self.data = data
        self.args = args
        self.stop_event = stop
        self.drain_until = drain_until
        self.sync_requested = threading.Event()
        self.jobs: list[AdminJob] = []
        self.random = random.Random(5)

    def run(self) -> None:
        recorder = self.portal.recorder
        seconds = self.args.seconds
        playable = self.data["playable"]
        bandwidth = [r for r in playable["bandwidth"] if (r["duration"] or 0) > 1]
        plan = [
            (0.12, "test_connection", "provideraccount", [a["id"] for a in self.data["accounts"]]),
            (0.30, "request_transcription", "recording",
             [r["id"] for r in self.random.sample(bandwidth, 5)] + [playable["truto"][0]["id"]]),
            (0.50, "remove_cached_copy", "recording",
             [r["id"] for r in self.random.sample(playable["truto"] + playable["ameyo"], 4)]),
        ]  # fmt: skip
        next_sync = 0.0
        while not self.stop_event.is_set():
            now = recorder.now()
            if self.sync_requested.is_set() or now >= next_sync:
                self.sync_requested.clear()
                if not any(j.kind == "sync_now" and j.finished is None for j in self.jobs):
                    self.action("sync_now", "provideraccount", [a["id"] for a in self.data["accounts"]])
                next_sync = now + self.args.sync_every
            while plan and now >= plan[0][0] * seconds:
                _, name, model, ids = plan.pop(0)
                self.action(name, model, ids)
            self.follow()
            self.stop_event.wait(2)
        while any(j.finished is None for j in self.jobs) and time.monotonic() < self.drain_until():
            self.follow()
            time.sleep(2)

    def action(self, name: str, model: str, ids: list[int]) -> None:
        path = f"/admin/recordings/{model}/"
        sample, page = self.portal.page(self.session, "admin changelist", path)
        if page is None or sample.status != 200:
            return
        token = csrf_token(self.session, page.text)
        data = {"action": name, "index": "0", "select_across": "0", "_selected_action": [str(i) for i in ids],
                "csrfmiddlewaretoken": token}  # fmt: skip
        sample, response = self.portal.page(self.session, "admin action", path, method="POST", data=data)
        links = re.findall(r'href="/jobs/(\d+)/"', response.text) if response is not None else []
        if not links:
            sample.note = f"{name}: no job link in the answer"
            sample.status = sample.status if sample.status != 200 else "no job"
            return
        self.jobs.append(AdminJob(int(links[0]), name, self.portal.recorder.now()))

    def follow(self) -> None:
        for job in self.jobs:
            if job.finished is not None:
                continue
            sample, response = self.portal.page(self.session, "job page", f"/jobs/{job.pk}/", htmx=True)
            if response is None or sample.status != 200:
                continue
            status = re.search(r'job-status job-status-(\w+)"', response.text)
            job.status = status.group(1) if status else "?"
            if 'hx-trigger="every 2s"' not in response.text:
                job.finished = self.portal.recorder.now()


# --- The run -------------------------------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def playable(data: dict, min_seconds: float) -> dict[str, list[dict]]:
    """Recordings listeners can play: available, of all five providers (the 62-minute one too)."""
    by_provider: dict[str, list[dict]] = defaultdict(list)
    for recording in data["recordings"]:
        if recording["status"] == "available" and (recording["duration"] or 0) >= max(1.0, min_seconds):
            by_provider[recording["account__provider"]].append(recording)
    missing = [p for p in PROVIDERS if not by_provider[p]]
    if missing:
        raise RuntimeError(f"no playable recording of {', '.join(missing)}")
    return by_provider


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120, help="length of the measured window (default 120)")
    parser.add_argument("--listeners", type=int, default=50)
    parser.add_argument("--search-rate", type=float, default=4.0, help="searches per second (default 4; 0: none)")
    parser.add_argument("--exporters", type=int, default=2, choices=[0, 1, 2], help="exporters (default 2)")
    parser.add_argument("--faults", action="store_true", help="run the fault schedule during the window")
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file; or "
                        "postgres://postgres@127.0.0.1:5432/NAME (the bench creates and drops NAME)")  # fmt: skip
    parser.add_argument("--calls", type=int, default=60, help="seeded calls per provider (default 60)")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds a listener waits between requests")
    parser.add_argument("--pace", type=int, default=0, help="listeners read at this many bytes/s (0: as fast as "
                        "they can, a few hundred KB per request)")  # fmt: skip
    parser.add_argument("--listen", type=float, default=20, help="with --pace: mean seconds of one play")
    parser.add_argument("--min-duration", type=float, default=0, help="listeners play only recordings at least "
                        "this long (seconds): long streams that do not fit in the socket buffers")  # fmt: skip
    parser.add_argument("--sync-every", type=float, default=30, help="seconds between the admin's syncs")
    parser.add_argument("--workers", type=int, default=0, help="WEB_CONCURRENCY (default: gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, default=0, help="GUNICORN_THREADS (default: gunicorn.conf.py's)")
    parser.add_argument("--drain", type=float, default=300, help="seconds to wait for jobs after the window")
    parser.add_argument("--report", type=Path, help="also write the markdown report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and database")
    args = parser.parse_args()

    def terminate(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    stack = Stack(args)
    try:
        return run(stack, args)
    finally:
        stack.cleanup()


def run(stack: Stack, args) -> int:
    load_before = os.getloadavg()
    stack.start()
    data = stack.data
    data["playable"] = playable(data, args.min_duration)
    if args.min_duration:
        say("listeners play only recordings of at least {:g} s: {}".format(
            args.min_duration, ", ".join(f"{p} {len(data['playable'][p])}" for p in PROVIDERS)))  # fmt: skip
    workers = stack.gunicorn_workers()
    threads = int(stack.env.get("GUNICORN_THREADS", 32))
    say(f"portal {stack.url}: gunicorn {len(workers)} workers x {threads} threads, db_worker, sandbox; "
        f"{len(data['calls'])} calls, {len(data['recordings'])} recordings")  # fmt: skip

    recorder = Recorder()
    portal = Portal(stack.url, recorder)
    sampler = ProcessSampler(stack)
    sampler.start()
    say(f"logging in {args.listeners} listeners, a supervisor, an exporter and an admin")
    t0 = time.monotonic()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        names = [f"listener{i:03d}" for i in range(args.listeners)] + ["supervisor", "exporter", "admin"]
        sessions = dict(zip(names, pool.map(portal.login, names), strict=True))
    login_seconds = time.monotonic() - t0

    stop = threading.Event()
    drain_deadline = [float("inf")]
    recorder.t0 = time.monotonic()  # the measured window starts now
    sampler.cpu_start.clear()
    sampler.sending.clear()
    sampler.receiving.clear()
    sampler.states.clear()
    sampler.pg_connections.clear()
    load_start = os.getloadavg()
    admin = Admin(portal, sessions["admin"], data, args, stop, lambda: drain_deadline[0])
    exporter_session = sessions["exporter"]
    second_exporter = requests.Session()
    second_exporter.cookies.update(exporter_session.cookies)
    searcher_sessions = [sessions["supervisor"]]
    for _ in range(3):
        extra = requests.Session()
        extra.cookies.update(sessions["supervisor"].cookies)
        searcher_sessions.append(extra)
    csv_session = requests.Session()
    csv_session.cookies.update(exporter_session.cookies)
    actors: list[threading.Thread] = [
        *(Listener(i, portal, data, args, stop, sessions[f"listener{i:03d}"]) for i in range(args.listeners)),
        *(Exporter(i, portal, s, data, stop, lambda: drain_deadline[0])
          for i, s in enumerate([exporter_session, second_exporter][: args.exporters])),
        admin,
        Probe(portal, stop),
    ]  # fmt: skip
    if args.search_rate > 0:
        actors.append(Searcher(portal, data, args.search_rate, stop, searcher_sessions, csv_session))
    faults = FaultScheduler(stack.sandbox_url, recorder, args.seconds, admin) if args.faults else None
    say(f"logins took {login_seconds:.0f} s; the measured window starts: {args.seconds:.0f} s"
        + (", with faults" if faults else ""))  # fmt: skip
    for actor in actors:
        actor.start()
    if faults:
        faults.start()
    progress_at = 0.0
    while recorder.now() < args.seconds:
        time.sleep(1)
        if recorder.now() - progress_at >= 15:
            progress_at = recorder.now()
            with recorder.lock:
                done = len(recorder.samples)
                bad = sum(1 for s in recorder.samples if s.status not in OK_STATUSES)
            say(f"  t={recorder.now():4.0f} s: {done} requests, {bad} not 2xx/3xx/416, load {os.getloadavg()[0]:.1f}")
    stop.set()
    window = recorder.now()
    load_end = os.getloadavg()
    cpu_window = sampler.cpu_by_role()
    sampler.window_threads = (sampler.sending[:], sampler.receiving[:])  # the window's samples only
    sampler.pg_window = sampler.pg_connections[:]
    thread_states = {k: v / max(1, len(sampler.window_threads[0])) for k, v in sampler.states.most_common(8)}
    say(f"gunicorn threads by system call (mean per sample): {thread_states}")
    say("window over: waiting for the exports and jobs in flight")
    drain_deadline[0] = time.monotonic() + args.drain
    if faults:
        faults.stop_event.set()
        faults.join(timeout=15)
        faults.clear()
    for actor in actors:
        actor.join(timeout=max(1.0, drain_deadline[0] - time.monotonic() + 30))
    stuck = [a.name for a in actors if a.is_alive()]
    classify(recorder, faults)
    rechecked = recheck(portal, sessions["supervisor"], recorder)

    # Consistency: drain the worker's queue, stop the processes, then check the rows.
    from bench import check_consistency

    os.environ.update({k: v for k, v in stack.env.items() if k not in ("PORT",)})
    check_consistency.setup_django()
    drained = check_consistency.wait_drained(timeout=max(30.0, drain_deadline[0] - time.monotonic()))
    sampler.stop_event.set()
    sampler.join()
    restarted = sorted(sampler.worker_pids - set(workers))
    stack.stop("gunicorn", "db_worker")
    expect = {
        "index": stack.index,
        "played": sorted(recorder.played),
        "tried": sorted(recorder.tried),
        "counts": dict(recorder.counts),
        "listeners": [f"listener{i:03d}" for i in range(args.listeners)],
        "logs": [str(stack.workdir / n) for n in ("gunicorn.log", "worker.log", "access.log")],
    }
    (stack.workdir / "expect.json").write_text(json.dumps(expect))
    problems, notes = check_consistency.run_checks(expect=expect)
    if not drained:
        problems.insert(0, "the worker did not drain its queue in time (see the jobs above)")
    if faults:
        problems[:0] = faults.errors
    check_consistency.close()
    stack.stop("sandbox")

    unrecovered = {pk: status for pk, status in rechecked.items() if status not in (200, 206, 410)}
    if unrecovered:
        problems.append(f"recordings that failed during a fault still fail after it: {unrecovered}")
    report = render_report(
        args=args, stack=stack, recorder=recorder, sampler=sampler, faults=faults, actors=actors, admin=admin,
        window=window, cpu=cpu_window, loads=(load_before, load_start, load_end), workers=len(workers),
        threads=threads, login_seconds=login_seconds, problems=problems, notes=notes, stuck=stuck,
        restarted=restarted,
    )  # fmt: skip
    print()
    print(report)
    if args.report:
        args.report.write_text(report)
        say(f"report written to {args.report}")
    failures = sum(1 for s in recorder.samples if s.outcome == "fail")
    return 1 if failures or problems or stuck else 0


def classify(recorder: Recorder, faults: FaultScheduler | None) -> None:
    """ok: 2xx, 302, 416. clear: the audio route's 409/410 with its message (the recording cannot be played, e.g.
    an id Kaleyra says has expired). fault: a 409/410/5xx answer or a broken connection on a provider's audio while
    a fault was on that provider. fail: everything else: any 500, other 5xx, broken connections, unexpected 4xx."""
    # Recordings the provider refuses whatever the faults (Kaleyra's expired ids): their 410 is always clear.
    gone = {
        s.target
        for s in recorder.samples
        if s.status == 410 and not (faults and faults.explains(s.provider, s.start, s.end))
    }
    for sample in recorder.samples:
        if sample.status in OK_STATUSES:
            sample.outcome = "ok"
            continue
        if sample.status == 410 and sample.target in gone:
            sample.outcome = "clear"
            continue
        if sample.status == "skipped":
            sample.outcome = "skipped"
            continue
        if sample.status == 500:  # the portal's own failure, whatever the provider did
            sample.outcome = "fail"
            continue
        audio = sample.route.startswith("audio")
        explained = sample.status in PROVIDER_STATUSES or isinstance(sample.status, str)
        window = faults.explains(sample.provider, sample.start, sample.end) if faults and audio else None
        if audio and explained and window is not None and "not JSON" not in sample.note:
            sample.outcome = "fault"
            sample.window = window
        elif audio and sample.status in (409, 410) and "not JSON" not in sample.note:
            sample.outcome = "clear"
        else:
            sample.outcome = "fail"


SERVER_ROUTES = [
    (re.compile(r"^/recordings/\d+/audio$"), "audio"),
    (re.compile(r"^/calls/\d+/$"), "call page"),
    (re.compile(r"^/calls/$"), "search"),
    (re.compile(r"^/calls/export\.csv$"), "results CSV"),
    (re.compile(r"^/exports/\d+/download$"), "export download"),
    (re.compile(r"^/exports/\d+/$"), "export page"),
    (re.compile(r"^/exports/$"), "export create"),
    (re.compile(r"^/jobs/\d+/$"), "job page"),
    (re.compile(r"^/admin/"), "admin"),
    (re.compile(r"^/healthz$"), "healthz probe"),
    (re.compile(r"^/accounts/login/$"), "login"),
]


def server_side(access_log: Path) -> list[str]:
    """From gunicorn's access log: requests per worker, and the time each route held its thread."""
    held: dict[str, list[int]] = defaultdict(list)
    workers: Counter = Counter()
    try:
        lines = access_log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        parts = line.split()
        if len(parts) != 6 or not parts[5].isdigit():
            continue
        pid, _, path, _, _, ms = parts
        workers[pid] += 1
        route = next((name for pattern, name in SERVER_ROUTES if pattern.match(path)), "other")
        held[route].append(int(ms))
    out = [
        "Time a gunicorn thread spent on each request (its access log; for audio until the last byte went into "
        "the socket or the listener hung up), requests per worker: "
        + ", ".join(f"{pid.strip('<>')}: {n}" for pid, n in sorted(workers.items()))
        + ".",
        "",
        "| route (server side) | requests | p50 ms | p95 ms | p99 ms | max ms | thread-seconds |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for _, route in [*SERVER_ROUTES, (None, "other")]:
        values = held.get(route)
        if values:
            out.append(f"| {route} | {len(values)} | {percentile(values, 50):.0f} | {percentile(values, 95):.0f} | "
                       f"{percentile(values, 99):.0f} | {max(values)} | {sum(values) / 1000:.0f} |")  # fmt: skip
    return [*out, ""]


def recheck(portal: Portal, session: requests.Session, recorder: Recorder) -> dict[int, int | str]:
    """Once the faults are cleared, play again every recording that failed: a fault's damage must not last. A 410
    that lasts is the provider's answer for that recording (Kaleyra's expired ids): a clear refusal, not a fault."""
    targets = sorted({s.target for s in recorder.samples if s.route.startswith("audio") and s.outcome != "ok"})
    results: dict[int, int | str] = {}
    for pk in targets:
        try:
            response = session.get(
                f"{portal.url}/recordings/{pk}/audio", headers={"Range": "bytes=0-1023"}, timeout=portal.timeout
            )
            results[pk] = response.status_code
        except requests.RequestException as exc:
            results[pk] = transport_error(exc)
    for sample in recorder.samples:
        if sample.outcome == "fault" and sample.status == 410 and results.get(sample.target) == 410:
            sample.outcome, sample.window = "clear", None
    recorder.rechecked = results
    return results


def label_error(sample: Sample) -> str:
    return f"{sample.status}" + (f" ({sample.outcome})" if sample.outcome in ("fault", "clear") else "")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


ROUTE_ORDER = ["audio first", "audio seek", "call page", "search (page)", "search (htmx)", "results CSV",
               "export create", "export page", "export download", "admin changelist", "admin action", "job page",
               "healthz probe", "login"]  # fmt: skip


def render_report(*, args, stack: Stack, recorder: Recorder, sampler: ProcessSampler, faults, actors, admin: Admin,
                  window: float, cpu, loads, workers: int, threads: int, login_seconds: float, problems, notes,
                  stuck, restarted) -> str:  # fmt: skip
    out: list[str] = []
    w = out.append
    samples = recorder.samples
    measured = [s for s in samples if s.route != "login"]
    w(f"### Load run{' with faults' if args.faults else ''}: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    w("")
    reading = (
        f"each play read at {args.pace / 1000:g} kB/s (real time) for about {args.listen:g} s"
        if args.pace
        else "each request reads 100-600 KB as fast as it comes, then hangs up"
    )
    w(f"`{' '.join(['.venv/bin/python', 'bench/load.py', *sys.argv[1:]])}`: {stack.database}; gunicorn "
      f"{workers} workers x {threads} threads (gthread), one db_worker, the sandbox with {args.calls} calls per "
      f"provider; {args.listeners} listeners ({reading}), {args.search_rate:g} searches/s, "
      f"{args.exporters} exporters, 1 admin, "
      f"{window:.0f} s window. {os.cpu_count()} cores shared with other work; load average "
      f"{loads[0][0]:.1f} before the set-up, {loads[1][0]:.1f} at the start of the window, {loads[2][0]:.1f} at "
      f"its end. Logins ({len([s for s in samples if s.route == 'login'])}) took {login_seconds:.0f} s before "
      "the window.")  # fmt: skip
    w("")
    w("| route | requests | ok | errors (status: count) | p50 ms | p95 ms | p99 ms | max ms | MB |")
    w("|---|---:|---:|---|---:|---:|---:|---:|---:|")
    routes = defaultdict(list)
    for s in samples:
        routes[s.route].append(s)
    for route in [r for r in ROUTE_ORDER if r in routes] + sorted(set(routes) - set(ROUTE_ORDER)):
        group = routes[route]
        ok = [s for s in group if s.outcome == "ok"]
        errors = Counter(label_error(s) for s in group if s.outcome != "ok")
        ms = [s.ms for s in ok]
        label = f"{route} (first byte)" if route.startswith("audio") else route
        w(f"| {label} | {len(group)} | {len(ok)} | {', '.join(f'{k}: {v}' for k, v in sorted(errors.items())) or '-'}"
          f" | {percentile(ms, 50):.0f} | {percentile(ms, 95):.0f} | {percentile(ms, 99):.0f} | "
          f"{max(ms, default=float('nan')):.0f} | {sum(s.nbytes for s in group) / MB:.1f} |")  # fmt: skip
    w("")
    audio = [s for s in measured if s.route.startswith("audio")]
    audio_mb = sum(s.nbytes for s in audio) / MB
    by_provider = defaultdict(list)
    for s in audio:
        by_provider[s.provider].append(s)
    w("Audio by provider (first byte of every play and seek):")
    w("")
    w("| provider | requests | ok | errors | p50 ms | p95 ms | p99 ms |")
    w("|---|---:|---:|---|---:|---:|---:|")
    for provider in PROVIDERS:
        group = by_provider[provider]
        ok = [s.ms for s in group if s.outcome == "ok"]
        errors = Counter(label_error(s) for s in group if s.outcome != "ok")
        listed = ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "-"
        w(f"| {provider} | {len(group)} | {len(ok)} | {listed}"
          f" | {percentile(ok, 50):.0f} | {percentile(ok, 95):.0f} | {percentile(ok, 99):.0f} |")  # fmt: skip
    w("")
    resent = Counter(s.route for s in samples if "sent again" in s.note)
    if resent:
        w("GETs sent again once because the connection closed before any answer (a kept-alive connection the server "
          f"closed as the request went out; browsers do the same): {', '.join(f'{k}: {v}' for k, v in resent.items())}"
          ".")  # fmt: skip
        w("")
    busy = sum(max(0.0, min(s.end, window) - max(s.start, 0.0)) for s in measured) / window
    events = sorted([(s.start, 1) for s in measured] + [(s.end, -1) for s in measured])
    peak = level = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    sending = sampler.window_threads[0] or [0]
    receiving = sampler.window_threads[1] or [0]
    w(f"Requests in flight as the clients see them: {busy:.1f} on average, {peak} at the peak. gunicorn threads "
      f"(of {workers * threads}) blocked writing to a listener, sampled every 0.25 s: {statistics.mean(sending):.1f} "
      f"on average, {max(sending)} at the peak; blocked reading (an upstream or a request): "
      f"{statistics.mean(receiving):.1f} on average, {max(receiving)} at the peak.")  # fmt: skip
    w("")
    out.extend(server_side(stack.workdir / "access.log"))
    w(f"Throughput: {len(measured) / window:.1f} requests/s, audio {audio_mb:.0f} MB in {window:.0f} s "
      f"({audio_mb / window:.1f} MB/s).")  # fmt: skip
    w("")
    w("| process | peak RSS MB | CPU s in the window | of one core |")
    w("|---|---:|---:|---:|")
    for role in ("gunicorn master", "gunicorn worker", "db_worker", "sandbox", "bench client"):
        label = f"gunicorn workers ({workers}, peak each / sum)" if role == "gunicorn worker" else role
        peak = f"{sampler.peak[role] / 1024:.0f}"
        if role == "gunicorn worker":
            peak += f" / {sampler.peak_sum_workers / 1024:.0f}"
        w(f"| {label} | {peak} | {cpu.get(role, 0):.0f} | {100 * cpu.get(role, 0) / window:.0f}% |")
    w("")
    if sampler.pg_window:
        w(f"PostgreSQL connections to the run's database: {statistics.mean(sampler.pg_window):.0f} on average, "
          f"{max(sampler.pg_window)} at the peak (CONN_MAX_AGE 60: one per gunicorn thread that served a "
          "request, plus the worker's).")  # fmt: skip
        w("")
    gunicorn_cpu = cpu.get("gunicorn worker", 0) + cpu.get("gunicorn master", 0)
    if audio:
        w(f"Cost in the portal: {1000 * gunicorn_cpu / max(1, len(measured)):.1f} ms of CPU per request on average "
          f"({gunicorn_cpu:.0f} CPU-s for {len(measured)} requests and {audio_mb:.0f} MB of audio).")  # fmt: skip
        w("")
    exporters = [a for a in actors if isinstance(a, Exporter)]
    w("Exports (each built by the worker while everything else ran, then downloaded and verified):")
    w("")
    w("| export | selection | recordings | status | in ZIP | failed | MB | seconds | verified |")
    w("|---|---|---:|---|---:|---:|---:|---:|---|")
    for exporter in exporters:
        for o in exporter.outcomes:
            w(f"| #{o.pk} | {o.selection} | {o.recordings} | {o.status} | {o.files} | {o.failed} | "
              f"{o.size / MB:.0f} | {o.seconds:.0f} | {o.verified or '-'} |")  # fmt: skip
    w("")
    kinds = Counter((j.kind, j.status) for j in admin.jobs)
    w("Admin jobs: " + (", ".join(f"{kind} {status}: {n}" for (kind, status), n in sorted(kinds.items())) or "none")
      + ".")  # fmt: skip
    w("")
    if faults:
        w("Fault windows (seconds into the window) and what the portal answered for that provider's audio meanwhile:")
        w("")
        w("| from | to | fault | portal answers (status: count) |")
        w("|---:|---:|---|---|")
        for fw in faults.windows:
            seen = Counter(
                str(s.status)
                for s in audio
                if (s.outcome == "ok" and fw.covers(s.provider, s.start, s.end)) or s.window is fw
            )
            w(f"| {fw.start:.0f} | {fw.end:.0f} | {fw.label} | "
              f"{', '.join(f'{k}: {v}' for k, v in sorted(seen.items())) or '-'} |")  # fmt: skip
        w("")
    if recorder.rechecked:
        after = Counter(str(v) for v in recorder.rechecked.values())
        w(f"Played again once the faults were cleared, the {len(recorder.rechecked)} recordings that had failed "
          f"answered: {', '.join(f'{k}: {v}' for k, v in sorted(after.items()))}.")  # fmt: skip
        w("")
    clear = Counter((s.provider, s.status, s.note[:90]) for s in samples if s.outcome == "clear")
    if clear:
        w("Clear refusals outside fault windows (the recording cannot be played; the portal says why):")
        w("")
        for (provider, status, note), n in sorted(clear.items()):
            targets = sorted({s.target for s in samples if s.outcome == "clear" and s.provider == provider})
            w(f"- {provider} {status} x{n} (recordings {', '.join(map(str, targets[:8]))}): {note}")
        w("")
    failures = [s for s in samples if s.outcome == "fail"]
    fives = [s for s in failures if isinstance(s.status, int) and s.status >= 500]
    w(f"**Verdict:** {len(fives)} 5xx not caused by a fault (500s: {sum(1 for s in samples if s.status == 500)}), "
      f"{len(failures) - len(fives)} other failed requests, {len(problems)} consistency problems"
      + (f", actors still running: {', '.join(stuck)}" if stuck else "")
      + (f", gunicorn workers restarted: {restarted}" if restarted else "") + ".")  # fmt: skip
    for s in failures[:30]:
        w(f"- {s.route} {s.provider} at {s.start:.1f} s: {s.status} {s.note[:160]!r}")
    if len(failures) > 30:
        w(f"- … and {len(failures) - 30} more")
    w("")
    w(f"Consistency (bench/check_consistency.py): {'no problem' if not problems else f'{len(problems)} problem(s)'}.")
    for p in problems[:40]:
        w(f"- PROBLEM {p}")
    for n in notes:
        w(f"- {n}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
