"""Background tasks (django-tasks API). Arguments are ids; each task loads its objects and calls a service."""

from __future__ import annotations

import logging

from django_tasks import task

from .models import ProviderAccount
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
