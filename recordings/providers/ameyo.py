"""Ameyo (Exotel contact centre) voice log download (../shared/providers/003_*.txt)."""

from __future__ import annotations

from .base import AccountField, Provider


class Ameyo(Provider):
    name = "ameyo"
    label = "Ameyo"
    # Ameyo is usually on-premises: there is no single public host, so base_url must be set per account.
    default_base_url = ""
    credential_fields = (
        AccountField("username", "User ID"),
        AccountField("password", "Password / token", secret=True),
    )
    option_fields = (AccountField("target_format", "Audio format", required=False, help_text="mp3 (default) or wav."),)
    can_import_report = True
