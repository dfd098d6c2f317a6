"""Sync and report import through the sandbox: the 1000 cap, incremental runs, gone recordings, bad rows."""

from __future__ import annotations

import io

import pytest
import requests
from django.core.management import CommandError, call_command
from django.urls import reverse

from recordings.models import AuditEvent, Call, ProviderAccount, Recording
from recordings.services.imports import ReportError, report_import
from recordings.services.sync import account_sync
from sandbox.pytest_plugin import start_sandbox


@pytest.fixture(scope="module")
def busy_sandbox():
    """A sandbox whose Bandwidth account has well over 1000 recordings, most of them on one day."""
    handle = start_sandbox(calls=2600)
    yield handle
    handle.stop()


def test_bandwidth_over_the_1000_cap_gets_every_recording(db, busy_sandbox):
    entry = busy_sandbox.provider("bandwidth")
    account = ProviderAccount.objects.create(
        name="busy", provider="bandwidth", base_url=entry["base_url"], credentials=entry["credentials"],
        options=entry["options"],
    )  # fmt: skip
    since = busy_sandbox.last_log_id()
    counts = account_sync(account=account)
    assert counts.recordings_created == entry["seeded"]["recordings"] > 2000
    lists = [e for e in busy_sandbox.log("bandwidth", since=since) if e["path"].split("?")[0].endswith("/recordings")]
    assert len(lists) > 3  # the window was split
    assert Recording.objects.filter(account=account).count() == entry["seeded"]["recordings"]


def test_incremental_sync_starts_from_the_watermark(make_account, sandbox_clean):
    account = make_account("bandwidth")
    account_sync(account=account)
    account.refresh_from_db()
    assert account.sync_watermark is not None
    since = sandbox_clean.last_log_id()
    counts = account_sync(account=account)
    assert counts.recordings_created == 0
    (listing,) = [e for e in sandbox_clean.log("bandwidth", since=since) if "minStartTime" in e["path"]]
    assert "minStartTime=" + account.sync_watermark.strftime("%Y-%m-%dT") in requests.utils.unquote(listing["path"])


def test_a_recording_deleted_upstream_is_marked_gone(make_account, sandbox_clean):
    account = make_account("bandwidth")
    account_sync(account=account)
    recording = Recording.objects.filter(account=account).first()
    entry = sandbox_clean.provider("bandwidth")
    url = f"{entry['base_url']}/accounts/9900000/calls/{recording.call.remote_id}/recordings/{recording.remote_id}"
    try:
        assert requests.delete(url, auth=tuple(entry["credentials"].values()), timeout=10).status_code == 204
        counts = account_sync(account=account, full=True)
    finally:
        sandbox_clean.reset()
    recording.refresh_from_db()
    assert recording.status == Recording.Status.DELETED
    assert recording.gone_upstream_at is not None
    assert account.last_sync_counts["gone_upstream"] == 1
    assert counts.recordings_updated == 0


GOOD_KALEYRA = (
    "\ufeffRecording ID,Extra,START TIME,Call ID,Caller Number,Direction,Recording Duration\n"
    "AAA==,x,2026-10-03 14:05:22,call-1,+91 80488 50071,Inbound,64\n"
)


def kaleyra_account(db) -> ProviderAccount:
    return ProviderAccount.objects.create(
        name="k", provider="kaleyra", credentials={"api_key": "k"}, options={"sid": "HX1"}
    )


def test_import_tolerates_bom_order_case_and_extra_columns(db):
    account = kaleyra_account(db)
    result = report_import(account=account, stream=io.BytesIO(GOOD_KALEYRA.encode()))
    assert (result.rows, result.error_count) == (1, 0)
    call = Call.objects.get(account=account)
    assert (call.remote_id, call.direction, call.from_number, call.duration) == (
        "call-1",
        "inbound",
        "+918048850071",
        64,
    )
    assert call.recordings.get().remote_id == "AAA=="


def test_import_reports_bad_rows_and_keeps_the_good_ones(db):
    account = kaleyra_account(db)
    lines = [
        "Call ID,Start Time,Recording ID,Duration",
        "c1,2026-10-03 14:05:22,R1,60",
        "c2,yesterday,R2,60",
        "c3,2026-10-03 14:07:00,R3,ten",
        ",2026-10-03 14:08:00,,60",
        "c5,03/10/2026 14:09:00,R5,1:05",
        "c6,2026-10-03 14:10:00,R6\xff,60",
    ]
    data = "\n".join(lines[:-1]).encode() + b"\n" + lines[-1].encode("latin-1") + b"\n"
    result = report_import(account=account, stream=io.BytesIO(data))
    assert result.errors == [
        (3, "unrecognised date 'yesterday'"),
        (4, "not a duration: 'ten'"),
        (5, "the row has neither a call id nor a recording id"),
        (7, "not valid UTF-8 text"),
    ]
    assert set(Call.objects.values_list("remote_id", flat=True)) == {"c1", "c5"}
    again = report_import(account=account, stream=io.BytesIO(data))
    assert (again.counts.calls_created, again.counts.calls_updated, again.counts.recordings_updated) == (0, 0, 0)


def test_a_file_that_is_not_the_report_is_refused_whole(db):
    account = kaleyra_account(db)
    with pytest.raises(ReportError, match="no column for started_at"):
        report_import(account=account, stream=io.BytesIO(b"name,email\nx,y\n"))
    with pytest.raises(ReportError, match="empty"):
        report_import(account=account, stream=io.BytesIO(b""))


def test_import_report_command(db, tmp_path, capsys):
    account = kaleyra_account(db)
    path = tmp_path / "report.csv"
    path.write_text(GOOD_KALEYRA + "c9,,,\n")
    call_command("import_report", "--account", str(account.pk), str(path), verbosity=0)
    out, err = capsys.readouterr()
    assert "1 call(s) added" in out
    assert "line 3:" in err
    with pytest.raises(CommandError, match="No provider account"):
        call_command("import_report", "--account", "999", str(path))


def test_sync_command_refuses_report_providers_and_syncs_all(make_account, sandbox_clean, capsys):
    kaleyra = make_account("kaleyra")
    with pytest.raises(CommandError, match="import_report"):
        call_command("sync_recordings", "--account", str(kaleyra.pk))
    make_account("envoy")
    call_command("sync_recordings", "--all", verbosity=0)
    out = capsys.readouterr().out
    assert "Sandbox envoy: calls created 30" in out
    assert AuditEvent.objects.filter(action="sync").count() == 1


def test_admin_uploads_a_report_and_sees_bad_rows(clients, db):
    account = kaleyra_account(db)
    url = reverse("admin:recordings_provideraccount_import", args=[account.pk])
    upload = io.BytesIO(b"Call ID,Start Time,Recording ID\nc1,2026-10-03 14:05:22,R1\nc2,soon,R2\n")
    upload.name = "report.csv"
    response = clients["admin"].post(url, {"file": upload})
    page = response.content.decode()
    assert response.status_code == 200
    assert "1 call(s) added" in page
    assert "<td>3</td><td>unrecognised date &#x27;soon&#x27;</td>" in page
    assert clients["supervisor"].get(url).status_code == 302  # not staff: the admin login


def test_admin_refuses_a_binary_upload(clients, db):
    account = kaleyra_account(db)
    upload = io.BytesIO(b"\x00\x01\x02binary")
    upload.name = "report.csv"
    page = clients["admin"].post(
        reverse("admin:recordings_provideraccount_import", args=[account.pk]), {"file": upload}
    )
    assert "not a text file" in page.content.decode()
    assert not Call.objects.exists()


def test_seed_demo_brings_in_every_provider_and_twice_changes_nothing(db, sandbox_clean, monkeypatch, capsys):
    monkeypatch.setenv("SANDBOX_URL", sandbox_clean.url)
    call_command("seed_demo")
    first = capsys.readouterr().out
    assert first.count("Sandbox ") == 5
    snapshot = (
        list(ProviderAccount.objects.order_by("pk").values_list("pk", "updated_at")),
        list(Recording.objects.order_by("pk").values_list("pk", "updated_at")),
    )
    for name in ("bandwidth", "truto", "envoy", "kaleyra", "ameyo"):
        seeded = sandbox_clean.provider(name)["seeded"]
        assert Recording.objects.filter(account__provider=name).count() == seeded["recordings"], name
    call_command("seed_demo")
    assert snapshot == (
        list(ProviderAccount.objects.order_by("pk").values_list("pk", "updated_at")),
        list(Recording.objects.order_by("pk").values_list("pk", "updated_at")),
    )


@pytest.mark.parametrize("provider", ["kaleyra", "ameyo"])
def test_report_times_in_the_accounts_zone_match_the_providers_utc_times(provider, make_account, sandbox_clean):
    """The reports write India time without an offset; the account's report time zone makes them UTC."""
    entry = sandbox_clean.provider(provider)
    account = make_account(provider, options={**entry["options"], "time_zone": entry["report_timezone"]})
    report = requests.get(entry["report_url"], timeout=30).content
    assert report_import(account=account, stream=io.BytesIO(report)).error_count == 0
    seeded = {c.id: c.start.replace(microsecond=0) for c in sandbox_clean.state.dataset[provider].calls}
    stored = dict(Call.objects.filter(account=account).values_list("remote_id", "started_at"))
    assert stored == seeded
