"""Audit rows: one function writes them all."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from ..models import AuditEvent


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address. Behind a proxy, configure it to set REMOTE_ADDR (gunicorn --forwarded-allow-ips)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


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
