"""Accounts with their calls brought in from the sandbox, and a fresh media cache per test."""

from __future__ import annotations

import io

import pytest
import requests

from recordings.models import ProviderAccount
from recordings.services.imports import report_import
from recordings.services.sync import account_sync


@pytest.fixture(autouse=True)
def media_cache_dir(tmp_path, settings):
    settings.MEDIA_CACHE_DIR = tmp_path / "media-cache"
    return settings.MEDIA_CACHE_DIR


@pytest.fixture
def brought_in(make_account, sandbox_clean):
    """An account of `provider` with its calls in the database."""

    def make(provider: str) -> ProviderAccount:
        account = make_account(provider)
        if account.adapter_class.can_sync:
            account_sync(account=account)
        else:
            report = requests.get(sandbox_clean.provider(provider)["report_url"], timeout=30).content
            report_import(account=account, stream=io.BytesIO(report))
        return account

    return make
