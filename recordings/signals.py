"""Login, logout, failed logins and lockouts write audit rows."""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from .models import AuditEvent
from .services.audit import audit_record


@receiver(user_logged_in)
def audit_login(sender, request, user, **kwargs) -> None:
    audit_record(action=AuditEvent.Action.LOGIN, actor=user, request=request)


@receiver(user_logged_out)
def audit_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(action=AuditEvent.Action.LOGOUT, actor=user, request=request)


@receiver(user_login_failed)
def audit_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # `credentials` has the password already cleansed by Django; keep only the username.
    audit_record(
        action=AuditEvent.Action.LOGIN_FAILED,
        request=request,
        details={"username": str(credentials.get("username", ""))[:150]},
    )


@receiver(user_locked_out)
def audit_locked_out(sender, request, username=None, ip_address=None, **kwargs) -> None:
    # django-axes refused this login: 5 failures of this username from this address (settings.AXES_*).
    audit_record(
        action=AuditEvent.Action.LOCKED_OUT,
        request=request,
        details={"username": str(username or "")[:150]},
    )
