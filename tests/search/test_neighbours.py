"""neighbours(call, params): the previous and next call within the same filtered, sorted results."""

from __future__ import annotations

from django.http import QueryDict

from recordings.search import neighbours

from .conftest import transcribe


def test_it_gives_the_calls_around_one_newest_first(make_call):
    calls = [make_call(f"c{n}", minutes=n) for n in range(5)]
    assert neighbours(calls[2], QueryDict("")) == (calls[3].pk, calls[1].pk)
    assert neighbours(calls[4], QueryDict("")) == (None, calls[3].pk)
    assert neighbours(calls[0], QueryDict("")) == (calls[1].pk, None)


def test_it_keeps_to_the_filters_and_the_sort(make_call):
    a = make_call("a", provider="envoy", minutes=0, duration=300.0)
    make_call("b", provider="truto", minutes=1, duration=200.0)
    c = make_call("c", provider="envoy", minutes=2, duration=100.0)
    d = make_call("d", provider="envoy", minutes=3, duration=None)
    assert neighbours(c, QueryDict("provider=envoy")) == (d.pk, a.pk)
    assert neighbours(c, QueryDict("provider=envoy&sort=-duration")) == (a.pk, d.pk)
    assert neighbours(d, QueryDict("provider=envoy&sort=duration")) == (a.pk, None)
    assert neighbours(a, QueryDict("provider=envoy&sort=duration&cursor=ignored-here-but-invalid")) == (None, None)


def test_it_keeps_to_free_text(make_call, plan):
    calls = [make_call(f"c{n}", minutes=n) for n in range(4)]
    for call in (calls[0], calls[1], calls[3]):
        transcribe(call, "A question about my refund.")
    assert neighbours(calls[1], QueryDict("q=refund")) == (calls[3].pk, calls[0].pk)
    assert neighbours(calls[1], QueryDict("q=nothing-like-it")) == (None, None)


def test_invalid_parameters_give_no_neighbours(make_call):
    call = make_call("x")
    assert neighbours(call, QueryDict("date_from=garbage")) == (None, None)
