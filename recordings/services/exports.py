"""Exports: a ZIP of recordings with a checksummed manifest, built by the worker, kept for EXPORT_TTL.

An export is a Job (kind "export") with one item per recording plus one "archive" item for the manifest and the
finished file, so the progress bar reaches the end only when the ZIP can be downloaded. The worker builds the ZIP
in one pass (`export_build`): each recording is fetched from its provider and written into the archive as it
arrives, hashed on the way; a recording that fails is left out and listed in errors.csv with its reason.

The archive is written with zipstream-ng (stored, ZIP64 when a file or the archive needs it) to a `.part` file next
to its final name, renamed when complete: a half-built export is never served. A worker that dies mid-build leaves
the archive item `running`; `jobs_resume` hands such jobs back to `export_build`, which starts the file again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from zipstream import ZIP_STORED, ZipStream

from ..csvsafe import csv_lines
from ..models import AuditEvent, Call, Job, JobItem, Recording
from ..providers import BACKGROUND, adapter_for
from ..providers.errors import ProviderError
from ..search import CallSearch, Cursor, search_calls
from ..streaming import window
from .audit import audit_record
from .jobs import RESUMERS, Target, job_create, job_refresh
from .playback import recording_filename, unavailable_message

logger = logging.getLogger(__name__)

Status = JobItem.Status
ARCHIVE = "archive"
RESUMES = 3  # re-openings of one recording that stopped mid-way
TOUCH_EVERY = 30.0  # seconds between lease renewals while one long recording is written

MANIFEST_COLUMNS = [
    "file",
    "size_bytes",
    "sha256",
    "provider",
    "account",
    "call_id",
    "call_remote_id",
    "recording_id",
    "recording_remote_id",
    "direction",
    "from_number",
    "to_number",
    "agent",
    "campaign",
    "started_at",
    "duration_seconds",
    "channels",
    "content_type",
    "fetched_at",
    "exported_by",
]
ERROR_COLUMNS = ["recording_id", "recording_remote_id", "provider", "call_id", "call_remote_id", "reason"]


class ExportRefused(Exception):
    """The selection cannot be exported as asked (nothing chosen, or too much); the message says why."""


def export_dir() -> Path:
    path = Path(settings.EXPORT_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def max_recordings() -> int:
    return settings.EXPORT_MAX_RECORDINGS


# --- Creating ------------------------------------------------------------------------------------------------


def selection_calls(*, call_ids: Iterable[int] = (), search: CallSearch | None = None) -> list[int]:
    """The ids of the chosen calls: the ticked ones, or every call matching `search` (walked page by page)."""
    if search is None:
        return sorted(set(Call.objects.filter(pk__in=set(call_ids)).values_list("pk", flat=True)))
    ids: list[int] = []
    cursor = None
    limit = max_recordings() + 1  # every call has a recording or more: beyond this many calls is too many
    while len(ids) < limit:
        page = search_calls(search=search, cursor=cursor, page_size=1000)
        ids.extend(call.pk for call in page.calls)
        if not page.next_cursor:
            break
        cursor = Cursor.decode(page.next_cursor)
    return ids


def export_create(*, actor, call_ids: list[int], description: str, params: dict | None = None) -> Job:
    """Create an export of every recording of `call_ids` and hand it to the worker."""
    from ..tasks import build_export

    if not call_ids:
        raise ExportRefused("Choose at least one call to export.")
    if len(call_ids) > max_recordings():
        raise ExportRefused(_too_many())
    recordings = list(
        Recording.objects.filter(call_id__in=call_ids).select_related("account", "call").order_by("call_id", "id")
    )
    if not recordings:
        raise ExportRefused("The chosen calls have no recordings to export.")
    if len(recordings) > max_recordings():
        raise ExportRefused(_too_many())
    targets = [Target("recording", str(r.pk), label=_label(r)) for r in recordings]
    targets.append(Target(ARCHIVE, "zip", label="Manifest and ZIP archive"))
    job = job_create(
        kind=Job.Kind.EXPORT,
        actor=actor,
        targets=targets,
        params={**(params or {}), "description": description[:300], "calls": len(call_ids)},
        enqueue=False,
    )
    audit_record(
        action=AuditEvent.Action.EXPORT,
        actor=actor,
        target=job,
        details={"recordings": len(recordings), "calls": len(call_ids), "description": description[:300]},
    )
    build_export.enqueue(job.pk)
    return job


def _too_many() -> str:
    return (
        f"An export can hold at most {max_recordings():,} recordings. Narrow the search (a shorter date range, one "
        "provider or account) and export the parts separately."
    )


def _label(recording: Recording) -> str:
    call = recording.call
    return f"{recording.account.get_provider_display()} {call.started_at:%Y-%m-%d %H:%M} {call.remote_id}"[:200]


# --- Building ------------------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One recording written into the archive."""

    name: str
    size: int
    sha256: str
    content_type: str
    fetched_at: str


def export_build(*, job_id: int) -> str:
    """Build the export's ZIP (run by the worker). Returns the job's final status, or why nothing was done."""
    job = Job.objects.select_related("created_by").get(pk=job_id, kind=Job.Kind.EXPORT)
    archive = job.items.get(target_type=ARCHIVE)
    if not _claim(archive):
        return "not claimed"
    if archive.attempts > settings.JOBS_MAX_ATTEMPTS:
        _finish(archive, Status.FAILED, f"Gave up after {archive.attempts - 1} attempt(s).")
        return job_refresh(job_id=job.pk).status
    # A resumed build starts the file again: every recording is fetched anew.
    job.items.filter(target_type="recording").update(status=Status.PENDING, message="", updated_at=timezone.now())
    job_refresh(job_id=job.pk)
    final = export_dir() / f"export-{job.pk}.zip"
    partial = final.with_name(final.name + ".part")
    try:
        entries, errors = _write_archive(job, archive, partial)
        os.replace(partial, final)
    except Exception as exc:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        logger.exception("Export %s could not be written", job.pk)
        message = "The archive could not be written (see the worker log)."
        if isinstance(exc, OSError):
            message = f"The archive could not be written: {exc.strerror or exc.__class__.__name__}."
        _finish(archive, Status.FAILED, message)
        return job_refresh(job_id=job.pk).status
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        file_path=final.name,
        file_size=final.stat().st_size,
        expires_at=now + timedelta(seconds=settings.EXPORT_TTL),
        params={**job.params, "files": len(entries), "failed": len(errors)},
    )
    summary = f"{len(entries)} recording(s) in the archive"
    summary += f", {len(errors)} listed in errors.csv." if errors else "."
    _finish(archive, Status.SUCCEEDED, summary)
    return job_refresh(job_id=job.pk).status


def _claim(archive: JobItem) -> bool:
    claimed = JobItem.objects.filter(pk=archive.pk, status__in=[Status.PENDING, Status.WAITING]).update(
        status=Status.RUNNING, attempts=archive.attempts + 1, updated_at=timezone.now()
    )
    archive.refresh_from_db()
    return bool(claimed)


def _finish(item: JobItem, status: str, message: str) -> None:
    JobItem.objects.filter(pk=item.pk).update(status=status, message=message[:2000], updated_at=timezone.now())


def _write_archive(job: Job, archive: JobItem, path: Path) -> tuple[list[tuple[Recording, Entry]], list[dict]]:
    exported_by = job.created_by.get_username() if job.created_by else ""
    items = list(job.items.filter(target_type="recording").order_by("id"))
    recordings = Recording.objects.select_related("account", "call").in_bulk([int(i.target_id) for i in items])
    entries: list[tuple[Recording, Entry]] = []
    errors: list[dict] = []
    names: set[str] = set()
    stream = ZipStream(compress_type=ZIP_STORED)
    with open(path, "wb") as out:
        for item in items:
            JobItem.objects.filter(pk=archive.pk).update(updated_at=timezone.now())  # the lease: still alive
            JobItem.objects.filter(pk=item.pk).update(status=Status.RUNNING, updated_at=timezone.now())
            recording = recordings.get(int(item.target_id))
            if recording is None:
                _finish(item, Status.FAILED, "It no longer exists in the portal.")
                errors.append({"recording_id": item.target_id, "reason": "It no longer exists in the portal."})
                job_refresh(job_id=job.pk)
                continue
            try:
                entry = _add_recording(stream, out, recording, names, touch=[archive.pk, item.pk])
            except ProviderError as exc:
                reason = str(exc)
            except _Unavailable as exc:
                reason = str(exc)
            else:
                entries.append((recording, entry))
                _finish(item, Status.SUCCEEDED, f"{entry.name} ({entry.size:,} bytes)")
                job_refresh(job_id=job.pk)
                continue
            errors.append(_error_row(recording, reason))
            _finish(item, Status.FAILED, reason)
            job_refresh(job_id=job.pk)
        for name, data in _documents(job, entries, errors, exported_by):
            stream.add(data, name)
        for chunk in stream.finalize():
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return entries, errors


class _Unavailable(Exception):
    pass


def _add_recording(stream: ZipStream, out, recording: Recording, names: set[str], touch: list[int]) -> Entry:
    """Write one recording into the archive; on failure nothing of it stays in the file."""
    reason = unavailable_message(recording)
    if reason:
        raise _Unavailable(reason)
    source = _Source(recording, touch)
    source.open()  # errors before the first byte leave no entry at all
    name = _unique(f"recordings/{recording_filename(recording, source.content_type)}", names)
    start = out.tell()
    try:
        stream.add(source.chunks(), name, size=source.total)
        for chunk in stream.file():
            out.write(chunk)
    except BaseException:
        # Take the partial entry back out: zipstream-ng's offset is where the next header will say it starts.
        out.seek(start)
        out.truncate()
        stream._pos = start  # zipstream-ng==1.9.3's offset; tests/exports cover a failure mid-file
        raise
    finally:
        source.close()
    names.add(name)
    return Entry(name, source.received, source.digest.hexdigest(), source.content_type, source.fetched_at)


class _Source:
    """A recording's whole body from its provider (or the media cache), hashed as it passes, resumed after a drop."""

    def __init__(self, recording: Recording, touch: list[int]) -> None:
        self.recording = recording
        self.touch = touch  # items whose lease a long download renews
        self.adapter = adapter_for(recording.account, policy=BACKGROUND)
        self.digest = hashlib.sha256()
        self.received = 0
        self.total: int | None = None
        self.content_type = recording.content_type or "application/octet-stream"
        self.fetched_at = ""
        self._stream = None
        self._cached: Path | None = None
        self._touched = time.monotonic()

    def open(self) -> None:
        from ..media_cache import media_cache

        hit = media_cache().cached(self.recording)
        self.fetched_at = timezone.now().isoformat()
        if hit is not None:
            self._cached, info = hit
            self.total = self._cached.stat().st_size
            self.content_type = info.get("content_type") or self.content_type
            return
        self._stream = self.adapter.open_media(self.recording)
        self.total = self._stream.total_size
        self.content_type = self._stream.content_type or self.content_type

    def chunks(self) -> Iterator[bytes]:
        if self._cached is not None:
            with open(self._cached, "rb") as handle:
                while chunk := handle.read(1024 * 1024):
                    self._take(chunk)
                    yield chunk
            return
        resumes = 0
        while True:
            try:
                for chunk in self._stream.chunks:
                    self._take(chunk)
                    yield chunk
            except ProviderError:
                self._stream.close()
                if resumes >= RESUMES or self.total is None:
                    raise
                resumes += 1
                self._reopen()
                continue
            break
        if self.total is not None and self.received != self.total:
            raise ProviderError(
                f"{self.adapter.label} sent {self.received:,} of {self.total:,} bytes.", provider=self.adapter.name
            )

    def _take(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self.received += len(chunk)
        if time.monotonic() - self._touched > TOUCH_EVERY:  # a long recording: renew the lease on the way
            JobItem.objects.filter(pk__in=self.touch).update(updated_at=timezone.now())
            self._touched = time.monotonic()

    def _reopen(self) -> None:
        """Carry on from the byte where the provider stopped: with a Range, or by skipping what we have."""
        offset = self.received
        if self.adapter.supports_range:
            stream = self.adapter.open_media(self.recording, byte_range=(offset, None))
            if stream.status == 206 and stream.content_range and stream.content_range[0] == offset:
                self._stream = stream
                return
            stream.chunks = window(stream.chunks, skip=offset, limit=None)
            self._stream = stream
            return
        stream = self.adapter.open_media(self.recording)
        stream.chunks = window(stream.chunks, skip=offset, limit=None)
        self._stream = stream

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


def _unique(name: str, names: set[str]) -> str:
    if name not in names:
        return name
    stem, dot, ext = name.rpartition(".")
    for n in range(2, 10_000):
        candidate = f"{stem}_{n}.{ext}" if dot else f"{name}_{n}"
        if candidate not in names:
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def _error_row(recording: Recording, reason: str) -> dict:
    return {
        "recording_id": recording.pk,
        "recording_remote_id": recording.remote_id,
        "provider": recording.account.provider,
        "call_id": recording.call_id,
        "call_remote_id": recording.call.remote_id,
        "reason": reason,
    }


def _manifest_row(recording: Recording, entry: Entry, exported_by: str) -> dict:
    call = recording.call
    return {
        "file": entry.name,
        "size_bytes": entry.size,
        "sha256": entry.sha256,
        "provider": recording.account.provider,
        "account": recording.account.name,
        "call_id": call.pk,
        "call_remote_id": call.remote_id,
        "recording_id": recording.pk,
        "recording_remote_id": recording.remote_id,
        "direction": call.direction,
        "from_number": call.from_number,
        "to_number": call.to_number,
        "agent": call.agent,
        "campaign": call.campaign,
        "started_at": (recording.started_at or call.started_at).isoformat(),
        "duration_seconds": recording.duration if recording.duration is not None else call.duration,
        "channels": recording.channels,
        "content_type": entry.content_type,
        "fetched_at": entry.fetched_at,
        "exported_by": exported_by,
    }


def csv_bytes(columns: list[str], rows: Iterable[dict]) -> bytes:
    """A CSV (UTF-8 with BOM, so spreadsheets read accents) whose cells cannot become formulas."""
    lines = csv_lines([columns, *([row.get(column, "") for column in columns] for row in rows)])
    return "".join(lines).encode("utf-8")


def _documents(job: Job, entries, errors: list[dict], exported_by: str) -> Iterator[tuple[str, bytes]]:
    rows = [_manifest_row(recording, entry, exported_by) for recording, entry in entries]
    yield "manifest.csv", csv_bytes(MANIFEST_COLUMNS, rows)
    manifest = {
        "export_id": job.pk,
        "created_at": job.created_at.isoformat(),
        "exported_by": exported_by,
        "selection": job.params.get("description", ""),
        "recordings": rows,
        "errors": errors,
    }
    yield "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False, default=str).encode("utf-8")
    yield "SHA256SUMS", "".join(f"{e.sha256}  {e.name}\n" for _, e in entries).encode("utf-8")
    if errors:
        yield "errors.csv", csv_bytes(ERROR_COLUMNS, errors)
    yield "README.txt", _readme(job, len(entries), len(errors), exported_by).encode("utf-8")


def _readme(job: Job, files: int, failed: int, exported_by: str) -> str:
    lines = [
        f"Recording Portal export #{job.pk}",
        f"Created {timezone.localtime(job.created_at):%Y-%m-%d %H:%M %Z} by {exported_by or 'a deleted user'}.",
        f"Selection: {job.params.get('description', '')}",
        "",
        f"recordings/     {files} audio file(s), named provider_date_time_call_recording.ext",
        "manifest.csv    one row per audio file: call and recording details, size and SHA-256",
        "manifest.json   the same as JSON, with the export's details",
        "SHA256SUMS      checksums; verify with: sha256sum -c SHA256SUMS",
    ]
    if failed:
        lines.append(f"errors.csv      {failed} recording(s) that could not be exported, with the reason")
    lines += [
        "",
        "Times are in UTC (ISO 8601). These recordings may hold personal data: keep and share them only as your",
        "organisation's policy allows.",
    ]
    return "\n".join(lines) + "\n"


# --- Resuming, reading, expiring -------------------------------------------------------------------------------


def _resume(job_id: int) -> None:
    from ..tasks import build_export

    if JobItem.objects.filter(job_id=job_id, target_type=ARCHIVE, status=Status.RUNNING).update(
        status=Status.WAITING, message="The worker stopped while writing the archive; starting it again."
    ):
        build_export.enqueue(job_id)


RESUMERS[Job.Kind.EXPORT] = _resume


def export_file(job: Job) -> Path | None:
    """The finished archive of an export, if it is there and has not expired."""
    if not job.file_path or job.status == Job.Status.EXPIRED:
        return None
    if job.expires_at is not None and job.expires_at <= timezone.now():
        return None
    path = export_dir() / Path(job.file_path).name
    return path if path.is_file() else None


def export_filename(job: Job) -> str:
    return f"recordings-export-{job.pk}-{timezone.localtime(job.created_at):%Y-%m-%d}.zip"


def exports_expire(*, now=None) -> int:
    """Remove the files of exports past their expiry and mark them expired. Returns how many."""
    now = now or timezone.now()
    expired = Job.objects.filter(kind=Job.Kind.EXPORT, expires_at__lte=now).exclude(status=Job.Status.EXPIRED)
    count = 0
    for job in expired:
        if job.file_path:
            with contextlib.suppress(FileNotFoundError):
                (export_dir() / Path(job.file_path).name).unlink()
        Job.objects.filter(pk=job.pk).update(status=Job.Status.EXPIRED, file_path="")
        count += 1
    # Leftovers of builds that died (their job is resumed with a new file).
    cutoff = now.timestamp() - max(settings.EXPORT_TTL, settings.JOBS_LEASE_SECONDS)
    for leftover in export_dir().glob("*.part"):
        if leftover.stat().st_mtime < cutoff:
            leftover.unlink(missing_ok=True)
    return count
