"""Provider adapters, one module per provider, and the registry from the provider choice to its class."""

from __future__ import annotations

from .ameyo import Ameyo
from .bandwidth import Bandwidth
from .base import (
    BACKGROUND,
    INTERACTIVE,
    AccountField,
    MediaStream,
    Provider,
    RemoteCall,
    RemoteRecording,
    RemoteTranscript,
    RetryPolicy,
)
from .envoy import Envoy
from .errors import NotSupportedReport, ProviderError
from .kaleyra import Kaleyra
from .truto import Truto

REGISTRY: dict[str, type[Provider]] = {cls.name: cls for cls in (Bandwidth, Truto, Envoy, Kaleyra, Ameyo)}

PROVIDER_CHOICES = [(name, cls.label) for name, cls in REGISTRY.items()]


def get_provider(name: str) -> type[Provider]:
    try:
        return REGISTRY[name]
    except KeyError:
        raise LookupError(f"Unknown provider {name!r}; expected one of {', '.join(REGISTRY)}") from None


def adapter_for(account, **kwargs) -> Provider:
    """The adapter instance for an account."""
    return get_provider(account.provider)(account, **kwargs)


__all__ = [
    "BACKGROUND",
    "INTERACTIVE",
    "PROVIDER_CHOICES",
    "REGISTRY",
    "AccountField",
    "MediaStream",
    "NotSupportedReport",
    "Provider",
    "ProviderError",
    "RemoteCall",
    "RemoteRecording",
    "RemoteTranscript",
    "RetryPolicy",
    "adapter_for",
    "get_provider",
]
