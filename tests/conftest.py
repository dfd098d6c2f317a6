"""Shared fixtures: users of each role, clients logged in as them, the provider sandbox."""

from __future__ import annotations

import pytest
from django.test import Client

from recordings.models import Call, ProviderAccount, Recording
from recordings.roles import ADMINS, EXPORTERS, SUPERVISORS
from recordings.services.users import user_set_role

pytest_plugins = ["sandbox.pytest_plugin", "tests.portal_server"]

ROLE_USERS = {"supervisor": SUPERVISORS, "exporter": EXPORTERS, "admin": ADMINS}


@pytest.fixture(autouse=True)
def _clear_cache():
    """Row ids repeat across tests: nothing cached by one test may leak into the next."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def users(db):
    return {name: user_set_role(username=name, role=role, password="pw") for name, role in ROLE_USERS.items()}


@pytest.fixture
def clients(users) -> dict[str, Client]:
    """A logged-in client per role, plus `anonymous`."""
    result = {"anonymous": Client()}
    for name, user in users.items():
        client = Client()
        client.force_login(user)
        result[name] = client
    return result


@pytest.fixture
def account(db) -> ProviderAccount:
    return ProviderAccount.objects.create(
        name="Bandwidth main",
        provider="bandwidth",
        base_url="http://127.0.0.1:9/bandwidth/api/v2",
        credentials={"username": "api-user", "password": "s3cret-Pa55word"},
        options={"account_id": "9900000"},
    )


@pytest.fixture
def call(account) -> Call:
    import datetime as dt

    return Call.objects.create(
        account=account,
        provider=account.provider,
        remote_id="c-0001",
        direction="inbound",
        from_number="+15550102030",
        to_number="+15550109999",
        agent="Ada",
        campaign="Support",
        started_at=dt.datetime(2026, 10, 1, 9, 30, tzinfo=dt.UTC),
        duration=65.0,
    )


@pytest.fixture
def recording(call) -> Recording:
    return Recording.objects.create(
        call=call, account=call.account, remote_id="r-0001", format="wav", content_type="audio/vnd.wave"
    )


@pytest.fixture
def make_account(db, sandbox):
    """make_account(provider, **overrides): an account pointing at the sandbox."""

    def make(provider: str, **overrides) -> ProviderAccount:
        entry = sandbox.index["providers"][provider]
        fields = {
            "name": f"Sandbox {provider}",
            "provider": provider,
            "base_url": entry["base_url"],
            "credentials": dict(entry["credentials"]),
            "options": dict(entry.get("options", {})),
        }
        fields.update(overrides)
        return ProviderAccount.objects.create(**fields)

    return make


@pytest.fixture
def fast_adapter():
    """fast_adapter(account): its adapter with quick retries."""
    from recordings.providers import adapter_for

    from .helpers import FAST

    def make(account, **kwargs):
        return adapter_for(account, policy=kwargs.pop("policy", FAST), **kwargs)

    return make
