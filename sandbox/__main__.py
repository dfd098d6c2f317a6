"""`python -m sandbox --port N`: the five emulated providers on one port (see docs/sandbox.md)."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from datetime import date

from sandbox import data
from sandbox.faults import FaultError, parse_cli, validate
from sandbox.server import Config, SandboxServer, SandboxState

WARM_LIMIT = 2000  # recordings; the default dataset has about 150


def build_parser() -> argparse.ArgumentParser:
    defaults = Config()
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SANDBOX_PORT", "8001")),
        help="port to listen on; 0 picks a free one (printed on start)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--calls",
        type=parse_calls,
        default=data.DEFAULT_CALLS,
        metavar="N|NAME=N[,NAME=N]",
        help=f"seeded calls per provider: one number for all, or per provider, e.g. "
        f"bandwidth=5000 (the others keep {data.DEFAULT_CALLS})",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--anchor-date",
        type=date.fromisoformat,
        default=None,
        help="the sandbox's 'today' (YYYY-MM-DD); seeded calls happen before it (default: today)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="PROVIDER:KIND[=VALUE][,key=value...], e.g. bandwidth:status=429,count=3,retry_after=2",
    )
    parser.add_argument(
        "--transcription-delay",
        type=float,
        default=defaults.transcription_delay,
        help="seconds a Bandwidth transcription stays 'processing'",
    )
    parser.add_argument("--session-ttl", type=float, default=defaults.session_ttl, help="Ameyo session lifetime (s)")
    parser.add_argument("--link-ttl", type=float, default=defaults.link_ttl, help="Envoy playback URL lifetime (s)")
    parser.add_argument(
        "--big-recording-mb",
        type=int,
        default=0,
        help="add one synthetic Bandwidth WAV of about N MB (computed, not stored)",
    )
    parser.add_argument(
        "--cache-dir",
        default=os.environ.get("SANDBOX_CACHE_DIR", ".sandbox-cache"),
        help="where generated audio is cached (env SANDBOX_CACHE_DIR)",
    )
    parser.add_argument("--no-warm", action="store_true", help="do not generate missing audio in the background")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request to stderr")
    return parser


def parse_calls(text: str) -> int | dict[str, int]:
    try:
        if "=" not in text:
            return int(text)
        counts = {}
        for item in text.split(","):
            name, _, number = item.partition("=")
            if name.strip() not in data.PROVIDERS:
                raise ValueError(name)
            counts[name.strip()] = int(number)
        return counts
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or NAME=N[,NAME=N], got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.big_recording_mb <= 4000:
        parser.error("--big-recording-mb must be between 0 and 4000 (a WAV file holds at most 4 GiB)")
    try:
        specs = [parse_cli(text) for text in args.fault]
        for spec in specs:
            validate(spec)
    except FaultError as exc:
        parser.error(str(exc))
    state = SandboxState(
        seed=args.seed,
        calls=args.calls,
        anchor=args.anchor_date,
        cache_dir=args.cache_dir,
        config=Config(args.transcription_delay, args.session_ttl, args.link_ttl),
        big_recording_mb=args.big_recording_mb,
    )
    state.initial_faults = specs
    state.clean()  # installs them
    server = SandboxServer((args.host, args.port), state, verbose=args.verbose)
    print(
        f"sandbox: listening on {server.url} (seed {args.seed}, calls per provider {state.dataset.calls_per_provider}, "
        f"index at {server.url}/)",
        flush=True,
    )
    if not args.no_warm:
        threading.Thread(target=_warm, args=(state,), name="sandbox-warm", daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _warm(state: SandboxState) -> None:
    t0 = time.monotonic()
    specs = state.all_specs()
    state.cache.warm(specs)
    print(
        f"sandbox: audio cache ready ({len(specs)} files, {time.monotonic() - t0:.1f} s)", file=sys.stderr, flush=True
    )


if __name__ == "__main__":
    sys.exit(main())
