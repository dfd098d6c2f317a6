"""Export throughput and memory against the budget (ARCHITECTURE.md): ZIP throughput >= 0.8x copying the same
bytes; memory flat; ZIP64 beyond 4 GiB.

    .venv/bin/python bench/export.py                    # about two minutes: an export of 4.1 GiB
    .venv/bin/python bench/export.py --big-mb 300       # quick check, no ZIP64

The sandbox serves one synthetic WAV of `--big-mb` MiB as a Bandwidth recording; two Bandwidth accounts point at
it, so an export of both calls holds two such files (2 x 2,100 MiB = 4.1 GiB: the archive needs ZIP64). The export
runs in a real `manage.py db_worker` process, as in production; its peak RSS is sampled from /proc.

References, in the same run: "copying the same bytes" = the same recordings downloaded from the sandbox into a
file on the same disk and fsynced, (a) by curl and (b) by requests with 1 MiB reads of the raw body; nothing else
is timed (the export also hashes and CRCs every byte). Order: curl, requests, export, requests, curl; the ratio
uses the faster reference's mean.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import ROOT, SandboxProcess, django_on_fresh_database

MB = 1024 * 1024


def copy_curl(sandbox: SandboxProcess, recordings, target: Path) -> float:
    """Seconds for curl (C, no Python) to download the recordings into `target`, fsynced: the fastest copy."""
    entry = sandbox.provider("bandwidth")
    creds = entry["credentials"]
    start = time.perf_counter()
    with open(target, "wb") as out:
        for recording in recordings:
            url = (f"{entry['base_url']}/accounts/{entry['options']['account_id']}/calls/{recording.call.remote_id}"
                   f"/recordings/{recording.remote_id}/media")  # fmt: skip
            subprocess.run(["curl", "-sSf", "-u", f"{creds['username']}:{creds['password']}", url], stdout=out,
                           check=True)  # fmt: skip
        out.flush()
        os.fsync(out.fileno())
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


def copy_direct(sandbox: SandboxProcess, recordings, target: Path) -> tuple[float, list[str]]:
    """Seconds to download the recordings straight from the sandbox into `target` (timed: nothing but the copy),
    then, untimed, the SHA-256 of each copied file."""
    entry = sandbox.provider("bandwidth")
    creds = entry["credentials"]
    session = requests.Session()
    sizes = []
    start = time.perf_counter()
    with open(target, "wb") as out:
        for recording in recordings:
            url = (f"{entry['base_url']}/accounts/{entry['options']['account_id']}/calls/{recording.call.remote_id}"
                   f"/recordings/{recording.remote_id}/media")  # fmt: skip
            with session.get(url, auth=(creds["username"], creds["password"]), stream=True, timeout=60) as response:
                response.raise_for_status()
                size = 0
                while block := response.raw.read(MB):
                    out.write(block)
                    size += len(block)
            sizes.append(size)
        out.flush()
        os.fsync(out.fileno())
    elapsed = time.perf_counter() - start
    digests = []
    with open(target, "rb") as copied:
        for size in sizes:
            digest = hashlib.sha256()
            left = size
            while left and (block := copied.read(min(4 * MB, left))):
                digest.update(block)
                left -= len(block)
            digests.append(digest.hexdigest())
    target.unlink()
    return elapsed, digests


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-mb", type=int, default=2100, help="size of each recording (MiB, at most 4000)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-export-"))
    os.environ["EXPORT_DIR"] = str(workdir / "exports")
    os.environ["MEDIA_CACHE_DIR"] = str(workdir / "media-cache")
    database = django_on_fresh_database(label="export")

    from django.contrib.auth import get_user_model

    from recordings.models import Job, ProviderAccount, Recording
    from recordings.services.exports import export_create, export_dir
    from recordings.services.sync import account_sync

    sandbox = SandboxProcess("--calls", "5", "--big-recording-mb", str(args.big_mb))
    try:
        entry = sandbox.provider("bandwidth")
        big = entry["big_recording"]
        recordings = []
        for n in (1, 2):
            account = ProviderAccount.objects.create(
                name=f"bench bandwidth {n}", provider="bandwidth", base_url=entry["base_url"],
                credentials=entry["credentials"], options=entry["options"],
            )  # fmt: skip
            account_sync(account=account)
            recordings.append(Recording.objects.select_related("call").get(account=account,
                                                                           remote_id=big["recording_id"]))  # fmt: skip
        total = sum(r.size_bytes or big["size_bytes"] for r in recordings)
        print(f"database: {database}; {len(recordings)} recordings of {big['size_bytes'] / MB:,.0f} MiB "
              f"= {total / MB:,.0f} MiB; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip

        curl_1 = copy_curl(sandbox, recordings, workdir / "copy.bin")
        print(f"copy with curl 1:     {curl_1:6.1f} s  {total / MB / curl_1:7.1f} MiB/s")
        copy_1, digests = copy_direct(sandbox, recordings, workdir / "copy.bin")
        print(f"copy with requests 1: {copy_1:6.1f} s  {total / MB / copy_1:7.1f} MiB/s")

        user = get_user_model().objects.create_user("bench-exporter")
        job = export_create(actor=user, call_ids=[r.call_id for r in recordings], description="bench")
        env = {**os.environ, "TASKS_BACKEND": "db"}
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--batch", "--interval", "0.1"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        samples: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append(rss_kb(worker.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        worker_started = time.perf_counter()
        _, stderr = worker.communicate(timeout=3600)
        done.set()
        sampler.join()
        worker_seconds = time.perf_counter() - worker_started
        job.refresh_from_db()
        if job.status != Job.Status.SUCCEEDED:
            print(stderr.decode()[-3000:])
            raise SystemExit(f"export {job.status}: {list(job.items.values_list('label', 'message'))}")
        export_seconds = (job.finished_at - job.started_at).total_seconds()
        print(f"export:               {export_seconds:6.1f} s  {total / MB / export_seconds:7.1f} MiB/s "
              f"(worker process {worker_seconds:.1f} s including start-up)")  # fmt: skip

        copy_2, again = copy_direct(sandbox, recordings, workdir / "copy.bin")
        print(f"copy with requests 2: {copy_2:6.1f} s  {total / MB / copy_2:7.1f} MiB/s")
        curl_2 = copy_curl(sandbox, recordings, workdir / "copy.bin")
        print(f"copy with curl 2:     {curl_2:6.1f} s  {total / MB / curl_2:7.1f} MiB/s")
        assert again == digests, "the sandbox sent different bytes the second time"
        copy = min((copy_1 + copy_2) / 2, (curl_1 + curl_2) / 2)  # the faster reference
        ratio = copy / export_seconds
        print(f"throughput ratio export / fastest copy: {ratio:.2f}x (budget >= 0.8x) -> "
              f"{'OK' if ratio >= 0.8 else 'MISSED'}")  # fmt: skip

        nonzero = [s for s in samples if s]
        first = nonzero[min(len(nonzero) - 1, 20)] if nonzero else 0  # after start-up (~1 s)
        peak = max(nonzero) if nonzero else 0
        print(f"worker RSS: {first / 1024:.1f} MB after start-up, peak {peak / 1024:.1f} MB "
              f"(+{(peak - first) / 1024:.1f} MB while writing {total / MB:,.0f} MiB)")  # fmt: skip

        path = export_dir() / job.file_path
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if info.filename.startswith("recordings/")]
            print(f"archive: {size:,} bytes ({size / 2**30:.2f} GiB); zip64 needed: {size > 0xFFFFFFFF}; "
                  f"stdlib zipfile lists {len(archive.infolist())} members")  # fmt: skip
            check = time.perf_counter()
            for info, expected in zip(members, digests, strict=True):
                digest = hashlib.sha256()
                with archive.open(info) as member:  # reading checks the CRC at the end
                    while block := member.read(4 * MB):
                        digest.update(block)
                assert digest.hexdigest() == expected, f"{info.filename}: checksum differs from the direct copy"
            manifest = archive.read("manifest.csv").decode("utf-8-sig")
            assert all(d in manifest for d in digests)
            took = time.perf_counter() - check
            print(f"verified: every member's CRC and SHA-256 match the direct download ({took:.0f} s)")
    finally:
        sandbox.stop()
        for leftover in sorted(workdir.rglob("*"), reverse=True):
            leftover.unlink() if leftover.is_file() else leftover.rmdir()


if __name__ == "__main__":
    main()
