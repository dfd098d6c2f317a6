"""Limits on what users send: report uploads (size and type), search terms, page links, ids, request sizes. Each
answer is a form error or a 4xx, never a 500."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from recordings.models import AuditEvent, Call, ProviderAccount
from recordings.search import MAX_TERMS, Q_MAX_LENGTH

from .conftest import drain

KALEYRA_HEADER = b"Recording ID,Call Time,Caller,Callee,Duration,Direction,Agent,Campaign\n"
KALEYRA_ROW = b"R-1==,2026-10-01 09:30:00,+15550102030,+15550109999,65,inbound,Ada,Support\n"


@pytest.fixture
def kaleyra(db) -> ProviderAccount:
    return ProviderAccount.objects.create(
        name="Kaleyra reports",
        provider="kaleyra",
        base_url="http://127.0.0.1:9/kaleyra/v1",
        credentials={"api_key": "k-Secret-1"},
        options={"sid": "HX1"},
    )


def upload(clients, account, name: str, content: bytes):
    url = reverse("admin:recordings_provideraccount_import", args=[account.pk])
    return clients["admin"].post(url, {"file": SimpleUploadedFile(name, content, content_type="text/csv")})


def form_errors(response) -> list[str]:
    return [str(error) for error in response.context["form"].errors.get("file", [])]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("calls.xlsx", KALEYRA_HEADER, "Upload the report as a .csv file"),
        ("calls.txt", KALEYRA_HEADER, "Upload the report as a .csv file"),
        ("calls.csv", b"PK\x03\x04" + b"\x00" * 100, "This is an Excel workbook (.xlsx) or a ZIP archive, not CSV"),
        ("calls.csv", b"\xd0\xcf\x11\xe0" + b"\x00" * 100, "an old Excel workbook (.xls)"),
        ("calls.csv", b"%PDF-1.7\n%\xe2\xe3", "This is a PDF document, not CSV"),
        ("calls.csv", b"\x1f\x8b\x08\x00", "a compressed (gzip) file"),
        ("calls.csv", b"Recording ID,Call Time\n\x00\x01\x02", "This is not a text file"),
        ("calls.csv", b"just some words\nmore words\n", "The first line has no commas"),
        ("calls.csv", b"a" * (70 * 1024), "The first line is longer than 64 KB"),
        ("calls.csv", b"  \n", "The file is empty."),
    ],
)
def test_an_upload_that_is_not_a_csv_report_gets_a_clear_form_error(clients, kaleyra, name, content, message):
    response = upload(clients, kaleyra, name, content)
    assert response.status_code == 200
    errors = form_errors(response)
    assert errors and message in errors[0], errors
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not Call.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.IMPORT).exists()


def test_an_upload_over_the_size_limit_is_refused(clients, kaleyra, settings):
    settings.REPORT_UPLOAD_MAX_BYTES = 1000
    content = KALEYRA_HEADER + KALEYRA_ROW * 20
    assert len(content) > 1000
    response = upload(clients, kaleyra, "calls.csv", content)
    size = f"{len(content) / 1024:.1f} KB"
    errors = [error.replace("\xa0", " ") for error in form_errors(response)]  # filesizeformat's no-break spaces
    assert errors == [f"The file is {size}; reports of up to 1000 bytes are accepted."]
    assert not Call.objects.exists()


def test_a_csv_report_within_the_limits_is_imported(clients, kaleyra, settings):
    settings.REPORT_UPLOAD_MAX_BYTES = 10_000
    response = upload(clients, kaleyra, "Calls.CSV", "\ufeff".encode() + KALEYRA_HEADER + KALEYRA_ROW)
    assert response.status_code == 200
    assert not form_errors(response), form_errors(response)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.IMPORT).exists()


def test_the_limit_is_configured():
    assert settings.REPORT_UPLOAD_MAX_BYTES == 200 * 1024 * 1024
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 2.5 * 1024 * 1024
    assert settings.DATA_UPLOAD_MAX_NUMBER_FIELDS == 1000


# -- search parameters --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, field, message",
    [
        ({"q": "x" * (Q_MAX_LENGTH + 1)}, "q", f"at most {Q_MAX_LENGTH} characters"),
        ({"q": " ".join(f"w{i}" for i in range(MAX_TERMS + 1))}, "q", f"at most {MAX_TERMS} words"),
        ({"number": "1" * 41}, "number", "at most 40 characters"),
        ({"agent": "a" * 201}, "agent", "at most 200 characters"),
        ({"campaign": "c" * 201}, "campaign", "at most 200 characters"),
        ({"cursor": "x" * 401}, "cursor", "at most 400 characters"),
        ({"cursor": "not-a-page-link"}, "cursor", "This page link is damaged or out of date."),
        ({"min_duration": "9" * 30}, "min_duration", "Enter a duration such as 90"),
        ({"date_to": "9999-12-31"}, "date_to", "Pick a date between 1900 and 2999."),
        ({"date_from": "0001-01-01"}, "date_from", "Pick a date between 1900 and 2999."),
        ({"account": "9" * 30}, "account", "Select a valid choice"),
        ({"q": "nul\x00byte"}, "q", "Null characters are not allowed."),
    ],
)
def test_oversized_or_garbled_search_parameters_are_form_errors(clients, call, params, field, message):
    response = clients["supervisor"].get(reverse("calls"), params)
    assert response.status_code == 200
    form = response.context["form"]
    assert message in " ".join(form.errors.get(field, [])), form.errors
    assert response.context["page"] is None  # nothing was searched


@pytest.mark.parametrize("page", ["abc", "-1", "0", "9" * 30, "1e9"])
def test_admin_page_numbers_never_fail(clients, call, page):
    response = clients["admin"].get(reverse("admin:recordings_call_changelist"), {"p": page})
    assert response.status_code in (200, 302)


@pytest.mark.parametrize(
    "url",
    [
        "/calls/{big}/",
        "/recordings/{big}/audio",
        "/recordings/{big}/download",
        "/jobs/{big}/",
        "/exports/{big}/",
        "/exports/{big}/download",
    ],
)
def test_ids_beyond_any_database_integer_are_404(clients, url):
    assert clients["admin"].get(url.format(big="9" * 30)).status_code == 404


def test_an_admin_object_id_beyond_any_integer_is_not_an_error(clients):
    response = clients["admin"].get(f"/admin/recordings/call/{'9' * 30}/change/")
    assert response.status_code == 302  # back to the list, with "doesn't exist"


def test_too_many_parameters_are_refused(clients, settings):
    query = "&".join(f"agent={i}" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    assert clients["supervisor"].get(f"{reverse('calls')}?{query}").status_code == 400


def test_an_oversized_form_body_is_refused(client, db):
    body = "username=" + "a" * (3 * 1024 * 1024)
    response = client.post(reverse("login"), body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400


def test_a_long_username_is_a_failed_login_not_an_error(client, users):
    response = client.post(reverse("login"), {"username": "u" * 5000, "password": "x"})
    assert response.status_code == 200
    event = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN_FAILED)
    assert event.details["username"] == "u" * 150


GARBLED_RANGES = ["bytes=abc", "bytes=5-1", "bytes=0-1,5-9", "bytes=" + "9" * 5000 + "-", "items=0-1"]


@pytest.mark.parametrize("header", GARBLED_RANGES, ids=range(len(GARBLED_RANGES)))
def test_a_garbled_range_gets_the_whole_recording(world, clients, header):
    response = clients["supervisor"].get(reverse("recording_audio", args=[world.recording.pk]), HTTP_RANGE=header)
    drain(response)
    assert response.status_code == 200


def test_a_range_beyond_the_recording_is_416(world, clients):
    response = clients["supervisor"].get(
        reverse("recording_audio", args=[world.recording.pk]), HTTP_RANGE=f"bytes={10**15}-"
    )
    assert response.status_code == 416
    assert response["Content-Range"].startswith("bytes */")
