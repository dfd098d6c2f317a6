"""Provider accounts in the admin: each provider's own write-only credential inputs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from recordings.models import AuditEvent, ProviderAccount
from recordings.providers import REGISTRY

ADD_URL = reverse("admin:recordings_provideraccount_add")

SAMPLE = {
    "bandwidth": ({"username": "bw-user", "password": "bw-Secret-1"}, {"account_id": "9900000"}),
    "truto": ({"token": "truto-Secret-2"}, {"integrated_account_id": "62f44730-dd91-461e-bd6a-aedd9e0ad79d"}),
    "envoy": ({"token": "envoy-Secret-3"}, {"organization_id": "org-1"}),
    "kaleyra": ({"api_key": "kaleyra-Secret-4"}, {"sid": "HX0000071US"}),
    "ameyo": ({"username": "sup@example.com", "password": "ameyo-Secret-5"}, {}),
}


def form_data(provider: str, name: str, credentials: dict, options: dict, base_url: str = "") -> dict:
    data = {"name": name, "provider": provider, "base_url": base_url, "is_active": "on"}
    data.update({f"cred__{provider}__{k}": v for k, v in credentials.items()})
    data.update({f"opt__{provider}__{k}": v for k, v in options.items()})
    return data


def test_sample_covers_every_provider():
    assert set(SAMPLE) == set(REGISTRY)


@pytest.mark.parametrize("provider", sorted(SAMPLE))
def test_admin_creates_an_account_with_that_providers_fields(clients, provider):
    credentials, options = SAMPLE[provider]
    base_url = "https://ameyo.example.com:8443" if provider == "ameyo" else ""
    response = clients["admin"].post(ADD_URL, form_data(provider, f"{provider} one", credentials, options, base_url))
    assert response.status_code == 302, response.content.decode()[:3000]
    account = ProviderAccount.objects.get(name=f"{provider} one")
    assert account.credentials == credentials
    assert account.options == options
    event = AuditEvent.objects.get(action="credential_change")
    assert event.details == {"fields": sorted(credentials, key=list(credentials).index), "created": True}
    for value in credentials.values():
        assert value not in str(event.details)


def test_add_form_requires_the_chosen_providers_credentials(clients):
    response = clients["admin"].post(ADD_URL, form_data("bandwidth", "bw", {"username": "u"}, {"account_id": "1"}))
    assert response.status_code == 200
    assert "Bandwidth needs this." in response.content.decode()
    assert not ProviderAccount.objects.exists()


def test_ameyo_needs_a_base_url(clients):
    credentials, options = SAMPLE["ameyo"]
    response = clients["admin"].post(ADD_URL, form_data("ameyo", "am", credentials, options))
    assert response.status_code == 200
    assert "has no public API address" in response.content.decode()


def test_change_form_never_renders_credentials_and_blank_keeps_them(clients, account):
    url = reverse("admin:recordings_provideraccount_change", args=[account.pk])
    page = clients["admin"].get(url).content.decode()
    assert "s3cret-Pa55word" not in page
    assert "api-user" not in page
    assert "Stored encrypted; leave blank to keep it." in page
    # Only this provider's fields are offered.
    assert "cred__truto__token" not in page

    data = form_data("bandwidth", account.name, {"username": "", "password": ""}, {"account_id": "9900001"})
    data.pop("provider")  # disabled on change
    response = clients["admin"].post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    account.refresh_from_db()
    assert account.credentials == {"username": "api-user", "password": "s3cret-Pa55word"}
    assert account.options == {"account_id": "9900001"}
    assert not AuditEvent.objects.filter(action="credential_change").exists()
    assert AuditEvent.objects.filter(action="account_change").exists()


def test_changing_a_password_is_audited_without_the_value(clients, account):
    url = reverse("admin:recordings_provideraccount_change", args=[account.pk])
    data = form_data("bandwidth", account.name, {"username": "", "password": "n3w-Secret"}, {"account_id": "9900000"})
    data.pop("provider")
    assert clients["admin"].post(url, data).status_code == 302
    account.refresh_from_db()
    assert account.credentials["password"] == "n3w-Secret"
    event = AuditEvent.objects.get(action="credential_change")
    assert event.details == {"fields": ["password"], "created": False}
    assert event.actor_username == "admin"


@pytest.mark.parametrize("role", ["anonymous", "supervisor", "exporter"])
def test_only_admins_reach_the_account_admin(clients, role, account):
    response = clients[role].get(reverse("admin:recordings_provideraccount_changelist"))
    assert response.status_code == 302  # the admin sends non-staff to its login page
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize(
    "name",
    ["provideraccount", "call", "recording", "transcript", "auditevent", "job"],
)
def test_admin_pages_render(clients, name, recording):
    assert clients["admin"].get(reverse(f"admin:recordings_{name}_changelist")).status_code == 200


def test_audit_log_cannot_be_edited_or_deleted_in_the_admin(clients, users):
    event = AuditEvent.objects.create(action="sync")
    assert clients["admin"].get(reverse("admin:recordings_auditevent_delete", args=[event.pk])).status_code == 403
    change = clients["admin"].get(reverse("admin:recordings_auditevent_change", args=[event.pk]))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
