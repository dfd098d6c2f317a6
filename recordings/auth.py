"""An auth backend whose permission sets are cached: the audio route checks them on every range request."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

# Bounds staleness across processes (each process invalidates its own cache at once on a change).
PERMISSIONS_TTL = 60
_VERSION_KEY = "perms:version"


def _version() -> int:
    version = cache.get(_VERSION_KEY)
    if version is None:
        cache.add(_VERSION_KEY, 1, timeout=None)
        version = cache.get(_VERSION_KEY, 1)
    return version


class CachedPermissionsBackend(ModelBackend):
    """ModelBackend, with a user's permission set cached for PERMISSIONS_TTL seconds."""

    def get_all_permissions(self, user_obj, obj=None):
        if obj is not None or not user_obj.is_active or user_obj.is_anonymous:
            return super().get_all_permissions(user_obj, obj)
        if hasattr(user_obj, "_perm_cache"):
            return user_obj._perm_cache
        key = f"perms:{_version()}:{user_obj.pk}"
        perms = cache.get(key)
        if perms is None:
            perms = super().get_all_permissions(user_obj, obj)
            cache.set(key, perms, timeout=PERMISSIONS_TTL)
        user_obj._perm_cache = perms
        return perms


@receiver(m2m_changed, sender=Group.permissions.through)
@receiver(m2m_changed, sender=get_user_model().groups.through)
@receiver(m2m_changed, sender=get_user_model().user_permissions.through)
def _permissions_changed(**kwargs) -> None:
    try:
        cache.incr(_VERSION_KEY)
    except ValueError:
        cache.set(_VERSION_KEY, 2, timeout=None)


def lockout_username(request, credentials: dict | None = None) -> str | None:
    """The username django-axes counts failures under (settings.AXES_USERNAME_CALLABLE): as typed, cut to the
    longest username there can be, so any length of input fits its table (255 characters) on every database."""
    username = (credentials or {}).get("username")
    if username is None and request is not None:
        username = getattr(request, "POST", {}).get("username")
    if username is None:
        return None
    return str(username)[: get_user_model()._meta.get_field("username").max_length]
