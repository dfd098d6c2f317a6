"""Login protection: django-axes locks a username out from one address after 5 failures for 15 minutes; audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from recordings.models import AuditEvent

LOGIN = reverse("login")
HERE, ELSEWHERE = "198.51.100.7", "203.0.113.9"


def attempt(client, username="supervisor", password="wrong", address=HERE, url=LOGIN, **extra):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address, **extra)


def fail(client, times, **kwargs):
    return [attempt(client, **kwargs).status_code for _ in range(times)]


def logged_in_as(client) -> str | None:
    from django.contrib.auth import get_user

    user = get_user(client)
    return user.get_username() if user.is_authenticated else None


def test_it_locks_out_on_the_fifth_failure_and_refuses_even_the_right_password(client, users):
    assert fail(client, 4) == [200, 200, 200, 200]
    locked = attempt(client)
    assert locked.status_code == 429
    assert "registration/locked_out.html" in [t.name for t in locked.templates]
    page = locked.content.decode()
    assert "Too many failed logins" in page
    assert "paused for 15 minutes" in page
    assert "Traceback" not in page

    refused = attempt(client, password="pw")
    assert refused.status_code == 429
    assert logged_in_as(client) is None


def test_failures_and_lockouts_are_audited_without_the_password(client, users):
    fail(client, 6, password="guess-Secret-9")
    failed = AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED)
    assert failed.count() == 6
    assert {e.client_ip for e in failed} == {HERE}
    locked = AuditEvent.objects.filter(action=AuditEvent.Action.LOCKED_OUT)
    assert locked.count() == 2  # the fifth failure, and the try while locked out
    assert {e.details["username"] for e in locked} == {"supervisor"}
    assert {e.client_ip for e in locked} == {HERE}
    for event in AuditEvent.objects.all():
        assert "guess-Secret-9" not in str(event.details)
    assert all("guess-Secret-9" not in a.post_data for a in AccessAttempt.objects.all())


def test_the_lock_is_per_username_and_address(client, users):
    fail(client, 5)
    assert attempt(client, password="pw", address=ELSEWHERE).status_code == 302
    assert logged_in_as(client) == "supervisor"
    client.post(reverse("logout"))
    assert attempt(client, username="exporter", password="pw").status_code == 302
    assert logged_in_as(client) == "exporter"


def test_a_forwarded_for_header_does_not_change_the_address(client, users):
    fail(client, 5)
    response = attempt(client, password="pw", HTTP_X_FORWARDED_FOR=ELSEWHERE)
    assert response.status_code == 429


def test_the_admin_login_is_protected_the_same_way(client, users):
    admin_login = reverse("admin:login")
    assert fail(client, 5, username="admin", url=admin_login)[-1] == 429
    assert attempt(client, username="admin", password="pw", url=admin_login).status_code == 429
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LOCKED_OUT, details__username="admin").exists()


def age_attempts(minutes: float) -> None:
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=minutes))


def test_the_lockout_lasts_15_minutes(client, users):
    fail(client, 5)
    age_attempts(14)
    assert attempt(client, password="pw").status_code == 429
    age_attempts(15.5)
    assert attempt(client, password="pw").status_code == 302
    assert logged_in_as(client) == "supervisor"


def test_a_success_clears_the_count(client, users):
    fail(client, 4)
    assert attempt(client, password="pw").status_code == 302
    client.post(reverse("logout"))
    assert fail(client, 4) == [200, 200, 200, 200]
    assert attempt(client, password="pw").status_code == 302


def test_settings_are_five_failures_fifteen_minutes_username_and_address():
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_COOLOFF_TIME == timedelta(minutes=15)
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"


# -- sessions ---------------------------------------------------------------------------------------------------


def test_a_session_expires_after_eight_hours_and_at_browser_close(client, users):
    assert attempt(client, password="pw").status_code == 302
    assert client.session.get_expiry_age() == settings.SESSION_COOKIE_AGE == 8 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert not cookie["max-age"] and not cookie["expires"]  # a browser-session cookie
    assert cookie["httponly"]


def test_an_expired_session_is_sent_to_the_login_page(client, users):
    attempt(client, password="pw")
    assert client.get(reverse("calls")).status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    cache.clear()  # sessions are read through the cache (cached_db)
    response = client.get(reverse("calls"))
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


@pytest.mark.parametrize("role", ["supervisor", "exporter", "admin"])
def test_logging_in_rotates_the_session_key(client, users, role):
    client.get(LOGIN)
    before = client.cookies.get(settings.SESSION_COOKIE_NAME)
    attempt(client, username=role, password="pw")
    after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert after and (before is None or before.value != after)


# -- behind the reverse proxy ---------------------------------------------------------------------------------------

PROXY = "10.0.0.5"


def test_behind_a_trusted_proxy_clients_are_told_apart_by_x_forwarded_for(client, users, settings):
    settings.TRUSTED_PROXIES = [PROXY]
    fail(client, 5, address=PROXY, HTTP_X_FORWARDED_FOR=f"{HERE}, {PROXY}")
    assert attempt(client, password="pw", address=PROXY, HTTP_X_FORWARDED_FOR=HERE).status_code == 429
    # Another client behind the same proxy is not locked out.
    assert attempt(client, password="pw", address=PROXY, HTTP_X_FORWARDED_FOR=ELSEWHERE).status_code == 302
    locked = AuditEvent.objects.filter(action=AuditEvent.Action.LOCKED_OUT)
    assert {(e.client_ip, e.details["username"]) for e in locked} == {(HERE, "supervisor")}
    assert AuditEvent.objects.get(action=AuditEvent.Action.LOGIN).client_ip == ELSEWHERE


def test_a_client_cannot_pick_its_address_through_the_proxy(client, users, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    # The proxy appends the address it saw; what the client sent before that is not trusted.
    fail(client, 5, address=PROXY, HTTP_X_FORWARDED_FOR=f"{ELSEWHERE}, {HERE}")
    assert attempt(client, password="pw", address=PROXY, HTTP_X_FORWARDED_FOR=f"192.0.2.99, {HERE}").status_code == 429
    garbled = attempt(client, username="exporter", password="x", address=PROXY, HTTP_X_FORWARDED_FOR="nonsense")
    assert garbled.status_code == 200
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED).latest("id").client_ip == PROXY


def test_a_bad_trusted_proxies_setting_stops_the_start():
    from tests.test_settings import PRODUCTION, run_manage

    result = run_manage("check", env={**PRODUCTION, "TRUSTED_PROXIES": "10.0.0.5,proxy.internal"})
    assert result.returncode != 0
    assert "TRUSTED_PROXIES: 'proxy.internal' is not an IP address or network." in result.stderr
