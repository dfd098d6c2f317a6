"""Seed the demo: one user per role (and, once the sandbox is running, one account per provider)."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand

from recordings.roles import ADMINS, EXPORTERS, SUPERVISORS
from recordings.services.users import user_set_role

DEMO_USERS = {"supervisor": SUPERVISORS, "exporter": EXPORTERS, "admin": ADMINS}


class Command(BaseCommand):
    help = (
        "Create the demo users supervisor, exporter and admin (password DEMO_PASSWORD). "
        "Running it twice changes nothing."
    )

    def handle(self, *args, **options) -> None:
        password = os.environ.get("DEMO_PASSWORD", "portal-demo")
        for username, role in DEMO_USERS.items():
            user_set_role(username=username, role=role, password=password)
        self.stdout.write("Demo logins (password from DEMO_PASSWORD):")
        for username, role in DEMO_USERS.items():
            self.stdout.write(f"  {username:<11} {role}")
