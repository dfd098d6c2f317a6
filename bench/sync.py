"""Sync throughput: recordings stored per second from sandbox pages (budget: >= 2,000/s).

    .venv/bin/python bench/sync.py --calls 20000            # SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/sync.py --calls 20000

Reference, measured in the same run: listing the same pages through the adapter without storing anything.
"""

from __future__ import annotations

import argparse
import time

from _setup import SandboxProcess, django_on_fresh_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000, help="calls per provider in the sandbox")
    args = parser.parse_args()
    database = django_on_fresh_database(label="sync")

    from django.utils import timezone

    from recordings.models import ProviderAccount, Recording
    from recordings.providers import adapter_for
    from recordings.services.sync import account_sync

    sandbox = SandboxProcess("--calls", str(args.calls))
    try:
        print(f"database: {database}; sandbox calls per provider: {args.calls}")
        for provider in ("bandwidth", "truto", "envoy"):
            entry = sandbox.provider(provider)
            account = ProviderAccount.objects.create(
                name=f"bench {provider}", provider=provider, base_url=entry["base_url"],
                credentials=entry["credentials"], options=entry["options"],
            )  # fmt: skip
            adapter = adapter_for(account)
            t0 = time.perf_counter()
            listed = sum(len(call.recordings) for call in adapter.iter_calls(since=None, until=timezone.now()))
            list_seconds = time.perf_counter() - t0

            t0 = time.perf_counter()
            counts = account_sync(account=account, full=True)
            sync_seconds = time.perf_counter() - t0
            stored = Recording.objects.filter(account=account).count()

            t0 = time.perf_counter()
            again = account_sync(account=account, full=True)
            rerun_seconds = time.perf_counter() - t0
            assert again.recordings_created == again.recordings_updated == again.calls_updated == 0, again
            print(
                f"{provider:9} recordings {stored:6}  listing only {listed / list_seconds:8.0f}/s  "
                f"sync {stored / sync_seconds:8.0f}/s (stored)  ratio sync/listing {list_seconds / sync_seconds:4.2f}  "
                f"second run {stored / rerun_seconds:8.0f}/s, changed {again.calls_updated + again.recordings_updated}"
            )
            assert counts.recordings_created == stored
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
