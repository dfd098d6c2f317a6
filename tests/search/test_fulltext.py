"""The full-text indexes of migration 0003 stay consistent with the tables; the seed command and the format filter."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from recordings.models import Call, ProviderAccount, Recording, Transcript
from recordings.templatetags.portal_format import duration

from .conftest import found, transcribe

sqlite_only = pytest.mark.skipif("connection.vendor != 'sqlite'", reason="FTS5 is SQLite's")


@sqlite_only
def test_the_triggers_exist_after_all_migrations(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'recordings_%_fts_%'")
        names = {row[0] for row in cursor.fetchall()}
    assert names == {
        f"recordings_{table}_fts_{event}"
        for table in ("call", "transcript")
        for event in ("insert", "update", "delete")
    }


@sqlite_only
def test_fts_integrity_after_writes(make_call):
    calls = [make_call(f"c{n}", agent=f"Agent {n}") for n in range(5)]
    transcripts = [transcribe(call, f"words number {n}") for n, call in enumerate(calls)]
    calls[0].agent = "Renamed"
    calls[0].save()
    Call.objects.filter(pk=calls[1].pk).update(to_number="+447700900000", campaign="Moved")
    transcripts[2].text = "changed words"
    transcripts[2].save()
    transcripts[3].delete()
    calls[4].delete()
    with connection.cursor() as cursor:
        for table in ("recordings_call_fts", "recordings_transcript_fts"):
            cursor.execute(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 1)")


def test_postgresql_search_uses_its_indexes(db):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's indexes")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE '%trgm'")
        assert {row[0] for row in cursor.fetchall()} == {"call_number_digits_trgm", "call_search_text_trgm"}
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'recordings_transcript_search'")
        assert {row[0] for row in cursor.fetchall()} == {
            "recordings_transcript_search_pkey",
            "transcript_search_document",
            "transcript_search_call",
        }


def test_seed_bench_is_realistic_searchable_and_deterministic(db):
    call_command("seed_bench", calls=60, seed=7, transcripts=0.5, verbosity=0)
    assert ProviderAccount.objects.filter(name__startswith="Bench ").count() == 5
    assert Call.objects.count() == 60
    assert Recording.objects.count() >= 60
    assert 10 < Transcript.objects.count() < 50
    assert set(Call.objects.values_list("provider", flat=True)) >= {"bandwidth", "truto", "envoy"}
    assert all(number.startswith("+") for number in Call.objects.values_list("from_number", flat=True))
    assert Call.objects.filter(has_transcript=True).count() == Transcript.objects.count()
    assert found(q="thank")  # every transcript says thank you
    sample = Call.objects.order_by("id").first()
    assert sample.remote_id in found(q=sample.remote_id[-8:])

    def content():
        return list(
            Call.objects.order_by("id").values_list(
                "provider", "direction", "from_number", "to_number", "agent", "campaign", "started_at", "duration"
            )
        )

    first = content()
    Call.objects.all().delete()
    call_command("seed_bench", calls=60, seed=7, transcripts=0.5, verbosity=0)
    assert content() == first
    call_command("seed_bench", calls=5, seed=7, verbosity=0)  # adding more: remote ids stay unique
    assert Call.objects.count() == 65


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, ""), ("", ""), (0, "0:00"), (59.4, "0:59"), (59.6, "1:00"), (65, "1:05"), (3600, "1:00:00"),
     (3725.2, "1:02:05"), (-3, "0:00"), ("abc", ""), (float("nan"), "")],
)  # fmt: skip
def test_duration_filter(seconds, shown):
    assert duration(seconds) == shown
