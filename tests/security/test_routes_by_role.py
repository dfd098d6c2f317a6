"""Every route and every admin action, tried as anonymous, Supervisor, Exporter and Admin.

The table below is the role matrix (recordings/roles.py) seen from the outside. The coverage tests enumerate
every URL pattern Django resolves (the admin's included) and every admin action, and fail when one has no row
here: a new route cannot be added without deciding who may use it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from recordings.models import Job
from recordings.roles import ADMINS

from .conftest import World, drain

ROLES = ("anonymous", "supervisor", "exporter", "admin")


# -- expectations --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redirect:
    """A 302 whose Location starts with `to`."""

    to: str

    def matches(self, response) -> bool:
        return response.status_code == 302 and response["Location"].startswith(self.to)

    def __str__(self) -> str:
        return f"302 to {self.to}…"


LOGIN = Redirect("/accounts/login/?next=")
ADMIN_LOGIN = Redirect("/admin/login/?next=")
Expect = int | Redirect


def matches(expect: Expect, response) -> bool:
    return expect.matches(response) if isinstance(expect, Redirect) else response.status_code == expect


def by_role(anonymous: Expect, supervisor: Expect, exporter: Expect, admin: Expect) -> dict[str, Expect]:
    return {"anonymous": anonymous, "supervisor": supervisor, "exporter": exporter, "admin": admin}


def everyone(expect: Expect) -> dict[str, Expect]:
    return dict.fromkeys(ROLES, expect)


def admins_only(admin: Expect) -> dict[str, Expect]:
    """An admin page: only staff get in; everyone else is sent to the admin's login page."""
    return by_role(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, admin)


@dataclass(frozen=True)
class Case:
    """One request, with what each role must get back. `url` and `data` are built from the test's world."""

    method: str
    url: Callable[[World], str]
    expect: dict[str, Expect]
    data: Callable[[World], dict] | None = None
    headers: dict = field(default_factory=dict)
    note: str = ""


def at(path: str) -> Callable[[World], str]:
    return lambda world: path


def case(method, url, expect, **kwargs) -> Case:
    return Case(method, at(url) if isinstance(url, str) else url, expect, **kwargs)


RANGE = {"HTTP_RANGE": "bytes=0-99"}

# The portal's own routes (ARCHITECTURE.md, Contract), by URL pattern.
ROUTES: dict[str, list[Case]] = {
    "": [case("GET", "/", everyone(Redirect("/calls/")))],
    "accounts/login/": [
        case("GET", "/accounts/login/", by_role(200, Redirect("/calls/"), Redirect("/calls/"), Redirect("/calls/"))),
    ],
    "accounts/logout/": [
        case("GET", "/accounts/logout/", everyone(405), note="logging out takes a POST (CSRF)"),
        case("POST", "/accounts/logout/", everyone(Redirect("/accounts/login/"))),
    ],
    "healthz": [case("GET", "/healthz", everyone(200))],
    "calls/": [case("GET", "/calls/", by_role(LOGIN, 200, 200, 200)), case("POST", "/calls/", everyone(405))],
    "calls/<int:pk>/": [case("GET", lambda w: f"/calls/{w.call.pk}/", by_role(LOGIN, 200, 200, 200))],
    "recordings/<int:pk>/audio": [
        case("GET", lambda w: f"/recordings/{w.recording.pk}/audio", by_role(LOGIN, 206, 206, 206), headers=RANGE),
        case("POST", lambda w: f"/recordings/{w.recording.pk}/audio", everyone(405)),
    ],
    "recordings/<int:pk>/download": [
        case("GET", lambda w: f"/recordings/{w.recording.pk}/download", by_role(LOGIN, 403, 206, 206), headers=RANGE),
    ],
    "jobs/<int:pk>/": [
        # A job shows to its owner and to admins; anyone else gets a 404 (job ids are not confirmed).
        case("GET", lambda w: f"/jobs/{w.own_job.pk}/", by_role(LOGIN, 404, 200, 200), note="the exporter's job"),
        case("GET", lambda w: f"/jobs/{w.admin_job.pk}/", by_role(LOGIN, 404, 404, 200), note="an admin's job"),
    ],
    "exports/": [
        case("GET", "/exports/", by_role(LOGIN, 403, 200, 200)),
        case(
            "POST",
            "/exports/",
            by_role(LOGIN, 403, Redirect("/exports/"), Redirect("/exports/")),
            data=lambda w: {"scope": "selected", "call": [w.call.pk]},
        ),
    ],
    "exports/<int:pk>/": [
        # The owner and admins; other exporters get a 404 (test_an_export_is_hidden_from_other_exporters).
        case("GET", lambda w: f"/exports/{w.export.pk}/", by_role(LOGIN, 403, 200, 200)),
    ],
    "exports/<int:pk>/download": [
        case("GET", lambda w: f"/exports/{w.export.pk}/download", by_role(LOGIN, 403, 200, 200)),
    ],
    "calls/export.csv": [case("GET", "/calls/export.csv", by_role(LOGIN, 403, 200, 200))],
    # -- the admin site's own routes ----------------------------------------------------------------------------
    "admin/": [case("GET", "/admin/", admins_only(200))],
    "admin/login/": [
        # A signed-in non-staff user sees the login form saying the account may not use the admin.
        case("GET", "/admin/login/", by_role(200, 200, 200, Redirect("/admin/"))),
    ],
    "admin/logout/": [
        # The admin's staff check sends a non-staff user to the admin index (and from there to its login page).
        case("GET", "/admin/logout/", by_role(Redirect("/admin/"), Redirect("/admin/"), Redirect("/admin/"), 405)),
        case(
            "POST",
            "/admin/logout/",
            by_role(Redirect("/admin/"), Redirect("/admin/"), Redirect("/admin/"), Redirect("/accounts/login/")),
        ),
    ],
    "admin/password_change/": [case("GET", "/admin/password_change/", admins_only(200))],
    "admin/password_change/done/": [case("GET", "/admin/password_change/done/", admins_only(200))],
    "admin/autocomplete/": [case("GET", "/admin/autocomplete/", admins_only(403), note="no autocomplete fields")],
    "admin/jsi18n/": [case("GET", "/admin/jsi18n/", admins_only(200))],
    "admin/r/<path:content_type_id>/<path:object_id>/": [
        case("GET", lambda w: w.view_on_site_url, admins_only(404), note="no model has a page on the site"),
    ],
    "admin/^(?P<app_label>auth|django_tasks_database|recordings)/$": [
        case("GET", "/admin/recordings/", admins_only(200)),
        case("GET", "/admin/auth/", admins_only(404), note="Admins hold no permission on users and groups"),
        case("GET", "/admin/django_tasks_database/", admins_only(404)),
    ],
    "admin/(?P<url>.*)$": [case("GET", "/admin/no-such-page/", admins_only(404))],
    "admin/auth/user/<id>/password/": [
        case("GET", lambda w: f"/admin/auth/user/{w.users['exporter'].pk}/password/", admins_only(403)),
    ],
    "admin/recordings/provideraccount/<int:pk>/import/": [
        case("GET", lambda w: f"/admin/recordings/provideraccount/{w.account.pk}/import/", admins_only(200)),
    ],
}

# Every model registered in the admin: what the Admins role gets on each of its pages (everyone else is sent to the
# admin's login page). Users, groups and task results are for superusers only; provider rows are read-only.
PAGES = ("changelist", "add", "change", "delete", "history")
READ_ONLY = {"changelist": 200, "add": 403, "change": 200, "delete": 403, "history": 200}
NONE = dict.fromkeys(PAGES, 403)
ADMIN_PAGES: dict[str, dict[str, int]] = {
    "auth.group": NONE,
    "auth.user": NONE,
    "django_tasks_database.dbtaskresult": NONE,
    "recordings.provideraccount": dict.fromkeys(PAGES, 200),
    "recordings.call": READ_ONLY,
    "recordings.recording": READ_ONLY,
    "recordings.transcript": READ_ONLY,
    "recordings.auditevent": READ_ONLY,
    "recordings.job": READ_ONLY,
}

# Every admin action: what an admin gets (status, and text on the page after following redirects, which proves the
# action ran: a refused action also redirects back). Everyone else is sent to the admin's login page.
ACTIONS: dict[tuple[str, str], tuple[int, str]] = {
    ("recordings.provideraccount", "sync_now"): (200, "Sync queued for 1 item(s)"),
    ("recordings.provideraccount", "test_connection"): (200, "Test connection queued for 1 item(s)"),
    ("recordings.provideraccount", "delete_selected"): (200, "delete-selected-confirmation"),
    ("recordings.recording", "delete_at_provider"): (200, "Are you sure?"),
    ("recordings.recording", "delete_media_at_provider"): (200, "Are you sure?"),
    ("recordings.recording", "request_transcription"): (200, "Request transcription queued for 1 item(s)"),
    ("recordings.recording", "refresh_transcription"): (200, "Refresh transcription queued for 1 item(s)"),
    ("recordings.recording", "remove_cached_copy"): (200, "Remove cached copy queued for 1 item(s)"),
    ("recordings.auditevent", "export_csv"): (200, "time_utc,user,action"),
    ("auth.group", "delete_selected"): (403, ""),
    ("auth.user", "delete_selected"): (403, ""),
}


# -- enumeration -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    pattern: str
    name: str  # namespaced, e.g. admin:recordings_call_change; "" when unnamed


def all_routes(patterns=None, prefix: str = "", namespace: str = "") -> list[Route]:
    """Every URL pattern Django resolves, with its full pattern text and namespaced name."""
    routes = []
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}" if namespace and entry.namespace else entry.namespace or namespace
            routes += all_routes(entry.url_patterns, prefix + str(entry.pattern), inner)
        else:
            assert isinstance(entry, URLPattern)
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name or ""
            routes.append(Route(prefix + str(entry.pattern), name))
    return routes


def model_route_rule() -> dict[str, tuple[str, str]]:
    """Admin pattern -> (model label, page) for the standard pages of every registered model."""
    rule = {}
    for model in admin.site._registry:
        opts = model._meta
        base = f"admin/{opts.app_label}/{opts.model_name}/"
        rule[base] = (opts.label_lower, "changelist")
        rule[base + "add/"] = (opts.label_lower, "add")
        for page in ("history", "delete", "change"):
            rule[f"{base}<path:object_id>/{page}/"] = (opts.label_lower, page)
        rule[base + "<path:object_id>/"] = (opts.label_lower, "redirect")
    return rule


def all_actions() -> dict[tuple[str, str], admin.ModelAdmin]:
    """(model label, action name) for every action of every registered ModelAdmin (as a superuser sees them)."""
    request = RequestFactory().get("/admin/")
    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    found = {}
    for model, model_admin in admin.site._registry.items():
        for name in model_admin.get_actions(request):
            found[(model._meta.label_lower, name)] = model_admin
    return found


def test_every_route_has_an_expectation_for_every_role():
    rule = model_route_rule()
    existing = {route.pattern for route in all_routes()}
    missing = sorted(existing - set(ROUTES) - set(rule))
    assert not missing, f"Routes with no row in ROUTES (decide who may use them): {missing}"
    stale = sorted(set(ROUTES) - existing)
    assert not stale, f"Rows in ROUTES whose route no longer exists: {stale}"
    for pattern, cases in ROUTES.items():
        assert cases, pattern
        for each in cases:
            assert set(each.expect) == set(ROLES), f"{pattern} {each.method}: {sorted(each.expect)}"


def test_every_admin_model_and_action_has_an_expectation():
    assert {m._meta.label_lower for m in admin.site._registry} == set(ADMIN_PAGES)
    found = set(all_actions())
    assert not found - set(ACTIONS), f"Admin actions with no row in ACTIONS: {sorted(found - set(ACTIONS))}"
    assert not set(ACTIONS) - found, f"Rows in ACTIONS with no such action: {sorted(set(ACTIONS) - found)}"


def test_the_axes_admin_is_not_installed():
    # django-axes' own admin would add routes no role holds; lockouts are read in the audit log instead.
    assert not any(route.pattern.startswith("admin/axes/") for route in all_routes())


def admin_model_cases(label: str, page: str) -> list[Case]:
    app_label, model_name = label.split(".")
    base = f"/admin/{app_label}/{model_name}/"
    if page == "changelist":
        return [case("GET", base, admins_only(ADMIN_PAGES[label]["changelist"]))]
    if page == "add":
        return [case("GET", base + "add/", admins_only(ADMIN_PAGES[label]["add"]))]
    if page == "redirect":  # /admin/app/model/<id>/ redirects to its change page, after the staff check
        return [case("GET", lambda w: f"{base}{w.objects[label].pk}/", admins_only(Redirect(base)))]
    return [case("GET", lambda w: f"{base}{w.objects[label].pk}/{page}/", admins_only(ADMIN_PAGES[label][page]))]


def cases_for(pattern: str) -> list[Case]:
    if pattern in ROUTES:
        return ROUTES[pattern]
    return admin_model_cases(*model_route_rule()[pattern])


def existing_patterns() -> list[str]:
    existing = {route.pattern for route in all_routes()}
    return sorted(existing & (set(ROUTES) | set(model_route_rule())))


def send(client, each: Case, world: World):
    method = getattr(client, each.method.lower())
    args = (each.data(world),) if each.data else ()
    response = method(each.url(world), *args, **each.headers)
    return drain(response)


@pytest.mark.parametrize("pattern", existing_patterns())
def test_route_as_each_role(pattern, world, clients):
    wrong = []
    for each in cases_for(pattern):
        for role in ROLES:
            response = send(clients[role], each, world)
            expected = each.expect[role]
            if not matches(expected, response):
                where = response.get("Location", "")
                wrong.append(f"{each.method} {each.url(world)} as {role}: {response.status_code} {where} ≠ {expected}")
    assert not wrong, "\n".join(wrong)


def test_an_export_is_hidden_from_other_exporters(world, client):
    from recordings.roles import EXPORTERS
    from recordings.services.users import user_set_role

    client.force_login(user_set_role(username="exporter2", role=EXPORTERS, password="pw"))
    assert client.get(f"/exports/{world.export.pk}/").status_code == 404
    assert client.get(f"/exports/{world.export.pk}/download").status_code == 404
    assert client.get(f"/jobs/{world.own_job.pk}/").status_code == 404


# -- admin actions ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label, action", sorted(ACTIONS))
def test_admin_action_as_each_role(label, action, world, clients):
    target = world.objects[label]
    app_label, model_name = label.split(".")
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    data = {"action": action, "_selected_action": [target.pk], "index": 0}
    status, marker = ACTIONS[(label, action)]
    jobs_before = Job.objects.count()
    for role in ("anonymous", "supervisor", "exporter"):
        response = clients[role].post(url, data)
        assert ADMIN_LOGIN.matches(response), f"{action} as {role}: {response.status_code}"
    assert Job.objects.count() == jobs_before, "an action ran for a role that may not run it"

    response = clients["admin"].post(url, data, follow=True)
    assert response.status_code == status, f"{action} as admin: {response.status_code}"
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert marker in body.decode(), f"{action} as admin did not run: {body.decode()[:2000]}"


def test_an_admin_lacking_a_permission_of_the_matrix_gets_no_action_for_it(world, users, clients):
    from django.contrib.auth.models import Permission

    admin_user = users["admin"]
    admin_user.user_permissions.clear()
    group = Group.objects.get(name=ADMINS)
    group.permissions.remove(Permission.objects.get(codename="request_transcription"))
    url = reverse("admin:recordings_recording_changelist")
    page = clients["admin"].get(url).content.decode()
    assert 'value="delete_at_provider"' in page
    assert 'value="request_transcription"' not in page
    response = clients["admin"].post(
        url, {"action": "request_transcription", "_selected_action": [world.recording.pk], "index": 0}, follow=True
    )
    assert "No action selected." in response.content.decode()
    assert not Job.objects.filter(kind=Job.Kind.TRANSCRIBE).exists()


def test_route_table_names_are_reversible():
    # A sanity check on the enumeration itself: named routes resolve back to their pattern.
    for route in all_routes():
        if route.name and not re.search(r"[<(^]", route.pattern):
            assert reverse(route.name) == "/" + route.pattern
