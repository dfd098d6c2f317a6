"""After a load run: every recording, transcript, job and audit row is consistent, and nothing was lost.

    .venv/bin/python bench/check_consistency.py --database-url sqlite:///path/portal.sqlite3 \\
        [--export-dir DIR] [--media-cache-dir DIR] [--sandbox-url http://127.0.0.1:8001] [--wait 120]

bench/load.py imports it and passes what the run did (plays, downloads, logins, logs to scan). Run alone, it
checks the database (and the export and media-cache directories) on their own, and the counts against a running
sandbox when --sandbox-url is given. Exits 1 with the list of problems.

Checks: every job finished, with no item left pending/running/waiting, its total/done and status derived from its
items; each export's ZIP is there with the recorded size, opens, its checksums hold and its manifest has one row
per succeeded item (errors.csv one per failed item); no `.part` left in the export dir or the media cache, every
cached file complete; each recording's status is allowed and deleted ones say when (and by whom); every available
transcript's call says has_transcript, and no call says it without one; calls and recordings per provider equal
what the sandbox seeded, with no duplicate remote id; no account left "running"; no task failed or left running
in the queue; audit rows: one `export` row per export job, one row per finished item of the admin's jobs, sync
rows matching the attempts, a `play` row for every recording a user got audio of (and none for one never tried),
`export_download`, CSV and `login` rows matching the run; no audit row or log line holds a credential, and the
logs hold no traceback.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    """Configure Django from the environment (DATABASE_URL, EXPORT_DIR, MEDIA_CACHE_DIR...)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    # The checks decrypt nothing: placeholders satisfy the settings when run alone.
    os.environ.setdefault("SECRET_KEY", "check-consistency-placeholder-secret-key-0123456789abcdef")
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "Y2hlY2stY29uc2lzdGVuY3ktcGxhY2Vob2xkZXItMzI=")
    os.environ.setdefault("ALLOWED_HOSTS", "localhost")
    import django

    django.setup()


def close() -> None:
    from django.db import connections

    connections.close_all()


def unfinished() -> tuple[int, int]:
    from recordings.models import Job, JobItem

    jobs = Job.objects.exclude(status__in=Job.FINISHED).count()
    items = JobItem.objects.filter(
        status__in=[JobItem.Status.PENDING, JobItem.Status.RUNNING, JobItem.Status.WAITING]
    ).count()
    return jobs, items


def wait_drained(*, timeout: float) -> bool:
    """Wait until every job is finished (the worker must be running); False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        jobs, items = unfinished()
        if not jobs and not items:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(1)


def run_checks(*, expect: dict | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes). `expect`: what the load run did, see bench/load.py."""
    problems: list[str] = []
    notes: list[str] = []
    expect = expect or {}
    for check in (check_jobs, check_exports, check_recordings, check_transcripts, check_counts, check_accounts,
                  check_tasks, check_audit, check_logs, check_media_cache):  # fmt: skip
        check(problems, notes, expect)
    return problems, notes


# --- Jobs ----------------------------------------------------------------------------------------------------


def check_jobs(problems: list[str], notes: list[str], expect: dict) -> None:
    from recordings.models import Job, JobItem

    open_states = {JobItem.Status.PENDING, JobItem.Status.RUNNING, JobItem.Status.WAITING}
    by_kind = Counter()
    for job in Job.objects.all():
        by_kind[(job.kind, job.status)] += 1
        items = list(job.items.values_list("status", flat=True))
        counts = Counter(items)
        finished = sum(counts[s] for s in JobItem.FINISHED)
        good = counts[JobItem.Status.SUCCEEDED] + counts[JobItem.Status.SKIPPED]
        if job.status not in Job.FINISHED:
            problems.append(f"job #{job.pk} ({job.kind}) is {job.status}: {dict(counts)}")
        left = {s: n for s, n in counts.items() if s in open_states}
        if left:
            problems.append(f"job #{job.pk} ({job.kind}) has items left {left}")
        if job.total != len(items) or job.done != finished:
            problems.append(f"job #{job.pk}: total/done {job.total}/{job.done}, items say {len(items)}/{finished}")
        if job.status in (Job.Status.SUCCEEDED, Job.Status.PARTIAL, Job.Status.FAILED) and finished == len(items):
            derived = (
                Job.Status.SUCCEEDED if good == len(items) else Job.Status.FAILED if good == 0 else Job.Status.PARTIAL
            )
            if derived != job.status:
                problems.append(f"job #{job.pk} is {job.status} but its items say {derived}: {dict(counts)}")
        if job.is_finished and job.finished_at is None:
            problems.append(f"job #{job.pk} is {job.status} without finished_at")
    notes.append("jobs: " + (", ".join(f"{k} {s}: {n}" for (k, s), n in sorted(by_kind.items())) or "none"))
    failed = JobItem.objects.filter(status=JobItem.Status.FAILED).values_list("job__kind", "message")
    reasons = Counter((kind, message.split(" Retrying")[0][:90]) for kind, message in failed)
    for (kind, message), n in sorted(reasons.items()):
        notes.append(f"failed {kind} item(s) x{n}: {message}")


def check_exports(problems: list[str], notes: list[str], expect: dict) -> None:
    from django.conf import settings

    from recordings.models import Job, JobItem

    export_dir = Path(settings.EXPORT_DIR)
    for job in Job.objects.filter(kind=Job.Kind.EXPORT):
        archive = job.items.filter(target_type="archive").first()
        recordings = job.items.filter(target_type="recording")
        succeeded = recordings.filter(status=JobItem.Status.SUCCEEDED).count()
        failed = recordings.filter(status=JobItem.Status.FAILED).count()
        name = f"export #{job.pk}"
        if archive is None:
            problems.append(f"{name} has no archive item")
            continue
        path = export_dir / Path(job.file_path).name if job.file_path else None
        if archive.status != JobItem.Status.SUCCEEDED:
            if path is not None and path.exists():
                problems.append(f"{name}: archive {archive.status} but a file is there")
            if archive.status == JobItem.Status.FAILED:
                notes.append(f"{name}: the archive failed: {archive.message[:120]}")
            continue
        if job.status == Job.Status.EXPIRED:
            continue
        if path is None or not path.is_file():
            problems.append(f"{name} succeeded but its file {job.file_path!r} is missing")
            continue
        if path.stat().st_size != job.file_size:
            problems.append(f"{name}: file is {path.stat().st_size} bytes, the job says {job.file_size}")
        if job.params.get("files") != succeeded or job.params.get("failed") != failed:
            problems.append(f"{name}: params say {job.params.get('files')} files/{job.params.get('failed')} failed, "
                            f"items say {succeeded}/{failed}")  # fmt: skip
        problem = _zip_problem(path, succeeded, failed)
        if problem:
            problems.append(f"{name}: {problem}")
    leftovers = sorted(p.name for p in export_dir.glob("*.part")) if export_dir.is_dir() else []
    if leftovers:
        problems.append(f"partial export files left in {export_dir}: {leftovers}")


def _zip_problem(path: Path, succeeded: int, failed: int) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8-sig"))))
            errors = []
            if "errors.csv" in names:
                errors = list(csv.DictReader(io.StringIO(archive.read("errors.csv").decode("utf-8-sig"))))
            audio = {n for n in names if n.startswith("recordings/")}
            if len(rows) != succeeded or len(audio) != succeeded:
                return f"{len(rows)} manifest rows and {len(audio)} files for {succeeded} succeeded items"
            if len(errors) != failed:
                return f"{len(errors)} rows in errors.csv for {failed} failed items"
            manifest = json.loads(archive.read("manifest.json"))
            if len(manifest["recordings"]) != succeeded:
                return f"manifest.json lists {len(manifest['recordings'])} recordings for {succeeded}"
            for row in rows:
                info = archive.getinfo(row["file"])
                if info.file_size != int(row["size_bytes"]):
                    return f"{row['file']}: {info.file_size} bytes, the manifest says {row['size_bytes']}"
                digest = hashlib.sha256()
                with archive.open(info) as member:
                    while block := member.read(1024 * 1024):
                        digest.update(block)
                if digest.hexdigest() != row["sha256"]:
                    return f"{row['file']}: SHA-256 differs from the manifest"
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        return f"the ZIP cannot be read: {exc}"
    return ""


# --- Recordings, transcripts, counts --------------------------------------------------------------------------


def check_recordings(problems: list[str], notes: list[str], expect: dict) -> None:
    from django.db.models import F

    from recordings.models import Call, Recording

    allowed = set(Recording.Status.values)
    for pk, status in Recording.objects.exclude(status__in=allowed).values_list("pk", "status"):
        problems.append(f"recording {pk} has status {status!r}")
    deleted = Recording.objects.filter(status__in=[Recording.Status.DELETED, Recording.Status.MEDIA_DELETED])
    for r in deleted.values("pk", "status", "deleted_at", "deleted_by", "gone_upstream_at", "delete_requested_at"):
        by_portal = r["delete_requested_at"] is not None
        if by_portal and (r["deleted_at"] is None or r["deleted_by"] is None):
            problems.append(f"recording {r['pk']} is {r['status']} by the portal without deleted_at/deleted_by")
        if not by_portal and r["gone_upstream_at"] is None:
            problems.append(f"recording {r['pk']} is {r['status']} with neither a deletion nor gone_upstream_at")
    alive = Recording.objects.exclude(status__in=[Recording.Status.DELETED, Recording.Status.MEDIA_DELETED])
    n = alive.filter(deleted_at__isnull=False).count()
    if n:
        problems.append(f"{n} recording(s) not deleted but with deleted_at set")
    n = Recording.objects.exclude(account_id=F("call__account_id")).count()
    if n:
        problems.append(f"{n} recording(s) of another account than their call's")
    n = Call.objects.exclude(provider=F("account__provider")).count()
    if n:
        problems.append(f"{n} call(s) whose provider is not their account's")
    notes.append("recordings: " + ", ".join(
        f"{s}: {c}" for s, c in sorted(Counter(Recording.objects.values_list("status", flat=True)).items())
    ))  # fmt: skip


def check_transcripts(problems: list[str], notes: list[str], expect: dict) -> None:
    from recordings.models import Call, JobItem, Transcript

    available = Transcript.objects.filter(status=Transcript.Status.AVAILABLE)
    for t in available.filter(recording__call__has_transcript=False).values("pk", "recording_id"):
        problems.append(f"transcript {t['pk']} of recording {t['recording_id']} is available, its call says none")
    for t in available.filter(text="").values("pk"):
        problems.append(f"transcript {t['pk']} is available but empty")
    without = Call.objects.filter(has_transcript=True).exclude(
        recordings__transcript__status=Transcript.Status.AVAILABLE
    )
    for pk in without.values_list("pk", flat=True):
        problems.append(f"call {pk} says has_transcript but has no available transcript")
    done = JobItem.objects.filter(
        job__kind__in=["transcribe", "refresh_transcription"], status=JobItem.Status.SUCCEEDED
    ).values_list("target_id", flat=True)
    for pk in done:
        status = Transcript.objects.filter(recording_id=int(pk)).values_list("status", flat=True).first()
        if status != Transcript.Status.AVAILABLE:
            problems.append(f"recording {pk}: its transcription item succeeded but the transcript is {status}")
    notes.append("transcripts: " + (", ".join(
        f"{s}: {c}" for s, c in sorted(Counter(Transcript.objects.values_list("status", flat=True)).items())
    ) or "none"))  # fmt: skip


def check_counts(problems: list[str], notes: list[str], expect: dict) -> None:
    from django.db.models import Count

    from recordings.models import Call, ProviderAccount, Recording

    for model in (Call, Recording):
        dupes = model.objects.values("account_id", "remote_id").annotate(n=Count("id")).filter(n__gt=1)
        for d in dupes[:20]:
            problems.append(f"{model.__name__} {d['remote_id']!r} is {d['n']} times in account {d['account_id']}")
    index = expect.get("index")
    if not index:
        notes.append("counts against the sandbox: skipped (no --sandbox-url)")
        return
    for name, entry in index["providers"].items():
        accounts = ProviderAccount.objects.filter(provider=name, base_url=entry["base_url"])
        calls = Call.objects.filter(account__in=accounts).count()
        recordings = Recording.objects.filter(account__in=accounts).count()
        seeded = entry["seeded"]
        if (calls, recordings) != (seeded["calls"], seeded["recordings"]):
            problems.append(f"{name}: {calls} calls and {recordings} recordings in the portal, the sandbox seeded "
                            f"{seeded['calls']} and {seeded['recordings']}")  # fmt: skip
    mismatched = any(p.split(":")[0] in index["providers"] for p in problems)
    notes.append("calls and recordings per provider: " + ("see the problems" if mismatched else "as seeded"))


def check_accounts(problems: list[str], notes: list[str], expect: dict) -> None:
    from recordings.models import ProviderAccount

    for account in ProviderAccount.objects.filter(last_sync_status=ProviderAccount.SyncStatus.RUNNING):
        problems.append(f"account {account.name} is still marked as syncing")


def check_tasks(problems: list[str], notes: list[str], expect: dict) -> None:
    from django.conf import settings
    from django.utils import timezone

    if settings.TASKS_BACKEND != "db":
        return
    from django_tasks_db.models import DBTaskResult

    for task in DBTaskResult.objects.filter(status__in=["RUNNING", "FAILED"]):
        problems.append(f"task {task.task_path} {task.args_kwargs} is {task.status}: "
                        f"{task.exception_class_path} {task.traceback.strip().splitlines()[-1:] }")  # fmt: skip
    due = DBTaskResult.objects.filter(status="READY", run_after__lte=timezone.now()).exclude(
        task_path__endswith="expire_exports"
    )
    for task in due:
        problems.append(f"task {task.task_path} {task.args_kwargs} is still queued")


# --- Audit ---------------------------------------------------------------------------------------------------


def check_audit(problems: list[str], notes: list[str], expect: dict) -> None:
    from django.db.models import Sum

    from recordings.models import AuditEvent, Job, JobItem

    A = AuditEvent.Action
    events = AuditEvent.objects.all()
    # One `export` row per export job.
    rows = Counter(events.filter(action=A.EXPORT, target_type="job").values_list("target_id", flat=True))
    for pk in Job.objects.filter(kind=Job.Kind.EXPORT).values_list("pk", flat=True):
        if rows.get(str(pk), 0) != 1:
            problems.append(f"export #{pk} has {rows.get(str(pk), 0)} `export` audit rows (1 expected)")
    # One row per finished item of the recording and account jobs (the sync service writes the sync rows).
    actions = {"transcribe": A.TRANSCRIBE, "refresh_transcription": A.TRANSCRIBE, "remove_cache": A.CACHE_REMOVE,
               "test_connection": A.TEST_CONNECTION, "delete": A.DELETE, "delete_media": A.DELETE_MEDIA}  # fmt: skip
    for job in Job.objects.filter(kind__in=list(actions)):
        finished = job.items.filter(status__in=JobItem.FINISHED).count()
        logged = sum(1 for d in events.filter(action=actions[job.kind]).values_list("details", flat=True)
                     if isinstance(d, dict) and d.get("job") == job.pk)  # fmt: skip
        if logged != finished:
            problems.append(f"job #{job.pk} ({job.kind}): {finished} finished item(s), {logged} audit row(s)")
    # Sync: a row per attempt that ran (ok or failed) plus one per refused item; the demo's seed wrote its own.
    sync_items = JobItem.objects.filter(job__kind=Job.Kind.SYNC)
    refused = sync_items.filter(status=JobItem.Status.REFUSED).count()
    ran = sync_items.exclude(status=JobItem.Status.REFUSED)
    low = ran.filter(status__in=[JobItem.Status.SUCCEEDED, JobItem.Status.FAILED]).count() + refused
    high = (ran.aggregate(n=Sum("attempts"))["n"] or 0) + refused
    by_people = events.filter(action=A.SYNC, actor__isnull=False).count()
    if not low <= by_people <= high:
        problems.append(f"{by_people} sync audit rows by admins; the sync jobs' items allow {low} to {high}")
    # What the run did.
    counts = expect.get("counts", {})
    if "login" in counts:
        users = [*expect.get("listeners", []), "supervisor", "exporter", "admin"]
        logins = events.filter(action=A.LOGIN, actor_username__in=users).count()
        if logins != counts["login"]:
            problems.append(f"{logins} login audit rows for {counts['login']} logins")
    if "counts" in expect:
        downloads = events.filter(action=A.EXPORT_DOWNLOAD).count()
        if downloads != counts.get("export_download", 0):
            problems.append(f"{downloads} export_download audit rows for {counts.get('export_download', 0)} downloads")
        csvs = sum(1 for d in events.filter(action=A.EXPORT, target_type="").values_list("details", flat=True)
                   if isinstance(d, dict) and d.get("format") == "csv" and "selection" in d)  # fmt: skip
        if csvs != counts.get("csv", 0):
            problems.append(f"{csvs} results-CSV audit rows for {counts.get('csv', 0)} CSV downloads")
    if "played" in expect:
        _check_plays(problems, notes, expect)
    _check_secrets(problems, notes, expect)


def _check_plays(problems: list[str], notes: list[str], expect: dict) -> None:
    from recordings.models import AuditEvent

    played = {(u, int(r)) for u, r in expect["played"]}
    tried = {(u, int(r)) for u, r in expect["tried"]}
    users = set(expect.get("listeners", []))
    rows = Counter(
        (u, int(t))
        for u, t in AuditEvent.objects.filter(action=AuditEvent.Action.PLAY, actor_username__in=users).values_list(
            "actor_username", "target_id"
        )
    )
    missing = played - set(rows)
    if missing:
        problems.append(f"{len(missing)} (user, recording) pairs got audio without a `play` audit row, e.g. "
                        f"{sorted(missing)[:3]}")  # fmt: skip
    strangers = set(rows) - tried
    if strangers:
        problems.append(f"{len(strangers)} `play` rows for recordings the user never asked for, e.g. "
                        f"{sorted(strangers)[:3]}")  # fmt: skip
    twice = {pair: n for pair, n in rows.items() if n > 1}
    notes.append(f"play audit: {sum(rows.values())} rows for {len(played)} (listener, recording) pairs that got "
                 f"audio ({len(tried)} tried); {len(twice)} pair(s) with more than one row in the 30-minute "
                 "listening session" + (f", e.g. {sorted(twice.items())[:3]}" if twice else ""))  # fmt: skip


def _check_secrets(problems: list[str], notes: list[str], expect: dict) -> None:
    """No credential value in any audit row or log line; no provider URL in an audit row."""
    from recordings.models import AuditEvent

    index = expect.get("index") or {}
    secrets: set[str] = set()
    urls: set[str] = set()
    for entry in index.get("providers", {}).values():
        for key, value in entry.get("credentials", {}).items():
            if isinstance(value, str) and len(value) >= 8 and key != "username":
                secrets.add(value)
        urls.add(entry["base_url"].split("/")[2])  # host:port of the sandbox
    if not secrets:
        notes.append("credential scan: skipped (no sandbox index)")
        return
    leaks = 0
    for row in AuditEvent.objects.values_list("details", "target_label", "actor_username").iterator():
        text = json.dumps(row, default=str)
        if any(s in text for s in secrets):
            leaks += 1
        if any(u in text for u in urls):
            problems.append(f"an audit row names the provider host: {text[:200]}")
    if leaks:
        problems.append(f"{leaks} audit row(s) hold a credential value")
    for log in expect.get("logs", []):
        path = Path(log)
        if path.exists():
            text = path.read_text(errors="replace")
            found = [s[:4] + "…" for s in secrets if s in text]
            if found:
                problems.append(f"{path.name} holds credential values ({', '.join(found)})")
    notes.append(f"credential scan: {len(secrets)} credential values looked for in the audit log"
                 + (f" and {len(expect.get('logs', []))} logs" if expect.get("logs") else ""))  # fmt: skip


def check_logs(problems: list[str], notes: list[str], expect: dict) -> None:
    """No traceback in the portal's or the worker's log: every failure was handled and answered."""
    for log in expect.get("logs", []):
        path = Path(log)
        if not path.exists():
            continue
        lines = path.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Traceback"):
                error = next((x for x in lines[i + 1 :] if x and not x.startswith(" ")), "")
                before = lines[i - 1] if i else ""
                problems.append(f"{path.name}: a traceback after {before[:150]!r}: {error[:150]}")


# --- Media cache ---------------------------------------------------------------------------------------------


def check_media_cache(problems: list[str], notes: list[str], expect: dict) -> None:
    from django.conf import settings

    from recordings.models import Recording

    root = Path(settings.MEDIA_CACHE_DIR)
    if not root.is_dir():
        return
    leftovers = sorted(p.name for p in root.iterdir() if p.suffix in (".part", ".fill"))
    if leftovers:
        problems.append(f"media cache: unfinished fills left: {leftovers[:10]}")
    sizes = dict(Recording.objects.values_list("pk", "size_bytes"))
    cached = 0
    for media in root.glob("*.media"):
        cached += 1
        try:
            info = json.loads(media.with_suffix(".json").read_text())
        except (FileNotFoundError, ValueError):
            problems.append(f"media cache: {media.name} without its description")
            continue
        if media.stat().st_size != info.get("size"):
            problems.append(f"media cache: {media.name} is {media.stat().st_size} bytes, described as {info['size']}")
        expected = sizes.get(int(media.stem))
        if expected and expected != media.stat().st_size:
            problems.append(f"media cache: {media.name} is {media.stat().st_size} bytes, the recording {expected}")
    notes.append(f"media cache: {cached} complete file(s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--export-dir", help="EXPORT_DIR of the portal (default: its settings)")
    parser.add_argument("--media-cache-dir", help="MEDIA_CACHE_DIR of the portal (default: its settings)")
    parser.add_argument("--sandbox-url", help="a running sandbox: compare the counts with what it seeded")
    parser.add_argument("--expect", type=Path, help="JSON of what the run did (bench/load.py --keep writes it)")
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the jobs to finish first")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    if args.export_dir:
        os.environ["EXPORT_DIR"] = args.export_dir
    if args.media_cache_dir:
        os.environ["MEDIA_CACHE_DIR"] = args.media_cache_dir
    expect = json.loads(args.expect.read_text()) if args.expect else {}
    if args.sandbox_url:
        import requests

        expect["index"] = requests.get(args.sandbox_url.rstrip("/") + "/", timeout=10).json()
    setup_django()
    if args.wait and not wait_drained(timeout=args.wait):
        print("the jobs did not finish in time", file=sys.stderr)
    problems, notes = run_checks(expect=expect)
    for note in filter(None, notes):
        print(f"  {note}")
    for problem in problems:
        print(f"PROBLEM {problem}")
    print("consistent" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
