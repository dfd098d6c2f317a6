"""A common free-text term that the other filters exclude: the probe sends it straight to the full-text index.

docs/search.md, "Plans": before walking the calls in sort order, a sample of a common condition's matches is
checked against the other filters; none passing (and many calls passing the structured filters) means the walk
would read a long way for nothing, so the fallback driven by the full-text index runs at once.
"""

from __future__ import annotations

import pytest
from django.db import connection

from recordings import search

from .conftest import found, transcribe


@pytest.fixture
def ahmeds(make_call):
    """Many Ahmeds at Bandwidth, other agents at Kaleyra (one Kaleyra call mentions Ahmed in its transcript, one
    Kaleyra agent is an Ahmed) and Ameyo (none)."""
    for n in range(12):
        make_call(f"bw-{n}", agent=f"Wei Ahmed{n % 3}", campaign="Renewals", minutes=n)
    for n in range(8):
        make_call(f"ka-{n}", provider="kaleyra", agent="Sana Patel", campaign="Claims", minutes=20 + n)
    for n in range(3):
        make_call(f"am-{n}", provider="ameyo", agent="Kai Lee", campaign="Surveys", minutes=50 + n)
    transcribe(make_call("ka-said", provider="kaleyra", agent="Tom Khan", minutes=40), "please ask for Ahmed")
    make_call("ka-inbound-ahmed", provider="kaleyra", agent="Omar Ahmed", direction="outbound", minutes=30)


@pytest.fixture
def forced(monkeypatch):
    """The walk/probe plans on a small database: every term is common, every filter large."""
    monkeypatch.setattr(search, "DRIVING_CAP", 0)
    monkeypatch.setattr(search, "LARGE_FILTER", 0)


def _plan(**params) -> search.Plan:
    form = search.CallSearchForm(params)
    assert form.is_valid(), form.errors
    return search.plan_search(form.search)


CASES = [
    ({"q": "ahmed", "provider": "kaleyra", "direction": "inbound"}, ["ka-said"]),
    ({"q": "ahmed", "provider": "kaleyra", "direction": "outbound"}, ["ka-inbound-ahmed"]),
    ({"q": "ahmed", "provider": "ameyo"}, []),
    ({"q": "ahmed claims"}, []),
    ({"q": "renewals", "provider": "kaleyra"}, []),
]


@pytest.mark.parametrize(("params", "expected"), CASES)
def test_excluded_common_term_results_are_the_same_whichever_plan_runs(ahmeds, forced, monkeypatch, params, expected):
    skipped = found(**params)
    monkeypatch.setattr(search, "walk_hopeless", lambda *args: False)
    walked = found(**params)
    assert skipped == walked == expected


def test_probe_chooses_the_index_when_no_sampled_match_passes_the_filters(ahmeds, forced):
    assert _plan(q="ahmed", provider="ameyo").walk is False
    assert _plan(q="renewals", provider="kaleyra").walk is False
    assert _plan(q="ahmed claims").walk is False  # a second common term that excludes the first


def test_probe_keeps_the_walk_when_matches_pass_or_the_filters_keep_few_calls(ahmeds, forced, monkeypatch):
    assert _plan(q="ahmed", provider="bandwidth").walk is True  # sampled matches pass: the walk stops early
    assert _plan(q="ahmed").walk is True  # nothing else to meet
    assert _plan(q="ahmed", date_from="2000-01-01").walk is True  # dates are not probed (they follow the ids)
    monkeypatch.setattr(search, "LARGE_FILTER", 1_000)
    assert _plan(q="ahmed", provider="ameyo").walk is True  # few calls to walk: the walk is short anyway


def test_a_hopeless_walk_is_never_started(ahmeds, forced, monkeypatch):
    budgets = []
    real = search.within

    def recording(seconds, work):
        budgets.append(seconds)
        return real(seconds, work)

    monkeypatch.setattr(search, "within", recording)
    assert found(q="ahmed", provider="ameyo") == []
    assert search.WALK_BUDGET not in budgets
    budgets.clear()
    assert found(q="ahmed", provider="bandwidth")  # the walk, with its budget
    assert search.WALK_BUDGET in budgets


def test_neighbours_use_the_same_plan(ahmeds, forced):
    from recordings.models import Call

    call = Call.objects.get(remote_id="ka-said")
    after = Call.objects.get(remote_id="ka-inbound-ahmed").pk  # newest first: the older one comes next
    assert search.neighbours(call, {"q": "ahmed", "provider": "kaleyra"}) == (None, after)


@pytest.mark.skipif("connection.vendor != 'sqlite'", reason="SQLite's index of the filters by id (migration 0005)")
def test_sqlite_fallback_checks_the_filters_in_the_index_keyed_by_id(ahmeds, forced):
    with connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = %s", [search.FILTERS_BY_ID])
        assert "has_transcript" in cursor.fetchone()[0]
    plan = _plan(q="ahmed", provider="ameyo", direction="inbound", has_transcript="no", min_duration="10")
    assert plan.walk is False
    sql, params = plan.fallback.order_by("-started_at", "-id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
        steps = [row[3] for row in cursor.fetchall()]
    assert f"SEARCH recordings_call USING COVERING INDEX {search.FILTERS_BY_ID} (id=?)" in steps, steps
