"""Kaleyra.io call recording extraction (../shared/providers/002_*.txt)."""

from __future__ import annotations

from .base import AccountField, Provider


class Kaleyra(Provider):
    name = "kaleyra"
    label = "Kaleyra"
    default_base_url = "https://api.kaleyra.io/v1"
    credential_fields = (AccountField("api_key", "API key", secret=True),)
    option_fields = (AccountField("sid", "Account SID", help_text="The SID in the API path, e.g. HXXXXXXX071US."),)
    can_import_report = True
    supports_range = True
