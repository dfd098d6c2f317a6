"""Job kinds worked in-process against the sandbox: outcomes, refusals, retries, polling, resume, audit rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from recordings.models import AuditEvent, Call, Job, JobItem, Recording, Transcript
from recordings.providers import adapter_for
from recordings.providers.errors import NotFound
from recordings.services import actions
from recordings.services.actions import accounts_job, recordings_job
from recordings.services.jobs import job_resume_stale
from recordings.services.sync import account_sync
from tests.helpers import FAST


def deletes(sandbox, since: int) -> list[dict]:
    return [e for e in sandbox.log("bandwidth", since=since) if e["method"] == "DELETE"]


def test_it_deletes_recordings_at_the_provider(bw_recordings, users, run_tasks, sandbox):
    since = sandbox.last_log_id()
    job = recordings_job(
        kind=Job.Kind.DELETE,
        recordings=Recording.objects.filter(pk__in=[r.pk for r in bw_recordings]),
        actor=users["admin"],
    )
    assert job.status == Job.Status.QUEUED and job.total == 2 and run_tasks.queued() == 2

    run_tasks()

    job.refresh_from_db()
    assert (job.status, job.done, job.total) == (Job.Status.SUCCEEDED, 2, 2)
    assert job.finished_at is not None
    for recording in bw_recordings:
        recording.refresh_from_db()
        assert recording.status == Recording.Status.DELETED
        assert recording.deleted_by == users["admin"] and recording.deleted_at and recording.delete_requested_at
        assert recording.delete_requested_kind == "recording"
        with pytest.raises(NotFound):
            adapter_for(recording.account, policy=FAST).get_recording(recording)
    assert len(deletes(sandbox, since)) == 2
    events = AuditEvent.objects.filter(action="delete")
    assert events.count() == 2
    assert {e.details["outcome"] for e in events} == {"succeeded"}
    assert all(e.actor_username == "admin" and e.details["job"] == job.pk for e in events)


def test_it_deletes_media_only_and_keeps_metadata(bw_recordings, users, run_tasks, sandbox):
    recording = bw_recordings[0]
    job = recordings_job(
        kind=Job.Kind.DELETE_MEDIA, recordings=Recording.objects.filter(pk=recording.pk), actor=users["admin"]
    )
    run_tasks()
    job.refresh_from_db()
    recording.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert recording.status == Recording.Status.MEDIA_DELETED and recording.delete_requested_kind == "media"
    # The provider keeps the metadata, marked deleted.
    assert adapter_for(recording.account, policy=FAST).get_recording(recording)["status"] == "deleted"


def test_it_refuses_per_item_what_a_provider_cannot_do(bw_recordings, make_account, users, run_tasks, sandbox):
    truto = make_account("truto")
    account_sync(account=truto)
    truto_recording = Recording.objects.filter(account=truto).first()
    pks = [bw_recordings[0].pk, truto_recording.pk]
    since = sandbox.last_log_id()

    job = recordings_job(kind=Job.Kind.DELETE, recordings=Recording.objects.filter(pk__in=pks), actor=users["admin"])
    run_tasks()

    job.refresh_from_db()
    assert job.status == Job.Status.PARTIAL and job.done == 2
    refused = job.items.get(target_id=str(truto_recording.pk))
    assert refused.status == JobItem.Status.REFUSED
    assert refused.message == "Truto cannot delete recordings."
    assert job.items.get(target_id=str(bw_recordings[0].pk)).status == JobItem.Status.SUCCEEDED
    truto_recording.refresh_from_db()
    assert truto_recording.status == Recording.Status.AVAILABLE and truto_recording.delete_requested_at is None
    assert not [e for e in sandbox.log("truto", since=since) if e["method"] == "DELETE"]
    assert AuditEvent.objects.get(action="delete", target_id=str(truto_recording.pk)).details["outcome"] == "refused"


def test_it_waits_for_retry_after_on_429_then_succeeds(bw_recordings, users, run_tasks, sandbox_clean):
    recording = bw_recordings[0]
    # Longer than the in-task policy waits (5 s): the item is re-enqueued rather than the worker sleeping.
    sandbox_clean.fault("bandwidth", "status", status=429, retry_after=7, count=1, path_contains=recording.remote_id)
    job = recordings_job(
        kind=Job.Kind.DELETE, recordings=Recording.objects.filter(pk=recording.pk), actor=users["admin"]
    )

    run_tasks(max_tasks=1)
    item = job.items.get()
    assert item.status == JobItem.Status.WAITING and "rate limiting" in item.message
    recording.refresh_from_db()
    assert recording.status == Recording.Status.AVAILABLE and recording.delete_requested_at is not None
    assert Job.objects.get(pk=job.pk).status == Job.Status.RUNNING

    run_tasks()
    item.refresh_from_db()
    assert 6 <= run_tasks.delays[1] <= 7.5  # enqueued to run after Retry-After
    assert (item.status, item.attempts) == (JobItem.Status.SUCCEEDED, 2)
    recording.refresh_from_db()
    assert recording.status == Recording.Status.DELETED


def test_it_backs_off_on_500_and_fails_after_bounded_attempts(bw_recordings, users, run_tasks, sandbox_clean, settings):
    settings.JOBS_MAX_ATTEMPTS = 3
    settings.JOBS_RETRY_BACKOFF = 2.0
    recording = bw_recordings[0]
    sandbox_clean.fault("bandwidth", "status", status=500, count=100, path_contains=recording.remote_id)
    job = recordings_job(
        kind=Job.Kind.DELETE, recordings=Recording.objects.filter(pk=recording.pk), actor=users["admin"]
    )

    run_tasks()

    item = job.items.get()
    assert item.status == JobItem.Status.FAILED and item.attempts == 3
    assert item.message.startswith("Gave up after 3 attempt(s): Bandwidth had an error (500)")
    assert [round(d) for d in run_tasks.delays] == [0, 2, 4]  # exponential backoff between attempts
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "1 of 1" in job.error
    recording.refresh_from_db()
    # The intent is on record; nothing claims the deletion happened.
    assert recording.delete_requested_at is not None and recording.status == Recording.Status.AVAILABLE
    assert recording.deleted_at is None
    assert AuditEvent.objects.get(action="delete").details["outcome"] == "failed"


def test_a_retry_after_partial_failure_neither_repeats_nor_loses_a_deletion(
    bw_recordings, users, run_tasks, sandbox_clean, settings
):
    settings.JOBS_MAX_ATTEMPTS = 1
    first, second = bw_recordings
    sandbox_clean.fault("bandwidth", "status", status=500, count=100, path_contains=second.remote_id)
    pks = [first.pk, second.pk]
    job = recordings_job(kind=Job.Kind.DELETE, recordings=Recording.objects.filter(pk__in=pks), actor=users["admin"])
    run_tasks()
    assert Job.objects.get(pk=job.pk).status == Job.Status.PARTIAL

    sandbox_clean.clear_faults()
    # The earlier call did reach the provider although its answer was lost: it now answers 404.
    adapter_for(second.account, policy=FAST).delete_recording(second)
    since = sandbox_clean.last_log_id()
    retry = recordings_job(kind=Job.Kind.DELETE, recordings=Recording.objects.filter(pk__in=pks), actor=users["admin"])
    run_tasks()

    retry.refresh_from_db()
    assert retry.status == Job.Status.SUCCEEDED
    assert retry.items.get(target_id=str(first.pk)).status == JobItem.Status.SKIPPED
    done = retry.items.get(target_id=str(second.pk))
    assert done.status == JobItem.Status.SUCCEEDED and "already deleted" in done.message
    # One DELETE only: for the second; the first was not deleted again.
    assert [second.remote_id in e["path"] for e in deletes(sandbox_clean, since)] == [True]
    second.refresh_from_db()
    assert second.status == Recording.Status.DELETED


def test_a_dead_workers_item_is_resumed_and_rechecked(bw_recordings, users, run_tasks, sandbox):
    recording = bw_recordings[0]
    job = recordings_job(
        kind=Job.Kind.DELETE, recordings=Recording.objects.filter(pk=recording.pk), actor=users["admin"]
    )
    # A worker claimed the item, recorded the intent, reached the provider, then died before writing the outcome.
    item = job.items.get()
    JobItem.objects.filter(pk=item.pk).update(status=JobItem.Status.RUNNING, attempts=1)
    Recording.objects.filter(pk=recording.pk).update(
        delete_requested_at=timezone.now(), delete_requested_kind="recording"
    )
    adapter_for(recording.account, policy=FAST).delete_recording(recording)
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.update(status="RUNNING")  # the dead worker's task is never run again

    assert job_resume_stale(older_than=timedelta(hours=1)) == {"resumed": 0, "failed": 0}  # not stale yet
    assert run_tasks() == 0
    assert job.items.get().status == JobItem.Status.RUNNING  # not marked done: nobody knows yet
    recording.refresh_from_db()
    assert recording.status == Recording.Status.AVAILABLE

    assert job_resume_stale(older_than=timedelta(0)) == {"resumed": 1, "failed": 0}
    run_tasks()
    item.refresh_from_db()
    assert item.status == JobItem.Status.SUCCEEDED and "already deleted" in item.message and item.attempts == 2
    recording.refresh_from_db()
    assert recording.status == Recording.Status.DELETED


def test_an_item_out_of_attempts_after_crashes_is_failed(bw_recordings, users, settings):
    settings.JOBS_MAX_ATTEMPTS = 2
    job = recordings_job(
        kind=Job.Kind.DELETE, recordings=Recording.objects.filter(pk=bw_recordings[0].pk), actor=users["admin"]
    )
    JobItem.objects.filter(job=job).update(status=JobItem.Status.RUNNING, attempts=2)
    assert job_resume_stale(older_than=timedelta(0)) == {"resumed": 0, "failed": 1}
    item = job.items.get()
    assert item.status == JobItem.Status.FAILED and "worker stopped" in item.message
    assert Job.objects.get(pk=job.pk).status == Job.Status.FAILED


def _untranscribed(account) -> Recording:
    for recording in Recording.objects.filter(account=account, status="available", duration__gt=20).order_by(
        "duration"
    ):
        meta = adapter_for(account, policy=FAST).get_recording(recording)
        if meta["transcription"]["status"] == "none":
            return recording
    raise AssertionError("no recording without a transcription")


def test_it_requests_then_polls_and_stores_the_transcript(bandwidth, users, run_tasks, sandbox):
    recording = _untranscribed(bandwidth)
    job = recordings_job(
        kind=Job.Kind.TRANSCRIBE, recordings=Recording.objects.filter(pk=recording.pk), actor=users["admin"]
    )
    run_tasks(max_tasks=1)  # the request
    item = job.items.get()
    assert item.status == JobItem.Status.WAITING
    assert Transcript.objects.get(recording=recording).status == Transcript.Status.REQUESTED
    run_tasks(max_tasks=1)  # the first look: still processing at the provider
    assert Transcript.objects.get(recording=recording).status == Transcript.Status.PROCESSING
    assert job.items.get().status == JobItem.Status.WAITING

    sandbox.advance_clock(30)
    run_tasks()

    item.refresh_from_db()
    assert item.status == JobItem.Status.SUCCEEDED and item.attempts == 1  # polls are not attempts
    assert run_tasks.delays[1:] and all(1.5 <= d <= 2.1 for d in run_tasks.delays[1:])
    transcript = Transcript.objects.get(recording=recording)
    assert transcript.status == Transcript.Status.AVAILABLE and transcript.text and transcript.completed_at
    segment = transcript.segments[0]
    assert set(segment) == {"speaker", "start", "end", "text", "confidence"} and segment["end"] > segment["start"]
    assert Call.objects.get(pk=recording.call_id).has_transcript is True
    assert AuditEvent.objects.get(action="transcribe").details["outcome"] == "succeeded"
    sandbox.clean()


def test_polling_is_bounded(bandwidth, users, run_tasks, sandbox, monkeypatch):
    monkeypatch.setattr(actions, "TRANSCRIPTION_MAX_POLLS", 2)
    sandbox.config(transcription_delay=3600)
    recording = _untranscribed(bandwidth)
    job = recordings_job(
        kind=Job.Kind.TRANSCRIBE, recordings=Recording.objects.filter(pk=recording.pk), actor=users["admin"]
    )
    run_tasks()
    item = job.items.get()
    assert item.status == JobItem.Status.FAILED and item.message.startswith("Still processing after 2 checks")
    sandbox.clean()


def test_it_refuses_too_short_or_too_long_recordings_before_calling(bandwidth, users, run_tasks, sandbox):
    short_id = sandbox.provider("bandwidth")["short_recording"]["recording_id"]
    short = Recording.objects.get(account=bandwidth, remote_id=short_id)
    long = Recording.objects.filter(account=bandwidth).exclude(pk=short.pk).first()
    Recording.objects.filter(pk=long.pk).update(duration=4 * 3600 + 1)
    since = sandbox.last_log_id()

    job = recordings_job(
        kind=Job.Kind.TRANSCRIBE, recordings=Recording.objects.filter(pk__in=[short.pk, long.pk]), actor=users["admin"]
    )
    run_tasks()

    assert {i.status for i in job.items.all()} == {JobItem.Status.REFUSED}
    assert "0.3 s" in job.items.get(target_id=str(short.pk)).message
    assert "14401.0 s" in job.items.get(target_id=str(long.pk)).message
    assert not [e for e in sandbox.log("bandwidth", since=since) if e["method"] == "POST"]
    assert Job.objects.get(pk=job.pk).status == Job.Status.FAILED


def test_refresh_survives_a_dropped_connection(bandwidth, users, run_tasks, sandbox_clean):
    for recording in Recording.objects.filter(account=bandwidth, status="available"):
        if adapter_for(bandwidth, policy=FAST).get_recording(recording)["transcription"]["status"] == "available":
            break
    # Both tries of the first attempt are cut off mid-body; the re-enqueued attempt gets through.
    sandbox_clean.fault(
        "bandwidth", "drop_after", bytes=10, count=2, path_contains=f"{recording.remote_id}/transcription"
    )
    job = recordings_job(
        kind=Job.Kind.REFRESH_TRANSCRIPTION, recordings=Recording.objects.filter(pk=recording.pk), actor=users["admin"]
    )
    run_tasks(max_tasks=1)
    item = job.items.get()
    assert item.status == JobItem.Status.WAITING and "try again" in item.message
    run_tasks()
    item.refresh_from_db()
    assert (item.status, item.attempts) == (JobItem.Status.SUCCEEDED, 2)
    assert Transcript.objects.get(recording=recording).status == Transcript.Status.AVAILABLE


def test_refresh_without_a_provider_transcription_fails_clearly(bandwidth, users, run_tasks):
    recording = _untranscribed(bandwidth)
    job = recordings_job(
        kind=Job.Kind.REFRESH_TRANSCRIPTION, recordings=Recording.objects.filter(pk=recording.pk), actor=users["admin"]
    )
    run_tasks()
    item = job.items.get()
    assert item.status == JobItem.Status.FAILED and "request one first" in item.message


@pytest.mark.parametrize("provider", ["bandwidth", "truto", "envoy", "kaleyra", "ameyo"])
def test_test_connection_is_a_job(provider, make_account, users, run_tasks, sandbox_clean):
    account = make_account(provider)
    job = accounts_job(
        kind=Job.Kind.TEST_CONNECTION, accounts=type(account).objects.filter(pk=account.pk), actor=users["admin"]
    )
    run_tasks()
    item = job.items.get()
    assert item.status == JobItem.Status.SUCCEEDED and item.message.startswith("Connected")
    event = AuditEvent.objects.get(action="test_connection")
    assert event.details["outcome"] == "succeeded" and event.target_id == str(account.pk)


def test_test_connection_logs_in_again_after_an_expired_ameyo_session(make_account, users, run_tasks, sandbox_clean):
    account = make_account("ameyo")
    adapter = adapter_for(account, policy=FAST)
    adapter.session_id()  # a session exists...
    sandbox_clean.fault("ameyo", "expire_sessions")  # ...and expires
    since = sandbox_clean.last_log_id()
    job = accounts_job(
        kind=Job.Kind.TEST_CONNECTION, accounts=type(account).objects.filter(pk=account.pk), actor=users["admin"]
    )
    run_tasks()
    assert job.items.get().status == JobItem.Status.SUCCEEDED
    assert any(e["path"].endswith("userLogin") for e in sandbox_clean.log("ameyo", since=since))


def test_test_connection_reports_bad_credentials(make_account, users, run_tasks, sandbox_clean):
    account = make_account("bandwidth", credentials={"username": "x", "password": "wrong"})
    job = accounts_job(
        kind=Job.Kind.TEST_CONNECTION, accounts=type(account).objects.filter(pk=account.pk), actor=users["admin"]
    )
    run_tasks()
    item = job.items.get()
    assert item.status == JobItem.Status.FAILED and "refused the credentials" in item.message and item.attempts == 1


def test_sync_is_a_job_and_refused_for_report_providers(make_account, users, run_tasks, sandbox_clean):
    bandwidth, kaleyra = make_account("bandwidth"), make_account("kaleyra")
    accounts = type(bandwidth).objects.filter(pk__in=[bandwidth.pk, kaleyra.pk])
    job = accounts_job(kind=Job.Kind.SYNC, accounts=accounts, actor=users["admin"])
    run_tasks()
    job.refresh_from_db()
    assert job.status == Job.Status.PARTIAL
    assert job.items.get(target_id=str(bandwidth.pk)).message.startswith("Synced:")
    refused = job.items.get(target_id=str(kaleyra.pk))
    assert refused.status == JobItem.Status.REFUSED and "report import" in refused.message
    assert Recording.objects.filter(account=bandwidth).exists()


def test_remove_cache_is_a_job(bw_recordings, users, run_tasks):
    from recordings.media_cache import media_cache

    recording = bw_recordings[0]
    opened = media_cache().open(recording, adapter_for(recording.account, policy=FAST), None)
    try:
        b"".join(opened.chunks)
    finally:
        opened.close()
    assert media_cache().cached(recording) is not None
    job = recordings_job(
        kind=Job.Kind.REMOVE_CACHE, recordings=Recording.objects.filter(pk=recording.pk), actor=users["admin"]
    )
    run_tasks()
    item = job.items.get()
    assert item.status == JobItem.Status.SUCCEEDED
    assert media_cache().cached(recording) is None


def test_a_failed_request_is_made_again_on_retry(bandwidth, users, run_tasks, sandbox_clean):
    recording = _untranscribed(bandwidth)
    sandbox_clean.fault(
        "bandwidth", "status", status=503, retry_after=0, count=2, path_contains=f"{recording.remote_id}/transcription"
    )
    job = recordings_job(
        kind=Job.Kind.TRANSCRIBE, recordings=Recording.objects.filter(pk=recording.pk), actor=users["admin"]
    )
    run_tasks(max_tasks=1)
    assert job.items.get().status == JobItem.Status.WAITING
    run_tasks(max_tasks=2)  # the retry finds no transcription at the provider, asks again, then looks
    sandbox_clean.advance_clock(30)
    run_tasks()
    item = job.items.get()
    assert (item.status, item.attempts) == (JobItem.Status.SUCCEEDED, 2)
    posts = [e for e in sandbox_clean.log("bandwidth") if e["method"] == "POST" and recording.remote_id in e["path"]]
    assert [e["status"] for e in posts][-3:] == [503, 503, 204]
