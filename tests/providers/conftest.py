"""Provider accounts pointing at the sandbox (one per provider)."""

from __future__ import annotations

import pytest

from recordings.models import ProviderAccount
from recordings.providers import REGISTRY, RetryPolicy, adapter_for

PROVIDERS = list(REGISTRY)
# Quick retries in tests: the behaviour is the same, the waits are shorter.
FAST = RetryPolicy(attempts=3, backoff=0.05, max_retry_after=5.0)


@pytest.fixture
def make_account(db, sandbox):
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
    def make(account, **kwargs):
        return adapter_for(account, policy=kwargs.pop("policy", FAST), **kwargs)

    return make
