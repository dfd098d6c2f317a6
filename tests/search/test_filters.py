"""Each filter of /calls/, their combinations, number matching and free text, on the real database."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from recordings.models import Call, Recording

from .conftest import found, transcribe


def test_it_filters_by_provider_account_and_direction(make_call, accounts):
    from recordings.models import ProviderAccount

    second = ProviderAccount.objects.create(name="Bandwidth two", provider="bandwidth")
    make_call("bw-in")
    make_call("bw-out", direction="outbound")
    make_call("kl-in", provider="kaleyra")
    make_call("bw2-out", account=second, direction="outbound")
    assert set(found(provider="kaleyra")) == {"kl-in"}
    assert set(found(provider="bandwidth")) == {"bw-in", "bw-out", "bw2-out"}
    assert set(found(account=str(second.pk))) == {"bw2-out"}
    assert set(found(account=str(accounts["bandwidth"].pk), direction="outbound")) == {"bw-out"}
    assert set(found(direction="inbound")) == {"bw-in", "kl-in"}


@pytest.mark.parametrize(
    "typed",
    ["+1 (555) 010-2030", "15550102030", "5550102030", "555.010.2030", "2030", "0102", "+1555010203"],
)
def test_it_finds_a_number_however_it_is_typed(make_call, plan, typed):
    make_call("wanted", from_number="+15550102030")
    make_call("other", from_number="+15550109999", to_number="+18005550100")
    assert found(number=typed) == ["wanted"]


def test_it_matches_either_number_and_national_forms(make_call, plan):
    make_call("to-uk", direction="outbound", from_number="+18005550100", to_number="+442079460018")
    make_call("other", from_number="+15550109999", to_number="+18005550101")
    assert found(number="020 7946 0018") == ["to-uk"]
    assert found(number="0044 20 7946 0018") == ["to-uk"]
    assert found(number="7946") == ["to-uk"]
    assert found(number="5550100") == ["to-uk"]
    assert found(number="123456") == []


def test_it_matches_agent_and_campaign_exactly_ignoring_case(make_call):
    make_call("ada", agent="Ada Lovelace", campaign="Renewals Q3")
    make_call("alan", agent="Alan Turing", campaign="Renewals")
    assert found(agent="ada lovelace") == ["ada"]
    assert found(agent="  ADA LOVELACE ") == ["ada"]
    assert found(agent="Ada") == []
    assert found(campaign="renewals") == ["alan"]
    assert found(campaign="RENEWALS q3") == ["ada"]


def test_it_filters_dates_as_days_in_the_portal_time_zone(make_call, settings):
    settings.PORTAL_TIME_ZONE = "Europe/London"
    # 23:30 UTC on 1 October is 00:30 on 2 October in London (BST).
    make_call("late", minutes=11 * 60 + 30)
    make_call("noon")
    make_call("next-week", minutes=7 * 24 * 60)
    assert set(found(date_from="2026-10-01", date_to="2026-10-01")) == {"noon"}
    assert set(found(date_from="2026-10-02")) == {"late", "next-week"}
    assert set(found(date_to="02/10/2026")) == {"noon", "late"}
    assert set(found(date_from="1 Oct 2026", date_to="2026-10-08")) == {"noon", "late", "next-week"}


def test_it_filters_durations_inclusively_in_any_notation(make_call):
    make_call("short", duration=30.0)
    make_call("ninety", duration=90.0)
    make_call("long", duration=3700.0)
    make_call("unknown", duration=None)
    assert set(found(min_duration="90")) == {"ninety", "long"}
    assert set(found(min_duration="1:30", max_duration="1:30")) == {"ninety"}
    assert set(found(max_duration="2m")) == {"short", "ninety"}
    assert set(found(min_duration="1h")) == {"long"}
    assert set(found(min_duration="1:00:00")) == {"long"}


def test_it_filters_on_having_a_transcript(make_call):
    with_text = make_call("with")
    make_call("without")
    transcribe(with_text, "Hello there.")
    assert found(has_transcript="yes") == ["with"]
    assert found(has_transcript="true") == ["with"]
    assert found(has_transcript="no") == ["without"]
    assert set(found(has_transcript="")) == {"with", "without"}


def test_free_text_matches_agent_campaign_remote_id_and_numbers(make_call, plan):
    make_call("c-7f3a9e21", agent="Ada Lovelace", campaign="Winback Q3", from_number="+447700900123")
    make_call("c-0000beef", agent="Alan Turing", campaign="Support", from_number="+15550109999")
    assert found(q="lovelace") == ["c-7f3a9e21"]
    assert found(q="LOVE") == ["c-7f3a9e21"]
    assert found(q="winback") == ["c-7f3a9e21"]
    assert found(q="7f3a9") == ["c-7f3a9e21"]
    assert found(q="beef") == ["c-0000beef"]
    assert found(q="07700 900123") == ["c-7f3a9e21"]
    assert found(q="900123") == ["c-7f3a9e21"]
    assert found(q="nobody") == []


def test_free_text_finds_words_said_in_transcripts(make_call, plan):
    refund = make_call("refund", minutes=1)
    delivery = make_call("delivery", minutes=2)
    make_call("silent", minutes=3)
    transcribe(refund, "I was charged twice and I would like my money refunded, please.")
    transcribe(delivery, "The courier left the parcel with a neighbour. Water damage on the box.")
    assert found(q="refund") == ["refund"]  # stemmed: refunded
    assert found(q="CHARGED") == ["refund"]
    assert found(q='"water damage"') == ["delivery"]
    assert found(q='"damage water"') == []
    assert found(q="courier neighbour") == ["delivery"]
    assert found(q="courier refund") == []


def test_free_text_terms_must_all_match_somewhere(make_call, plan):
    ada = make_call("ada", agent="Ada Lovelace", minutes=1)
    alan = make_call("alan", agent="Alan Turing", minutes=2)
    transcribe(ada, "A refund for the broken kettle.")
    transcribe(alan, "A refund for the late parcel.")
    assert found(q="ada refund") == ["ada"]
    assert found(q="refund") == ["alan", "ada"]
    assert found(q="turing kettle") == []


def test_it_combines_filters(make_call, plan):
    base = {"agent": "Ada Lovelace", "campaign": "Claims", "direction": "inbound"}
    hit = make_call("hit", provider="envoy", minutes=60, duration=400.0, **base)
    make_call("wrong-provider", provider="truto", minutes=61, duration=400.0, **base)
    make_call("too-short", provider="envoy", minutes=62, duration=20.0, **base)
    make_call("wrong-day", provider="envoy", minutes=3 * 24 * 60, duration=400.0, **base)
    other = make_call("no-words", provider="envoy", minutes=63, duration=400.0, **base)
    transcribe(hit, "My claim for the flood in the basement.")
    transcribe(other, "Just checking my balance.")
    params = {
        "provider": "envoy",
        "agent": "ada lovelace",
        "min_duration": "5:00",
        "date_from": "2026-10-01",
        "date_to": "2026-10-01",
        "has_transcript": "yes",
        "direction": "inbound",
        "q": "flood",
    }
    assert found(**params) == ["hit"]
    assert found(**{**params, "q": ""}) == ["no-words", "hit"]


@pytest.mark.parametrize(
    "q", ['"', '""', "AND", "OR NOT", "NEAR(a b)", "col:umn", "a*", "^start", "(", "%", "_", "\\", "'; --", "ü"]
)
def test_free_text_treats_query_syntax_as_text(make_call, q):
    make_call("plain", agent="Percent 100% Agent_1")
    assert isinstance(found(q=q), list)


def test_percent_and_underscore_are_literal(make_call, plan):
    make_call("pct", agent="Percent 100% Agent_1")
    make_call("no-pct", agent="Percent 1000 AgentX1")
    assert found(q="100%") == ["pct"]
    assert found(q="t_1") == ["pct"]


def test_the_index_follows_updates_and_deletes(make_call, plan):
    call = make_call("moving", agent="Ada Lovelace", from_number="+15550102030")
    assert found(q="lovelace") == ["moving"]
    call.agent, call.from_number = "Grace Hopper", "+15550107777"
    call.save()
    assert found(q="lovelace") == []
    assert found(q="hopper") == ["moving"]
    assert found(number="7777") == ["moving"]
    assert found(number="2030") == []
    Call.objects.filter(pk=call.pk).update(campaign="Escalations")  # update() skips save(): the database keeps it
    assert found(q="escalat") == ["moving"]
    call.delete()
    assert found(q="hopper") == []


def test_transcript_index_follows_inserts_updates_and_deletes(make_call, plan):
    call = make_call("talk")
    transcript = transcribe(call, "")
    assert found(q="appointment") == []
    transcript.text = "I need to reschedule my appointment."
    transcript.save()
    assert found(q="appointment") == ["talk"]
    transcript.text = "Please cancel the subscription."
    transcript.save()
    assert found(q="appointment") == []
    assert found(q="subscription") == ["talk"]
    transcript.delete()
    assert found(q="subscription") == []


def test_bulk_written_calls_are_searchable(accounts):
    """Ingest writes with bulk_create/bulk_update: the search columns and indexes need no save()."""
    from recordings.providers import RemoteCall
    from recordings.services.ingest import Upserter

    account = accounts["envoy"]
    started = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    remote = RemoteCall(
        remote_id="bulk-1", direction="inbound", from_number="+15550104242", to_number="+18005550100",
        agent="Hedy Lamarr", campaign="Spread Spectrum", disposition="answered", started_at=started,
        ended_at=None, duration=42.0, raw={}, recordings=[],
    )  # fmt: skip
    with Upserter(account) as upserter:
        upserter.add(remote)
    assert found(number="4242") == ["bulk-1"]
    assert found(q="lamarr") == ["bulk-1"]
    remote.agent = "Hedy Kiesler"
    with Upserter(account) as upserter:
        upserter.add(remote)
    assert found(q="kiesler") == ["bulk-1"]
    assert found(q="lamarr") == []


def test_a_recording_moved_to_another_call_takes_its_transcript_along(make_call, plan):
    first, second = make_call("first"), make_call("second", minutes=1)
    transcript = transcribe(first, "The invoice was wrong.")
    assert found(q="invoice") == ["first"]
    Recording.objects.filter(pk=transcript.recording_id).update(call=second)  # as ingest's bulk_update may
    assert found(q="invoice") == ["second"]


def test_truncating_transcripts_empties_their_index(make_call):
    """PostgreSQL's TRUNCATE fires no row triggers (Django's flush truncates); a statement trigger covers it."""
    transcribe(make_call("gone"), "Nothing to see here.")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred checks pending: TRUNCATE may run
            cursor.execute("TRUNCATE recordings_transcript")
        else:
            cursor.execute("DELETE FROM recordings_transcript")
    assert found(q="nothing") == []
