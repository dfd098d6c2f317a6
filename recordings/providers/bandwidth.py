"""Bandwidth Voice API recordings (../shared/providers/004_*.txt)."""

from __future__ import annotations

from .base import AccountField, Provider


class Bandwidth(Provider):
    name = "bandwidth"
    label = "Bandwidth"
    default_base_url = "https://voice.bandwidth.com/api/v2"
    credential_fields = (
        AccountField("username", "API user"),
        AccountField("password", "API password", secret=True),
    )
    option_fields = (AccountField("account_id", "Account ID", help_text="Your Bandwidth account id, e.g. 9900000."),)
    can_sync = True
    supports_range = True
    can_delete = True
    can_delete_media = True
    can_transcribe = True
