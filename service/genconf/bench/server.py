"""The server process that `genconf bench` drives: `genconf serve` plus the baseline
handlers (`genconf.bench.baseline`), in a process of its own so that the figures
are the server's alone and its memory and CPU can be read apart from the bench.

    python -m genconf.bench.server --mongo-uri URI --database DB [--listen HOST:PORT]

It prints ``READY_LINE ADDRESS`` once the cache is synced and gRPC health is
SERVING, and stops cleanly on SIGTERM or SIGINT. Start it yourself to point
several bench runs at one server (``genconf bench WORKLOAD --server ADDRESS``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import Final

import anyio

from genconf.api.server import ServerConfig, serve
from genconf.bench.baseline import add_baseline_handlers
from genconf.defaults import add_serve_flags, serve_option
from genconf.logs import setup_logging
from genconf.readside.supervisor import tune_gc
from genconf.signals import stop_signals

READY_LINE: Final = "genconf bench server ready on"
# Every bench stream comes from loopback without a token, so `serve`'s per-peer
# limit would stop the bench at its default; the bench measures cost, not limits.
STREAM_LIMIT: Final = 1_000_000


def _term_at_stdin_eof() -> None:
    """Stop (as on SIGTERM) once stdin closes: the bench that started us is gone."""
    sys.stdin.buffer.read()
    os.kill(os.getpid(), signal.SIGTERM)


async def _serve(args: argparse.Namespace) -> int:
    tune_gc()
    config = ServerConfig.from_flags(args, extra_handlers=add_baseline_handlers)
    with stop_signals() as stop:
        if args.exit_with_stdin:
            threading.Thread(target=_term_at_stdin_eof, daemon=True).start()
        async with serve(config) as running:
            with anyio.fail_after(120):
                await running.read.wait_synced()
            print(f"{READY_LINE} {running.address}", flush=True)
            await stop.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m genconf.bench.server",
        description="A genconf server with the bench baseline handlers.",
    )
    # The flags `genconf serve` has too, declared there; the bench's own defaults.
    shared = [
        serve_option("--mongo-uri", help="default: embedded mongod"),
        serve_option("--data-dir", default=".genconf-bench-data", help="embedded data"),
        serve_option("--database"),
        serve_option("--listen", default="127.0.0.1:0"),
        serve_option("--bookmark-interval"),
        serve_option("--ring-size"),
    ]
    add_serve_flags(parser, shared)
    parser.add_argument("--log-level", default="warning")
    limits = [
        serve_option(flag, default=STREAM_LIMIT) for flag in ("--streams-per-peer", "--max-streams")
    ]
    add_serve_flags(parser, limits)
    parser.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="stop when stdin closes (how `genconf bench` makes sure we never outlive it)",
    )
    args = parser.parse_args(argv)
    setup_logging(args.log_level, fallback=logging.WARNING)
    return int(anyio.run(_serve, args))


if __name__ == "__main__":
    sys.exit(main())
