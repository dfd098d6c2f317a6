"""Synthetic calls for benchmarks: realistic calls, recordings and transcripts across the five providers."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import chain

from django.core.management.base import BaseCommand, CommandError
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max
from tqdm import tqdm

from recordings.models import Call, ProviderAccount, Recording, Transcript
from recordings.providers import PROVIDER_CHOICES

# Share of calls per provider, and the country codes of their customers.
PROVIDER_SHARE = {"bandwidth": 0.3, "truto": 0.2, "envoy": 0.2, "kaleyra": 0.15, "ameyo": 0.15}
COUNTRIES = {
    "bandwidth": ("1", "1", "1", "44"),
    "truto": ("1", "44"),
    "envoy": ("1",),
    "kaleyra": ("91",),
    "ameyo": ("91",),
}
FIRST = (
    "Ada Alan Amara Amit Ana Ben Bianca Carlos Chen Chloe Daniel Deepa Diego Elena Emma Farah Felix Grace Hana Hugo "
    "Imran Isla James Jia Kai Kavya Laura Leo Lucia Maya Mei Mohammed Nadia Noah Olga Omar Priya Rahul Rosa Sam "
    "Sana Sofia Tariq Tom Uma Victor Wei Yara Zoe Zain"
).split()
LAST = (
    "Adams Ahmed Baker Bose Campbell Chaudhry Clarke Costa Das Evans Fischer Garcia Gupta Hall Hughes Iyer Jones "
    "Khan Kowalski Lee Lopez Martin Mehta Murphy Nair Novak Okafor Patel Reddy Rossi Sato Schmidt Shah Singh Smith "
    "Taylor Thomas Walker Wang Williams Wilson Young"
).split()
CAMPAIGNS = (
    "Inbound Support", "Billing", "Renewals", "Collections", "Retention", "Onboarding", "Tech Support Tier 2",
    "Sales Outbound", "Winback Q3", "Claims", "Appointments", "Surveys", "Escalations", "Premium Care",
    "Loan Servicing", "Card Activation", "Fraud Desk", "Delivery Desk", "Returns", "VIP Line",
)  # fmt: skip
DISPOSITIONS = (("answered", 70), ("voicemail", 10), ("transferred", 8), ("abandoned", 7), ("no-answer", 5))
DIRECTIONS = (("inbound", 60), ("outbound", 37), ("unknown", 3))
TOPICS = {
    "refund": [
        "I was charged twice for my order and I would like a refund please",
        "the refund should appear on your card statement within five working days",
        "I can see the duplicate payment here and I have raised the refund now",
    ],
    "delivery": [
        "my parcel was supposed to arrive on Tuesday but the courier never came",
        "the tracking number shows it is stuck at the depot",
        "I will book a new delivery slot for tomorrow morning",
    ],
    "password": [
        "I cannot log in to my account because I forgot my password",
        "I have sent a reset link to the email address we have on file",
        "the verification code did not arrive on my phone",
    ],
    "cancel": [
        "I would like to cancel my subscription at the end of this month",
        "before you cancel may I offer you three months at half price",
        "there is a thirty day notice period on the contract",
    ],
    "upgrade": [
        "I am interested in upgrading to the premium plan",
        "the premium plan includes unlimited minutes and international calls",
        "the new price will start from your next billing cycle",
    ],
    "complaint": [
        "I want to make a formal complaint about the engineer who visited",
        "I am sorry to hear that and I will escalate this to my supervisor",
        "you will receive a reference number for the complaint by email",
    ],
    "appointment": [
        "I need to reschedule my appointment on Friday",
        "the earliest available appointment is next Wednesday at ten",
        "you will get a text message reminder the day before",
    ],
    "insurance": [
        "I would like to file an insurance claim for water damage in the kitchen",
        "please send photos of the damage and a copy of the invoice",
        "an assessor will call you within forty eight hours",
    ],
    "payment": [
        "my direct debit failed this month and I want to pay the balance",
        "I can take a card payment now over the phone",
        "the outstanding balance is one hundred and twenty pounds",
    ],
    "fraud": [
        "there is a transaction on my card that I do not recognise",
        "I have blocked the card and we will send a replacement",
        "the fraud team will investigate the disputed transaction",
    ],
}
SMALL_TALK = (
    "thank you for your patience", "could you confirm your date of birth please", "let me just check that for you",
    "is there anything else I can help you with today", "I understand that is frustrating", "one moment please",
    "can I take your postcode", "that is all sorted for you now", "sorry about the wait",
    "I will put a note on your account",
)  # fmt: skip
# The payload keys of each provider: call id, a second id, campaign.
RAW_KEYS = {
    "bandwidth": ("callId", "recordingId", "tag"),
    "truto": ("id", "integrated_account_id", "campaign"),
    "envoy": ("id", "recording_id", "queue"),
    "kaleyra": ("call_id", "recording_id", "campaign"),
    "ameyo": ("callId", "crtObjectId", "campaignName"),
}
BATCH = 10_000
ROWS_PER_STATEMENT = 500


class Command(BaseCommand):
    help = "Add N synthetic calls (with recordings and some transcripts) across one bench account per provider."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--calls", type=int, required=True, help="How many calls to add.")
        parser.add_argument("--seed", type=int, default=1, help="Random seed: the same seed gives the same data.")
        parser.add_argument("--days", type=int, default=365, help="Spread the calls over this many days.")
        parser.add_argument(
            "--until",
            default="2026-11-01T00:00:00+00:00",
            help="The newest call starts just before this time (ISO 8601); fixed so that --seed reproduces the data.",
        )
        parser.add_argument("--transcripts", type=float, default=0.2, help="Share of calls with a transcript.")
        parser.add_argument("--batch", type=int, default=BATCH, help="Rows per insert batch (5,000-10,000).")

    def handle(self, *args, calls: int, seed: int, days: int, until: str, transcripts: float, batch: int, **options):
        if calls < 1 or days < 1 or not 0 <= transcripts <= 1 or batch < 1:
            raise CommandError("--calls, --days and --batch must be positive, --transcripts between 0 and 1.")
        try:
            end = datetime.fromisoformat(until)
        except ValueError:
            raise CommandError(f"--until is not an ISO 8601 time: {until!r}") from None
        end = end if end.tzinfo else end.replace(tzinfo=UTC)
        verbosity = options.get("verbosity", 1)
        accounts = bench_accounts()
        generator = Generator(
            seed=seed, accounts=accounts, end=end, span=timedelta(days=days), total=calls, transcripts=transcripts
        )
        started = time.perf_counter()
        with (
            bulk_load(calls=calls, out=self.stdout),
            tqdm(total=calls, unit=" calls", disable=verbosity == 0, file=self.stderr._out) as bar,
        ):
            next_ids = {
                model: (model.objects.aggregate(m=Max("id"))["m"] or 0) + 1 for model in (Call, Recording, Transcript)
            }
            sizes = [min(batch, calls - done) for done in range(0, calls, batch)]
            # One thread makes the next batch while this one writes (the database drivers release the GIL).
            with ThreadPoolExecutor(max_workers=1) as pool:
                pending = pool.submit(generator.batch, sizes[0], next_ids)
                for index, size in enumerate(sizes):
                    rows = pending.result()
                    if index + 1 < len(sizes):
                        pending = pool.submit(generator.batch, sizes[index + 1], next_ids)
                    with transaction.atomic():
                        insert(Call, rows.calls)
                        insert(Recording, rows.recordings)
                        insert(Transcript, rows.transcripts)
                    bar.update(size)
            reset_sequences()
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Added {calls:,} calls, {generator.recordings:,} recordings, {generator.transcript_count:,} "
                f"transcripts in {elapsed:.0f} s ({calls / elapsed:,.0f} calls/s)."
            )
        )


def bench_accounts() -> dict[str, ProviderAccount]:
    accounts = {}
    for provider, label in PROVIDER_CHOICES:
        accounts[provider], _ = ProviderAccount.objects.get_or_create(
            name=f"Bench {label}", defaults={"provider": provider, "is_active": False}
        )
    return accounts


TABLES = ("recordings_call", "recordings_recording", "recordings_transcript", "recordings_transcript_search")
# On PostgreSQL, a load this big drops the secondary indexes and builds them again at the end (much faster than
# maintaining a dozen indexes, three of them GIN, row by row).
REBUILD_INDEXES_FROM = 50_000


class bulk_load:
    """Settings for a bulk load into a bench database: durability is traded for speed while it runs.

    SQLite: synchronous off, a 256 MB page cache. PostgreSQL: for big loads the secondary indexes of the call,
    recording and transcript tables are dropped and rebuilt on exit (also on an error; a killed process leaves
    them dropped: run `manage.py migrate recordings 0002 && manage.py migrate` or use a fresh database). Then
    VACUUM (ANALYZE), as autovacuum would shortly.
    """

    def __init__(self, *, calls: int, out=None) -> None:
        self.rebuild = connection.vendor == "postgresql" and calls >= REBUILD_INDEXES_FROM
        self.out = out
        self.indexes: list[tuple[str, str]] = []

    def __enter__(self):
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                # These cannot change inside a transaction (a test's): then they stay as they are.
                pragmas = ["cache_size=-262144"]
                if not connection.in_atomic_block:
                    pragmas += ["synchronous=OFF", "temp_store=MEMORY"]
                for pragma in pragmas:
                    cursor.execute(f"PRAGMA {pragma}")
            elif self.rebuild:
                cursor.execute(
                    """SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x
                    JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
                    WHERE t.relname = ANY(%s) AND t.relnamespace = current_schema()::regnamespace
                    AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)""",
                    [list(TABLES)],
                )
                self.indexes = cursor.fetchall()
                for name, _ in self.indexes:
                    cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
        return self

    def __exit__(self, *exc) -> None:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                if not connection.in_atomic_block:
                    cursor.execute("PRAGMA synchronous=NORMAL")
                return
            if self.indexes:
                started = time.perf_counter()
                cursor.execute("SET maintenance_work_mem = '512MB'")
                for _, definition in self.indexes:
                    cursor.execute(definition)
                cursor.execute("RESET maintenance_work_mem")
                if self.out:
                    self.out.write(f"Rebuilt {len(self.indexes)} indexes in {time.perf_counter() - started:.0f} s.")
            cursor.execute("SELECT relname FROM pg_class WHERE relname = ANY(%s) AND relkind = 'r'", [list(TABLES)])
            # VACUUM (not inside a transaction) also sets hint bits and the visibility map, as autovacuum soon would.
            command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
            for (table,) in cursor.fetchall():
                cursor.execute(f"{command} {table}")


def insert(model, rows: list[tuple]) -> None:
    """Write rows: COPY on PostgreSQL; on SQLite multi-row INSERTs (as bulk_create writes them) run by executemany.

    Several hundred rows per statement matter on SQLite: the FTS5 triggers flush the full-text index at every
    statement, so one row per statement is three times slower. Columns this command does not know (added to the
    models later) get their field's default.
    """
    if not rows:
        return
    defaults = _defaults(model)
    names = [*COLUMNS[model], *defaults]
    if defaults:
        extra = tuple(defaults.values())
        rows = [row + extra for row in rows]
    table, columns = connection.ops.quote_name(model._meta.db_table), ", ".join(map(connection.ops.quote_name, names))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        per = max(1, min(ROWS_PER_STATEMENT, _sqlite_max_params() // len(names)))
        one = "(" + ", ".join(["%s"] * len(names)) + ")"
        full, rest = divmod(len(rows), per)
        if full:
            sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([one] * per)  # noqa: S608 - names from the models
            cursor.executemany(sql, [tuple(chain.from_iterable(rows[i * per : (i + 1) * per])) for i in range(full)])
        if rest:
            sql = f"INSERT INTO {table} ({columns}) VALUES " + ", ".join([one] * rest)  # noqa: S608 - names from the models
            cursor.execute(sql, tuple(chain.from_iterable(rows[full * per :])))


def _sqlite_max_params() -> int:
    import sqlite3

    connection.ensure_connection()
    return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


def _defaults(model) -> dict:
    known = set(COLUMNS[model])
    return {
        field.column: field.get_db_prep_save(field.get_default(), connection)
        for field in model._meta.concrete_fields
        if field.column not in known and not field.generated
    }


def reset_sequences() -> None:
    statements = connection.ops.sequence_reset_sql(no_style(), [Call, Recording, Transcript])
    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)


COLUMNS = {
    Call: [
        "id", "account_id", "provider", "remote_id", "direction", "from_number", "to_number", "agent", "campaign",
        "disposition", "started_at", "ended_at", "duration", "has_transcript", "raw", "created_at", "updated_at",
    ],
    Recording: [
        "id", "call_id", "account_id", "remote_id", "status", "content_type", "format", "duration", "size_bytes",
        "channels", "started_at", "locator", "raw", "created_at", "updated_at",
    ],
    Transcript: [
        "id", "recording_id", "status", "text", "segments", "requested_at", "completed_at", "error", "updated_at",
    ],
}  # fmt: skip


class Rows:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.recordings: list[tuple] = []
        self.transcripts: list[tuple] = []


def _pool(weighted) -> list:
    """A list to rng.choice() from, each value repeated by its weight (faster than rng.choices per row)."""
    return [value for value, weight in weighted for _ in range(weight)]


class Generator:
    """Deterministic for a seed: the same arguments on the same starting ids give the same rows."""

    def __init__(self, *, seed, accounts, end, span, total, transcripts) -> None:
        self.rng = rng = random.Random(seed)
        self.accounts = accounts
        self.span_seconds, self.total = span.total_seconds(), total
        self.transcript_share = transcripts
        self.providers = list(PROVIDER_SHARE)
        self.provider_pool = _pool((p, round(share * 100)) for p, share in PROVIDER_SHARE.items())
        self.direction_pool = _pool(DIRECTIONS)
        self.disposition_pool = _pool(DISPOSITIONS)
        self.agents = {p: [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(60)] for p in self.providers}
        self.campaigns = {p: rng.sample(CAMPAIGNS, 8) for p in self.providers}
        # The call centre's own numbers (a few per provider) and a pool of repeat customers.
        self.dids = {p: [self._number(rng.choice(COUNTRIES[p])) for _ in range(6)] for p in self.providers}
        self.customers = {p: [self._number(rng.choice(COUNTRIES[p])) for _ in range(40_000)] for p in self.providers}
        self.index = 0
        self.recordings = 0
        self.transcript_count = 0
        # SQLite stores naive UTC text (what Django's adapter writes); PostgreSQL takes aware datetimes.
        if connection.vendor == "sqlite":
            self.end, self.to_db = end.astimezone(UTC).replace(tzinfo=None), str
        else:
            self.end, self.to_db = end, _same
        self.now = self.to_db(
            datetime.now(UTC).replace(tzinfo=None) if connection.vendor == "sqlite" else datetime.now(UTC)
        )

    def _number(self, country: str) -> str:
        rng = self.rng
        if country == "1":
            return f"+1{rng.randint(201, 989)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
        if country == "44":
            return f"+44{rng.choice(('20', '161', '121', '7700', '7911'))}{rng.randint(0, 9_999_999):07d}"
        return f"+91{rng.choice('6789')}{rng.randint(0, 999_999_999):09d}"

    def _hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def _remote_id(self, provider: str, seq: int) -> str:
        # The call's id keeps remote ids unique when the command runs again on the same database.
        if provider == "bandwidth":
            return f"c-{self._hex(8)}-{seq:08x}-{self._hex(4)}-{self._hex(4)}-{self._hex(4)}-{self._hex(12)}"
        if provider == "truto":
            return f"{self._hex(8)}-{self._hex(4)}-4{self._hex(3)}-{seq:012x}"
        if provider == "envoy":
            return str(7_000_000_000 + seq)
        if provider == "kaleyra":
            return f"KL{seq:012d}"
        return f"{self.rng.randint(1, 40)}-{seq:x}-{self.rng.randint(1000, 9999)}"

    def _transcript(self, agent: str) -> str:
        rng = self.rng
        topics = rng.sample(list(TOPICS), rng.choice((1, 1, 2)))
        parts = [f"thank you for calling my name is {agent.split()[0]} how can I help you today"]
        for topic in topics:
            lines = TOPICS[topic]
            parts.extend(rng.sample(lines, rng.randint(2, len(lines))))
            parts.append(rng.choice(SMALL_TALK))
        parts.append(f"the reference is {rng.choice('ABCDEFGHJK')}{rng.randint(100000, 999999)}")
        parts.append("thanks for your help goodbye")
        return ". ".join(p[0].upper() + p[1:] for p in parts) + "."

    def batch(self, size: int, next_ids: dict) -> Rows:
        rng, rows, to_db, now = self.rng, Rows(), self.to_db, self.now
        for _ in range(size):
            self.index += 1
            provider = rng.choice(self.provider_pool)
            account_id = self.accounts[provider].pk
            # Mostly in time order (calls arrive by sync), with a day of disorder either way.
            offset = self.span_seconds * (1 - self.index / self.total) + rng.uniform(-43_200, 43_200)
            started = self.end - timedelta(seconds=round(max(1.0, offset), 3))
            direction = rng.choice(self.direction_pool)
            customer, did = rng.choice(self.customers[provider]), rng.choice(self.dids[provider])
            from_number, to_number = (did, customer) if direction == "outbound" else (customer, did)
            agent = rng.choice(self.agents[provider])
            campaign = rng.choice(self.campaigns[provider])
            disposition = rng.choice(self.disposition_pool)
            duration = None if rng.random() < 0.01 else round(min(7200.0, max(3.0, rng.lognormvariate(5.2, 0.9))), 1)
            ended = to_db(started + timedelta(seconds=duration)) if duration is not None else None
            started_db = to_db(started)
            call_id = next_ids[Call]
            next_ids[Call] += 1
            remote_id = self._remote_id(provider, call_id)
            has_transcript = duration is not None and rng.random() < self.transcript_share
            keys = RAW_KEYS[provider]
            raw = json.dumps({keys[0]: remote_id, keys[1]: self._hex(10), keys[2]: campaign, "status": disposition})
            rows.calls.append((
                call_id, account_id, provider, remote_id, direction, from_number, to_number, agent, campaign,
                disposition, started_db, ended, duration, has_transcript, raw, now, now,
            ))  # fmt: skip
            wav = provider in ("bandwidth", "kaleyra")
            for n in range(2 if provider == "bandwidth" and rng.random() < 0.05 else 1):
                recording_id = next_ids[Recording]
                next_ids[Recording] += 1
                self.recordings += 1
                status = "available" if rng.random() < 0.95 else rng.choice(("deleted", "expired", "processing"))
                rows.recordings.append((
                    recording_id, call_id, account_id, f"r-{self._hex(6)}-{call_id:x}-{n}", status,
                    "audio/vnd.wave" if wav else "audio/mpeg", "wav" if wav else "mp3", duration,
                    int((duration or 60) * (16000 if wav else 4000)), 1, started_db, "{}", "{}", now, now,
                ))  # fmt: skip
                if n == 0 and has_transcript:
                    transcript_id = next_ids[Transcript]
                    next_ids[Transcript] += 1
                    self.transcript_count += 1
                    rows.transcripts.append(
                        (transcript_id, recording_id, "available", self._transcript(agent), "[]", now, now, "", now)
                    )
        return rows


def _same(value):
    return value
