"""The shared base of provider adapters: declared fields and capabilities (HTTP plumbing in issue 4)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AccountField:
    """One setting an account of a provider needs; secret ones are credentials, encrypted and write-only."""

    key: str
    label: str
    secret: bool = False
    required: bool = True
    help_text: str = ""


class Provider:
    """A telephony provider: what an account needs and what the provider can do."""

    name: str = ""
    label: str = ""
    default_base_url: str = ""
    # Credentials (encrypted at rest, never rendered) and options (plain settings such as an account id).
    credential_fields: tuple[AccountField, ...] = ()
    option_fields: tuple[AccountField, ...] = ()

    can_sync: bool = False
    """Calls and recordings are listed by the provider's API (otherwise a report is imported)."""
    can_import_report: bool = False
    """Calls enter by importing the provider's CSV report."""
    supports_range: bool = False
    """The upstream media answers byte ranges; otherwise the media cache gives seeking."""
    can_delete: bool = False
    """The whole recording can be deleted at the provider."""
    can_delete_media: bool = False
    """Only the media can be deleted at the provider, keeping the metadata."""
    can_transcribe: bool = False
    """A transcription can be requested and fetched."""

    @classmethod
    def secret_keys(cls) -> list[str]:
        return [f.key for f in cls.credential_fields]
