"""Login, logout, navigation per role, /healthz."""

from __future__ import annotations

import pytest
from django.urls import reverse

from recordings.models import AuditEvent

NAV = {
    "supervisor": {"Calls"},
    "exporter": {"Calls", "Exports"},
    "admin": {"Calls", "Exports", "Admin"},
}


def nav_labels(html: str) -> set[str]:
    import re

    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S).group(1)
    return set(re.findall(r">([^<>]+)</a>", nav))


@pytest.mark.parametrize("role", sorted(NAV))
def test_navigation_shows_each_role_only_its_items(clients, role):
    response = clients[role].get(reverse("calls"))
    assert response.status_code == 200
    assert nav_labels(response.content.decode()) == NAV[role]


def test_anonymous_is_sent_to_login(clients):
    response = clients["anonymous"].get(reverse("calls"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_renders(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b"csrfmiddlewaretoken" in response.content


def test_login_and_logout_are_audited(client, users):
    response = client.post(reverse("login"), {"username": "supervisor", "password": "pw"})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="login", actor_username="supervisor").count() == 1
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="logout", actor_username="supervisor").count() == 1


def test_failed_login_is_audited_without_the_password(client, users):
    response = client.post(reverse("login"), {"username": "supervisor", "password": "wrong-guess"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    event = AuditEvent.objects.get(action="login_failed")
    assert event.details == {"username": "supervisor"}
    assert "wrong-guess" not in str(event.details)


def test_exports_page_is_refused_to_supervisors(clients):
    assert clients["supervisor"].get(reverse("exports")).status_code == 403
    assert clients["exporter"].get(reverse("exports")).status_code == 200


def test_calls_page_lists_calls_with_escaped_provider_data(clients, call):
    call.agent = "<script>alert(1)</script>"
    call.save()
    html = clients["supervisor"].get(reverse("calls")).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html


def test_empty_calls_page_explains_itself(clients):
    assert b"No calls yet" in clients["supervisor"].get(reverse("calls")).content


def test_healthz_reports_database_and_worker(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "worker_last_seen": None}


def test_healthz_reports_when_a_worker_last_ran_a_task(client, db):
    from django.utils import timezone
    from django_tasks_db.models import DBTaskResult

    finished = timezone.now()
    DBTaskResult.objects.create(
        task_path="recordings.tasks.noop",
        args_kwargs={"args": [], "kwargs": {}},
        status="SUCCESSFUL",
        queue_name="default",
        backend_name="default",
        started_at=finished,
        finished_at=finished,
    )
    assert client.get("/healthz").json()["worker_last_seen"] == finished.isoformat()
