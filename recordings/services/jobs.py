"""Jobs: many items worked in the background, each item's state committed on its own, the job's derived from them.

Item states: pending → running → succeeded | failed | refused | skipped, with running → waiting → running for a
retry (429, transient errors) or a poll (transcriptions). Each transition is its own transaction, so a worker that
dies leaves at most one item `running`; `job_resume_stale` re-enqueues such items and the handler, told that it is
resuming, re-checks the provider before acting. Nothing is marked done without the provider having said so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from ..models import Job, JobItem
from ..providers.errors import NotSupported, ProviderError, RateLimited

logger = logging.getLogger(__name__)

Status = JobItem.Status


def max_attempts() -> int:
    """Tries of one item before it fails (each 429, transient error or worker crash uses one)."""
    return settings.JOBS_MAX_ATTEMPTS


def retry_backoff(attempt: int) -> float:
    """Seconds before retrying after a transient error: doubles with each attempt, capped."""
    base = settings.JOBS_RETRY_BACKOFF
    return min(base * 2 ** max(0, attempt - 1), 300.0)


def lease() -> timedelta:
    """A `running` item untouched for this long belongs to a worker that died."""
    return timedelta(seconds=settings.JOBS_LEASE_SECONDS)


@dataclass(frozen=True)
class Target:
    """One item to create: what it acts on, and, when the action is refused up front, why."""

    target_type: str
    target_id: str
    label: str = ""
    refused: str = ""
    skipped: str = ""


@dataclass(frozen=True)
class Outcome:
    """What a handler reports: a final status and message, or `poll_after` seconds to look again."""

    status: str = Status.SUCCEEDED
    message: str = ""
    poll_after: float | None = None


@dataclass(frozen=True)
class Work:
    """What a handler gets: the item, its job, the poll number, and whether a dead worker left it running."""

    item: JobItem
    job: Job
    poll: int
    resumed: bool


Handler = Callable[[Work], Outcome]
# kind -> handler; filled by services/actions.py.
HANDLERS: dict[str, Handler] = {}
# kind -> hook called with (item, status, message) when an item finishes: the audit row.
FINISHERS: dict[str, Callable[[JobItem, str, str], None]] = {}
# kind -> called with a job's id when a dead worker left its items running, for kinds that are not worked item
# by item (an export writes one archive); filled by services/exports.py.
RESUMERS: dict[str, Callable[[int], None]] = {}


def job_create(*, kind: str, actor, targets: Iterable[Target], params: dict | None = None, enqueue: bool = True) -> Job:
    """Create the job and one item per target, then enqueue the items that have work to do (unless the caller
    works them itself: `enqueue=False`)."""
    from ..tasks import run_job_item

    targets = list(targets)
    with transaction.atomic():
        job = Job.objects.create(kind=kind, created_by=actor, total=len(targets), params=params or {})
        items = JobItem.objects.bulk_create(
            JobItem(
                job=job,
                target_type=t.target_type,
                target_id=t.target_id,
                label=t.label[:200],
                status=Status.REFUSED if t.refused else Status.SKIPPED if t.skipped else Status.PENDING,
                message=t.refused or t.skipped,
            )
            for t in targets
        )
    # bulk_create sets pks on SQLite and PostgreSQL; reload to be safe on other backends.
    items = list(job.items.all())
    for item in items:
        if item.status in JobItem.FINISHED:
            _notify_finished(item, item.status, item.message)
    # Enqueued after the commit: an RQ worker may start before this function returns.
    for item in items:
        if enqueue and item.status == Status.PENDING:
            run_job_item.enqueue(item.pk)
    job_refresh(job_id=job.pk)
    job.refresh_from_db()
    return job


def job_item_run(*, item_id: int, poll: int = 0, polling: bool = False, resumed: bool = False) -> str:
    """Work one item once: claim it, call its handler, commit the outcome. Returns the item's new status.

    `poll` counts the looks at a provider-side process (transcriptions); `polling` says this run is such a look
    (not a new attempt); `resumed` that a dead worker left the item running, so the provider must be re-checked.
    """
    item = _claim(item_id, count_attempt=not polling)
    if item is None:
        return "not claimed"
    job = item.job
    handler = HANDLERS[job.kind]
    try:
        outcome = handler(Work(item=item, job=job, poll=poll, resumed=resumed))
    except NotSupported as exc:
        return _finish(item, Status.REFUSED, str(exc))
    except ProviderError as exc:
        return _retry_or_fail(item, exc, poll=poll)
    except ObjectDoesNotExist:
        return _finish(item, Status.FAILED, "It no longer exists in the portal.")
    except Exception:
        logger.exception("Job item %s of job %s failed", item.pk, job.pk)
        return _finish(item, Status.FAILED, "An unexpected error stopped this item (see the worker log).")
    if outcome.poll_after is not None:
        _wait(item, outcome.message, delay=outcome.poll_after, poll=poll + 1, polling=True)
        return Status.WAITING
    return _finish(item, outcome.status, outcome.message)


def job_refresh(*, job_id: int) -> Job:
    """Derive the job's status and progress from its items (under a row lock, so concurrent workers agree)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        counts = dict(job.items.values_list("status").annotate(n=Count("id")).order_by())
        total = sum(counts.values())
        done = sum(counts.get(s, 0) for s in JobItem.FINISHED)
        good = counts.get(Status.SUCCEEDED, 0) + counts.get(Status.SKIPPED, 0)
        now = timezone.now()
        job.total, job.done = total, done
        if done == total:
            if good == total:
                job.status = Job.Status.SUCCEEDED
            elif good == 0:
                job.status = Job.Status.FAILED
            else:
                job.status = Job.Status.PARTIAL
            job.finished_at = job.finished_at or now
            bad = total - good
            job.error = f"{bad} of {total} item(s) not done." if bad else ""
        elif counts.get(Status.PENDING, 0) == total - done and not job.started_at:
            job.status = Job.Status.QUEUED
        else:
            job.status = Job.Status.RUNNING
            job.started_at = job.started_at or now
            job.finished_at = None
        job.save(update_fields=["total", "done", "status", "started_at", "finished_at", "error"])
    return job


def job_resume_stale(*, older_than: timedelta | None = None) -> dict[str, int]:
    """Re-enqueue items a dead worker left `running` (or fail them when out of attempts)."""
    from ..tasks import run_job_item

    cutoff = timezone.now() - (lease() if older_than is None else older_than)
    stale = JobItem.objects.filter(status=Status.RUNNING, updated_at__lte=cutoff)
    resumed = failed = 0
    whole = set(stale.filter(job__kind__in=list(RESUMERS)).values_list("job_id", "job__kind"))
    for job_id, kind in whole:
        RESUMERS[kind](job_id)
        resumed += 1
    stale = stale.exclude(job__kind__in=list(RESUMERS)).values_list("pk", "attempts")
    for pk, attempts in list(stale):
        if attempts >= max_attempts():
            item = JobItem.objects.select_related("job").get(pk=pk)
            _finish(item, Status.FAILED, f"The worker stopped {attempts} time(s) while working on this; gave up.")
            failed += 1
        else:
            message = "The worker stopped while working on this; checking the provider again."
            # Only if still stale: a live worker may have finished it meanwhile.
            if JobItem.objects.filter(pk=pk, status=Status.RUNNING, updated_at__lte=cutoff).update(
                status=Status.WAITING, message=message, updated_at=timezone.now()
            ):
                run_job_item.enqueue(pk, resumed=True)
                resumed += 1
    return {"resumed": resumed, "failed": failed}


# --- State transitions, each committed on its own ----------------------------------------------------------


def _claim(item_id: int, *, count_attempt: bool) -> JobItem | None:
    with transaction.atomic():
        item = JobItem.objects.select_for_update(of=("self",)).select_related("job").filter(pk=item_id).first()
        # Finished, or running: another worker has it (a dead one's items are put back by job_resume_stale).
        if item is None or item.status in (*JobItem.FINISHED, Status.RUNNING):
            return None
        if count_attempt:
            item.attempts += 1
        item.status = Status.RUNNING
        item.save(update_fields=["status", "attempts", "updated_at"])
    if item.attempts > max_attempts():
        _finish(item, Status.FAILED, f"Gave up after {item.attempts - 1} attempt(s).")
        return None
    job_refresh(job_id=item.job_id)
    return item


def _finish(item: JobItem, status: str, message: str) -> str:
    JobItem.objects.filter(pk=item.pk).update(status=status, message=message[:2000], updated_at=timezone.now())
    item.status, item.message = status, message
    _notify_finished(item, status, message)
    job_refresh(job_id=item.job_id)
    return status


def _notify_finished(item: JobItem, status: str, message: str) -> None:
    finisher = FINISHERS.get(item.job.kind)
    if finisher is not None:
        finisher(item, status, message)


def _wait(item: JobItem, message: str, *, delay: float, poll: int, polling: bool) -> None:
    from ..tasks import run_job_item

    JobItem.objects.filter(pk=item.pk).update(status=Status.WAITING, message=message, updated_at=timezone.now())
    run_after = timezone.now() + timedelta(seconds=delay)
    run_job_item.using(run_after=run_after).enqueue(item.pk, poll=poll, polling=polling)
    job_refresh(job_id=item.job_id)


def _retry_or_fail(item: JobItem, error: ProviderError, *, poll: int) -> str:
    if error.permanent:
        return _finish(item, Status.FAILED, str(error))
    if item.attempts >= max_attempts():
        return _finish(item, Status.FAILED, f"Gave up after {item.attempts} attempt(s): {error}")
    if isinstance(error, RateLimited) and error.retry_after is not None:
        delay = error.retry_after
    else:
        delay = retry_backoff(item.attempts)
    # The retry is a new attempt; `poll` stays, so a transcription carries on where it was.
    message = f"{error} Retrying in {delay:.0f} s (attempt {item.attempts} of {max_attempts()})."
    _wait(item, message, delay=delay, poll=poll, polling=False)
    return Status.WAITING
