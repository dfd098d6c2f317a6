"""Property-based tests (hypothesis): no Range header and no search parameters make the portal answer 500."""

from __future__ import annotations

import base64
import json
import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django import forms
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from recordings.search import FILTERS, SORTS, CallSearchForm, Cursor, DurationField
from recordings.streaming import ByteRange, Unsatisfiable, parse_range, window

PURE = settings(max_examples=200, deadline=None)
VIEWS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# -- the Range parser ------------------------------------------------------------------------------------------------

digits = st.text(alphabet=string.digits, max_size=25)
range_like = st.builds(
    lambda unit, first, last, spaces, more: f"{unit}={spaces}{first}-{last}{more}",
    st.sampled_from(["bytes", "Bytes", "items", "bytes ", ""]),
    digits,
    digits,
    st.sampled_from(["", " ", "  "]),
    st.sampled_from(["", ",0-1", ", 5-", ",-3", "-", " x"]),
)
any_header = st.one_of(st.none(), st.text(max_size=80), range_like, st.text(alphabet=string.digits, min_size=4300))
sizes = st.integers(min_value=0, max_value=10**13)


@PURE
@given(any_header, sizes)
@example("bytes=" + "9" * 5000 + "-", 10)  # longer than int() parses by default
@example("bytes=0-0", 0)
@example("bytes=-0", 5)
def test_parse_range_never_raises_and_resolves_within_the_file(header, total):
    parsed = parse_range(header)
    if parsed is None:
        return
    assert isinstance(parsed, ByteRange)
    assert parsed.start is None or parsed.start >= 0
    assert parsed.end is None or parsed.end >= 0
    assert parsed.start is not None or parsed.end is not None
    try:
        first, last = parsed.resolve(total)
    except Unsatisfiable as exc:
        assert exc.total == total
        return
    assert 0 <= first <= last < total


@PURE
@given(st.integers(0, 10**15), st.integers(0, 10**15))
def test_parse_range_reads_what_it_is_given(first, last):
    parsed = parse_range(f"bytes={first}-{last}")
    assert parsed == (ByteRange(first, last) if first <= last else None)
    assert parse_range(f"bytes={first}-") == ByteRange(first, None)
    assert parse_range(f"bytes=-{last}") == ByteRange(None, last)


@PURE
@given(
    st.binary(max_size=600),
    st.lists(st.integers(1, 97), min_size=1, max_size=20),
    st.tuples(st.none(), st.integers(0, 800)) | st.tuples(st.integers(0, 800), st.none() | st.integers(0, 800)),
)
def test_a_resolved_range_serves_exactly_those_bytes(body, cuts, bounds):
    """The bytes the proxy sends for a range are the body's bytes at that range, however upstream chunks them."""
    start, end = bounds
    if start is not None and end is not None and end < start:
        return
    chunks, position = [], 0
    for cut in cuts * (len(body) // sum(cuts) + 1):
        chunks.append(body[position : position + cut])
        position += cut
    try:
        first, last = ByteRange(start, end).resolve(len(body))
    except Unsatisfiable:
        assert len(body) == 0 or (start is not None and start >= len(body)) or (start is None and not end)
        return
    sent = b"".join(window(iter(chunks), skip=first, limit=last - first + 1))
    assert sent == body[first : last + 1]


# -- the search parameters, pure -----------------------------------------------------------------------------------


# "-12.5:07:99" and the like (built from parts: hypothesis' regex strategy is not needed).
number_text = st.text(alphabet=string.digits, min_size=1, max_size=30)
clock_like = st.builds(
    lambda sign, whole, fraction, parts: sign + whole + fraction + "".join(":" + part for part in parts),
    st.sampled_from(["", "-"]),
    number_text,
    st.sampled_from(["", "."]) | number_text.map(lambda digits: "." + digits),
    st.lists(number_text, max_size=3),
)


@PURE
@given(st.text(max_size=200) | st.text(alphabet=string.ascii_letters + string.digits + "_-", max_size=120))
def test_cursor_decode_accepts_only_what_it_wrote(text):
    try:
        cursor = Cursor.decode(text)
    except ValueError:
        return
    assert cursor.sort in SORTS
    assert Cursor.decode(cursor.encode()) == cursor


@PURE
@given(st.text(max_size=40) | clock_like)
def test_a_duration_is_a_number_of_seconds_or_a_form_error(text):
    try:
        seconds = DurationField(required=False).clean(text)
    except forms.ValidationError:
        return
    assert seconds is None or 0 <= seconds <= 30 * 86400


# -- the search view: random query strings through the Django test client ------------------------------------------


def crafted_cursor(sort, value, pk, backwards) -> str:
    raw = json.dumps([sort, value, pk, backwards]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


far_zones = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
odd_datetimes = st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=far_zones).map(datetime.isoformat)
cursor_values = st.one_of(
    st.text(max_size=30),
    st.builds(
        crafted_cursor,
        st.sampled_from([*SORTS, "bogus"]),
        st.one_of(st.none(), odd_datetimes, st.floats(allow_nan=False), st.integers(-(10**30), 10**30)),
        st.integers(-(10**30), 10**30),
        st.sampled_from([0, 1, 2]),
    ),
)
text_values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
day_values = st.one_of(
    st.dates(min_value=datetime(1, 1, 1).date()).map(str),
    st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
    st.sampled_from(["9999-12-31", "0001-01-01", "2026-02-30", "31.12.9999", "1 Jan 0001", "yesterday"]),
)
number_values = st.one_of(st.integers(-(10**40), 10**40).map(str), st.floats().map(str))
values = st.one_of(text_values, day_values, number_values, cursor_values)
query_dicts = st.dictionaries(
    st.sampled_from([*FILTERS, "sort", "cursor", "page", "p", "x"]), values | st.lists(values, max_size=3), max_size=8
)


@pytest.fixture
def search_world(clients, call, recording):
    from recordings.models import Transcript

    Transcript.objects.create(recording=recording, status="available", text="card number read aloud")
    return clients


@VIEWS
@given(query=query_dicts, htmx=st.booleans())
@example(query={"date_to": "9999-12-31"}, htmx=False)
@example(query={"date_from": "0001-01-01"}, htmx=False)
@example(query={"cursor": crafted_cursor("-started", "0001-01-01T00:00:00+14:00", 1, 0)}, htmx=False)
@example(query={"cursor": crafted_cursor("duration", 1.0, 10**30, 0)}, htmx=True)
@example(query={"account": str(10**30)}, htmx=False)
def test_the_search_never_answers_500(search_world, query, htmx):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    response = search_world["supervisor"].get("/calls/", query, **headers)
    assert response.status_code in (200, 400), response.status_code


@VIEWS
@given(query=query_dicts)
def test_the_call_page_and_the_csv_never_answer_500(search_world, call, query):
    response = search_world["supervisor"].get(f"/calls/{call.pk}/", query)
    assert response.status_code in (200, 400)
    response = search_world["exporter"].get("/calls/export.csv", query)
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert b"".join(response.streaming_content).startswith("\ufeffcall_id".encode())


@VIEWS
@given(query=query_dicts)
def test_the_form_is_valid_or_says_why(search_world, query):
    from django.http import QueryDict
    from django.utils.http import urlencode

    form = CallSearchForm(QueryDict(urlencode(query, doseq=True)))
    if form.is_valid():
        assert form.search.sort in SORTS
    else:
        assert all(messages for messages in form.errors.values())
