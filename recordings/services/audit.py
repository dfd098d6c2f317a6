"""Audit rows: one function writes them all."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.db import models
from django.http import HttpRequest

from ..models import AuditEvent


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address: REMOTE_ADDR, or, when that is one of settings.TRUSTED_PROXIES, the nearest address in
    X-Forwarded-For that is not a trusted proxy. The audit log and the login lockout (django-axes) both use it, so a
    client cannot choose its own address by sending the header, and clients behind the proxy are told apart."""
    if request is None:
        return None
    remote = _address(request.META.get("REMOTE_ADDR"))
    if remote is None or not _trusted(remote):
        return remote
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _address(hop)
        if address is None:
            break  # a garbled chain: keep the proxy's address rather than guess
        if not _trusted(address):
            return address
    return remote


def _address(text: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((text or "").strip()))
    except ValueError:
        return None


def _trusted(address: str) -> bool:
    networks = [ipaddress.ip_network(entry, strict=False) for entry in settings.TRUSTED_PROXIES]
    return any(ipaddress.ip_address(address) in network for network in networks)


def audit_record(
    *,
    action: str,
    actor=None,
    target: models.Model | None = None,
    request: HttpRequest | None = None,
    provider: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit row. Details must never hold a credential or a provider URL."""
    if actor is None and request is not None and request.user.is_authenticated:
        actor = request.user
    if target is not None and not provider:
        provider = getattr(target, "provider", "") or getattr(getattr(target, "account", None), "provider", "")
    return AuditEvent.objects.create(
        action=action,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_username=actor.get_username() if actor is not None and actor.is_authenticated else "",
        target_type=target._meta.model_name if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=str(target)[:200] if target is not None else "",
        provider=provider,
        client_ip=client_ip(request),
        details=details or {},
    )
