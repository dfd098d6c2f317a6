"""One contract suite, run against all five adapters over real sockets against the sandbox."""

from __future__ import annotations

import io
import time

import pytest
import requests

from recordings.models import Call, ProviderAccount, Recording
from recordings.providers import REGISTRY
from recordings.providers.errors import AuthenticationFailed, Misconfigured
from recordings.services.imports import report_import
from recordings.services.sync import account_sync
from tests.helpers import PROVIDERS

AUDIO_MAGIC = (b"RIFF", b"ID3")


def bring_in(account: ProviderAccount, sandbox) -> None:
    """Sync, or import the report the sandbox provides."""
    if account.adapter_class.can_sync:
        account_sync(account=account)
    else:
        report = requests.get(sandbox.provider(account.provider)["report_url"], timeout=30).content
        result = report_import(account=account, stream=io.BytesIO(report))
        assert result.error_count == 0, result.errors


def is_audio(head: bytes) -> bool:
    mpeg_frame = head[0] == 0xFF and head[1] & 0xE0 == 0xE0  # MPEG audio frame sync: 11 bits set
    return head.startswith(AUDIO_MAGIC) or head[4:8] == b"ftyp" or mpeg_frame


@pytest.fixture(params=PROVIDERS)
def provider(request) -> str:
    return request.param


def test_every_provider_declares_its_capabilities():
    for cls in REGISTRY.values():
        caps = cls.capabilities()
        assert caps["sync"] != caps["import_report"], cls.name  # calls enter exactly one way
        assert cls.credential_fields, cls.name


def test_connection_succeeds(provider, make_account, fast_adapter, sandbox_clean):
    message = fast_adapter(make_account(provider)).test_connection()
    assert REGISTRY[provider].label in message


def test_wrong_credentials_are_a_permanent_authentication_error(provider, make_account, fast_adapter, sandbox_clean):
    entry = sandbox_clean.provider(provider)
    wrong = {key: "wrong-" + value for key, value in entry["credentials"].items()}
    adapter = fast_adapter(make_account(provider, credentials=wrong))
    with pytest.raises(AuthenticationFailed) as excinfo:
        adapter.test_connection()
    assert excinfo.value.permanent
    for value in wrong.values():
        assert value not in str(excinfo.value)


def test_missing_credentials_are_misconfigured(provider, make_account, fast_adapter, sandbox_clean):
    with pytest.raises(Misconfigured):
        fast_adapter(make_account(provider, credentials={})).test_connection()


def test_calls_come_in_and_a_second_run_changes_nothing(provider, make_account, sandbox_clean):
    account = make_account(provider)
    bring_in(account, sandbox_clean)
    seeded = sandbox_clean.provider(provider)["seeded"]
    assert Recording.objects.filter(account=account).count() == seeded["recordings"]
    assert Call.objects.filter(account=account).count() == seeded["calls"]
    snapshot = list(Recording.objects.filter(account=account).order_by("pk").values_list("pk", "updated_at", "status"))
    calls = list(Call.objects.filter(account=account).order_by("pk").values_list("pk", "updated_at"))

    account.refresh_from_db()
    if account.adapter_class.can_sync:
        account_sync(account=account, full=True)  # the whole window again, not only since the watermark
    else:
        bring_in(account, sandbox_clean)
    assert (
        list(Recording.objects.filter(account=account).order_by("pk").values_list("pk", "updated_at", "status"))
        == snapshot
    )
    assert list(Call.objects.filter(account=account).order_by("pk").values_list("pk", "updated_at")) == calls


def test_media_opens_whole_and_by_range(provider, make_account, fast_adapter, sandbox_clean):
    account = make_account(provider)
    bring_in(account, sandbox_clean)
    recording = (
        Recording.objects.filter(account=account, status="available", duration__gt=20).order_by("duration").first()
    )
    adapter = fast_adapter(account)
    whole = adapter.open_media(recording)
    try:
        body = b"".join(whole.chunks)
    finally:
        whole.close()
    assert whole.status == 200
    assert whole.content_type.startswith(("audio/", "video/mp4"))
    assert len(body) == whole.content_length
    assert is_audio(body[:12])

    ranged = adapter.open_media(recording, byte_range=(1000, 4999))
    try:
        part = b"".join(ranged.chunks)
    finally:
        ranged.close()
    if adapter.supports_range:
        assert ranged.status == 206
        assert ranged.content_range == (1000, 4999, len(body))
        assert part == body[1000:5000]
    else:
        # Truto's stream and Ameyo's downloadVoiceLog send the whole file: the media cache gives seeking.
        assert ranged.status == 200
        assert part == body


def test_follow_up_links_are_fresh_for_every_open(make_account, fast_adapter, sandbox_clean):
    for provider in ("envoy", "kaleyra"):
        account = make_account(provider)
        bring_in(account, sandbox_clean)
        recording = Recording.objects.filter(account=account, status="available").first()
        since = sandbox_clean.last_log_id()
        for _ in range(2):
            fast_adapter(account).open_media(recording, byte_range=(0, 1)).close()
        link_requests = [
            e for e in sandbox_clean.log(provider, since=since)
            if e["path"].endswith("/recording") or e["path"].endswith("/voice/recordings")
        ]  # fmt: skip
        assert len(link_requests) == 2, provider


@pytest.mark.parametrize("provider", ["envoy", "kaleyra"])
def test_a_link_that_expires_before_it_is_fetched_is_asked_for_again(provider, make_account, fast_adapter,
                                                                     sandbox_clean):  # fmt: skip
    account = make_account(provider)
    bring_in(account, sandbox_clean)
    recording = Recording.objects.filter(account=account, status="available").order_by("-started_at").first()
    expected = fast_adapter(account).open_media(recording)
    body = b"".join(expected.chunks)
    expected.close()
    since = sandbox_clean.last_log_id()
    sandbox_clean.fault(provider, "expire_links", count=1)  # the next link fetched is refused as expired
    stream = fast_adapter(account).open_media(recording)
    assert b"".join(stream.chunks) == body
    stream.close()
    refused = [e for e in sandbox_clean.log(provider, since=since) if e["status"] == 403]
    assert len(refused) == 1, sandbox_clean.log(provider, since=since)
    # A link refused for good (every fetch) is still reported, after one fresh try.
    sandbox_clean.fault(provider, "expire_links", count=5)
    with pytest.raises(AuthenticationFailed):
        fast_adapter(account).open_media(recording)


def test_sync_waits_as_told_by_429_then_succeeds(make_account, fast_adapter, sandbox_clean):
    account = make_account("bandwidth")
    sandbox_clean.fault("bandwidth", "status", status=429, count=1, retry_after=1)
    started = time.monotonic()
    fast_adapter(account).test_connection()
    assert time.monotonic() - started >= 0.95


def test_a_429_asking_for_too_long_is_reported_not_waited(make_account, fast_adapter, sandbox_clean):
    from recordings.providers.errors import RateLimited

    sandbox_clean.fault("truto", "status", status=429, count=1, retry_after=120)
    started = time.monotonic()
    with pytest.raises(RateLimited) as excinfo:
        fast_adapter(make_account("truto")).test_connection()
    assert excinfo.value.retry_after == 120
    assert not excinfo.value.permanent
    assert time.monotonic() - started < 5


def test_500_is_retried_then_succeeds(make_account, fast_adapter, sandbox_clean):
    sandbox_clean.fault("envoy", "status", status=500, count=2)
    assert "Envoy" in fast_adapter(make_account("envoy")).test_connection()


def test_500_is_retried_then_reported(make_account, fast_adapter, sandbox_clean):
    from recordings.providers.errors import UpstreamError

    since = sandbox_clean.last_log_id()
    sandbox_clean.fault("envoy", "status", status=503, count=10)
    with pytest.raises(UpstreamError) as excinfo:
        fast_adapter(make_account("envoy")).test_connection()
    assert not excinfo.value.permanent
    assert len(sandbox_clean.log("envoy", since=since)) == 3  # FAST policy: three attempts


def test_401_is_permanent_not_retried_and_shown_on_the_account(make_account, sandbox_clean, clients):
    from django.urls import reverse

    account = make_account("bandwidth", credentials={"username": "nobody", "password": "wrong"})
    since = sandbox_clean.last_log_id()
    with pytest.raises(Exception, match="refused the credentials"):
        account_sync(account=account)
    assert len(sandbox_clean.log("bandwidth", since=since)) == 1
    account.refresh_from_db()
    assert account.last_sync_status == "error"
    assert "Bandwidth refused the credentials" in account.last_sync_error
    page = clients["admin"].get(reverse("admin:recordings_provideraccount_changelist")).content.decode()
    assert "Failed: Bandwidth refused the credentials" in page
    assert "wrong" not in account.last_sync_error


def test_timeout_is_reported(make_account, fast_adapter, sandbox_clean, settings):
    from recordings.providers.errors import UpstreamTimeout

    settings.PROVIDER_READ_TIMEOUT = 0.3
    sandbox_clean.fault("truto", "latency", ms=1500)
    with pytest.raises(UpstreamTimeout, match="did not answer"):
        fast_adapter(make_account("truto")).test_connection()


def test_dropped_connection_mid_listing_is_retried(make_account, fast_adapter, sandbox_clean):
    account = make_account("truto")
    sandbox_clean.fault("truto", "drop_after", bytes=50, count=1, path_contains="/calls")
    account_sync(account=account)
    assert Call.objects.filter(account=account).count() == sandbox_clean.provider("truto")["seeded"]["calls"]


def test_ameyo_logs_in_again_when_its_session_expires(make_account, fast_adapter, sandbox_clean):
    account = make_account("ameyo")
    bring_in(account, sandbox_clean)
    recording = Recording.objects.filter(account=account).first()
    adapter = fast_adapter(account)
    adapter.open_media(recording).close()
    sandbox_clean.fault("ameyo", "expire_sessions")
    since = sandbox_clean.last_log_id()
    stream = adapter.open_media(recording)
    stream.close()
    paths = [e["path"].split("?")[0] for e in sandbox_clean.log("ameyo", since=since)]
    assert paths == [
        "/ameyo/ameyorestapi/cc/downloadVoiceLog",
        "/ameyo/ameyorestapi/session/userLogin",
        "/ameyo/ameyorestapi/cc/downloadVoiceLog",
    ]
