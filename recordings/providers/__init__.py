"""Provider adapters, one module per provider, and the registry from the provider choice to its class."""

from __future__ import annotations

from .ameyo import Ameyo
from .bandwidth import Bandwidth
from .base import AccountField, Provider
from .envoy import Envoy
from .kaleyra import Kaleyra
from .truto import Truto

REGISTRY: dict[str, type[Provider]] = {cls.name: cls for cls in (Bandwidth, Truto, Envoy, Kaleyra, Ameyo)}

PROVIDER_CHOICES = [(name, cls.label) for name, cls in REGISTRY.items()]


def get_provider(name: str) -> type[Provider]:
    try:
        return REGISTRY[name]
    except KeyError:
        raise LookupError(f"Unknown provider {name!r}; expected one of {', '.join(REGISTRY)}") from None


__all__ = ["PROVIDER_CHOICES", "REGISTRY", "AccountField", "Provider", "get_provider"]
