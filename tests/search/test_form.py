"""CallSearchForm: forgiving in what it accepts, precise in what it refuses."""

from __future__ import annotations

import pytest

from recordings.search import CallSearchForm, TextCondition, text_conditions


def clean(**data):
    form = CallSearchForm(data)
    return form, form.is_valid()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("date_from", "garbage", "is not a date"),
        ("date_to", "2026-02-30", "is not a date"),
        ("min_duration", "-5", "cannot be negative"),
        ("max_duration", "soon", "Enter a duration"),
        ("max_duration", "inf", "Enter a duration"),
        ("provider", "nope", "Select a valid choice"),
        ("account", "abc", "Select a valid choice"),
        ("account", "999999", "Select a valid choice"),
        ("direction", "sideways", "Select a valid choice"),
        ("has_transcript", "maybe", "Select a valid choice"),
        ("sort", "-loudness", "Select a valid choice"),
        ("number", "call me", "Enter digits of a phone number"),
        ("number", "12", "at least 3 digits"),
        ("q", "x" * 201, "at most 200 characters"),
        ("q", "a b c d e f g h i", "at most 8 words"),
        ("cursor", "%%%", "damaged or out of date"),
    ],
)
def test_it_refuses_invalid_values_with_a_message(db, field, value, message):
    form, valid = clean(**{field: value})
    assert not valid
    assert message in " ".join(form.errors[field])


def test_it_refuses_ranges_the_wrong_way_round(db):
    form, valid = clean(date_from="2026-10-02", date_to="2026-10-01", min_duration="5:00", max_duration="1:00")
    assert not valid
    assert "before the start date" in form.errors["date_to"][0]
    assert "shorter than the minimum" in form.errors["max_duration"][0]


def test_it_accepts_what_people_type(db):
    form, valid = clean(
        q="  Refund   ", number=" +1 (555) 010-2030 ", date_from="01/10/2026", date_to="3 Oct 2026",
        min_duration="1m 30s", max_duration="1:02:03", has_transcript="TRUE", sort="",
    )  # fmt: skip
    assert valid, form.errors
    search = form.search
    assert (search.q, search.number, search.sort, search.has_transcript) == ("Refund", "15550102030", "-started", True)
    assert (search.min_duration, search.max_duration) == (90.0, 3723.0)
    # Typed dates become ISO so that the date input shows them and the pushed URL repeats them.
    assert form.querystring() == (
        "q=Refund&number=%2B1+%28555%29+010-2030&date_from=2026-10-01&date_to=2026-10-03"
        "&min_duration=1m+30s&max_duration=1%3A02%3A03&has_transcript=TRUE"
    )


def test_free_text_is_split_into_terms_and_numbers(db):
    def conditions(q):
        form, valid = clean(q=q)
        assert valid
        return text_conditions(form.search)

    assert conditions("+44 20 7946 0018") == [TextCondition("phone", "442079460018", raw="+44 20 7946 0018")]
    assert conditions('Ada "water damage" ada') == [TextCondition("term", "ada"), TextCondition("term", "water damage")]
    assert conditions("no") == [TextCondition("term", "no")]  # words only: too short for a substring
    assert conditions("--") == []
