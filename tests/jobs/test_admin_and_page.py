"""Admin actions (permissions, the confirmation page) and the job page (who sees it, htmx polling)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from recordings.models import Job, JobItem, ProviderAccount, Recording
from recordings.services.actions import recordings_job
from recordings.services.sync import account_sync

RECORDINGS_URL = reverse("admin:recordings_recording_changelist")
ACCOUNTS_URL = reverse("admin:recordings_provideraccount_changelist")


def action(client, url, name, pks, **extra):
    return client.post(url, {"action": name, "_selected_action": [str(pk) for pk in pks], **extra}, follow=False)


@pytest.fixture
def mixed(bw_recordings, make_account):
    """Two Bandwidth recordings and one Envoy recording (Envoy cannot delete)."""
    envoy = make_account("envoy")
    account_sync(account=envoy)
    return [*bw_recordings, Recording.objects.filter(account=envoy).first()]


def test_it_confirms_a_deletion_per_provider_before_anything_happens(clients, mixed, sandbox):
    since = sandbox.last_log_id()
    response = action(clients["admin"], RECORDINGS_URL, "delete_at_provider", [r.pk for r in mixed])

    assert response.status_code == 200
    page = response.content.decode()
    assert "Are you sure?" in page and "Nothing has been deleted yet" in page
    assert re.search(r"<h2[^>]*>Bandwidth</h2>\s*<p class=\"will-do\">Will delete: 2</p>", page)
    assert re.search(r"<h2[^>]*>Envoy</h2>\s*<p class=\"will-do\">Will delete: 0</p>", page)
    assert f"Envoy recording {mixed[2].remote_id}: Envoy cannot delete recordings." in page
    assert 'name="post" value="yes"' in page and 'value="delete_at_provider"' in page
    assert "<script>" not in page and " style=" not in page
    # Nothing happened yet.
    assert not Job.objects.exists()
    assert not Recording.objects.filter(delete_requested_at__isnull=False).exists()
    assert not [e for e in sandbox.log(since=since) if e["method"] == "DELETE"]


def test_confirming_creates_the_job_and_links_to_it(clients, mixed, run_tasks):
    response = action(clients["admin"], RECORDINGS_URL, "delete_media_at_provider", [r.pk for r in mixed], post="yes")
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.kind == Job.Kind.DELETE_MEDIA and job.total == 3
    assert job.items.filter(status=JobItem.Status.REFUSED).count() == 1
    page = clients["admin"].get(response.url).content.decode()
    assert f'href="/jobs/{job.pk}/"' in page and "1 refused" in page

    run_tasks()
    job.refresh_from_db()
    assert job.status == Job.Status.PARTIAL and job.done == 3
    assert Recording.objects.filter(status=Recording.Status.MEDIA_DELETED).count() == 2


@pytest.mark.parametrize("name", ["request_transcription", "refresh_transcription", "remove_cached_copy"])
def test_other_recording_actions_create_jobs(clients, bw_recordings, name):
    response = action(clients["admin"], RECORDINGS_URL, name, [r.pk for r in bw_recordings])
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.total == 2 and job.created_by.username == "admin"


@pytest.mark.parametrize("name", ["sync_now", "test_connection"])
def test_account_actions_create_jobs(clients, make_account, sandbox_clean, name, run_tasks):
    account = make_account("bandwidth")
    response = action(clients["admin"], ACCOUNTS_URL, name, [account.pk])
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.kind == {"sync_now": "sync", "test_connection": "test_connection"}[name]
    run_tasks()
    assert Job.objects.get().status == Job.Status.SUCCEEDED


@pytest.mark.parametrize("role", ["supervisor", "exporter", "anonymous"])
def test_other_roles_cannot_run_actions(clients, bw_recordings, role, make_account):
    pks = [r.pk for r in bw_recordings]
    for name in ["delete_at_provider", "delete_media_at_provider", "request_transcription", "remove_cached_copy"]:
        response = action(clients[role], RECORDINGS_URL, name, pks, post="yes")
        assert response.status_code in (302, 403) and "/admin/login/" in response.get("Location", "/admin/login/")
    account = ProviderAccount.objects.first()
    for name in ["sync_now", "test_connection"]:
        action(clients[role], ACCOUNTS_URL, name, [account.pk])
    assert not Job.objects.exists()
    assert not Recording.objects.filter(delete_requested_at__isnull=False).exists()


def test_an_admin_without_the_delete_permission_gets_no_delete_action(clients, users, bw_recordings):
    from django.contrib.auth.models import Permission

    admin = users["admin"]
    admin.user_permissions.clear()
    group = admin.groups.get()
    group.permissions.remove(Permission.objects.get(codename="delete_at_provider"))
    response = clients["admin"].get(RECORDINGS_URL)
    assert 'value="delete_at_provider"' not in response.content.decode()
    assert 'value="request_transcription"' in response.content.decode()
    action(clients["admin"], RECORDINGS_URL, "delete_at_provider", [bw_recordings[0].pk], post="yes")
    assert not Job.objects.exists()


def make_job(owner, recordings):
    return recordings_job(kind=Job.Kind.REMOVE_CACHE, recordings=recordings, actor=owner)


def test_the_job_page_shows_progress_and_polls_while_running(clients, users, bw_recordings, run_tasks):
    job = make_job(users["admin"], Recording.objects.filter(pk__in=[r.pk for r in bw_recordings]))
    url = reverse("job_detail", args=[job.pk])

    page = clients["admin"].get(url).content.decode()
    assert '<progress max="2" value="0">' in page and "0 of 2 done" in page
    assert 'hx-trigger="every 2s"' in page and f'hx-get="{url}"' in page
    assert f'<a href="{url}">Refresh</a>' in page  # works without JavaScript
    assert "<script>" not in page and " style=" not in page

    partial = clients["admin"].get(url, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in partial and 'id="job-progress"' in partial and 'hx-trigger="every 2s"' in partial

    run_tasks()
    partial = clients["admin"].get(url, headers={"HX-Request": "true"}).content.decode()
    assert '<progress max="2" value="2">' in partial and "Succeeded" in partial
    assert "hx-trigger" not in partial  # finished: polling stops
    assert partial.count('class="job-item job-item-succeeded"') == 2


@pytest.mark.parametrize(
    ("role", "status"), [("admin", 200), ("exporter", 200), ("supervisor", 404), ("anonymous", 302)]
)
def test_only_the_owner_and_admins_see_a_job(clients, users, bw_recordings, role, status):
    job = make_job(users["exporter"], Recording.objects.filter(pk=bw_recordings[0].pk))
    assert clients[role].get(reverse("job_detail", args=[job.pk])).status_code == status


def test_the_job_admin_links_to_the_page(clients, users, bw_recordings):
    job = make_job(users["admin"], Recording.objects.filter(pk=bw_recordings[0].pk))
    page = clients["admin"].get(reverse("admin:recordings_job_change", args=[job.pk])).content.decode()
    assert f'href="/jobs/{job.pk}/"' in page
    assert bw_recordings[0].remote_id in page  # the items inline
