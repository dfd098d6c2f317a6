"""Users and their roles."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from ..roles import ROLES, STAFF_ROLES


def user_set_role(*, username: str, role: str, password: str | None = None):
    """Create or update a user so it holds exactly one role (its group), and staff status if the role needs it."""
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; expected one of {', '.join(ROLES)}")
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username)
    if password is not None and (created or not user.check_password(password)):
        user.set_password(password)
    user.is_staff = role in STAFF_ROLES
    user.is_active = True
    user.save()
    user.groups.set([Group.objects.get(name=role)])
    return user
