"""Admin actions on many recordings or accounts: delete at the provider, transcribe, sync, test, uncache.

`<verb>_job(...)` builds the job (refusing up front what a provider cannot do); the `_handle_*` functions work
one item in a worker; `recording_*` services do the work on one recording and write nothing but its state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from ..media_cache import media_cache
from ..models import AuditEvent, Call, Job, JobItem, ProviderAccount, Recording, Transcript
from ..providers import adapter_for
from ..providers.base import RetryPolicy
from ..providers.errors import NotFound, NotSupported
from .audit import audit_record
from .jobs import FINISHERS, HANDLERS, Outcome, Target, Work, job_create

# Inside a task the outer retry is the re-enqueue (services/jobs.py): try each request twice, never wait long.
TASK_POLICY = RetryPolicy(attempts=2, backoff=0.5, max_retry_after=5.0)

# Bandwidth transcribeCallRecording: "only for recordings of length greater than 500 milliseconds and less than
# 4 hours" (../shared/providers/004); checked before calling any provider.
TRANSCRIBE_MIN_SECONDS = 0.5
TRANSCRIBE_MAX_SECONDS = 4 * 3600
TRANSCRIPTION_POLL_SECONDS = 2.0
TRANSCRIPTION_MAX_POLLS = 60

RECORDING = "recording"
ACCOUNT = "provideraccount"

# kind -> (adapter capability, audit action)
RECORDING_KINDS = {
    Job.Kind.DELETE: ("can_delete", AuditEvent.Action.DELETE),
    Job.Kind.DELETE_MEDIA: ("can_delete_media", AuditEvent.Action.DELETE_MEDIA),
    Job.Kind.TRANSCRIBE: ("can_transcribe", AuditEvent.Action.TRANSCRIBE),
    Job.Kind.REFRESH_TRANSCRIPTION: ("can_transcribe", AuditEvent.Action.TRANSCRIBE),
    Job.Kind.REMOVE_CACHE: ("", AuditEvent.Action.CACHE_REMOVE),
}
ACCOUNT_KINDS = {
    Job.Kind.SYNC: ("can_sync", AuditEvent.Action.SYNC),
    Job.Kind.TEST_CONNECTION: ("", AuditEvent.Action.TEST_CONNECTION),
}
CAPABILITY_WORDS = {
    "can_delete": "cannot delete recordings",
    "can_delete_media": "cannot delete recording media alone",
    "can_transcribe": "cannot transcribe recordings",
    "can_sync": "has no listing API (its calls enter by report import)",
}


# --- Plans: what an action will do, per provider (the confirmation page shows them) ---------------------------


@dataclass
class ProviderPlan:
    label: str
    will_do: list[Target] = field(default_factory=list)
    refused: list[Target] = field(default_factory=list)
    skipped: list[Target] = field(default_factory=list)


def recording_targets(*, kind: str, recordings) -> list[Target]:
    """One target per recording, refused or skipped up front where the provider cannot or need not act."""
    capability, _ = RECORDING_KINDS[kind]
    targets = []
    for recording in recordings.select_related("account", "call"):
        adapter_class = recording.account.adapter_class
        label = f"{adapter_class.label} recording {recording.remote_id}"
        refused = skipped = ""
        if capability and not getattr(adapter_class, capability):
            refused = f"{adapter_class.label} {CAPABILITY_WORDS[capability]}."
        elif kind in (Job.Kind.DELETE, Job.Kind.DELETE_MEDIA) and recording.deleted_at is not None:
            if recording.status == Recording.Status.DELETED or kind == Job.Kind.DELETE_MEDIA:
                skipped = f"Already deleted ({recording.get_status_display().lower()})."
        elif kind == Job.Kind.TRANSCRIBE:
            refused = transcription_refusal(recording)
        targets.append(Target(RECORDING, str(recording.pk), label, refused=refused, skipped=skipped))
    return targets


def account_targets(*, kind: str, accounts) -> list[Target]:
    capability, _ = ACCOUNT_KINDS[kind]
    targets = []
    for account in accounts:
        refused = ""
        if capability and not getattr(account.adapter_class, capability):
            refused = f"{account.adapter_class.label} {CAPABILITY_WORDS[capability]}."
        targets.append(Target(ACCOUNT, str(account.pk), account.name, refused=refused))
    return targets


def plan_by_provider(targets: list[Target], recordings) -> list[ProviderPlan]:
    """Targets grouped by provider label, for the confirmation page."""
    labels = {str(r.pk): r.account.adapter_class.label for r in recordings.select_related("account")}
    plans: dict[str, ProviderPlan] = {}
    for target in targets:
        label = labels[target.target_id]
        plan = plans.setdefault(label, ProviderPlan(label))
        (plan.refused if target.refused else plan.skipped if target.skipped else plan.will_do).append(target)
    return sorted(plans.values(), key=lambda p: p.label)


def recordings_job(*, kind: str, recordings, actor) -> Job:
    """A job acting on each recording of the queryset."""
    return job_create(kind=kind, actor=actor, targets=recording_targets(kind=kind, recordings=recordings))


def accounts_job(*, kind: str, accounts, actor) -> Job:
    """A job acting on each account of the queryset (sync, test connection)."""
    return job_create(kind=kind, actor=actor, targets=account_targets(kind=kind, accounts=accounts))


# --- Services on one recording -----------------------------------------------------------------------------


def transcription_refusal(recording: Recording) -> str:
    duration = recording.duration
    if duration is not None and not (TRANSCRIBE_MIN_SECONDS < duration < TRANSCRIBE_MAX_SECONDS):
        return f"Only recordings longer than 0.5 s and shorter than 4 h are transcribed; this one is {duration:.1f} s."
    return ""


def recording_delete_at_provider(*, recording: Recording, actor, media_only: bool, adapter=None) -> str:
    """Delete the recording (or only its media) at the provider; the intent is committed before the call.

    A retry after a crash or a lost answer calls the provider again: a 404 for a recording whose deletion was
    requested means the earlier call went through.
    """
    kind = "media" if media_only else "recording"
    adapter = adapter or adapter_for(recording.account, policy=TASK_POLICY)
    if not (adapter.can_delete_media if media_only else adapter.can_delete):
        raise NotSupported(f"{adapter.label} {CAPABILITY_WORDS['can_delete_media' if media_only else 'can_delete']}.")
    Recording.objects.filter(pk=recording.pk).update(delete_requested_at=timezone.now(), delete_requested_kind=kind)
    message = f"Deleted the {kind} at {adapter.label}."
    try:
        if media_only:
            adapter.delete_media(recording)
        else:
            adapter.delete_recording(recording)
    except NotFound:
        message = f"{adapter.label} no longer has it: the {kind} was already deleted."
    with transaction.atomic():
        status = Recording.Status.MEDIA_DELETED if media_only else Recording.Status.DELETED
        now = timezone.now()
        Recording.objects.filter(pk=recording.pk).update(
            status=status, deleted_at=now, deleted_by=actor, updated_at=now
        )
    media_cache().remove(recording)
    return message


def recording_transcription_request(*, recording: Recording, adapter=None) -> Transcript:
    refusal = transcription_refusal(recording)
    if refusal:
        raise NotSupported(refusal)
    adapter = adapter or adapter_for(recording.account, policy=TASK_POLICY)
    transcript, _ = Transcript.objects.update_or_create(
        recording=recording,
        defaults={"status": Transcript.Status.REQUESTED, "requested_at": timezone.now(), "error": ""},
    )
    adapter.request_transcription(recording)
    return transcript


def recording_transcription_fetch(*, recording: Recording, adapter=None) -> Transcript:
    """Store what the provider has: the text and segments when available, else its state."""
    adapter = adapter or adapter_for(recording.account, policy=TASK_POLICY)
    remote = adapter.fetch_transcription(recording)
    transcript, _ = Transcript.objects.get_or_create(recording=recording)
    transcript.status = remote.status
    transcript.error = remote.error
    if remote.status == Transcript.Status.AVAILABLE:
        transcript.text = remote.text
        transcript.segments = [
            {"speaker": s.speaker, "start": s.start, "end": s.end, "text": s.text, "confidence": s.confidence}
            for s in remote.segments
        ]
        transcript.completed_at = timezone.now()
    transcript.save()
    if remote.status == Transcript.Status.AVAILABLE:
        Call.objects.filter(pk=recording.call_id).update(has_transcript=True)
    return transcript


# --- Handlers: one item in a worker --------------------------------------------------------------------------


def _recording(work: Work) -> Recording:
    return Recording.objects.select_related("account", "call").get(pk=work.item.target_id)


def _actor(work: Work):
    return get_user_model().objects.filter(pk=work.job.created_by_id).first()


def _handle_delete(work: Work) -> Outcome:
    recording = _recording(work)
    media_only = work.job.kind == Job.Kind.DELETE_MEDIA
    done = Recording.Status.MEDIA_DELETED if media_only else Recording.Status.DELETED
    if recording.deleted_at is not None and recording.status in (done, Recording.Status.DELETED):
        return Outcome(JobItem.Status.SKIPPED, "Already deleted.")
    message = recording_delete_at_provider(recording=recording, actor=_actor(work), media_only=media_only)
    return Outcome(message=message)


def _handle_transcribe(work: Work) -> Outcome:
    """Request (TRANSCRIBE, first attempt), then look until the provider has the transcript or gives up."""
    recording = _recording(work)
    requesting = work.job.kind == Job.Kind.TRANSCRIBE
    # A retry, a resumed item or a poll looks first: the earlier request may have gone through.
    if requesting and work.poll == 0 and work.item.attempts == 1 and not work.resumed:
        return _request(recording)
    transcript = recording_transcription_fetch(recording=recording)
    if transcript.status == Transcript.Status.AVAILABLE:
        return Outcome(message=f"Transcript stored ({len(transcript.segments)} segment(s)).")
    if transcript.status == Transcript.Status.FAILED:
        return Outcome(JobItem.Status.FAILED, transcript.error or "The provider could not transcribe it.")
    if transcript.status == Transcript.Status.REQUESTED:  # the provider has none
        if not requesting:
            return Outcome(JobItem.Status.FAILED, "The provider has no transcription of it; request one first.")
        if work.poll == 0:
            return _request(recording)  # the earlier request did not reach it
    if work.poll >= TRANSCRIPTION_MAX_POLLS:
        return Outcome(
            JobItem.Status.FAILED,
            f"Still processing after {work.poll} checks; run “Refresh transcription” later.",
        )
    return Outcome(
        message=f"Processing at the provider (check {work.poll + 1} of {TRANSCRIPTION_MAX_POLLS}).",
        poll_after=TRANSCRIPTION_POLL_SECONDS,
    )


def _request(recording: Recording) -> Outcome:
    recording_transcription_request(recording=recording)
    return Outcome(message="Requested; waiting for the provider.", poll_after=TRANSCRIPTION_POLL_SECONDS)


def _handle_remove_cache(work: Work) -> Outcome:
    removed = media_cache().remove(_recording(work))
    return Outcome(message="Cached copy removed." if removed else "There was no cached copy.")


def _handle_sync(work: Work) -> Outcome:
    from .sync import SyncFailed, account_sync

    account = ProviderAccount.objects.get(pk=work.item.target_id)
    try:
        counts = account_sync(account=account, actor=_actor(work))
    except SyncFailed as exc:
        raise exc.error from exc
    summary = ", ".join(f"{value} {name.replace('_', ' ')}" for name, value in counts.as_dict().items())
    return Outcome(message=f"Synced: {summary}.")


def _handle_test_connection(work: Work) -> Outcome:
    account = ProviderAccount.objects.get(pk=work.item.target_id)
    return Outcome(message=adapter_for(account, policy=TASK_POLICY).test_connection())


def _audit_item(item: JobItem, status: str, message: str) -> None:
    """One audit row per item, with its outcome (the sync service writes its own)."""
    kinds = {**RECORDING_KINDS, **ACCOUNT_KINDS}
    _, action = kinds[item.job.kind]
    if item.job.kind == Job.Kind.SYNC and status in (JobItem.Status.SUCCEEDED, JobItem.Status.FAILED):
        return  # account_sync wrote the row, with its counts or its error
    model = Recording if item.target_type == RECORDING else ProviderAccount
    target = model.objects.filter(pk=item.target_id).first()
    actor = get_user_model().objects.filter(pk=item.job.created_by_id).first()
    details = {"job": item.job_id, "kind": item.job.kind, "outcome": status, "message": message[:500]}
    audit_record(action=action, actor=actor, target=target, details=details)


for _kind in (Job.Kind.DELETE, Job.Kind.DELETE_MEDIA):
    HANDLERS[_kind] = _handle_delete
for _kind in (Job.Kind.TRANSCRIBE, Job.Kind.REFRESH_TRANSCRIPTION):
    HANDLERS[_kind] = _handle_transcribe
HANDLERS[Job.Kind.REMOVE_CACHE] = _handle_remove_cache
HANDLERS[Job.Kind.SYNC] = _handle_sync
HANDLERS[Job.Kind.TEST_CONNECTION] = _handle_test_connection
for _kind in (*RECORDING_KINDS, *ACCOUNT_KINDS):
    FINISHERS[_kind] = _audit_item
