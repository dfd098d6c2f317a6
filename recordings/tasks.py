"""Background tasks (django-tasks API). Arguments are ids; each task loads its objects and calls a service."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import task

from .models import ProviderAccount
from .services import actions  # noqa: F401  (registers the job handlers)
from .services.exports import export_build, exports_expire
from .services.jobs import job_item_run, job_resume_stale
from .services.sync import SyncFailed, account_sync

logger = logging.getLogger(__name__)


@task()
def sync_account(account_id: int, actor_id: int | None = None) -> dict:
    """Sync one account; the outcome is recorded on the account and in the audit log."""
    from django.contrib.auth import get_user_model

    account = ProviderAccount.objects.get(pk=account_id)
    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    try:
        counts = account_sync(account=account, actor=actor)
    except SyncFailed as exc:
        logger.warning("Sync of account %s failed: %s", account_id, exc.error.kind)
        return {"ok": False, "error": str(exc.error)}
    return {"ok": True, **counts.as_dict()}


@task()
def run_job_item(item_id: int, poll: int = 0, polling: bool = False, resumed: bool = False) -> str:
    """Work one item of a job (see services/jobs.py for its states); re-enqueues itself to retry or poll."""
    return job_item_run(item_id=item_id, poll=poll, polling=polling, resumed=resumed)


@task()
def resume_stale_jobs() -> dict:
    """Put back the items a dead worker left running."""
    return job_resume_stale()


@task()
def build_export(job_id: int) -> str:
    """Write an export's ZIP (services/exports.py)."""
    return export_build(job_id=job_id)


@task()
def expire_exports(repeat: bool = True) -> int:
    """Remove expired exports, then come back in EXPORT_SWEEP_INTERVAL seconds."""
    removed = exports_expire()
    if repeat:
        schedule_export_sweep(delay=settings.EXPORT_SWEEP_INTERVAL, force=True)
    return removed


def schedule_export_sweep(*, delay: float = 0, force: bool = False) -> bool:
    """Enqueue the periodic export sweep unless one is already waiting (checked on the database backend; on RQ
    each worker start adds one, which is harmless: the sweep is idempotent). Returns whether it enqueued."""
    if not force and settings.TASKS_BACKEND == "db":
        from django_tasks_db.models import DBTaskResult

        if DBTaskResult.objects.filter(status="READY", task_path=expire_exports.module_path).exists():
            return False
    expire_exports.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue()
    return True
