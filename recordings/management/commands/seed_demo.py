"""Seed the demo: one user per role and one account per provider pointing at the sandbox, with their calls."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from recordings.roles import ADMINS, EXPORTERS, SUPERVISORS
from recordings.services.demo import demo_accounts_ensure
from recordings.services.users import user_set_role

DEMO_USERS = {"supervisor": SUPERVISORS, "exporter": EXPORTERS, "admin": ADMINS}


class Command(BaseCommand):
    help = (
        "Create the demo users supervisor, exporter and admin (password DEMO_PASSWORD) and one account per "
        "provider pointing at the sandbox (SANDBOX_URL), with their calls synced or imported. "
        "Running it twice changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--users-only", action="store_true", help="Only the demo users; no sandbox needed.")
        parser.add_argument("--wait", type=float, default=0, help="Seconds to wait for the sandbox to come up.")

    def handle(self, *args, users_only: bool, wait: float, **options) -> None:
        password = os.environ.get("DEMO_PASSWORD", "portal-demo")
        for username, role in DEMO_USERS.items():
            user_set_role(username=username, role=role, password=password)
        if not users_only:
            sandbox_url = os.environ.get("SANDBOX_URL") or f"http://127.0.0.1:{os.environ.get('SANDBOX_PORT', '8001')}"
            try:
                results = demo_accounts_ensure(sandbox_url=sandbox_url, wait=wait)
            except OSError as exc:
                raise CommandError(
                    f"The sandbox at {sandbox_url} did not answer ({exc}). Start it: python -m sandbox"
                ) from exc
            for account, outcome in results:
                self.stdout.write(f"{account.name}: {outcome}")
        self.stdout.write("Demo logins (password from DEMO_PASSWORD):")
        for username, role in DEMO_USERS.items():
            self.stdout.write(f"  {username:<11} {role}")
