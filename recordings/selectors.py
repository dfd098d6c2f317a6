"""Selectors: the reads views need, kept out of the views."""

from __future__ import annotations

import datetime

from django.db.models import Max
from django_tasks_db.models import DBTaskResult

from .models import Call


def recent_calls(*, limit: int) -> list[Call]:
    return list(Call.objects.select_related("account").order_by("-started_at", "-id")[:limit])


def worker_last_seen() -> datetime.datetime | None:
    """When a worker last started or finished a task."""
    row = DBTaskResult.objects.aggregate(started=Max("started_at"), finished=Max("finished_at"))
    seen = [value for value in row.values() if value is not None]
    return max(seen) if seen else None
