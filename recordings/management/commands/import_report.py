"""Import a provider's CSV report (Kaleyra recording report, Ameyo call report)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from recordings.models import ProviderAccount
from recordings.providers import NotSupportedReport
from recordings.services.imports import ReportError, report_import


class Command(BaseCommand):
    help = "Import a CSV report into an account. Bad rows are listed with their line number; good rows are imported."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--account", type=int, required=True, help="The provider account's id.")
        parser.add_argument("file", type=Path, help="The report, as CSV.")

    def handle(self, *args, account: int, file: Path, verbosity: int, **options) -> None:
        try:
            acct = ProviderAccount.objects.get(pk=account)
        except ProviderAccount.DoesNotExist:
            raise CommandError(f"No provider account with id {account}.") from None
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        with file.open("rb") as stream, tqdm(desc=acct.name, unit=" calls", disable=verbosity == 0,
                                             file=self.stderr._out) as bar:  # fmt: skip
            try:
                result = report_import(
                    account=acct, stream=stream, filename=file.name,
                    on_batch=lambda counts: bar.update(counts.seen_recordings - bar.n),
                )  # fmt: skip
            except (ReportError, NotSupportedReport) as exc:
                raise CommandError(str(exc)) from None
        for line, reason in result.errors:
            self.stderr.write(f"line {line}: {reason}")
        if result.error_count > len(result.errors):
            self.stderr.write(f"... and {result.error_count - len(result.errors)} more")
        self.stdout.write(self.style.SUCCESS(result.summary()))
