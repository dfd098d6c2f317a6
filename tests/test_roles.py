"""The role matrix: groups hold exactly the permissions of recordings/roles.py."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from recordings.roles import PERMISSIONS, ROLES

EXPECTED = {
    # permission: (supervisor, exporter, admin)
    "listen_recording": (True, True, True),
    "download_recording": (False, True, True),
    "export_recordings": (False, True, True),
    "delete_at_provider": (False, False, True),
    "request_transcription": (False, False, True),
    "view_audit_log": (False, False, True),
    "manage_accounts": (False, False, True),
}


def test_groups_match_the_table(db):
    for name, codenames in ROLES.items():
        group = Group.objects.get(name=name)
        assert set(group.permissions.values_list("codename", flat=True)) == set(codenames)


def test_every_permission_is_in_the_expected_matrix():
    assert set(EXPECTED) == set(PERMISSIONS)


@pytest.mark.parametrize("perm", sorted(EXPECTED))
def test_each_role_has_exactly_its_permissions(users, perm):
    supervisor, exporter, admin = EXPECTED[perm]
    assert users["supervisor"].has_perm(f"recordings.{perm}") is supervisor
    assert users["exporter"].has_perm(f"recordings.{perm}") is exporter
    assert users["admin"].has_perm(f"recordings.{perm}") is admin


def test_only_admins_are_staff(users):
    assert [u.username for u in users.values() if u.is_staff] == ["admin"]


def test_seed_demo_twice_changes_nothing(db):
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("seed_demo", "--users-only", stdout=open("/dev/null", "w"))
    User = get_user_model()
    before = list(User.objects.order_by("username").values_list("username", "password", "is_staff"))
    call_command("seed_demo", "--users-only", stdout=open("/dev/null", "w"))
    after = list(User.objects.order_by("username").values_list("username", "password", "is_staff"))
    assert before == after
    assert [u for u, *_ in after] == ["admin", "exporter", "supervisor"]


def test_a_role_change_applies_at_once_despite_the_permission_cache(users):
    from django.contrib.auth import get_user_model

    from recordings.roles import EXPORTERS
    from recordings.services.users import user_set_role

    User = get_user_model()
    assert not User.objects.get(username="supervisor").has_perm("recordings.download_recording")  # now cached
    user_set_role(username="supervisor", role=EXPORTERS)
    assert User.objects.get(username="supervisor").has_perm("recordings.download_recording")
    user_set_role(username="supervisor", role="Supervisors")
    assert not User.objects.get(username="supervisor").has_perm("recordings.download_recording")
