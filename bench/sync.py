"""Sync throughput: recordings stored per second from sandbox pages (budget: >= 2,000/s).

    .venv/bin/python bench/sync.py --calls 20000            # SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/sync.py --calls 20000

Each provider's sync is `manage.py sync_recordings --account ID --full` run in this process with the portal's
settings (tests.settings: portal.settings with test secrets; DEBUG off, the same database options and SQLite
PRAGMAs as production), into a fresh database, from a sandbox in its own process (started with --no-warm: no
audio is played here, and synthesising it in the background would take half a core). The reference, measured in the
same run: listing the same pages through the adapter without storing anything. The machine is shared, so beside
each rate the CPU seconds per 1,000 recordings are printed, of this process (listing, parsing and writing, all
threads), of the sandbox (serving the pages) and, on PostgreSQL, of the server process of the connection: they
move far less with the load than the rates do.
"""

from __future__ import annotations

import argparse
import io
import os
import time

from _setup import SandboxProcess, django_on_fresh_database, process_cpu_seconds


class Clock:
    """Wall time and CPU time of one step: this process's, the sandbox's and the database server's (PostgreSQL)."""

    def __init__(self, sandbox: SandboxProcess, server_pid: int | None) -> None:
        self.others = {"sandbox": lambda: sandbox.cpu_seconds(), "server": lambda: process_cpu_seconds(server_pid)}
        if server_pid is None:
            del self.others["server"]

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        self.other_cpu = {name: read() for name, read in self.others.items()}
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        for name, read in self.others.items():
            after, before = read(), self.other_cpu[name]
            self.other_cpu[name] = None if after is None or before is None else after - before

    def report(self, recordings: int) -> str:
        others = "".join(
            f", {name} {1000 * seconds / recordings:.3f}"
            for name, seconds in self.other_cpu.items()
            if seconds is not None
        )
        return f"{recordings / self.wall:6.0f}/s (CPU-s per 1k: {1000 * self.cpu / recordings:.3f}{others})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000, help="calls per provider in the sandbox")
    parser.add_argument("--providers", default="bandwidth,truto,envoy", help="comma list of syncing providers")
    args = parser.parse_args()
    database = django_on_fresh_database(label="sync")

    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from recordings.models import ProviderAccount, Recording
    from recordings.providers import adapter_for

    # --no-warm: the sandbox would otherwise spend half a core synthesising audio for playback in the background.
    out = io.StringIO()  # the command's summary lines; the counts are read from the account
    sandbox = SandboxProcess("--calls", str(args.calls), "--no-warm")
    try:
        print(f"database: {database}; sandbox calls per provider: {args.calls}; load average {os.getloadavg()[0]:.1f}")
        server_pid = None
        if connection.vendor == "postgresql":  # the server process of this connection (same machine)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                server_pid = cursor.fetchone()[0]
        for provider in args.providers.split(","):
            entry = sandbox.provider(provider)
            account = ProviderAccount.objects.create(
                name=f"bench {provider}", provider=provider, base_url=entry["base_url"],
                credentials=entry["credentials"], options=entry["options"],
            )  # fmt: skip
            adapter = adapter_for(account)
            with Clock(sandbox, server_pid) as listing:
                listed = sum(len(call.recordings) for call in adapter.iter_calls(since=None, until=timezone.now()))

            with Clock(sandbox, server_pid) as sync:
                call_command("sync_recordings", "--account", str(account.pk), "--full", verbosity=0, stdout=out)
            account.refresh_from_db()
            first = account.last_sync_counts
            stored = Recording.objects.filter(account=account).count()
            assert account.last_sync_status == "ok" and first["recordings_created"] == stored, first

            with Clock(sandbox, server_pid) as rerun:
                call_command("sync_recordings", "--account", str(account.pk), "--full", verbosity=0, stdout=out)
            account.refresh_from_db()
            again = account.last_sync_counts
            changed = again["calls_created"] + again["calls_updated"] + again["recordings_created"]
            changed += again["recordings_updated"]
            assert changed == 0, again
            print(
                f"{provider:9} recordings {stored:6}  listing only {listing.report(listed)}  "
                f"sync, stored {sync.report(stored)}  second run {rerun.report(stored)}, changed {changed}"
            )
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
