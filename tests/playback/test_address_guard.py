"""Follow-up URLs from providers are never fetched when they point inside our network, unless allowed."""

from __future__ import annotations

import pytest

from recordings.providers.base import check_followup_url
from recordings.providers.errors import BlockedAddress

BASE = "https://api.kaleyra.io/v1"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8001/secret",
        "http://localhost/x",
        "http://10.1.2.3/bucket/key",
        "http://192.168.0.10/x",
        "http://172.16.5.5/x",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::1]:8080/x",
        "http://0.0.0.0/x",
        "ftp://files.example.com/x",
        "file:///etc/passwd",
    ],
)
def test_internal_or_odd_urls_are_blocked(url, settings):
    settings.MEDIA_URL_ALLOWLIST = []
    with pytest.raises(BlockedAddress):
        check_followup_url(url, account_base_url=BASE)


def test_the_accounts_own_host_is_allowed(settings):
    settings.MEDIA_URL_ALLOWLIST = []
    check_followup_url("http://127.0.0.1:8001/kaleyra/_s3/x", account_base_url="http://127.0.0.1:8001/kaleyra/v1")
    with pytest.raises(BlockedAddress):  # same address, another port: not the account's host
        check_followup_url("http://127.0.0.1:9999/x", account_base_url="http://127.0.0.1:8001/kaleyra/v1")


def test_the_allowlist_allows_by_host_or_host_and_port(settings):
    settings.MEDIA_URL_ALLOWLIST = ["media.internal", "10.0.0.7:9000"]
    check_followup_url("http://10.0.0.7:9000/bucket/key", account_base_url=BASE)
    with pytest.raises(BlockedAddress):
        check_followup_url("http://10.0.0.7:9001/bucket/key", account_base_url=BASE)


def test_a_provider_link_into_our_network_is_not_fetched(httpserver, clients, call, settings):
    """A Kaleyra API (on pytest-httpserver) hands back a signed link to another host on loopback."""
    from django.urls import reverse
    from pytest_httpserver import HTTPServer

    from recordings.models import ProviderAccount, Recording

    settings.MEDIA_URL_ALLOWLIST = []
    internal = HTTPServer(host="127.0.0.1", port=0)
    internal.start()
    try:
        internal.expect_request("/private").respond_with_data(b"secret", content_type="audio/mpeg")
        httpserver.expect_request("/v1/HX1/voice/recordings", method="POST").respond_with_json(
            {"code": "RBC200", "message": "ok", "data": {"link": internal.url_for("/private")}, "error": {}}
        )
        account = ProviderAccount.objects.create(
            name="k", provider="kaleyra", base_url=httpserver.url_for("/v1"), credentials={"api_key": "k"},
            options={"sid": "HX1"},
        )  # fmt: skip
        recording = Recording.objects.create(call=call, account=account, remote_id="R1==")
        response = clients["supervisor"].get(reverse("recording_audio", args=[recording.pk]))
        assert response.status_code == 502
        assert response.json() == {"error": "Kaleyra could not send this recording, try again."}
        assert internal.log == []  # never fetched
        assert internal.url_for("/private") not in response.content.decode()
    finally:
        internal.stop()
