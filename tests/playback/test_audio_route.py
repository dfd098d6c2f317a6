"""The audio route for every provider, over real sockets against the sandbox."""

from __future__ import annotations

import threading

import pytest
from django.urls import reverse

from recordings.models import AuditEvent, Recording
from recordings.providers import adapter_for
from recordings.streaming import ByteRange, open_recording
from tests.helpers import FAST, PROVIDERS, a_recording


def direct_bytes(recording) -> bytes:
    """The same recording fetched straight from the sandbox through its adapter."""
    stream = adapter_for(recording.account, policy=FAST).open_media(recording)
    try:
        return b"".join(stream.chunks)
    finally:
        stream.close()


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("provider", PROVIDERS)
def test_whole_body_and_a_mid_file_range_equal_the_direct_bytes(provider, brought_in, clients):
    recording = a_recording(brought_in(provider))
    expected = direct_bytes(recording)
    url = reverse("recording_audio", args=[recording.pk])

    whole = clients["supervisor"].get(url)
    assert whole.status_code == 200
    assert whole["Content-Length"] == str(len(expected))
    assert whole["Accept-Ranges"] == "bytes"
    assert whole["Content-Type"].startswith(("audio/", "video/mp4"))
    assert body(whole) == expected

    middle = len(expected) // 2
    ranged = clients["supervisor"].get(url, HTTP_RANGE=f"bytes={middle}-{middle + 9999}")
    assert ranged.status_code == 206
    assert ranged["Content-Range"] == f"bytes {middle}-{middle + 9999}/{len(expected)}"
    assert ranged["Content-Length"] == "10000"
    assert body(ranged) == expected[middle : middle + 10000]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_browser_probes_and_416(provider, brought_in, clients):
    recording = a_recording(brought_in(provider))
    size = len(direct_bytes(recording))
    url = reverse("recording_audio", args=[recording.pk])
    client = clients["supervisor"]

    safari = client.get(url, HTTP_RANGE="bytes=0-1")
    assert (safari.status_code, safari["Content-Range"], len(body(safari))) == (206, f"bytes 0-1/{size}", 2)
    chrome = client.get(url, HTTP_RANGE="bytes=0-")
    assert (chrome.status_code, chrome["Content-Length"]) == (206, str(size))
    body(chrome)
    suffix = client.get(url, HTTP_RANGE="bytes=-100")
    assert (suffix.status_code, suffix["Content-Range"]) == (206, f"bytes {size - 100}-{size - 1}/{size}")
    body(suffix)
    beyond = client.get(url, HTTP_RANGE=f"bytes={size}-")
    assert beyond.status_code == 416
    assert beyond["Content-Range"] == f"bytes */{size}"


@pytest.mark.parametrize("provider", ["bandwidth", "truto"])
def test_head_gives_the_headers_without_a_body(provider, brought_in, clients):
    recording = a_recording(brought_in(provider))
    size = len(direct_bytes(recording))
    response = clients["supervisor"].head(reverse("recording_audio", args=[recording.pk]))
    assert response.status_code == 200
    assert response["Content-Length"] == str(size)
    assert response["Accept-Ranges"] == "bytes"
    assert response.content == b""


def test_if_range_that_does_not_match_gets_the_whole_body(brought_in, clients):
    recording = a_recording(brought_in("bandwidth"))
    url = reverse("recording_audio", args=[recording.pk])
    first = clients["supervisor"].get(url, HTTP_RANGE="bytes=0-1")
    etag = first["ETag"]
    matching = clients["supervisor"].get(url, HTTP_RANGE="bytes=0-1", HTTP_IF_RANGE=etag)
    assert matching.status_code == 206
    stale = clients["supervisor"].get(url, HTTP_RANGE="bytes=0-1", HTTP_IF_RANGE='"something-else"')
    assert stale.status_code == 200
    body(stale)


@pytest.mark.parametrize("header", ["bytes=5-1", "bytes=a-b", "items=0-1", "bytes=0-1,5-9", "bytes=-"])
def test_malformed_ranges_get_the_whole_body(header, brought_in, clients):
    recording = a_recording(brought_in("bandwidth"))
    response = clients["supervisor"].get(reverse("recording_audio", args=[recording.pk]), HTTP_RANGE=header)
    assert response.status_code == 200
    body(response)


def test_no_credential_or_provider_url_reaches_the_browser(brought_in, clients, sandbox_clean):
    account = brought_in("kaleyra")
    recording = a_recording(account)
    secrets = [sandbox_clean.url, "127.0.0.1:" + sandbox_clean.url.rsplit(":", 1)[1], *account.credentials.values()]
    responses = [
        clients["exporter"].get(reverse("recording_audio", args=[recording.pk]), HTTP_RANGE="bytes=0-99"),
        clients["exporter"].get(reverse("recording_download", args=[recording.pk]), HTTP_RANGE="bytes=0-99"),
        clients["exporter"].get(reverse("call_detail", args=[recording.call_id])),
    ]
    for response in responses:
        text = "\n".join(f"{k}: {v}" for k, v in response.items())
        if not response.streaming:
            text += response.content.decode()
        for secret in secrets:
            assert secret not in text


def test_download_is_an_attachment_with_a_safe_name(brought_in, clients):
    recording = a_recording(brought_in("ameyo"))
    recording.call.remote_id = "../../etc/pass wd\u202e"
    recording.call.save()
    response = clients["exporter"].get(reverse("recording_download", args=[recording.pk]))
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment; filename=")
    assert "/" not in disposition.split("filename=")[1]
    assert "\u202e" not in disposition
    assert "ameyo_" in disposition and disposition.endswith('.mp3"')
    assert body(response) == direct_bytes(recording)


def test_permissions(brought_in, clients):
    recording = a_recording(brought_in("bandwidth"))
    audio = reverse("recording_audio", args=[recording.pk])
    download = reverse("recording_download", args=[recording.pk])
    assert clients["anonymous"].get(audio).status_code == 302
    assert clients["supervisor"].get(download).status_code == 403
    assert clients["exporter"].get(download, HTTP_RANGE="bytes=0-1").status_code == 206
    assert clients["admin"].get(download, HTTP_RANGE="bytes=0-1").status_code == 206
    assert clients["supervisor"].post(audio).status_code == 405


def test_one_audit_row_per_listening_session_and_per_download(brought_in, clients):
    recording = a_recording(brought_in("bandwidth"))
    url = reverse("recording_audio", args=[recording.pk])
    for header in ("bytes=0-1", "bytes=0-", "bytes=5000-9999", "bytes=20000-"):
        body(clients["supervisor"].get(url, HTTP_RANGE=header))
    assert AuditEvent.objects.filter(action="play", actor_username="supervisor").count() == 1
    body(clients["exporter"].get(url, HTTP_RANGE="bytes=0-"))
    assert AuditEvent.objects.filter(action="play").count() == 2
    download = reverse("recording_download", args=[recording.pk])
    body(clients["exporter"].get(download))
    body(clients["exporter"].get(download, HTTP_RANGE="bytes=100-"))  # a resumed download is the same one
    assert AuditEvent.objects.filter(action="download").count() == 1
    page = clients["supervisor"].get(reverse("call_detail", args=[recording.call_id])).content.decode()
    assert "supervisor" in page and "exporter" in page and "1 time" in page


def test_deleted_and_processing_recordings_say_so(brought_in, clients):
    recording = a_recording(brought_in("bandwidth"))
    url = reverse("recording_audio", args=[recording.pk])
    Recording.objects.filter(pk=recording.pk).update(status="deleted")
    response = clients["supervisor"].get(url)
    assert response.status_code == 410
    assert "deleted at Bandwidth" in response.json()["error"]
    Recording.objects.filter(pk=recording.pk).update(status="processing")
    assert clients["supervisor"].get(url).status_code == 409


def test_upstream_failures_are_502_and_504_with_a_short_message(brought_in, clients, sandbox_clean, settings):
    recording = a_recording(brought_in("bandwidth"))
    url = reverse("recording_audio", args=[recording.pk])
    sandbox_clean.fault("bandwidth", "status", status=500, count=5, path_contains="/media")
    response = clients["supervisor"].get(url)
    assert response.status_code == 502
    assert response.json() == {"error": "Bandwidth could not send this recording, try again."}
    sandbox_clean.clear_faults()
    settings.PROVIDER_READ_TIMEOUT = 0.3
    sandbox_clean.fault("bandwidth", "latency", ms=1500, path_contains="/media")
    response = clients["supervisor"].get(url)
    assert response.status_code == 504
    assert response.json() == {"error": "Bandwidth did not answer, try again."}


def test_a_recording_gone_at_the_provider_is_410(brought_in, clients, sandbox_clean):
    recording = a_recording(brought_in("kaleyra"))
    recording.remote_id = "no-such-id=="
    recording.save()
    response = clients["supervisor"].get(reverse("recording_audio", args=[recording.pk]))
    assert response.status_code == 410
    assert "no longer available at Kaleyra" in response.json()["error"]


# The media cache (Truto and Ameyo send whole files) -------------------------------------------------------


def downloads(sandbox, since, provider):
    paths = ("/recordings/download", "/downloadVoiceLog")
    return [e for e in sandbox.log(provider, since=since) if e["path"].split("?")[0].endswith(paths)]


@pytest.mark.parametrize("provider", ["truto", "ameyo"])
def test_first_play_fills_the_cache_and_later_ranges_come_from_it(provider, brought_in, sandbox_clean, media_cache_dir):
    recording = a_recording(brought_in(provider))
    since = sandbox_clean.last_log_id()
    first = open_recording(recording, None)
    whole = b"".join(first.chunks)
    first.close()
    assert len(downloads(sandbox_clean, since, provider)) == 1
    assert sorted(p.suffix for p in media_cache_dir.iterdir() if not p.name.startswith(".")) == [
        ".json",
        ".lock",
        ".media",
    ]

    since = sandbox_clean.last_log_id()
    seek = open_recording(recording, ByteRange(len(whole) // 2, None))
    assert b"".join(seek.chunks) == whole[len(whole) // 2 :]
    seek.close()
    assert downloads(sandbox_clean, since, provider) == []


def test_concurrent_first_plays_fetch_once(brought_in, sandbox_clean):
    recording = a_recording(brought_in("truto"), longest=True)
    recording = Recording.objects.select_related("account", "call").get(pk=recording.pk)  # no queries in threads
    since = sandbox_clean.last_log_id()
    results: dict[int, bytes] = {}

    def play(i: int) -> None:
        opened = open_recording(recording, ByteRange(0, None) if i % 2 else None)
        try:
            results[i] = b"".join(opened.chunks)
        finally:
            opened.close()

    threads = [threading.Thread(target=play, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(downloads(sandbox_clean, since, "truto")) == 1
    assert len({len(b) for b in results.values()}) == 1 and len(results) == 4
    assert len(set(results.values())) == 1


def test_a_hung_up_first_play_leaves_no_partial_file(brought_in, media_cache_dir):
    recording = a_recording(brought_in("ameyo"), longest=True)
    opened = open_recording(recording, None)
    next(opened.chunks)
    opened.chunks.close()
    opened.close()
    assert not list(media_cache_dir.glob("*.media"))
    assert not list(media_cache_dir.glob("*.part"))


def test_the_cache_evicts_least_recently_used(brought_in, settings, media_cache_dir):
    account = brought_in("truto")
    recordings = list(Recording.objects.filter(account=account, status="available").order_by("duration")[:3])
    sizes = []
    for recording in recordings:
        opened = open_recording(recording, None)
        sizes.append(len(b"".join(opened.chunks)))
        opened.close()
    settings.MEDIA_CACHE_MAX_BYTES = sizes[1] + sizes[2] + 10
    from recordings.media_cache import media_cache

    media_cache().evict()
    cached = {int(p.stem) for p in media_cache_dir.glob("*.media")}
    assert cached == {recordings[1].pk, recordings[2].pk}
    assert media_cache().usage() <= settings.MEDIA_CACHE_MAX_BYTES


def test_head_on_an_uncached_recording_leaves_no_fill_behind(brought_in, clients, media_cache_dir, sandbox_clean):
    """A HEAD opens the upstream but never reads the body: the fill must still be closed and unlocked."""
    from recordings.media_cache import _is_locked

    recording = a_recording(brought_in("truto"))
    url = reverse("recording_audio", args=[recording.pk])
    assert clients["supervisor"].head(url).status_code == 200
    assert not list(media_cache_dir.glob("*.part")) and not list(media_cache_dir.glob("*.fill"))
    assert not _is_locked(media_cache_dir / f"{recording.pk}.lock")
    ranged = clients["supervisor"].get(url, HTTP_RANGE="bytes=100-199")
    assert ranged.status_code == 206
    assert len(body(ranged)) == 100


def test_a_response_that_is_never_iterated_still_closes_the_upstream(brought_in, clients, media_cache_dir):
    from recordings.media_cache import _is_locked

    recording = a_recording(brought_in("ameyo"))
    response = clients["supervisor"].get(reverse("recording_audio", args=[recording.pk]))
    assert response.status_code == 200
    response.close()  # what the server does when the client is gone before the first byte
    assert not _is_locked(media_cache_dir / f"{recording.pk}.lock")
    assert not list(media_cache_dir.glob("*.part"))


def test_a_range_request_within_a_listening_session_costs_two_queries(brought_in, users, django_assert_max_num_queries):
    """The hot path: a player sends many range requests. Session and permissions come from the cache."""
    from django.test import Client

    recording = a_recording(brought_in("bandwidth"))
    client = Client()
    client.force_login(users["supervisor"])
    url = reverse("recording_audio", args=[recording.pk])
    body(client.get(url, HTTP_RANGE="bytes=0-1"))  # the first request of the session: audit row, caches
    with django_assert_max_num_queries(2):  # the user, the recording
        body(client.get(url, HTTP_RANGE="bytes=100-199"))
