"""The five emulated providers, one module each, registered by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.providers.ameyo import Ameyo
from sandbox.providers.bandwidth import Bandwidth
from sandbox.providers.base import Provider
from sandbox.providers.envoy import Envoy
from sandbox.providers.kaleyra import Kaleyra
from sandbox.providers.truto import Truto

if TYPE_CHECKING:
    from sandbox.server import SandboxState

REGISTRY: dict[str, type[Provider]] = {
    "bandwidth": Bandwidth,
    "truto": Truto,
    "envoy": Envoy,
    "kaleyra": Kaleyra,
    "ameyo": Ameyo,
}


def build_providers(state: SandboxState) -> dict[str, Provider]:
    return {name: cls(state) for name, cls in REGISTRY.items()}
