"""Sync an account's calls and recordings from its provider's listing API."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from queue import Full, Queue
from typing import TypeVar

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..models import AuditEvent, ProviderAccount, Recording
from ..providers import ProviderError, adapter_for
from .audit import audit_record
from .ingest import IngestCounts, Upserter

T = TypeVar("T")

# Each sync starts this much before the newest call seen last time: late arrivals and status changes.
OVERLAP = timedelta(hours=1)


class SyncFailed(Exception):
    """The sync stopped; `error` is the provider error (its message is safe to show)."""

    def __init__(self, error: ProviderError, counts: IngestCounts) -> None:
        self.error = error
        self.counts = counts
        super().__init__(str(error))


def account_sync(
    *,
    account: ProviderAccount,
    actor=None,
    full: bool = False,
    on_batch: Callable[[IngestCounts], None] | None = None,
) -> IngestCounts:
    """Bring the account's calls up to date; record the outcome on the account and in the audit log."""
    adapter = adapter_for(account)
    until = timezone.now()
    if full or account.sync_watermark is None:
        since = until - timedelta(days=settings.SYNC_INITIAL_LOOKBACK_DAYS)
    else:
        since = account.sync_watermark - OVERLAP
    ProviderAccount.objects.filter(pk=account.pk).update(last_sync_status=ProviderAccount.SyncStatus.RUNNING)
    upserter = Upserter(account, track_seen=True, on_batch=on_batch)
    try:
        for remote in prefetched(adapter.iter_calls(since=since, until=until)):
            upserter.add(remote)
        upserter.flush()
    except ProviderError as exc:
        upserter.flush()  # keep what arrived before the failure
        _record_outcome(account, upserter.counts, error=exc, actor=actor)
        raise SyncFailed(exc, upserter.counts) from exc
    gone = _mark_gone(account, upserter.counts.seen_recording_ids, since=since, until=until)
    _record_outcome(account, upserter.counts, gone=gone, actor=actor)
    return upserter.counts


def prefetched(items: Iterator[T], *, ahead: int = 5000, chunk: int = 100) -> Iterator[T]:
    """Run `items` in a thread, up to `ahead` items ahead: the next pages download while a batch is written.

    Items cross in lists of up to `chunk` (a lock and a wake-up per list, not per item); the batch being written
    is 1000 calls, so a list held back until the next page arrives delays nothing.
    """
    done = object()
    queue: Queue = Queue(maxsize=max(1, ahead // chunk))
    stop = threading.Event()

    def put(value) -> bool:
        while not stop.is_set():
            try:
                queue.put(value, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        pending: list = []
        try:
            for item in items:
                pending.append(item)
                if len(pending) >= chunk:
                    if not put(pending):
                        return
                    pending = []
        except BaseException as exc:  # handed to the consumer, raised there, after what arrived before it
            if not pending or put(pending):
                put(exc)
            return
        if not pending or put(pending):
            put(done)

    thread = threading.Thread(target=produce, name="sync-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            got = queue.get()
            if got is done:
                return
            if isinstance(got, BaseException):
                raise got
            yield from got
    finally:
        stop.set()
        thread.join(timeout=5)


def _mark_gone(account: ProviderAccount, seen: set[str], *, since, until) -> int:
    """Recordings in the listed window that the provider no longer lists were deleted there."""
    candidates = (
        Recording.objects.filter(account=account, started_at__gte=since, started_at__lt=until)
        .exclude(status=Recording.Status.DELETED)
        .filter(Q(gone_upstream_at__isnull=True))
        .values_list("pk", "remote_id")
    )
    gone_pks = [pk for pk, remote_id in candidates.iterator(chunk_size=5000) if remote_id not in seen]
    now = timezone.now()
    for start in range(0, len(gone_pks), 1000):
        Recording.objects.filter(pk__in=gone_pks[start : start + 1000]).update(
            gone_upstream_at=now, status=Recording.Status.DELETED, updated_at=now
        )
    return len(gone_pks)


def _record_outcome(account, counts: IngestCounts, *, error: ProviderError | None = None, gone: int = 0, actor=None):
    now = timezone.now()
    summary = {**counts.as_dict(), "gone_upstream": gone}
    fields = {
        "last_synced_at": now,
        "last_sync_status": ProviderAccount.SyncStatus.ERROR if error else ProviderAccount.SyncStatus.OK,
        "last_sync_error": str(error) if error else "",
        "last_sync_counts": summary,
    }
    newest = counts.newest_started_at
    if error is None and newest is not None and (account.sync_watermark is None or newest > account.sync_watermark):
        fields["sync_watermark"] = newest
    ProviderAccount.objects.filter(pk=account.pk).update(**fields)
    for name, value in fields.items():
        setattr(account, name, value)
    details = {**summary, "outcome": "failed" if error else "ok"}
    if error:
        details["error"] = str(error)
    audit_record(action=AuditEvent.Action.SYNC, actor=actor, target=account, details=details)
