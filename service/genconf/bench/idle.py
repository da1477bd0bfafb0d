"""Idle: what S open, quiet streams cost the server (default 10,000).

Method
------
For each side in turn, on a freshly started server (so that neither side
inherits the other's freed memory): read the server's resident memory after a
full collection, open S streams from ``--workers`` client processes, read it
again, let the streams settle (a few seconds; with bookmarks, one interval, so
that every stream has sent its first, randomly placed one), then let them sit
for ``--window`` seconds, reading the server's CPU time at the start and at the
end of each of ``--repeat`` equal slices of it. Memory per stream is the growth
divided by S; CPU is the median slice's server CPU time as a share of one core.

genconf's streams are ``WatchConfig`` on a server with its defaults: no periodic
bookmarks, since resuming a quiet stream needs none (`AgentServicer.WatchConfig`
says why), so a quiet stream costs no message at all. The baseline's are the
baseline ``Watch`` of `genconf.bench.baseline`: a stream that got one message and
waits, so its memory and CPU are what gRPC and the event loop alone need per
stream. With ``--bookmark-interval N`` genconf sends a bookmark per stream every
N seconds, and the bench sends the baseline streams as many pre-encoded ones,
spread over the interval as genconf's bookmark clock spreads its own (``Fire`` to
one of ``BOOKMARK_TICKS`` topics per tick), so the baseline's CPU is that of
sending as many messages, in the same pattern, with no genconf work.

Targets: <= 30 KB per stream and <= 1 % of one core. With ``--server``, both
sides run on that one server, the baseline first.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any, Final

from genconf.api.agent import BOOKMARK_TICKS
from genconf.bench.figures import SIDES, Figure, Report, machine
from genconf.bench.options import (
    DEFAULT_BOOKMARK_INTERVAL,
    Options,
    add_bookmark_interval,
    workload_main,
    workload_parser,
)
from genconf.bench.session import Session, session
from genconf.v1 import agent_pb2

__all__ = ["DEFAULT_STREAMS", "main", "run_idle"]

DEFAULT_STREAMS: Final = 10_000
TARGET_KB_PER_STREAM: Final = 30.0
TARGET_CPU_PERCENT: Final = 1.0
DEFAULT_WINDOW_S: Final = 30.0  # the window without bookmarks
SETTLE_S: Final = 3.0  # after subscribing, before the window (without bookmarks)


async def _broadcast_bookmarks(s: Session, start: float, window: float, interval: float) -> None:
    """One bookmark-sized message to every baseline stream per interval of the window,
    as genconf's bookmark clock spreads them: the streams in BOOKMARK_TICKS topics,
    one topic per tick (pacing to that schedule, not synchronization)."""
    message = agent_pb2.WatchConfigResponse(
        bookmark=agent_pb2.Bookmark(revision=2**62, hash="0" * 64)
    ).SerializeToString()
    intervals = max(1, round(window / interval))
    tick = window / (intervals * BOOKMARK_TICKS)
    for i in range(intervals * BOOKMARK_TICKS):
        await asyncio.sleep(max(0.0, start + (i + 0.5) * tick - time.monotonic()))
        await s.fire(message, topic=str(i % BOOKMARK_TICKS))


async def _side(
    s: Session,
    side: str,
    units: list[str],
    window: float,
    interval: float,
    slices: int,
    settle: float,
) -> dict[str, Any]:
    """Open the streams of one side, measure, close them."""
    await s.start_server(bookmark_interval=interval)
    if side == "baseline":
        await s.fire(await s.config_message(units[0]))
    empty = await s.server_stats(collect=True)
    await s.subscribe(side, side, units, topics=BOOKMARK_TICKS if side == "baseline" else 0)
    full = await s.server_stats(collect=True)
    # Steady state first: with bookmarks, after one interval every stream has sent
    # its first (randomly placed) one and sends one per interval from then on;
    # without, the subscribing calls' last work is done after a few seconds.
    await asyncio.sleep(interval if interval > 0 else settle)
    settled = await s.server_stats()
    bookmarks_before = (await s.records(side))["bookmarks"]
    start_cpu, start_clock = settled["cpu_seconds"], time.monotonic()
    if side == "baseline" and interval > 0:
        # As many messages as genconf's bookmarks, pre-encoded, one broadcast each.
        broadcasts = asyncio.create_task(_broadcast_bookmarks(s, start_clock, window, interval))
    # The window is the measurement itself: streams sit idle while time passes,
    # read in `slices` equal parts (the figure is their median).
    shares: list[float] = []
    last_cpu = start_cpu
    for i in range(1, slices + 1):
        await asyncio.sleep(max(0.0, start_clock + window * i / slices - time.monotonic()))
        now = await s.server_stats()
        shares.append((now["cpu_seconds"] - last_cpu) / (window / slices) * 100)
        last_cpu = now["cpu_seconds"]
    if side == "baseline" and interval > 0:
        await broadcasts
    end = await s.server_stats()
    elapsed = time.monotonic() - start_clock
    got = await s.records(side)
    await s.close(side)
    return {
        "kb_per_stream": (full["rss_bytes"] - empty["rss_bytes"]) / len(units) / 1024,
        "cpu_percent": statistics.median(shares),
        "cpu_percent_slices": shares,
        "cpu_percent_whole": (end["cpu_seconds"] - start_cpu) / elapsed * 100,
        "bookmarks": got["bookmarks"] - bookmarks_before,
        "window_s": elapsed,
        "rss_mib_before": empty["rss_bytes"] / 2**20,
        "rss_mib_open": full["rss_bytes"] / 2**20,
        "watchers": full["config_watchers"] if side == "genconf" else full["baseline_subscribers"],
    }


async def run_idle(
    opts: Options,
    *,
    window: float | None = None,
    interval: float = DEFAULT_BOOKMARK_INTERVAL,
    settle: float = SETTLE_S,
) -> Report:
    """Run the idle workload (see the module docstring)."""
    opts.check()
    window = (interval or DEFAULT_WINDOW_S) if window is None else window
    if window <= 0 or interval < 0:
        raise ValueError("--window must be > 0 and --bookmark-interval >= 0")
    async with session(opts, "idle", start_server=False) as s:
        await s.start_server(bookmark_interval=interval)
        units = await s.create_app("fleet", opts.streams)
        result = {
            side: await _side(s, side, units, window, interval, opts.repeat, settle)
            for side in SIDES
        }
        mongodb = s.mongodb

    g, b = result["genconf"], result["baseline"]
    if opts.server:
        every = "bookmarks as the given server sends them"
    elif interval > 0:
        every = f"bookmarks every {interval:g} s"
    else:
        every = "no bookmarks (the server's default)"
    figures = [
        Figure(
            "memory per stream",
            "KB",
            g["kb_per_stream"],
            b["kb_per_stream"],
            target_max=TARGET_KB_PER_STREAM,
        ),
        Figure(
            "server CPU while idle",
            "% of a core",
            g["cpu_percent"],
            b["cpu_percent"],
            target_max=TARGET_CPU_PERCENT,
        ),
        Figure(
            "bookmarks sent per second",
            "1/s",
            g["bookmarks"] / g["window_s"],
            higher_is_better=True,
        ),
    ]
    return Report(
        workload="idle",
        title=f"{opts.streams:,} idle streams for {window:g} s, {every} "
        f"({opts.workers} client processes x {opts.channels} channels)",
        baseline="as many baseline streams (genconf.bench.baseline Watch) on "
        f"{'the same server, first' if opts.server else 'a fresh server'}"
        + (
            ", sent one pre-encoded bookmark each per interval, spread like genconf's"
            if interval > 0
            else ", sent nothing"
        )
        + ": what gRPC and the event loop need",
        params={
            "streams": opts.streams,
            "window_s": window,
            "bookmark_interval_s": interval,
            **opts.run_params("started (fresh per side)"),
        },
        machine=machine(mongodb),
        figures=figures,
        details={
            "genconf": {k: round(v, 3) if isinstance(v, float) else v for k, v in g.items()},
            "baseline": {k: round(v, 3) if isinstance(v, float) else v for k, v in b.items()},
        },
    )


def build_parser() -> argparse.ArgumentParser:
    parser = workload_parser(
        "idle",
        "Server memory per idle stream and server CPU while idle (targets <= "
        f"{TARGET_KB_PER_STREAM:g} KB per stream, <= {TARGET_CPU_PERCENT:g} % of one core, the "
        "median of --repeat equal slices of the window).",
        streams=DEFAULT_STREAMS,
        repeat=3,
    )
    add_bookmark_interval(parser, help="the server's bookmark interval (s; 0, its default: none)")
    parser.add_argument(
        "--window",
        type=float,
        default=None,
        help=f"idle seconds measured (default: one interval, or {DEFAULT_WINDOW_S:g} without)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    return workload_main(build_parser(), argv, run_idle, "window", interval="bookmark_interval")


if __name__ == "__main__":
    import sys

    sys.exit(main())
