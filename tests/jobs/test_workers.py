"""End to end: jobs worked by real worker processes (db_worker; an RQ worker on the local Redis) on a SQLite file."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.portal_server import ROOT, PortalProcess

SETUP = """
import json
from recordings.models import ProviderAccount, Recording, Job
from recordings.services.sync import account_sync
from recordings.services.actions import recordings_job, accounts_job
index = json.loads('''{index}''')
entry = index["providers"]["bandwidth"]
account, _ = ProviderAccount.objects.get_or_create(name="bw", defaults=dict(provider="bandwidth",
    base_url=entry["base_url"], credentials=entry["credentials"], options=entry["options"]))
account_sync(account=account)
{code}
"""


class Portal(PortalProcess):
    """The portal's environment on a migrated SQLite file (a copy of `template`), without a web server."""

    def __init__(self, sandbox, workdir: Path, template: Path, **env: str) -> None:
        super().__init__(sandbox.url, workdir=workdir, extra_env=env)
        self.sandbox = sandbox
        shutil.copyfile(template, self.database)

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", SETUP.format(index=json.dumps(self.sandbox.index), code=code))

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_for(self, sql: str, expected, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while True:
            rows = self.query(sql)
            if rows == expected:
                return rows
            assert time.monotonic() < deadline, f"{sql} -> {rows}, expected {expected}"
            time.sleep(0.1)


@pytest.fixture(scope="session")
def migrated(sandbox, tmp_path_factory) -> Path:
    """A freshly migrated SQLite file, made once."""
    template = PortalProcess(sandbox.url, workdir=tmp_path_factory.mktemp("jobs-template"))
    template.manage("migrate", "--noinput", "-v0")
    return template.database


DELETE_TWO = """
pks = list(Recording.objects.filter(account=account, status="available", duration__gt=20).order_by("duration")
           .values_list("pk", flat=True)[:2])
job = recordings_job(kind="delete", recordings=Recording.objects.filter(pk__in=pks), actor=None)
remote_ids = list(Recording.objects.filter(pk__in=pks).values_list("remote_id", flat=True))
print(json.dumps({"job": job.pk, "remote_ids": remote_ids}))
"""


@pytest.fixture
def portal(sandbox_clean, tmp_path, migrated):
    yield Portal(sandbox_clean, tmp_path, migrated)
    sandbox_clean.reset()


def test_db_worker_runs_a_delete_job(portal):
    created = json.loads(portal.shell(DELETE_TWO).strip().splitlines()[-1])
    job = created["job"]
    assert portal.query("SELECT status FROM recordings_job WHERE id=?", (job,)) == [("queued",)]

    result = subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--interval", "0"],
        cwd=ROOT,
        env=portal.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr

    assert portal.query("SELECT status, done, total FROM recordings_job WHERE id=?", (job,)) == [("succeeded", 2, 2)]
    items = portal.query("SELECT status, attempts FROM recordings_jobitem WHERE job_id=?", (job,))
    assert items == [("succeeded", 1), ("succeeded", 1)]
    rows = portal.query(
        "SELECT status, deleted_at IS NOT NULL FROM recordings_recording WHERE delete_requested_at IS NOT NULL"
    )
    assert rows == [("deleted", 1), ("deleted", 1)]
    assert portal.query("SELECT count(*) FROM recordings_auditevent WHERE action='delete'") == [(2,)]


def test_a_killed_db_worker_leaves_nothing_marked_done_and_the_job_resumes(portal, sandbox_clean):
    created = json.loads(portal.shell(DELETE_TWO).strip().splitlines()[-1])
    job, first = created["job"], created["remote_ids"][0]
    # The provider takes its time over the first deletion: the worker is killed while waiting for it.
    sandbox_clean.fault("bandwidth", "latency", ms=3000, path_contains=first)
    worker = portal.popen("db_worker", "--interval", "0.1")
    try:
        portal.wait_for("SELECT count(*) FROM recordings_jobitem WHERE status='running'", [(1,)])
        time.sleep(0.3)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)

    statuses = dict(portal.query("SELECT status, count(*) FROM recordings_jobitem GROUP BY status"))
    assert statuses.get("running") == 1 and statuses.get("pending", 0) + statuses.get("succeeded", 0) == 1
    running_remote = portal.query(
        "SELECT r.remote_id, r.status, r.deleted_at FROM recordings_jobitem i JOIN recordings_recording r "
        "ON r.id = CAST(i.target_id AS INTEGER) WHERE i.status='running'"
    )
    assert running_remote[0][1:] == ("available", None)  # not marked deleted
    assert portal.query("SELECT status FROM recordings_job WHERE id=?", (job,)) == [("running",)]

    sandbox_clean.clear_faults()
    out = portal.manage("jobs_resume", "--older-than", "0")
    assert "Resumed 1 item(s)" in out
    result = subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--interval", "0"],
        cwd=ROOT,
        env=portal.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert portal.query("SELECT status, done FROM recordings_job WHERE id=?", (job,)) == [("succeeded", 2)]
    assert portal.query("SELECT count(*) FROM recordings_recording WHERE status='deleted'") == [(2,)]


REDIS_DB = 13


@pytest.fixture
def redis_db():
    redis = pytest.importorskip("redis")
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    client.flushdb()
    yield f"redis://127.0.0.1:6379/{REDIS_DB}"
    client.flushdb()


def test_rq_worker_runs_a_transcription_job_with_its_delayed_polls(sandbox_clean, tmp_path, migrated, redis_db):
    portal = Portal(sandbox_clean, tmp_path, migrated, TASKS_BACKEND="rq", REDIS_URL=redis_db)
    sandbox_clean.config(transcription_delay=1)
    code = """
from recordings.providers import adapter_for
adapter = adapter_for(account)
recording = next(r for r in Recording.objects.filter(account=account, status="available", duration__gt=20)
                 if adapter.get_recording(r)["transcription"]["status"] == "none")
job = recordings_job(kind="transcribe", recordings=Recording.objects.filter(pk=recording.pk), actor=None)
print(json.dumps({"job": job.pk, "recording": recording.pk}))
"""
    try:
        created = json.loads(portal.shell(code).strip().splitlines()[-1])
        worker = portal.popen("rqworker", "--job-class", "django_tasks_rq.Job", "--with-scheduler", "default")
        try:
            portal.wait_for(
                f"SELECT status, done FROM recordings_job WHERE id={int(created['job'])}",
                [("succeeded", 1)],
                timeout=30,
            )
        finally:
            worker.terminate()
            worker.communicate(timeout=15)
        transcript = portal.query(
            "SELECT status, length(text) > 0, segments FROM recordings_transcript WHERE recording_id=?",
            (created["recording"],),
        )
        assert transcript[0][:2] == ("available", 1)
        assert json.loads(transcript[0][2])[0]["speaker"] != ""
        has_transcript = portal.query(
            "SELECT has_transcript FROM recordings_call c JOIN recordings_recording r ON r.call_id = c.id WHERE r.id=?",
            (created["recording"],),
        )
        assert has_transcript == [(1,)]
        item = portal.query("SELECT status, attempts FROM recordings_jobitem WHERE job_id=?", (created["job"],))
        assert item == [("succeeded", 1)]
    finally:
        sandbox_clean.reset()


def test_rq_worker_runs_a_test_connection_job(sandbox_clean, tmp_path, migrated, redis_db):
    portal = Portal(sandbox_clean, tmp_path, migrated, TASKS_BACKEND="rq", REDIS_URL=redis_db)
    code = """
job = accounts_job(kind="test_connection", accounts=ProviderAccount.objects.all(), actor=None)
print(json.dumps({"job": job.pk}))
"""
    created = json.loads(portal.shell(code).strip().splitlines()[-1])
    result = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "--job-class", "django_tasks_rq.Job", "--burst", "default"],
        cwd=ROOT,
        env=portal.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert portal.query("SELECT status FROM recordings_job WHERE id=?", (created["job"],)) == [("succeeded",)]
    message = portal.query("SELECT message FROM recordings_jobitem WHERE job_id=?", (created["job"],))[0][0]
    assert message.startswith("Connected to Bandwidth")
