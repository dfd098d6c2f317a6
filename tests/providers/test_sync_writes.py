"""Sync's writes over real sockets: a second run writes nothing, a failed sync keeps what came, windows fit the cap."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from werkzeug import Response

from recordings import search
from recordings.models import AuditEvent, Call, ProviderAccount, Recording, Transcript
from recordings.providers.bandwidth import TARGET
from recordings.services.sync import SyncFailed, account_sync
from sandbox.pytest_plugin import start_sandbox

ROW_WRITE = re.compile(r'^(\d+ times: )?\s*(INSERT INTO|UPDATE|DELETE FROM)\s+"?recordings_(call|recording)\b', re.I)


@pytest.fixture(scope="module")
def larger_sandbox():
    """1500 calls per provider: Bandwidth's mostly on one day (over its 1000 cap), Envoy's on 15 pages."""
    handle = start_sandbox(calls=1500)
    yield handle
    handle.stop()


def account_on(sandbox, provider: str) -> ProviderAccount:
    entry = sandbox.provider(provider)
    return ProviderAccount.objects.create(
        name=f"Larger {provider}", provider=provider, base_url=entry["base_url"], credentials=entry["credentials"],
        options=entry["options"],
    )  # fmt: skip


def found(**params) -> list[str]:
    form = search.CallSearchForm(params)
    assert form.is_valid(), form.errors
    return [call.remote_id for call in search.search_calls(search=form.search).calls]


@pytest.mark.parametrize("provider", ["bandwidth", "truto", "envoy"])
def test_a_second_sync_writes_no_call_and_no_recording(provider, db, larger_sandbox):
    account = account_on(larger_sandbox, provider)
    first = account_sync(account=account, full=True)
    assert first.recordings_created == larger_sandbox.provider(provider)["seeded"]["recordings"]
    with CaptureQueriesContext(connection) as queries:
        again = account_sync(account=account, full=True)
    assert [q["sql"][:80] for q in queries.captured_queries if ROW_WRITE.match(q["sql"])] == []
    assert (again.calls_created, again.calls_updated, again.recordings_created, again.recordings_updated) == (0,) * 4
    assert again.seen_recordings == first.seen_recordings


def test_bandwidth_windows_fit_under_the_cap_and_few_answers_are_thrown_away(db, larger_sandbox):
    account = account_on(larger_sandbox, "bandwidth")
    since = larger_sandbox.last_log_id()
    counts = account_sync(account=account)
    seeded = larger_sandbox.provider("bandwidth")["seeded"]["recordings"]
    assert counts.recordings_created == seeded > 1000
    lists = [e for e in larger_sandbox.log("bandwidth", since=since) if e["path"].split("?")[0].endswith("/recordings")]
    # Halving blindly took 21 requests here (10 full answers thrown away); windows sized from the answers take 3.
    assert len(lists) <= seeded // TARGET + 3


def test_synced_calls_are_found_by_number_and_by_their_transcript(db, larger_sandbox):
    account = account_on(larger_sandbox, "envoy")
    account_sync(account=account)
    recording = Recording.objects.filter(account=account).select_related("call").order_by("remote_id")[7]
    call = recording.call
    assert call.remote_id in found(number=call.from_number[-7:], account=str(account.pk))
    Transcript.objects.create(recording=recording, status="available", text="Please cancel the zeppelin order.")
    Call.objects.filter(pk=call.pk).update(has_transcript=True)
    assert found(q="zeppelin") == [call.remote_id]


def test_a_sync_that_fails_midway_keeps_what_arrived_and_says_so(db, httpserver):
    """Envoy (on pytest-httpserver) answers three pages of calls, then refuses the token."""
    start = timezone.now() - timedelta(days=2)

    def calls_page(request) -> Response:
        page = int(request.args["page"])
        if page == 4:
            return Response(json.dumps({"detail": "Invalid token."}), status=401, content_type="application/json")
        data = [
            {
                "id": f"call_{page}_{i}", "status": "COMPLETED", "call_direction": "INBOUND",
                "from_number": f"+1555010{page}{i:03d}", "to_number": "+16465550187",
                "call_start_time": (start + timedelta(minutes=100 * page + i)).isoformat(),
                "call_end_time": (start + timedelta(minutes=100 * page + i, seconds=40)).isoformat(),
                "recording_status": "AVAILABLE",
            }
            for i in range(100)
        ]  # fmt: skip
        body = {"data": data, "pagination": {"page": page, "page_size": 100, "has_next": True}}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/api/v1/calls").respond_with_handler(calls_page)
    account = ProviderAccount.objects.create(
        name="Envoy", provider="envoy", base_url=httpserver.url_for("/api/v1"), credentials={"token": "t"}
    )
    with pytest.raises(SyncFailed, match="refused the credentials"):
        account_sync(account=account)
    assert Call.objects.filter(account=account).count() == Recording.objects.filter(account=account).count() == 300
    account.refresh_from_db()
    assert (account.last_sync_status, account.sync_watermark) == ("error", None)
    assert account.last_sync_counts["recordings_created"] == 300
    event = AuditEvent.objects.get(action=AuditEvent.Action.SYNC)
    assert (event.details["outcome"], event.details["calls_created"]) == ("failed", 300)
