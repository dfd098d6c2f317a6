"""Secrets stay secret: no credential, session id or signed link in the logs (urllib3 at DEBUG included), error pages,
admin pages, job errors or exception messages."""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Iterator

import pytest
import requests
from django.conf import settings
from django.test import Client
from django.urls import reverse

from recordings.logfilters import REDACTED, RedactSecretsFilter, redact_secrets
from recordings.models import AuditEvent, Job, JobItem, ProviderAccount
from recordings.providers import adapter_for, errors
from recordings.services.actions import accounts_job
from recordings.services.imports import report_import
from recordings.services.jobs import job_item_run
from recordings.services.sync import account_sync
from tests.helpers import FAST, PROVIDERS, a_recording
from tests.test_admin_accounts import form_data

from .conftest import drain

# Distinctive values: none of them may survive anywhere a person or a log can read.
TOKEN, PASSWORD, SIGNATURE = "TOKvalue-7d1e", "PWvalue-3c9a", "SIGvalue-55aa"
API_KEY, SESSION = "KEYvalue-0b2f", "SESS-91x"
LEAKY = (
    f"upstream said: Authorization: Bearer {TOKEN} while fetching https://media.example.com/r/1.mp3?"
    f"X-Amz-Signature={SIGNATURE}&X-Amz-Credential=AKIA; retry /_media/1.mp4?expires=1&sig={SIGNATURE} "
    f'with password={PASSWORD} api_key={API_KEY} {{"sessionId": "{SESSION}"}} at https://bob:{PASSWORD}@h.example/x'
)
VALUES = (TOKEN, PASSWORD, SIGNATURE, API_KEY, SESSION)


@contextlib.contextmanager
def portal_log(level: int = logging.DEBUG) -> Iterator[io.StringIO]:
    """What the portal's configured log handler (settings.LOGGING) writes, at `level`."""
    root = logging.getLogger()
    handler = next(h for h in root.handlers if any(isinstance(f, RedactSecretsFilter) for f in h.filters))
    stream = io.StringIO()
    previous, old_level = handler.setStream(stream), root.level
    root.setLevel(level)
    try:
        yield stream
    finally:
        handler.setStream(previous)
        root.setLevel(old_level)


# -- the filter --------------------------------------------------------------------------------------------------


def test_redaction_removes_every_kind_of_secret():
    text = redact_secrets(LEAKY)
    for value in VALUES:
        assert value not in text
    assert "bob" not in text
    assert "/_media/1.mp4?<redacted>" in text  # the path stays: it says what was fetched
    assert text.startswith("upstream said: Authorization: <redacted>")


@pytest.mark.parametrize(
    "line",
    [
        f'http://127.0.0.1:8001 "GET /envoy/_media/r1.mp4?expires=1767225600&sig={SIGNATURE} HTTP/1.1" 206 100',
        f"{{'User-Agent': 'x', 'Authorization': 'Basic {TOKEN}', 'Sessionid': '{SESSION}'}}",
        f"Max retries exceeded with url: /v1/x?api_key={API_KEY} (Caused by NewConnectionError)",
        f"api-key: {API_KEY}",
        f"POST data: username=ada&password={PASSWORD}",
    ],
)
def test_redaction_of_lines_libraries_write(line):
    text = redact_secrets(line)
    assert not any(value in text for value in VALUES)
    assert REDACTED in text


def test_redaction_leaves_ordinary_text_alone():
    for text in ("Sync of account 3 failed: timeout", "csrfmiddlewaretoken kept", "Recording 12 streamed 4096 bytes"):
        assert redact_secrets(text) == text


def test_a_logged_traceback_is_redacted_too():
    logger = logging.getLogger("recordings.tests.security")
    with portal_log() as log:
        try:  # a real refused connection: requests puts the whole path and query in its message
            requests.get(f"http://127.0.0.1:9/r/1.mp3?X-Amz-Signature={SIGNATURE}&password={PASSWORD}", timeout=2)
        except requests.ConnectionError:
            logger.exception("fetching %s failed", f"https://u:{TOKEN}@media.example.com/1.mp3?sig={SIGNATURE}")
    text = log.getvalue()
    assert "Traceback" in text and "ConnectionError" in text and "fetching https://" in text
    assert not any(value in text for value in VALUES), text


def test_the_filter_is_on_the_root_handler_of_the_settings():
    handler = settings.LOGGING["handlers"][settings.LOGGING["root"]["handlers"][0]]
    assert "redact_secrets" in handler["filters"]
    assert settings.LOGGING["filters"]["redact_secrets"]["()"] == "recordings.logfilters.RedactSecretsFilter"


# -- provider work at DEBUG against the sandbox --------------------------------------------------------------------


def bring_in(account, sandbox) -> None:
    if account.adapter_class.can_sync:
        account_sync(account=account)
    else:
        report = requests.get(sandbox.provider(account.provider)["report_url"], timeout=30).content
        report_import(account=account, stream=io.BytesIO(report))


def test_provider_work_logged_at_debug_shows_no_credential_session_or_signed_link(
    make_account, sandbox_clean, clients, settings, tmp_path
):
    from recordings.providers.ameyo import _session_ids

    settings.MEDIA_CACHE_DIR = tmp_path / "media-cache"
    with portal_log() as log:
        for provider in PROVIDERS:
            account = make_account(provider)
            bring_in(account, sandbox_clean)
            adapter_for(account, policy=FAST).test_connection()
            response = clients["supervisor"].get(
                reverse("recording_audio", args=[a_recording(account).pk]), HTTP_RANGE="bytes=0-999"
            )
            assert response.status_code in (200, 206), provider
            assert drain(response).body
    text = log.getvalue()
    # The log did see the requests, signed media links included (Envoy's sig=, Kaleyra's X-Amz-Signature=).
    assert "urllib3.connectionpool" in text
    assert re.search(r"/envoy/\S*_media/\S+\?<redacted>", text), text[-3000:]
    assert re.search(r"/kaleyra/\S*_s3/\S+\?<redacted>", text), text[-3000:]
    secrets = [v for p in PROVIDERS for v in sandbox_clean.provider(p)["credentials"].values()]
    secrets += list(_session_ids.values())
    assert secrets and not [value for value in secrets if value in text]
    assert not re.search(r"\?(?!<redacted>)[^\s\"'<>]", text), "a URL query survived"
    assert not re.search(r"(?i)\b(sig|x-amz-signature|x-amz-credential|password|token|api_key)=(?!<redacted>)", text)


# -- error pages ---------------------------------------------------------------------------------------------------


@pytest.mark.urls("tests.security.urls_boom")
def test_the_error_page_shows_nothing_of_the_error_and_the_log_is_redacted(users):
    assert not settings.DEBUG
    client = Client(raise_request_exception=False)
    client.force_login(users["supervisor"])
    with portal_log(logging.INFO) as log:
        response = client.get(f"/boom/?token={TOKEN}")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong" in page
    assert "Traceback" not in page and "RuntimeError" not in page
    assert "default-src 'self'" in response["Content-Security-Policy"]
    text = log.getvalue()
    assert "Internal Server Error: /boom/" in text and "RuntimeError" in text
    assert not [value for value in VALUES if value in page or value in text]


# -- admin pages ---------------------------------------------------------------------------------------------------


def test_admin_pages_never_show_a_credential(make_account, sandbox, clients):
    accounts = [make_account(provider) for provider in PROVIDERS]
    bandwidth = accounts[0]
    # A credential change through the admin, so the audit log and the history have one to (not) show.
    data = form_data("bandwidth", bandwidth.name, {"username": "", "password": PASSWORD}, bandwidth.options)
    data["base_url"] = bandwidth.base_url
    data.pop("provider")
    change = reverse("admin:recordings_provideraccount_change", args=[bandwidth.pk])
    assert clients["admin"].post(change, data).status_code == 302
    bandwidth.refresh_from_db()
    assert bandwidth.credentials["password"] == PASSWORD

    urls = [reverse("admin:recordings_provideraccount_changelist"), reverse("admin:recordings_auditevent_changelist")]
    for account in accounts:
        for page in ("change", "history", "delete"):
            urls.append(reverse(f"admin:recordings_provideraccount_{page}", args=[account.pk]))
        if account.adapter_class.can_import_report:
            urls.append(reverse("admin:recordings_provideraccount_import", args=[account.pk]))
    for event in AuditEvent.objects.all():
        urls.append(reverse("admin:recordings_auditevent_change", args=[event.pk]))
    secrets = [v for account in ProviderAccount.objects.all() for v in account.credentials.values()]
    assert PASSWORD in secrets and len(secrets) >= 7
    for url in urls:
        response = clients["admin"].get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert not [value for value in secrets if value in page], url
    event = AuditEvent.objects.get(action=AuditEvent.Action.CREDENTIAL_CHANGE)
    assert event.details == {"fields": ["password"], "created": False}


# -- job errors and exception messages -----------------------------------------------------------------------------


@pytest.fixture
def echoing_provider(db, httpserver):
    """A Truto API that refuses everything and echoes the token, a signed link and a password in its message."""
    httpserver.expect_request(re.compile(r".*")).respond_with_json({"message": f"{LEAKY} token {TOKEN}"}, status=401)
    return ProviderAccount.objects.create(
        name="Echoing Truto",
        provider="truto",
        base_url=httpserver.url_for("/"),
        credentials={"token": TOKEN},
        options={"integrated_account_id": "62f44730-dd91-461e-bd6a-aedd9e0ad79d"},
    )


def test_job_items_pages_and_sync_errors_never_carry_what_a_provider_echoed(echoing_provider, users, clients):
    account = echoing_provider
    job = accounts_job(
        kind=Job.Kind.TEST_CONNECTION, accounts=ProviderAccount.objects.filter(pk=account.pk), actor=users["admin"]
    )
    item = job.items.get()
    job_item_run(item_id=item.pk)
    item.refresh_from_db()
    assert item.status == JobItem.Status.FAILED
    assert item.message.startswith("Truto refused the credentials")
    assert not [value for value in VALUES if value in item.message], item.message
    assert "https://" not in item.message

    with contextlib.suppress(Exception):
        account_sync(account=account)
    account.refresh_from_db()
    assert account.last_sync_error.startswith("Truto refused the credentials")
    pages = [f"/jobs/{job.pk}/", reverse("admin:recordings_provideraccount_changelist")]
    pages.append(reverse("admin:recordings_job_change", args=[job.pk]))
    for url in pages:
        page = clients["admin"].get(url).content.decode()
        assert "Truto refused the credentials" in page, url
        assert not [value for value in VALUES if value in page], url
    for event in AuditEvent.objects.all():
        assert not [value for value in VALUES if value in str(event.details)]


ERRORS = sorted(
    {cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.ProviderError)},
    key=lambda cls: cls.__name__,
)


@pytest.mark.parametrize("error_class", ERRORS, ids=lambda cls: cls.__name__)
def test_provider_errors_never_carry_a_secret(error_class):
    error = error_class(LEAKY, provider="truto", status=401)
    for text in (str(error), repr(error), error.message, " ".join(map(str, error.args))):
        assert not [value for value in VALUES if value in text], text
        assert "https://" not in text
