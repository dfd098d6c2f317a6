"""The world the security tests run in: one synced sandbox account, jobs, an export, one row of every admin model."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from recordings.models import AuditEvent, Call, Job, ProviderAccount, Recording, Transcript
from recordings.roles import ADMINS
from recordings.services.audit import audit_record
from recordings.services.sync import account_sync
from tests.helpers import a_recording


@dataclass
class World:
    users: dict
    account: ProviderAccount
    call: Call
    recording: Recording
    own_job: Job  # the exporter's
    admin_job: Job
    export: Job  # the exporter's, finished, with its file
    objects: dict[str, object]  # model label -> one instance, for the admin's object pages

    @property
    def view_on_site_url(self) -> str:
        from django.contrib.contenttypes.models import ContentType

        return f"/admin/r/{ContentType.objects.get_for_model(Recording).pk}/{self.recording.pk}/"


@pytest.fixture
def world(users, make_account, sandbox, settings, tmp_path) -> World:
    settings.MEDIA_CACHE_DIR = tmp_path / "media-cache"
    settings.EXPORT_DIR = tmp_path / "exports"
    account = make_account("bandwidth")
    account_sync(account=account)
    recording = a_recording(account)
    transcript = Transcript.objects.create(recording=recording, status=Transcript.Status.AVAILABLE, text="hello")
    own_job = Job.objects.create(kind=Job.Kind.EXPORT, created_by=users["exporter"], status=Job.Status.RUNNING)
    admin_job = Job.objects.create(kind=Job.Kind.SYNC, created_by=users["admin"], status=Job.Status.SUCCEEDED)
    export = Job.objects.create(
        kind=Job.Kind.EXPORT,
        created_by=users["exporter"],
        status=Job.Status.SUCCEEDED,
        file_path="route-test.zip",
        finished_at=timezone.now(),
    )
    settings.EXPORT_DIR.mkdir(parents=True)
    (settings.EXPORT_DIR / "route-test.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty ZIP
    event = audit_record(action=AuditEvent.Action.SYNC, actor=users["admin"], target=account)
    task = DBTaskResult.objects.create(
        task_path="recordings.tasks.noop",
        args_kwargs={"args": [], "kwargs": {}},
        status="SUCCESSFUL",
        queue_name="default",
        backend_name="default",
    )
    objects = {
        "auth.group": Group.objects.get(name=ADMINS),
        "auth.user": users["exporter"],
        "django_tasks_database.dbtaskresult": task,
        "recordings.provideraccount": account,
        "recordings.call": recording.call,
        "recordings.recording": recording,
        "recordings.transcript": transcript,
        "recordings.auditevent": event,
        "recordings.job": admin_job,
    }
    return World(users, account, recording.call, recording, own_job, admin_job, export, objects)


def drain(response):
    """Read a streamed body to its end, which closes it through the test client's wrapper (calling close() directly
    would fire request_finished and close the test's database connection on PostgreSQL)."""
    if response.streaming:
        response.body = b"".join(response.streaming_content)
    return response
