"""Batched upserts of provider calls and recordings: new rows inserted, changed rows updated, others untouched."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..models import Call, ProviderAccount, Recording
from ..providers import RemoteCall, RemoteRecording

BATCH_SIZE = 1000

CALL_FIELDS = [
    "direction", "from_number", "to_number", "agent", "campaign", "disposition",
    "started_at", "ended_at", "duration", "raw",
]  # fmt: skip
RECORDING_FIELDS = [
    "call_id", "status", "content_type", "format", "duration", "size_bytes", "channels",
    "started_at", "locator", "raw", "gone_upstream_at",
]  # fmt: skip
# Statuses we set ourselves after acting at the provider; a listing never turns them back.
LOCAL_FINAL = {Recording.Status.DELETED, Recording.Status.MEDIA_DELETED}


@dataclass
class IngestCounts:
    calls_created: int = 0
    calls_updated: int = 0
    recordings_created: int = 0
    recordings_updated: int = 0
    unchanged: int = 0
    seen_recordings: int = 0
    newest_started_at: datetime | None = None
    seen_recording_ids: set[str] = field(default_factory=set, repr=False)

    def as_dict(self) -> dict[str, int]:
        return {
            "calls_created": self.calls_created,
            "calls_updated": self.calls_updated,
            "recordings_created": self.recordings_created,
            "recordings_updated": self.recordings_updated,
            "unchanged": self.unchanged,
            "recordings_seen": self.seen_recordings,
        }


class Upserter:
    """Collects RemoteCalls and writes them in batches. Use as a context manager or call flush()."""

    def __init__(
        self,
        account: ProviderAccount,
        *,
        track_seen: bool = False,
        on_batch: Callable[[IngestCounts], None] | None = None,
    ) -> None:
        self.account = account
        self.track_seen = track_seen
        self.on_batch = on_batch
        self.counts = IngestCounts()
        self._pending: dict[str, RemoteCall] = {}

    def __enter__(self) -> Upserter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.flush()

    def add(self, remote: RemoteCall) -> None:
        existing = self._pending.get(remote.remote_id)
        if existing is None:
            self._pending[remote.remote_id] = remote
        else:
            # Bandwidth lists a call once per recording: merge them.
            known = {r.remote_id for r in existing.recordings}
            existing.recordings.extend(r for r in remote.recordings if r.remote_id not in known)
            for name, value in _span(existing, remote).items():
                setattr(existing, name, value)
        if len(self._pending) >= BATCH_SIZE:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = list(self._pending.values()), {}
        with transaction.atomic():
            calls = self._write_calls(batch)
            self._write_recordings(batch, calls)
        for remote in batch:
            if self.counts.newest_started_at is None or remote.started_at > self.counts.newest_started_at:
                self.counts.newest_started_at = remote.started_at
        if self.on_batch:
            self.on_batch(self.counts)

    def _write_calls(self, batch: list[RemoteCall]) -> dict[str, Call]:
        account = self.account
        remote_ids = [r.remote_id for r in batch]
        existing = {c.remote_id: c for c in Call.objects.filter(account=account, remote_id__in=remote_ids)}
        to_create, to_update = [], []
        for remote in batch:
            values = {name: getattr(remote, name) for name in CALL_FIELDS}
            call = existing.get(remote.remote_id)
            # The same rule on insert and on update, so that a second run finds nothing to change.
            values.update(_span(call or remote, remote))
            if call is None:
                call = Call(account=account, provider=account.provider, remote_id=remote.remote_id, **values)
                to_create.append(call)
            elif _apply(call, values):
                to_update.append(call)
            else:
                self.counts.unchanged += 1
        Call.objects.bulk_create(to_create)
        _bulk_update(Call, to_update, CALL_FIELDS)
        self.counts.calls_created += len(to_create)
        self.counts.calls_updated += len(to_update)
        if any(c.pk is None for c in to_create):  # backends without RETURNING
            return {c.remote_id: c for c in Call.objects.filter(account=account, remote_id__in=remote_ids)}
        return {**existing, **{c.remote_id: c for c in to_create}}

    def _write_recordings(self, batch: list[RemoteCall], calls: dict[str, Call]) -> None:
        account = self.account
        remote_recordings: list[tuple[RemoteRecording, Call]] = [
            (rec, calls[remote.remote_id]) for remote in batch for rec in remote.recordings
        ]
        ids = [rec.remote_id for rec, _ in remote_recordings]
        existing = {r.remote_id: r for r in Recording.objects.filter(account=account, remote_id__in=ids)}
        to_create, to_update = [], []
        for rec, call in remote_recordings:
            self.counts.seen_recordings += 1
            if self.track_seen:
                self.counts.seen_recording_ids.add(rec.remote_id)
            values = {
                "call_id": call.pk,
                "status": rec.status,
                "content_type": rec.content_type,
                "format": rec.format,
                "duration": rec.duration,
                "size_bytes": rec.size_bytes,
                "channels": rec.channels,
                "started_at": rec.started_at,
                "locator": rec.locator,
                "raw": rec.raw,
                "gone_upstream_at": None,
            }
            recording = existing.get(rec.remote_id)
            if recording is None:
                to_create.append(Recording(account=account, remote_id=rec.remote_id, **values))
                continue
            if recording.status in LOCAL_FINAL and rec.status not in LOCAL_FINAL:
                values["status"] = recording.status
            if _apply(recording, values):
                to_update.append(recording)
            else:
                self.counts.unchanged += 1
        Recording.objects.bulk_create(to_create)
        _bulk_update(Recording, to_update, RECORDING_FIELDS)
        self.counts.recordings_created += len(to_create)
        self.counts.recordings_updated += len(to_update)


def _span(known, remote: RemoteCall) -> dict:
    """A call seen through several recordings (in different batches) spans all of them."""
    started = min(known.started_at, remote.started_at)
    ended = max((t for t in (known.ended_at, remote.ended_at) if t is not None), default=None)
    durations = [d for d in (known.duration, remote.duration) if d is not None]
    if ended is not None and started is not None:
        durations.append((ended - started).total_seconds())
    return {"started_at": started, "ended_at": ended, "duration": max(durations) if durations else None}


def _apply(obj, values: dict) -> bool:
    """Set the values that differ; True when anything changed."""
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def _bulk_update(model, objs: list, fields: list[str]) -> None:
    if not objs:
        return
    now = timezone.now()  # bulk_update does not run auto_now
    for obj in objs:
        obj.updated_at = now
    model.objects.bulk_update(objs, [*fields, "updated_at"])
