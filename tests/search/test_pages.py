"""Keyset pages: stable while calls arrive, previous/next, ties, durations without a value, damaged cursors."""

from __future__ import annotations

import datetime as dt

import pytest

from recordings import search

from .conftest import BASE


def page(params: dict, *, cursor: str | None = None, size: int = search.PAGE_SIZE) -> search.SearchPage:
    form = search.CallSearchForm({**params, "cursor": cursor or ""})
    assert form.is_valid(), form.errors
    return search.search_calls(search=form.search, cursor=form.position, page_size=size)


def names(result: search.SearchPage) -> list[str]:
    return [call.remote_id for call in result.calls]


def test_page_two_neither_repeats_nor_skips_when_a_newer_call_arrives(make_call):
    for n in range(30):
        make_call(f"c{n:02d}", minutes=n)
    first = page({})
    assert names(first) == [f"c{n:02d}" for n in range(29, 4, -1)]
    assert first.previous_cursor is None and first.next_cursor
    make_call("newest", minutes=100)
    second = page({}, cursor=first.next_cursor)
    assert names(second) == ["c04", "c03", "c02", "c01", "c00"]
    assert second.next_cursor is None
    # Back from page two: the 25 calls just before it, and now a page before those with the new call.
    back = page({}, cursor=second.previous_cursor)
    assert names(back) == names(first)
    assert back.previous_cursor is not None
    assert names(page({}, cursor=back.previous_cursor)) == ["newest", *names(first)[:24]]


def test_previous_from_near_the_start_gives_a_full_first_page(make_call):
    calls = [make_call(f"c{n:02d}", minutes=n) for n in range(8)]
    second = page({}, cursor=search.Cursor.at(calls[5], "-started").encode(), size=3)
    assert names(second) == ["c04", "c03", "c02"]
    calls[7].delete()
    back = page({}, cursor=second.previous_cursor, size=3)
    assert names(back) == ["c06", "c05", "c04"]
    assert back.previous_cursor is None


@pytest.mark.parametrize("sort", ["-started", "started", "-duration", "duration"])
def test_walking_all_pages_visits_every_call_once_in_order(make_call, sort):
    durations = [30.0, None, 90.0, 30.0, None, 600.0, 90.0, 5.0, None, 30.0, 45.0]
    for n, duration in enumerate(durations):
        make_call(f"c{n:02d}", minutes=n // 2, duration=duration)  # pairs of calls start together: ties on id
    pages, cursor = [], None
    while True:
        result = page({"sort": sort}, cursor=cursor, size=3)
        pages.append(result.calls)
        if not result.next_cursor:
            break
        cursor = result.next_cursor
    seen = [call for calls in pages for call in calls]
    assert len(seen) == len(durations) == len({c.pk for c in seen})
    field = "started_at" if "started" in sort else "duration"
    valued = [c for c in seen if getattr(c, field) is not None]
    keys = [(getattr(c, field), c.pk) for c in valued]
    assert keys == sorted(keys, reverse=sort.startswith("-"))
    if field == "duration":  # calls without a duration come last, either way
        assert [c.duration for c in seen[len(valued) :]] == [None, None, None]
    # And back again from the last page: the same pages.
    cursor, back = result.previous_cursor, []
    while cursor:
        result = page({"sort": sort}, cursor=cursor, size=3)
        back.insert(0, result.calls)
        cursor = result.previous_cursor
    assert [[c.pk for c in calls] for calls in back] == [[c.pk for c in calls] for calls in pages[:-1]]


def test_counts_are_capped(make_call, monkeypatch):
    monkeypatch.setattr(search, "COUNT_CAP", 4)
    for n in range(7):
        make_call(f"call{n}", minutes=n)
    result = page({}, size=2)
    assert (result.count, result.more) == (4, True)
    few = page({"q": "call6"}, size=2)
    assert (few.count, few.more) == (1, False)


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        "not-base64!",
        "W10",  # []
        "WyItc3RhcnRlZCIsbnVsbCwxLDBd",  # ["-started", null, 1, 0]
        "WyJib2d1cyIsMSwxLDBd",  # ["bogus", 1, 1, 0]
        search.Cursor("-duration", 5.0, 3).encode(),  # another sort's cursor
    ],
)
def test_damaged_cursors_are_form_errors(db, cursor):
    form = search.CallSearchForm({"cursor": cursor})
    assert not form.is_valid()
    assert "cursor" in form.errors


def test_cursors_round_trip():
    moment = dt.datetime(2026, 10, 1, 9, 30, 0, 123456, tzinfo=dt.UTC)
    for cursor in (
        search.Cursor("-started", moment, 12),
        search.Cursor("duration", 61.5, 7, backwards=True),
        search.Cursor("-duration", None, 9),
    ):
        assert search.Cursor.decode(cursor.encode()) == cursor


def test_a_call_between_pages_with_the_same_start_is_not_skipped(make_call):
    for n in range(4):
        make_call(f"same{n}", minutes=0)
    first = page({}, size=2)
    assert len(first.calls) == 2
    second = page({}, cursor=first.next_cursor, size=2)
    assert {c.remote_id for c in first.calls + second.calls} == {f"same{n}" for n in range(4)}
    assert BASE == first.calls[0].started_at
