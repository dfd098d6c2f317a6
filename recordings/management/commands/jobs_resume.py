"""Put back the job items a dead worker left running, and schedule the export sweep (run it before starting
workers)."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand

from recordings.services.jobs import job_resume_stale
from recordings.tasks import schedule_export_sweep


class Command(BaseCommand):
    help = "Re-enqueue job items left running by a worker that stopped; fail those out of attempts."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            help="Seconds an item must have been running untouched (default: JOBS_LEASE_SECONDS, 600). "
            "Use 0 when no worker is running.",
        )

    def handle(self, *args, older_than: float | None, **options) -> None:
        counts = job_resume_stale(older_than=None if older_than is None else timedelta(seconds=older_than))
        self.stdout.write(f"Resumed {counts['resumed']} item(s); failed {counts['failed']}.")
        if schedule_export_sweep():
            self.stdout.write("Scheduled the sweep of expired exports.")
