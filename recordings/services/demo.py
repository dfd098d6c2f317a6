"""The demo: one account per provider pointing at the sandbox, with its calls brought in."""

from __future__ import annotations

import io
import time

import requests

from ..models import ProviderAccount
from ..providers import REGISTRY
from .imports import report_import
from .sync import SyncFailed, account_sync


def sandbox_index(url: str, *, wait: float = 0.0) -> dict:
    """The sandbox's `GET /` index; waits up to `wait` seconds for it to come up."""
    deadline = time.monotonic() + wait
    while True:
        try:
            response = requests.get(url.rstrip("/") + "/", timeout=5)
            response.raise_for_status()
            return response.json()
        except requests.RequestException:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def demo_accounts_ensure(*, sandbox_url: str, wait: float = 0.0) -> list[tuple[ProviderAccount, str]]:
    """Create or update one account per provider from the sandbox index, then sync or import its calls.

    Returns (account, outcome) pairs. Running it twice changes nothing.
    """
    index = sandbox_index(sandbox_url, wait=wait)["providers"]
    results = []
    for name, cls in REGISTRY.items():
        entry = index[name]
        account = ProviderAccount.objects.filter(name=f"Sandbox {cls.label}").first()
        if account is None:
            account = ProviderAccount(name=f"Sandbox {cls.label}", provider=name)
        options = dict(entry.get("options", {}))
        if entry.get("report_timezone"):
            options["time_zone"] = entry["report_timezone"]  # report times are local to the account
        changed = (
            account.pk is None
            or account.base_url != entry["base_url"]
            or account.credentials != entry["credentials"]
            or account.options != options
        )
        if changed:
            account.base_url = entry["base_url"]
            account.credentials = entry["credentials"]
            account.options = options
            account.save()
        results.append((account, _bring_in_calls(account, entry)))
    return results


def _bring_in_calls(account: ProviderAccount, entry: dict) -> str:
    if account.adapter_class.can_sync:
        try:
            counts = account_sync(account=account)
        except SyncFailed as exc:
            return f"sync failed: {exc.error}"
        return f"synced ({counts.calls_created} new calls, {counts.seen_recordings} recordings listed)"
    response = requests.get(entry["report_url"], timeout=30)
    response.raise_for_status()
    result = report_import(account=account, stream=io.BytesIO(response.content), filename="sandbox-report.csv")
    return f"report imported ({result.summary()})"
