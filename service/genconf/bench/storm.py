"""Storm: S agents reconnect at once (default 10,000); time until all have their config.

Method
------
One application with S units. Each round, every one of ``--workers`` client
processes opens ``--channels`` new connections and, at once, one ``WatchConfig``
stream per unit of its share, with no known hash (as after a restart that lost
the agents' state; ``--known-hash`` sends the current one, so each gets a
bookmark instead). The figure is the time from the bench's go (``t0``, just
before it sends the command to the client processes) until the last agent has
its first message; p50 over the agents comes with it. Then the streams and
connections are closed.

Baseline: the same storm against the baseline ``Watch`` of
`genconf.bench.baseline` on the same server, which answers each new stream with
one pre-encoded config message (the bytes genconf would send): connection setup,
gRPC's call handling and one message per stream, with no genconf work. The
sides alternate, ``--repeat`` rounds each; the best round per side is reported,
the median alongside. Target: <= 10 s for 10,000 agents.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Final

from genconf.bench.figures import SIDES, Figure, Report, best_rounds, machine, percentile, turns
from genconf.bench.options import (
    Options,
    add_server_workers,
    server_workers_title,
    workload_main,
    workload_parser,
)
from genconf.bench.session import session

__all__ = ["DEFAULT_STREAMS", "main", "run_storm"]

DEFAULT_STREAMS: Final = 10_000
TARGET_SECONDS: Final = 10.0


async def run_storm(opts: Options, *, known_hash: bool = False) -> Report:
    """Run the storm workload (see the module docstring)."""
    opts.check()
    async with session(opts, "storm") as s:
        units = await s.create_app("fleet", opts.streams)
        await s.fire(await s.config_message(units[0]))
        current = (await s.need_client().get_config(units[0])).hash if known_hash else ""
        last: dict[str, list[float]] = {side: [] for side in SIDES}
        p50: dict[str, list[float]] = {side: [] for side in SIDES}
        # Per round, each server process's streams (the kernel spreads the connections).
        placed: dict[str, list[list[int]]] = {side: [] for side in SIDES}
        for r in range(opts.repeat):
            for side in turns(SIDES, r):
                group = f"{side}-{r}"
                t0 = time.monotonic()
                firsts = await s.subscribe(
                    group,
                    side,
                    units,
                    known_hash=current if side == "genconf" else "",
                    fresh_channels=True,
                )
                latencies = [t - t0 for t in firsts]
                last[side].append(max(latencies))
                p50[side].append(percentile(latencies, 50))
                stats = await s.server_stats()
                count = "config_watchers" if side == "genconf" else "baseline_subscribers"
                placed[side].append([w[count] for w in stats["workers"]])
                await s.close(group)
        mongodb = s.mongodb

    best = best_rounds(last)
    figures = [
        Figure(
            "all agents have their config",
            "s",
            last["genconf"][best["genconf"]],
            last["baseline"][best["baseline"]],
            target_max=TARGET_SECONDS,
        ),
        Figure(
            "p50 per agent",
            "s",
            p50["genconf"][best["genconf"]],
            p50["baseline"][best["baseline"]],
        ),
        Figure(
            "all agents, median round",
            "s",
            statistics.median(last["genconf"]),
            statistics.median(last["baseline"]),
        ),
    ]
    return Report(
        workload="storm",
        title=f"{opts.streams:,} agents reconnect at once over {opts.workers} client processes "
        f"x {opts.channels} new connections{server_workers_title(opts)}; "
        f"{'known hash (bookmarks)' if known_hash else 'no known hash (full config)'}; "
        f"best of {opts.repeat} rounds per side",
        baseline="the same storm against the baseline Watch on the same server (one "
        "pre-encoded config message per new stream)",
        params={
            "streams": opts.streams,
            "workers": opts.workers,
            "channels": opts.channels,
            "repeat": opts.repeat,
            "known_hash": known_hash,
            "server": opts.server or "started",
            "server_workers": opts.server_workers,
        },
        machine=machine(mongodb),
        figures=figures,
        details={
            "all_agents_s_per_round": last,
            "p50_s_per_round": p50,
            "streams_per_server_worker_per_round": placed,
        },
    )


def build_parser() -> argparse.ArgumentParser:
    parser = workload_parser(
        "storm",
        "Time until S agents that reconnect at once all have their config, "
        f"against the same storm on a baseline stream (target <= {TARGET_SECONDS:g} s).",
        streams=DEFAULT_STREAMS,
        repeat=2,
    )
    add_server_workers(parser)
    parser.add_argument(
        "--known-hash",
        action="store_true",
        help="reconnect with the current hash (a bookmark each instead of the config)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    return workload_main(build_parser(), argv, run_storm, "known_hash")


if __name__ == "__main__":
    import sys

    sys.exit(main())
