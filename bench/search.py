"""Search latency: the first page of /calls/ over 1,000,000 calls (budget: p95 <= 100 ms per filter combination).

    .venv/bin/python bench/search.py                                                        # SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/search.py   # PostgreSQL

Seeds a fresh database (a temporary SQLite file, or `bench_search` on the server) with `manage.py seed_bench`,
then requests /calls/ through Django's test Client as a supervisor -- middleware, form, queries and template
rendering included -- for each filter combination, `--runs` times after two warm-up runs, and prints p50, p95
and the slowest run, then the query plans of the slowest combination's slowest queries.
`--reuse` skips the set-up and seeding and uses DATABASE_URL as it is (a database seeded before).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

from _setup import ROOT, django_on_fresh_database

BUDGET_MS = 100.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30, help="measured requests per combination")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="use DATABASE_URL as it is, already seeded")
    parser.add_argument("--only", help="run the combinations whose name contains this")
    args = parser.parse_args()

    if args.reuse:
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
        import django

        django.setup()
        from django.db import connection

        database = f"{connection.vendor} ({connection.settings_dict['NAME']}), reused"
    else:
        database = django_on_fresh_database(label="search")
        from django.core.management import call_command

        started = time.perf_counter()
        call_command("seed_bench", calls=args.calls, seed=args.seed)
        print(f"seed_bench --calls {args.calls} --seed {args.seed}: {time.perf_counter() - started:.0f} s")
        settle()

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from recordings.models import Call
    from recordings.roles import SUPERVISORS
    from recordings.services.users import user_set_role

    user = user_set_role(username="bench-supervisor", role=SUPERVISORS, password="bench-only-password-1")
    client = Client()
    client.force_login(user)
    total = Call.objects.count()  # once, for the report; the page itself never counts the whole table
    print(f"database: {database}; calls: {total:,}; runs per combination: {args.runs}")

    combos = combinations()
    if args.only:
        combos = {name: params for name, params in combos.items() if args.only in name}
    results = []
    for name, params in combos.items():
        for _ in range(2):
            client.get("/calls/", params)
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            response = client.get("/calls/", params)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (name, response.status_code)
        with CaptureQueriesContext(connection) as context:
            response = client.get("/calls/", params)
        queries = list(context.captured_queries)  # the next request resets the connection's query log
        html = response.content.decode()
        count = html.split('id="result-count"', 1)[1].split(">", 1)[1].split("<", 1)[0]
        times.sort()
        results.append((name, params, percentile(times, 50), percentile(times, 95), times[-1], count, queries))

    print()
    print("| filter combination | parameters | p50 ms | p95 ms | max ms | count shown | queries |")
    print("|---|---|---:|---:|---:|---|---:|")
    for name, params, p50, p95, slowest, count, queries in results:
        flag = "" if p95 <= BUDGET_MS else " **over**"
        shown = "&".join(f"{k}={v}" for k, v in params.items()) or "(none)"
        print(f"| {name} | `{shown}` | {p50:.1f} | {p95:.1f}{flag} | {slowest:.1f} | {count} | {len(queries)} |")
    over = [r for r in results if r[3] > BUDGET_MS]
    print(f"\n{len(results) - len(over)} of {len(results)} combinations within p95 <= {BUDGET_MS:.0f} ms.")

    name, params, *_, queries = max(results, key=lambda r: r[3])
    print(f"\nSlowest combination: {name} {params}")
    timed = sorted(queries, key=lambda q: float(q["time"]), reverse=True)[:2]
    for query in timed:
        print(f"\n-- {float(query['time']) * 1000:.1f} ms: {query['sql'][:2000]}")
        explain(connection, query["sql"])


def settle() -> None:
    """Write out what the load left dirty, so that the measurements do not share the disk with a checkpoint."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT" if connection.vendor == "postgresql" else "PRAGMA wal_checkpoint(TRUNCATE)")


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return sorted_values[max(0, math.ceil(pct / 100 * len(sorted_values)) - 1)]


def explain(connection, sql: str) -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
            for row in cursor.fetchall():
                print(f"   {row[0]:>3} {row[1]:>3} {row[3]}")
        else:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            for (line,) in cursor.fetchall():
                print("   " + line)


def combinations() -> dict[str, dict[str, str]]:
    """Filter combinations with values taken from the seeded calls (seed_bench's vocabulary)."""
    from recordings.models import Call, ProviderAccount, Transcript
    from recordings.providers import PROVIDER_CHOICES

    newest = Call.objects.order_by("-started_at", "-id").first()
    older = Call.objects.order_by("-started_at", "-id")[5000]
    kaleyra = ProviderAccount.objects.get(name="Bench Kaleyra")
    surname = newest.agent.split()[-1].lower()
    day = newest.started_at.date()
    week_from, week_to = day.replace(day=1) - _days(90), day.replace(day=1) - _days(84)
    customer = older.from_number if older.direction == "inbound" else older.to_number
    national = f"({customer[2:5]}) {customer[5:8]}-{customer[8:]}" if customer.startswith("+1") else customer
    # Each seeded transcript ends with a reference code: a word said in a handful of calls.
    reference = Transcript.objects.order_by("id")[1000].text.rsplit("reference is ", 1)[1].split(".")[0]
    # Another common surname, and a campaign word that only some providers use (no transcript says it either).
    second, second_absent = next(
        (name, provider) for c in Call.objects.order_by("-id")[:2000]
        if (name := c.agent.split()[-1].lower()) != surname
        for provider, _ in PROVIDER_CHOICES
        if not Call.objects.filter(provider=provider, search_text__contains=name).exists()
    )  # fmt: skip
    word = next(
        w for c in Call.objects.exclude(provider=newest.provider).order_by("-id")[:500]
        for w in c.campaign.lower().split()
        if len(w) >= 5 and not Call.objects.filter(provider=newest.provider, search_text__contains=w).exists()
        and not Transcript.objects.filter(text__icontains=w).exists()
    )  # fmt: skip
    return {
        "none": {},
        "provider": {"provider": "envoy"},
        "account + direction": {"account": str(kaleyra.pk), "direction": "outbound"},
        "number, last 4 digits": {"number": customer[-4:]},
        "number, middle 6 digits": {"number": customer[4:10]},
        "number, typed national": {"number": national},
        "agent": {"agent": newest.agent.upper()},
        "campaign": {"campaign": newest.campaign.lower()},
        "date range (a week)": {"date_from": week_from.isoformat(), "date_to": week_to.isoformat()},
        "duration range": {"min_duration": "20:00", "max_duration": "30:00"},
        "transcript word": {"q": "refund"},
        "transcript phrase": {"q": '"water damage"'},
        "transcript word, 2nd": {"q": "assessor"},
        "transcript rare word": {"q": reference},
        "q agent surname": {"q": surname},
        "q remote id part": {"q": older.remote_id[-9:]},
        "has transcript": {"has_transcript": "yes"},
        "sort by duration": {"sort": "-duration"},
        "provider, shortest first": {"provider": "truto", "sort": "duration"},
        "provider+direction+transcript+q": {
            "provider": "bandwidth",
            "direction": "inbound",
            "has_transcript": "yes",
            "q": "refund",
        },
        "agent+dates+min duration": {
            "agent": newest.agent,
            "date_from": (day - _days(60)).isoformat(),
            "date_to": day.isoformat(),
            "min_duration": "5:00",
        },
        "provider+1h+ longest first": {"provider": "ameyo", "min_duration": "1:00:00", "sort": "-duration"},
        "q surname + other provider": {"q": surname, "provider": other_provider(newest.provider)},
        "q word + campaign + week": {
            "q": "delivery",
            "campaign": newest.campaign,
            "date_from": (day - _days(7)).isoformat(),
        },
        # The same class as "q surname + other provider", other values: a common term that the other filters
        # exclude (chosen from the data: no call matches both), and two common terms that seldom meet.
        "q 2nd surname + direction + other provider": {
            "q": second,
            "direction": "inbound",
            "provider": second_absent,
        },
        "q campaign word + other account": {
            "q": word,
            "account": str(absent(ProviderAccount.objects.values_list("pk", flat=True), "account_id", word)),
        },
        "q surname + campaign word": {"q": f"{surname} {word}"},
    }


def absent(values, field: str, term: str):
    """The first of `values` whose calls never contain `term` (agent, campaign or remote id)."""
    from recordings.models import Call

    for value in values:
        if not Call.objects.filter(**{field: value, "search_text__contains": term}).exists():
            return value
    raise RuntimeError(f"every {field} has calls matching {term!r}")


def other_provider(provider: str) -> str:
    return "kaleyra" if provider != "kaleyra" else "envoy"


def _days(n: int):
    from datetime import timedelta

    return timedelta(days=n)


if __name__ == "__main__":
    main()
