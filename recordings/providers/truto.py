"""Truto unified voice API (../shared/providers/000_*.txt)."""

from __future__ import annotations

from .base import AccountField, Provider


class Truto(Provider):
    name = "truto"
    label = "Truto"
    default_base_url = "https://api.truto.one/unified/voice"
    credential_fields = (AccountField("token", "API token", secret=True),)
    option_fields = (
        AccountField("integrated_account_id", "Integrated account ID", help_text="The integrated account's UUID."),
    )
    can_sync = True
