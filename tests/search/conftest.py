"""Calls to search for: one account per provider, a call factory, transcripts, and the plans of recordings/search.py."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from recordings import search
from recordings.models import Call, ProviderAccount, Recording, Transcript
from recordings.providers import PROVIDER_CHOICES

BASE = dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def accounts(db) -> dict[str, ProviderAccount]:
    return {
        provider: ProviderAccount.objects.create(name=f"Search {label}", provider=provider)
        for provider, label in PROVIDER_CHOICES
    }


@pytest.fixture
def make_call(accounts):
    """make_call(remote_id, provider="bandwidth", minutes=0, **fields): a call `minutes` after BASE."""
    counter = itertools.count(1)

    def make(remote_id: str | None = None, *, provider: str = "bandwidth", minutes: float = 0, **fields) -> Call:
        n = next(counter)
        account = fields.pop("account", None) or accounts[provider]
        values = {
            "direction": "inbound",
            "from_number": f"+1555000{n:04d}",
            "to_number": "+18005550100",
            "agent": "Grace Hopper",
            "campaign": "Support",
            "started_at": BASE + dt.timedelta(minutes=minutes),
            "duration": 60.0,
            **fields,
        }
        return Call.objects.create(
            account=account, provider=account.provider, remote_id=remote_id or f"call-{n:04d}", **values
        )

    return make


def transcribe(call: Call, text: str) -> Transcript:
    """A recording of the call with a transcript, as the transcription issue will write them."""
    recording = Recording.objects.create(call=call, account=call.account, remote_id=f"rec-{call.remote_id}")
    call.has_transcript = True
    call.save(update_fields=["has_transcript"])
    return Transcript.objects.create(recording=recording, status="available", text=text)


def found(**params) -> list[str]:
    """Remote ids of the first page of results of the search in `params`, in order."""
    form = search.CallSearchForm(params)
    assert form.is_valid(), form.errors
    return [call.remote_id for call in search.search_calls(search=form.search).calls]


def _interrupt(seconds, work):
    return False, None


@pytest.fixture(params=["listed", "row-check", "transcript-probe", "fallback"])
def plan(request, monkeypatch):
    """Each way recordings/search.py can run a free-text condition, forced on a small database.

    listed: the matches are few, their ids drive the query. row-check: many call-side matches are tested on the
    rows and many transcript matches against their set. transcript-probe: very many transcript matches are tested
    through the full-text index, row by row. fallback: the walk ran out of time; the full-text index drives.
    """
    if request.param != "listed":
        monkeypatch.setattr(search, "DRIVING_CAP", 0)
    if request.param == "transcript-probe":
        monkeypatch.setattr(search, "SET_CAP", 0)
    if request.param == "fallback":
        monkeypatch.setattr(search, "within", _interrupt)
    return request.param
