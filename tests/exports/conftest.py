"""Fixtures for exports: the five demo accounts brought in from the sandbox, and an in-process task runner."""

from __future__ import annotations

import io
import zipfile

import pytest

from recordings.models import Job, Recording
from recordings.services.demo import demo_accounts_ensure
from tests.jobs.conftest import Runner


@pytest.fixture
def run_tasks(db) -> Runner:
    return Runner()


@pytest.fixture
def demo(db, sandbox_clean, settings, tmp_path):
    """One account per provider with its calls (synced or imported from the sandbox's report); exports and the
    media cache in this test's own folders."""
    settings.EXPORT_DIR = tmp_path / "exports"
    settings.MEDIA_CACHE_DIR = tmp_path / "media-cache"
    return {account.provider: account for account, _ in demo_accounts_ensure(sandbox_url=sandbox_clean.url)}


def short_recordings(account, n: int = 2) -> list[Recording]:
    """`n` available recordings of the account under two minutes (quick to fetch), the newest first (Kaleyra's
    older ids have expired)."""
    available = Recording.objects.filter(account=account, status="available", duration__lte=120)
    return list(available.order_by("-started_at", "id")[:n])


def export_of(client, run_tasks, **data) -> Job:
    """POST /exports/ as `client`, run the worker's tasks, and return the finished job."""
    response = client.post("/exports/", data)
    assert response.status_code == 302, response.content[:500]
    pk = int(response["Location"].rstrip("/").rsplit("/", 1)[1])
    run_tasks()
    return Job.objects.get(pk=pk)


def download(client, job: Job) -> zipfile.ZipFile:
    response = client.get(f"/exports/{job.pk}/download")
    assert response.status_code == 200, response.content[:500]
    body = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(body) == job.file_size
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None  # every member's CRC checks out
    return archive
