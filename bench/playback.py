"""Playback proxy against its budgets (ARCHITECTURE.md), each as a ratio to a direct request in the same run.

    .venv/bin/python bench/playback.py            # about two minutes; a 1 GB synthetic recording

Measures, with the sandbox and the portal (gunicorn gthread, 1 worker x 64 threads) as `make run` starts them:
throughput of the 1 GB recording (portal / direct), first byte (median, portal - direct), peak RSS growth of the
gunicorn worker while the 1 GB recording streams, 50 concurrent streams (errors), seeking (a mid-file range per
provider, portal - direct, after a first play for cached providers) and how fast a hang-up closes the upstream.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._setup import SandboxProcess, process_cpu_seconds
from tests.portal_server import PortalProcess

MB = 1024 * 1024


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def drain(response: requests.Response, chunk: int = MB) -> int:
    n = 0
    for block in response.iter_content(chunk):
        n += len(block)
    return n


class Direct:
    """Requests straight to the sandbox, the way each adapter would make them."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        self.sandbox = sandbox
        self.session = requests.Session()

    def bandwidth_media(self, call_id: str, rec_id: str, headers=None, stream=False, base=None) -> requests.Response:
        entry = self.sandbox.provider("bandwidth")
        base = base or entry["base_url"]
        url = f"{base}/accounts/{entry['options']['account_id']}/calls/{call_id}/recordings/{rec_id}/media"
        creds = entry["credentials"]
        return self.session.get(url, auth=(creds["username"], creds["password"]), headers=headers or {},
                                stream=stream, timeout=60)  # fmt: skip

    def envoy_range(self, call_id: str, header: str) -> requests.Response:
        entry = self.sandbox.provider("envoy")
        auth = {"Authorization": f"Bearer {entry['credentials']['token']}"}
        link = self.session.get(f"{entry['base_url']}/calls/{call_id}/recording", headers=auth, timeout=30).json()
        return self.session.get(link["url"], headers={"Range": header}, timeout=30)

    def kaleyra_range(self, rec_id: str, header: str) -> requests.Response:
        entry = self.sandbox.provider("kaleyra")
        url = f"{entry['base_url']}/{entry['options']['sid']}/voice/recordings"
        body = self.session.post(url, headers={"api-key": entry["credentials"]["api_key"]},
                                 data={"id": rec_id, "validity": 5, "download": 0}, timeout=30).json()  # fmt: skip
        return self.session.get(body["data"]["link"], headers={"Range": header}, timeout=30)

    def truto_download(self, locator_url: str) -> requests.Response:
        entry = self.sandbox.provider("truto")
        return self.session.post(
            f"{entry['base_url']}/recordings/download",
            params={
                "integrated_account_id": entry["options"]["integrated_account_id"],
                "truto_response_format": "stream",
            },
            headers={"Authorization": f"Bearer {entry['credentials']['token']}"},
            json={"url": locator_url, "remote_data": {}}, stream=True, timeout=30,
        )  # fmt: skip


def fetch(session: requests.Session, url: str, header: str) -> bytes:
    return session.get(url, headers={"Range": header}, timeout=30).content


def direct_reference(direct: Direct, portal, provider: str, pk: int, remote: str, call_remote: str, header: str):
    """The provider's own way to get the same bytes (None for Ameyo, which has no Range at all)."""
    if provider == "bandwidth":
        return lambda: direct.bandwidth_media(call_remote, remote, headers={"Range": header}).content
    if provider == "envoy":
        return lambda: direct.envoy_range(call_remote, header).content
    if provider == "kaleyra":
        return lambda: direct.kaleyra_range(remote, header).content
    if provider == "truto":
        sql = "SELECT json_extract(locator, '$.url') FROM recordings_recording WHERE id = ?"
        url = portal.query(sql, (pk,))[0][0]
        return lambda: next(direct.truto_download(url).iter_content(65536))
    return None


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big-mb", type=int, default=1024)
    parser.add_argument("--streams", type=int, default=50)
    args = parser.parse_args()

    sandbox = SandboxProcess("--big-recording-mb", str(args.big_mb))
    portal = PortalProcess(sandbox.url, threads=64).start()
    try:
        run(sandbox, portal, args)
    finally:
        portal.stop()
        sandbox.stop()


def run(sandbox: SandboxProcess, portal: PortalProcess, args) -> None:
    direct = Direct(sandbox)
    session = portal.login("supervisor")
    big = sandbox.provider("bandwidth")["big_recording"]
    (big_pk,) = portal.query("SELECT id FROM recordings_recording WHERE remote_id = ?", (big["recording_id"],))[0]
    audio = f"{portal.url}/recordings/{{}}/audio"
    print(f"sandbox {sandbox.url}, portal {portal.url} (gunicorn gthread, 1 worker x 64 threads)\n")

    # 1. Throughput and memory: the 1 GB recording, direct and through the portal, alternately.
    (worker,) = portal.worker_pids()
    results = {"direct": [], "portal": [], "bare relay": []}
    # CPU-s per GB of each process (the cores, not the wire, are what bounds a loopback run): the sum over both runs.
    cpu = {"direct": {"client": 0.0, "sandbox": 0.0}, "portal": {"client": 0.0, "sandbox": 0.0, "worker": 0.0},
           "bare relay": {"client": 0.0, "sandbox": 0.0, "relay": 0.0}}  # fmt: skip
    moved = dict.fromkeys(results, 0)
    # The control: a bare splice relay (bench/_relay.py) in front of the sandbox, no HTTP or Django: the most any
    # relay can do on this machine, the same 3 processes on the same cores.
    relay = subprocess.Popen([sys.executable, str(Path(__file__).parent / "_relay.py"), "127.0.0.1",
                              str(urlsplit(sandbox.url).port)], stdout=subprocess.PIPE, text=True)  # fmt: skip
    relay_url = f"http://127.0.0.1:{relay.stdout.readline().strip()}"
    relay_base = sandbox.provider("bandwidth")["base_url"].replace(sandbox.url, relay_url)

    def cpu_now() -> dict[str, float]:
        return {"client": time.process_time(), "sandbox": sandbox.cpu_seconds() or 0.0,
                "worker": process_cpu_seconds(worker) or 0.0,
                "relay": process_cpu_seconds(relay.pid) or 0.0}  # fmt: skip

    def measure(name: str, open_response) -> int:
        """Download one whole body; record its rate and each process's CPU time. Returns its size."""
        before = cpu_now()
        with open_response() as r:
            r.raise_for_status()
            size = int(r.headers["Content-Length"])
            results[name].append(size / timed(lambda r=r: drain(r)) / MB)
        after = cpu_now()
        for process in cpu[name]:
            cpu[name][process] += after[process] - before[process]
        moved[name] += size
        return size

    bandwidth = partial(direct.bandwidth_media, big["call_id"], big["recording_id"], stream=True)
    peak_growth = 0
    try:
        for _ in range(2):
            measure("direct", bandwidth)
            measure("bare relay", partial(bandwidth, base=relay_base))
            baseline = rss_kb(worker)
            peak = [baseline]
            done = threading.Event()

            def sample(peak=peak, done=done) -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_kb(worker))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            size = measure("portal", lambda: session.get(audio.format(big_pk), stream=True, timeout=60))
            done.set()
            sampler.join()
            peak_growth = max(peak_growth, (peak[0] - baseline) / 1024)
    finally:
        relay.terminate()
        relay.wait(timeout=10)
    d, p, b = max(results["direct"]), max(results["portal"]), max(results["bare relay"])
    print(f"throughput, {size / MB:.0f} MB recording: direct {d:.0f} MB/s, portal {p:.0f} MB/s, ratio {p / d:.2f} "
          f"(budget >= 0.9)")  # fmt: skip
    print(f"  control: a bare splice relay (bench/_relay.py) {b:.0f} MB/s, ratio {b / d:.2f}; "
          f"the portal against it {p / b:.2f}")  # fmt: skip
    for name in results:
        gigabytes = moved[name] / 1024**3
        per_gb = ", ".join(f"{process} {seconds / gigabytes:.2f}" for process, seconds in cpu[name].items())
        print(f"CPU-s per GB, {name}: {per_gb}")
    print(f"peak RSS growth of the gunicorn worker while it streams: {peak_growth:.1f} MB (budget < 25 MB)")

    # 2. First byte: a small recording, alternating direct and portal.
    call_id, rec_id, pk = portal.query(
        "SELECT c.remote_id, r.remote_id, r.id FROM recordings_recording r JOIN recordings_call c ON c.id = r.call_id "
        "WHERE c.provider = 'bandwidth' AND r.status = 'available' AND r.duration > 20 ORDER BY r.duration LIMIT 1"
    )[0]
    firsts = {"direct": [], "portal": []}
    for _ in range(40):
        for name, get in (
            ("direct", lambda: direct.bandwidth_media(call_id, rec_id, headers={"Range": "bytes=0-1023"}, stream=True)),
            ("portal", lambda: session.get(audio.format(pk), headers={"Range": "bytes=0-1023"}, stream=True)),
        ):
            t0 = time.perf_counter()
            r = get()
            next(r.iter_content(1024))
            firsts[name].append((time.perf_counter() - t0) * 1000)
            r.close()
    md, mp = statistics.median(firsts["direct"]), statistics.median(firsts["portal"])
    print(f"first byte (median of 40): direct {md:.1f} ms, portal {mp:.1f} ms, difference {mp - md:.1f} ms "
          f"(budget <= 10 ms)")  # fmt: skip

    # 3. Seeking: a 64 KB range in the middle of one recording per provider.
    print("seeking, 64 KB in the middle (median of 10; cached providers after a first play):")
    for provider in ("bandwidth", "truto", "envoy", "kaleyra", "ameyo"):
        pk, remote, call_remote, size = portal.query(
            "SELECT r.id, r.remote_id, c.remote_id, r.size_bytes FROM recordings_recording r "
            "JOIN recordings_call c ON c.id = r.call_id WHERE c.provider = ? AND r.status = 'available' "
            "AND r.duration > 60 ORDER BY r.duration LIMIT 1",
            (provider,),
        )[0]
        total = int(session.head(audio.format(pk), timeout=30).headers["Content-Length"])
        drain(session.get(audio.format(pk), stream=True, timeout=60))  # the first play (fills the cache)
        middle = total // 2
        header = f"bytes={middle}-{middle + 65535}"
        direct_seek = direct_reference(direct, portal, provider, pk, remote, call_remote, header)
        portal_ms, direct_ms = [], []
        for _ in range(10):
            portal_ms.append(timed(partial(fetch, session, audio.format(pk), header)) * 1000)
            if direct_seek is not None:
                direct_ms.append(timed(direct_seek) * 1000)
        mp = statistics.median(portal_ms)
        if direct_ms:
            md = statistics.median(direct_ms)
            kind = "first 64 KB of its whole-file download" if provider == "truto" else "direct Range"
            print(f"  {provider:9} portal {mp:6.1f} ms, {kind} {md:6.1f} ms, difference {mp - md:+6.1f} ms "
                  f"(budget <= +100 ms)")  # fmt: skip
        else:
            print(f"  {provider:9} portal {mp:6.1f} ms (Ameyo has no direct Range; budget: 100 ms)")

    # 4. Concurrent streams: N listeners, recordings of all five providers, whole bodies.
    rows = portal.query(
        "SELECT r.id FROM recordings_recording r WHERE r.status = 'available' AND r.duration BETWEEN 20 AND 300 "
        "ORDER BY r.id"
    )
    ids = [row[0] for row in rows]
    # One login (password hashing is deliberately slow); each listener gets its own connection with that cookie.
    sessions = []
    for _ in range(args.streams):
        listener = requests.Session()
        listener.cookies.update(session.cookies)
        sessions.append(listener)

    def listen(i: int) -> tuple[int, int, float]:
        pk = ids[i % len(ids)]
        t0 = time.perf_counter()
        with sessions[i].get(audio.format(pk), stream=True, timeout=120) as r:
            n = drain(r, 64 * 1024)
            ok = r.status_code == 200 and n == int(r.headers.get("Content-Length", -1))
        return (0 if ok else 1), n, time.perf_counter() - t0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.streams) as pool:
        outcomes = list(pool.map(listen, range(args.streams)))
    wall = time.perf_counter() - t0
    errors = sum(o[0] for o in outcomes)
    megabytes = sum(o[1] for o in outcomes) / MB
    slowest = max(o[2] for o in outcomes)
    print(f"{args.streams} concurrent streams: {errors} errors, {megabytes:.0f} MB in {wall:.1f} s, "
          f"slowest {slowest:.1f} s (budget: no error)")  # fmt: skip

    # 5. Hang-up: read 1 MB of the big recording, hang up; when did the sandbox stop sending?
    log_since = requests.get(f"{sandbox.url}/_control/log", timeout=10).json()["entries"][-1]["id"]
    r = session.get(audio.format(big_pk), stream=True, timeout=60)
    next(r.iter_content(MB))
    r.close()
    session.close()
    hung_up = datetime.now(UTC)
    for _ in range(100):
        entries = requests.get(f"{sandbox.url}/_control/log?since={log_since}&provider=bandwidth", timeout=10).json()[
            "entries"
        ]
        media = [e for e in entries if e["path"].endswith("/media") and e["ended_at"]]
        if media:
            break
        time.sleep(0.05)
    ended = datetime.fromisoformat(media[-1]["ended_at"].replace("Z", "+00:00"))
    print(
        f"hang-up: upstream closed {round((ended - hung_up).total_seconds() * 1000)} ms after the client hung up, "
        f"{media[-1]['bytes_sent'] / MB:.0f} MB of {media[-1]['body_length'] / MB:.0f} MB sent (budget < 1 s)"
    )


if __name__ == "__main__":
    main()
