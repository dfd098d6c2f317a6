"""Exports end to end: POST /exports/, the worker's build over real sockets to the sandbox, the ZIP and its
manifest, partial failures, safety of names and cells, permissions, expiry and resuming."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from recordings.models import AuditEvent, Job, JobItem, Recording
from recordings.providers import adapter_for
from recordings.services.exports import export_dir, exports_expire
from recordings.services.jobs import job_resume_stale
from recordings.tasks import expire_exports, schedule_export_sweep

from .conftest import download, export_of, short_recordings

pytestmark = pytest.mark.django_db(transaction=False)


def manifest_rows(archive) -> list[dict]:
    text = archive.read("manifest.csv").decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def direct_bytes(recording: Recording) -> bytes:
    """The recording fetched straight from the sandbox, not through the export."""
    stream = adapter_for(recording.account).open_media(recording)
    try:
        return b"".join(stream.chunks)
    finally:
        stream.close()


def test_an_export_of_every_provider_opens_and_its_checksums_match(demo, clients, run_tasks):
    chosen = [r for account in demo.values() for r in short_recordings(account, 2)]
    calls = sorted({r.call_id for r in chosen})
    expected = Recording.objects.filter(call_id__in=calls)
    job = export_of(clients["exporter"], run_tasks, scope="selected", call=calls)

    assert job.status == Job.Status.SUCCEEDED, list(job.items.values_list("label", "message"))
    assert job.done == job.total == expected.count() + 1  # one step per recording, then the archive
    archive = download(clients["exporter"], job)
    rows = manifest_rows(archive)
    assert sorted(int(row["recording_id"]) for row in rows) == sorted(expected.values_list("pk", flat=True))
    assert {row["provider"] for row in rows} == set(demo)
    for row in rows:
        data = archive.read(row["file"])
        assert len(data) == int(row["size_bytes"])
        assert hashlib.sha256(data).hexdigest() == row["sha256"]
        assert row["exported_by"] == "exporter"
    # The bytes are the provider's own, one per provider compared with a direct download.
    for provider in demo:
        row = next(r for r in rows if r["provider"] == provider)
        assert archive.read(row["file"]) == direct_bytes(Recording.objects.get(pk=row["recording_id"]))
    sums = archive.read("SHA256SUMS").decode().splitlines()
    assert sorted(sums) == sorted(f"{row['sha256']}  {row['file']}" for row in rows)
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["export_id"] == job.pk and len(manifest["recordings"]) == len(rows)
    assert manifest["errors"] == []
    assert "errors.csv" not in archive.namelist()
    assert "sha256sum -c SHA256SUMS" in archive.read("README.txt").decode()
    assert all(info.compress_type == 0 for info in archive.infolist())  # stored: audio does not compress
    actions = set(AuditEvent.objects.filter(target_type="job", target_id=str(job.pk)).values_list("action", flat=True))
    assert actions == {AuditEvent.Action.EXPORT, AuditEvent.Action.EXPORT_DOWNLOAD}


def test_export_everything_matching_a_search(demo, clients, run_tasks):
    job = export_of(clients["exporter"], run_tasks, scope="search", provider="envoy", max_duration="1:30")
    expected = Recording.objects.filter(call__provider="envoy", call__duration__lte=90)
    assert expected.exists()
    archive = download(clients["exporter"], job)
    assert sorted(int(row["recording_id"]) for row in manifest_rows(archive)) == sorted(
        expected.values_list("pk", flat=True)
    )
    assert "provider=envoy" in job.params["description"]


def test_failed_items_are_listed_without_failing_the_export(demo, clients, run_tasks, sandbox_clean):
    good, deleted = short_recordings(demo["bandwidth"], 2)
    broken = short_recordings(demo["envoy"], 1)[0]
    Recording.objects.filter(pk=deleted.pk).update(status=Recording.Status.DELETED)
    # Envoy answers 500 for this recording every time: retried, then given up.
    sandbox_clean.fault("envoy", "status", status=500, count=50, path_contains=broken.remote_id)
    job = export_of(clients["exporter"], run_tasks, scope="selected", call=[good.call_id, deleted.call_id,
                    broken.call_id])  # fmt: skip
    assert job.status == Job.Status.PARTIAL
    archive = download(clients["exporter"], job)
    assert {int(r["recording_id"]) for r in manifest_rows(archive)} == set(
        Recording.objects.filter(call_id=good.call_id).values_list("pk", flat=True)
    )
    errors = list(csv.DictReader(io.StringIO(archive.read("errors.csv").decode("utf-8-sig"))))
    reasons = {int(row["recording_id"]): row["reason"] for row in errors}
    assert "deleted at Bandwidth" in reasons[deleted.pk]
    assert "Envoy" in reasons[broken.pk]
    failed = dict(job.items.filter(status=JobItem.Status.FAILED).values_list("target_id", "message"))
    assert set(failed) == {str(deleted.pk), str(broken.pk)}
    page = clients["exporter"].get(f"/exports/{job.pk}/").content.decode()
    assert "Not exported" in page and "could not be exported" in page


@pytest.mark.parametrize(
    ("provider", "path"), [("bandwidth", None), ("truto", "recordings/download")], ids=["with-range", "whole-file"]
)
def test_a_dropped_connection_mid_file_is_resumed(provider, path, demo, clients, run_tasks, sandbox_clean):
    """Bandwidth answers a Range from the byte where it stopped; Truto sends whole files, the bytes we have are
    skipped."""
    recording = short_recordings(demo[provider], 1)[0]
    sandbox_clean.fault(provider, "drop_after", bytes=20_000, count=1, path_contains=path or recording.remote_id)
    job = export_of(clients["exporter"], run_tasks, scope="selected", call=[recording.call_id])
    assert job.status == Job.Status.SUCCEEDED
    archive = download(clients["exporter"], job)
    row = next(r for r in manifest_rows(archive) if int(r["recording_id"]) == recording.pk)
    assert archive.read(row["file"]) == direct_bytes(recording)
    if provider == "bandwidth":
        assert any(e["status"] == 206 for e in sandbox_clean.log("bandwidth") if recording.remote_id in e["path"])


def test_a_file_that_keeps_failing_mid_way_leaves_nothing_of_it_in_the_archive(demo, clients, run_tasks, sandbox_clean):
    available = Recording.objects.filter(account=demo["bandwidth"], status="available", duration__lte=120)
    big, small = available.order_by("-duration")[0], available.order_by("duration")[0]
    # Every try at `big` stops after 30,000 bytes: it is given up after the resumes, mid-way through its entry.
    sandbox_clean.fault("bandwidth", "drop_after", bytes=30_000, count=50, path_contains=big.remote_id)
    job = export_of(clients["exporter"], run_tasks, scope="selected", call=[big.call_id, small.call_id])
    assert job.status == Job.Status.PARTIAL
    archive = download(clients["exporter"], job)
    rows = manifest_rows(archive)
    assert big.pk not in {int(r["recording_id"]) for r in rows} and small.pk in {int(r["recording_id"]) for r in rows}
    assert [n for n in archive.namelist() if n.startswith("recordings/")] == [r["file"] for r in rows]
    for row in rows:  # the next file's offsets are right: it reads back intact
        assert hashlib.sha256(archive.read(row["file"])).hexdigest() == row["sha256"]
    assert "stopped sending" in job.items.get(target_id=str(big.pk)).message


def test_remote_ids_cannot_escape_the_archive_and_cells_cannot_become_formulas(demo, clients, run_tasks):
    recording = short_recordings(demo["bandwidth"], 1)[0]
    call = recording.call
    call.remote_id = "../../etc/passwd\u202e\x07gpj.exe"  # (PostgreSQL text cannot hold NUL at all)
    call.agent = '=HYPERLINK("http://evil","x")'
    call.campaign = "+cmd|' /C calc'!A0"
    call.from_number = "@SUM(1+1)"
    call.to_number = "-2+3"
    call.save()
    job = export_of(clients["exporter"], run_tasks, scope="selected", call=[call.pk])
    archive = download(clients["exporter"], job)
    for name in archive.namelist():
        assert not name.startswith("/") and ".." not in name.split("/") and "\\" not in name
        assert name.isascii() and name.isprintable()
    raw = archive.read("manifest.csv").decode("utf-8-sig")
    row = next(csv.DictReader(io.StringIO(raw)))
    assert row["agent"] == '\'=HYPERLINK("http://evil","x")'
    assert row["campaign"].startswith("'+") and row["from_number"].startswith("'@")
    assert row["to_number"] == "'-2+3"
    assert row["file"].startswith("recordings/bandwidth_")


def test_only_exporters_and_admins_export_and_only_the_owner_and_admins_see_it(demo, clients, run_tasks, users):
    recording = short_recordings(demo["kaleyra"], 1)[0]
    selection = {"scope": "selected", "call": [recording.call_id]}
    assert clients["supervisor"].post("/exports/", selection).status_code == 403
    assert clients["supervisor"].get("/exports/").status_code == 403
    anonymous = clients["anonymous"].post("/exports/", {"scope": "selected", "call": [recording.call_id]})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert not Job.objects.filter(kind=Job.Kind.EXPORT).exists()
    job = export_of(clients["exporter"], run_tasks, scope="selected", call=[recording.call_id])
    from django.contrib.auth import get_user_model
    from django.test import Client

    other = get_user_model().objects.create_user("exporter2")
    other.groups.set(users["exporter"].groups.all())
    someone_else = Client()
    someone_else.force_login(other)
    for url in (f"/exports/{job.pk}/", f"/exports/{job.pk}/download"):
        assert someone_else.get(url).status_code == 404
        assert clients["supervisor"].get(url).status_code == 403
        assert clients["admin"].get(url).status_code == 200
        assert clients["exporter"].get(url).status_code == 200
    assert f"/exports/{job.pk}/" not in someone_else.get("/exports/").content.decode()
    assert f"/exports/{job.pk}/" in clients["exporter"].get("/exports/").content.decode()


def test_bad_requests_give_a_message_not_an_error(demo, clients, settings):
    exporter = clients["exporter"]
    assert exporter.post("/exports/", {"scope": "everything"}).status_code == 400
    assert exporter.post("/exports/", {"scope": "selected", "call": ["1; DROP TABLE"]}).status_code == 400
    response = exporter.post("/exports/", {"scope": "selected"}, follow=True)
    assert "Choose at least one call" in response.content.decode()
    response = exporter.post("/exports/", {"scope": "search", "min_duration": "soon"}, follow=True)
    assert "not valid" in response.content.decode()
    settings.EXPORT_MAX_RECORDINGS = 2
    calls = [r.call_id for r in short_recordings(demo["bandwidth"], 3)]
    response = exporter.post("/exports/", {"scope": "selected", "call": calls}, follow=True)
    assert "at most 2 recordings" in response.content.decode()
    response = exporter.post("/exports/", {"scope": "search", "provider": "bandwidth"}, follow=True)
    assert "at most 2 recordings" in response.content.decode()
    assert not Job.objects.filter(kind=Job.Kind.EXPORT).exists()


def test_exports_expire_and_the_sweep_removes_them(demo, clients, run_tasks, settings):
    recording = short_recordings(demo["ameyo"], 1)[0]
    job = export_of(clients["exporter"], run_tasks, scope="selected", call=[recording.call_id])
    assert job.expires_at - job.finished_at == pytest.approx(timedelta(seconds=settings.EXPORT_TTL), abs=timedelta(5))
    path = export_dir() / job.file_path
    assert path.is_file()
    assert exports_expire() == 0  # not yet
    Job.objects.filter(pk=job.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert clients["exporter"].get(f"/exports/{job.pk}/download").status_code == 410
    assert exports_expire() == 1
    assert not path.exists()
    job.refresh_from_db()
    assert job.status == Job.Status.EXPIRED
    assert "Expired" in clients["exporter"].get(f"/exports/{job.pk}/").content.decode()
    # The periodic sweep: scheduled once (not again while one waits), and it schedules its next run.
    DBTaskResult.objects.all().delete()
    assert schedule_export_sweep() is True
    assert schedule_export_sweep() is False
    expire_exports.call()
    waiting = DBTaskResult.objects.filter(status="READY", task_path=expire_exports.module_path)
    assert waiting.count() == 2
    assert max(waiting.values_list("run_after", flat=True)) > timezone.now() + timedelta(minutes=30)


def test_a_build_left_running_by_a_dead_worker_is_started_again(demo, clients, run_tasks):
    recording = short_recordings(demo["bandwidth"], 1)[0]
    response = clients["exporter"].post("/exports/", {"scope": "selected", "call": [recording.call_id]})
    job = Job.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))
    # The worker took the task, claimed the archive, wrote part of the file, and died.
    DBTaskResult.objects.all().delete()
    long_ago = timezone.now() - timedelta(hours=1)
    job.items.filter(target_type="archive").update(status=JobItem.Status.RUNNING, attempts=1, updated_at=long_ago)
    job.items.filter(target_type="recording").update(status=JobItem.Status.RUNNING, updated_at=long_ago)
    part = export_dir() / f"export-{job.pk}.zip.part"
    part.write_bytes(b"PK\x03\x04 half a file")
    assert job_resume_stale()["resumed"] == 1
    assert run_tasks() == 1
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert not part.exists()
    assert download(clients["exporter"], job).namelist()[0].startswith("recordings/")


def test_the_search_page_offers_export_controls_to_exporters_only(demo, clients):
    page = clients["exporter"].get("/calls/?provider=bandwidth").content.decode()
    assert 'id="export-form"' in page and 'name="call"' in page and 'form="export-form"' in page
    assert '<input type="hidden" name="provider" value="bandwidth">' in page
    assert "/calls/export.csv?provider=bandwidth" in page
    page = clients["supervisor"].get("/calls/?provider=bandwidth").content.decode()
    assert "export-form" not in page and "export.csv" not in page and 'name="call"' not in page
