"""Bring the role groups in line with recordings/roles.py."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from recordings.roles import ROLES, sync_roles


class Command(BaseCommand):
    help = "Create or update the groups Supervisors, Exporters and Admins from the role matrix in recordings/roles.py."

    def handle(self, *args, **options) -> None:
        sync_roles()
        for name, perms in ROLES.items():
            self.stdout.write(f"{name}: {', '.join(sorted(perms))}")
