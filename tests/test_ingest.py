"""Batched upserts: a re-run writes nothing; changes are applied; local deletions stick."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext

from recordings.models import Call, Recording, Transcript
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


# --- The plain-SQL write path: what a run writes, and that new rows are whole and searchable ---

WRITE = re.compile(r"^(\d+ times: )?\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def writes(queries: CaptureQueriesContext) -> list[str]:
    """The statements of a captured run that wrote rows (executemany is logged as `N times: SQL`)."""
    return [q["sql"] for q in queries.captured_queries if WRITE.match(q["sql"])]


def reads(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]


def test_it_writes_nothing_on_a_second_run_and_reads_each_table_once_per_batch(account):
    ingest(account, remote_calls(2500))
    with CaptureQueriesContext(connection) as queries:
        counts = ingest(account, remote_calls(2500)).counts
    assert writes(queries) == []
    assert len(reads(queries)) == 2 * 3  # calls and recordings, for each of the batches of 1000, 1000 and 500
    assert counts.unchanged == 5000


def test_it_updates_only_the_row_whose_status_changed(account):
    ingest(account, remote_calls(3, status="processing"))
    before = dict(Recording.objects.values_list("remote_id", "updated_at"))
    calls_before = list(Call.objects.order_by("pk").values_list("pk", "updated_at"))
    listed = remote_calls(3, status="processing")
    listed[1].recordings[0].status = "available"
    with CaptureQueriesContext(connection) as queries:
        counts = ingest(account, listed).counts
    assert (counts.recordings_updated, counts.calls_updated, counts.unchanged) == (1, 0, 5)
    (update,) = writes(queries)
    assert "recordings_recording" in update
    after = dict(Recording.objects.values_list("remote_id", "updated_at"))
    assert after["r-1"] > before["r-1"]
    assert (after["r-0"], after["r-2"]) == (before["r-0"], before["r-2"])
    assert Recording.objects.get(remote_id="r-1").status == "available"
    assert list(Call.objects.order_by("pk").values_list("pk", "updated_at")) == calls_before


def test_new_rows_have_every_column_their_defaults_and_their_search_columns(account):
    remote = RemoteCall(
        remote_id="Call-AB", started_at=datetime(2026, 10, 1, 9, 30, 15, 123456, tzinfo=UTC),
        ended_at=datetime(2026, 10, 1, 9, 31, tzinfo=UTC), direction="outbound", from_number="+1 (555) 010-4242",
        to_number="+18005550100", agent="Hedy Lamarr", campaign="Spread Spectrum", disposition="answered",
        raw={"nested": {"ü": [1, 2.5, None]}},
        recordings=[RemoteRecording(remote_id="rec-1", status="processing", content_type="audio/mpeg", format="mp3",
                                    duration=44.877, size_bytes=2**40, channels=2, locator={"call_id": "Call-AB"},
                                    raw={"k": "v"})],
    )  # fmt: skip
    ingest(account, [remote])
    call = Call.objects.get()
    assert (call.provider, call.remote_id, call.direction, call.agent, call.disposition) == (
        "bandwidth", "Call-AB", "outbound", "Hedy Lamarr", "answered",
    )  # fmt: skip
    assert call.started_at == remote.started_at and call.ended_at == remote.ended_at
    assert call.duration == 44.876544  # none of its own: the span, ended - started
    assert call.raw == {"nested": {"ü": [1, 2.5, None]}}
    assert call.has_transcript is False and call.created_at is not None and call.created_at == call.updated_at
    assert call.number_digits == "15550104242 18005550100"
    assert call.search_text == "hedy lamarr spread spectrum call-ab"
    recording = Recording.objects.get()
    assert recording.call_id == call.pk and recording.account_id == account.pk
    assert (recording.status, recording.content_type, recording.format, recording.size_bytes, recording.channels) == (
        "processing", "audio/mpeg", "mp3", 2**40, 2,
    )  # fmt: skip
    assert recording.locator == {"call_id": "Call-AB"} and recording.raw == {"k": "v"}
    assert recording.gone_upstream_at is None and recording.delete_requested_kind == "" and recording.deleted_by is None


def test_synced_calls_are_found_by_number_name_and_transcript(account):
    from recordings import search

    def found(**params) -> list[str]:
        form = search.CallSearchForm(params)
        assert form.is_valid(), form.errors
        return [c.remote_id for c in search.search_calls(search=form.search).calls]

    calls = remote_calls(30)
    calls[7].agent = "Grace Hopper"
    ingest(account, calls)
    assert found(number="5550000007") == ["c-7"]
    assert found(q="hopper") == ["c-7"]
    recording = Recording.objects.get(remote_id="r-12")
    Transcript.objects.create(recording=recording, status="available", text="The invoice was wrong.")
    Call.objects.filter(pk=recording.call_id).update(has_transcript=True)
    assert found(q="invoice") == ["c-12"]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            for table in ("recordings_call_fts", "recordings_transcript_fts"):
                cursor.execute(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 1)")
    ingest(account, calls)  # a second run leaves the indexes as they are
    assert found(number="5550000007") == ["c-7"] and found(q="invoice") == ["c-12"]


def test_values_compare_by_meaning_not_by_spelling(account):
    calls = remote_calls(2)
    calls[0].duration = 0.1 + 0.2  # 0.30000000000000004: 17 digits
    calls[0].recordings[0].duration = 1 / 3
    calls[1].raw = {"b": 1, "a": [1.5, "é", {"x": None}], "big": 2**62}
    ingest(account, calls)
    again = remote_calls(2)
    again[0].duration = 0.1 + 0.2
    again[0].recordings[0].duration = 1 / 3
    again[1].raw = {"a": [1.5, "é", {"x": None}], "big": 2**62, "b": 1}  # the same payload, keys in another order
    assert ingest(account, again).counts.unchanged == 4
    again[1].raw = {"a": [1.5, "é", {"x": 0}], "big": 2**62, "b": 1}
    counts = ingest(account, again).counts
    assert (counts.calls_updated, counts.unchanged) == (1, 3)
    assert Call.objects.get(remote_id="c-1").raw["a"][2] == {"x": 0}
    assert Call.objects.get(remote_id="c-0").duration == 0.1 + 0.2


def test_a_call_given_in_parts_across_batches_is_stored_as_if_whole(account):
    start = datetime(2026, 10, 1, tzinfo=UTC)

    def part(rec_id: str, minutes: int, seconds: float) -> RemoteCall:
        began = start + timedelta(minutes=minutes)
        return RemoteCall(
            remote_id="split", started_at=start, ended_at=began + timedelta(seconds=seconds), duration=seconds,
            recordings=[RemoteRecording(remote_id=rec_id, started_at=began, duration=seconds)],
        )  # fmt: skip

    upserter = Upserter(account)
    upserter.add(part("r-a", 0, 30.0))
    upserter.flush()  # the second part lands in another batch
    upserter.add(part("r-b", 5, 20.0))
    upserter.flush()
    call = Call.objects.get()
    assert call.ended_at == start + timedelta(minutes=5, seconds=20)
    assert call.duration == 320.0
    assert set(call.recordings.values_list("remote_id", flat=True)) == {"r-a", "r-b"}
    again = ingest(account, [part("r-a", 0, 30.0), part("r-b", 5, 20.0)]).counts
    assert (again.calls_updated, again.recordings_updated) == (0, 0)


def test_a_recording_listed_under_another_call_moves_and_a_reappearing_one_is_no_longer_gone(account):
    ingest(account, remote_calls(2))
    Recording.objects.filter(remote_id="r-0").update(gone_upstream_at=datetime(2026, 11, 1, tzinfo=UTC))
    calls = remote_calls(2)
    calls[1].recordings.append(calls[0].recordings.pop())
    counts = ingest(account, calls).counts
    assert counts.recordings_updated == 1
    moved = Recording.objects.get(remote_id="r-0")
    assert moved.call.remote_id == "c-1"
    assert moved.gone_upstream_at is None


def test_payloads_that_are_not_objects_compare_too(account):
    calls = remote_calls(2)
    calls[0].raw = "a payload that is a JSON string"
    calls[1].raw = ["a", 1, 2.5]
    calls[1].recordings[0].locator = {"url": "https://example.com/r.mp3?x=1&y=é"}
    ingest(account, calls)
    again = ingest(account, calls).counts
    assert (again.calls_updated, again.recordings_updated, again.unchanged) == (0, 0, 4)
    assert Call.objects.get(remote_id="c-0").raw == "a payload that is a JSON string"
