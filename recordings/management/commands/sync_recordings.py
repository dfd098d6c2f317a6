"""Sync calls and recordings from providers' listing APIs."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recordings.models import ProviderAccount
from recordings.services.sync import SyncFailed, account_sync


class Command(BaseCommand):
    help = "Sync calls and recordings of one account (--account ID) or of every active account that syncs (--all)."

    def add_arguments(self, parser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--account", type=int, help="The provider account's id.")
        target.add_argument("--all", action="store_true", help="Every active account whose provider has a listing API.")
        parser.add_argument("--full", action="store_true", help="Ignore the watermark and list the whole look-back.")

    def handle(self, *args, account: int | None, all: bool, full: bool, verbosity: int, **options) -> None:
        if account is not None:
            try:
                accounts = [ProviderAccount.objects.get(pk=account)]
            except ProviderAccount.DoesNotExist:
                raise CommandError(f"No provider account with id {account}.") from None
            if not accounts[0].adapter_class.can_sync:
                raise CommandError(
                    f"{accounts[0]} has no listing API; bring its calls in with: manage.py import_report "
                    f"--account {account} FILE.csv"
                )
        else:
            accounts = [a for a in ProviderAccount.objects.filter(is_active=True) if a.adapter_class.can_sync]
        failures = 0
        for acct in accounts:
            with tqdm(desc=acct.name, unit=" rec", disable=verbosity == 0, file=self.stderr._out) as bar:

                def progress(counts, bar=bar):
                    bar.update(counts.seen_recordings - bar.n)

                try:
                    counts = account_sync(account=acct, full=full, on_batch=progress)
                except SyncFailed as exc:
                    failures += 1
                    self.stderr.write(self.style.ERROR(f"{acct.name}: sync failed: {exc.error}"))
                    continue
            summary = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in acct.last_sync_counts.items())
            self.stdout.write(self.style.SUCCESS(f"{acct.name}: {summary}"))
            del counts
        if failures:
            raise CommandError(f"{failures} of {len(accounts)} account(s) failed to sync.")
