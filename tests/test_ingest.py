"""Batched upserts: a re-run writes nothing; changes are applied; local deletions stick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from recordings.models import Call, Recording
from recordings.providers import RemoteCall, RemoteRecording
from recordings.services.ingest import Upserter


def remote_calls(n: int, *, status: str = "available") -> list[RemoteCall]:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    return [
        RemoteCall(
            remote_id=f"c-{i}",
            started_at=start + timedelta(minutes=i),
            direction="inbound",
            from_number=f"+1555000{i:04d}",
            duration=60.0 + i,
            raw={"i": i},
            recordings=[RemoteRecording(remote_id=f"r-{i}", status=status, duration=60.0 + i, format="wav")],
        )
        for i in range(n)
    ]


def ingest(account, calls) -> Upserter:
    with Upserter(account) as upserter:
        for call in calls:
            upserter.add(call)
    return upserter


def test_second_run_adds_and_changes_nothing(account):
    first = ingest(account, remote_calls(2500)).counts
    assert (first.calls_created, first.recordings_created) == (2500, 2500)
    before = list(Recording.objects.order_by("pk").values_list("pk", "updated_at"))

    second = ingest(account, remote_calls(2500)).counts
    assert (second.calls_created, second.calls_updated, second.recordings_created, second.recordings_updated) == (
        0,
        0,
        0,
        0,
    )
    assert list(Recording.objects.order_by("pk").values_list("pk", "updated_at")) == before
    assert Call.objects.count() == 2500


def test_changed_status_is_updated(account):
    ingest(account, remote_calls(3, status="processing"))
    counts = ingest(account, remote_calls(3, status="available")).counts
    assert counts.recordings_updated == 3
    assert set(Recording.objects.values_list("status", flat=True)) == {"available"}


def test_several_recordings_of_one_call_are_merged(account):
    calls = remote_calls(1)
    again = remote_calls(1)
    again[0].recordings = [RemoteRecording(remote_id="r-extra")]
    ingest(account, calls + again)
    assert Call.objects.count() == 1
    assert set(Recording.objects.values_list("remote_id", flat=True)) == {"r-0", "r-extra"}


def test_a_listing_never_undoes_a_local_deletion(account):
    ingest(account, remote_calls(1))
    Recording.objects.update(status=Recording.Status.DELETED)
    ingest(account, remote_calls(1))
    assert Recording.objects.get().status == Recording.Status.DELETED
