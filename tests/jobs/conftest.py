"""Fixtures for jobs: a synced Bandwidth account on the sandbox, and an in-process runner for queued tasks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from recordings.models import Recording
from recordings.services.sync import account_sync


class Runner:
    """Runs the tasks queued in the database, in this process, the way db_worker would (ignoring run_after).

    `delays` records, for each task run, how far in the future it had been scheduled (seconds; 0 for none).
    """

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.calls: list[tuple[list, dict]] = []

    def __call__(self, max_tasks: int | None = None) -> int:
        """Run up to `max_tasks` tasks (default: until none is left, at most 200)."""
        count = 0
        while count < (max_tasks or 200):
            result = DBTaskResult.objects.filter(status="READY").order_by("run_after", "enqueued_at").first()
            if result is None:
                return count
            DBTaskResult.objects.filter(pk=result.pk).update(status="SUCCESSFUL")
            far = result.run_after - timezone.now() if result.task.run_after else timedelta(0)
            self.delays.append(max(0.0, far.total_seconds()))
            args, kwargs = result.args_kwargs["args"], result.args_kwargs["kwargs"]
            self.calls.append((args, kwargs))
            result.task.call(*args, **kwargs)
            count += 1
        if max_tasks is None:
            raise AssertionError("still tasks queued after 200")
        return count

    @staticmethod
    def queued() -> int:
        return DBTaskResult.objects.filter(status="READY").count()


@pytest.fixture
def run_tasks(db) -> Runner:
    return Runner()


@pytest.fixture
def bandwidth(make_account, sandbox_clean):
    """A Bandwidth account synced from the sandbox; the sandbox data is reset afterwards (deletes, transcripts)."""
    account = make_account("bandwidth")
    account_sync(account=account)
    yield account
    sandbox_clean.reset()


@pytest.fixture
def bw_recordings(bandwidth):
    """Two ordinary available Bandwidth recordings."""
    return list(
        Recording.objects.filter(account=bandwidth, status="available", duration__gt=20, duration__lt=300).order_by(
            "duration"
        )[:2]
    )
