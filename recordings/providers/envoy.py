"""Envoy calls API (../shared/providers/001_*.txt)."""

from __future__ import annotations

from .base import AccountField, Provider


class Envoy(Provider):
    name = "envoy"
    label = "Envoy"
    default_base_url = "https://tryenvoy.ai/api/v1"
    credential_fields = (AccountField("token", "API token", secret=True),)
    option_fields = (
        AccountField(
            "organization_id",
            "Organization ID",
            required=False,
            help_text="Sent as X-Organization-ID when set.",
        ),
    )
    can_sync = True
    supports_range = True
