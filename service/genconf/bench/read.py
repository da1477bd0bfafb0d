"""Read: ``GetConfig`` throughput against an empty unary handler on the same server.

Method
------
One application with ``--units`` units. Each of ``--workers`` client processes
runs ``--concurrency`` callers, each calling in a loop over its share of the
units for ``--duration`` seconds, over the process's channels. The baseline is
the same loop against the baseline ``Empty`` handler of `genconf.bench.baseline`
on the same server, sent the same request bytes and decoding the (empty) answer
as a ``Config``: gRPC, the interceptors and the event loop with no genconf
work. The two sides alternate, ``--repeat`` rounds each; the figure is the best
round per side (least disturbed by the host), the median alongside, and the
server's own CPU time per call (read from the server process) next to it.

Target: ratio (genconf calls/s / baseline calls/s) >= 0.8. The client processes
share the cores with the server: on a 2-core host the callers' own gRPC work
caps both sides, so the server's CPU per call is the sharper comparison.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any, Final

from genconf.bench.figures import SIDES, Figure, Report, machine, turns
from genconf.bench.options import Options, workload_main, workload_parser
from genconf.bench.session import Session, session
from genconf.errors import BenchError

__all__ = ["main", "run_read"]

DEFAULT_UNITS: Final = 1_000
DEFAULT_CONCURRENCY: Final = 32
DEFAULT_DURATION: Final = 3.0
DEFAULT_REPEAT: Final = 5
TARGET_RATIO: Final = 0.8


async def _phase(
    s: Session, kind: str, parts: list[list[str]], concurrency: int, duration: float
) -> tuple[float, float, int]:
    """One side for ``duration``: (calls per second, server CPU µs per call, calls)."""
    before = await s.server_stats()
    replies = await s.each(
        lambda i, w: w.request(
            duration + 60,
            op="call",
            kind=kind,
            units=parts[i],
            concurrency=concurrency,
            duration=duration,
        )
    )
    after = await s.server_stats()
    errors = sum(r["errors"] for r in replies)
    if errors:
        raise BenchError(f"{kind}: {errors} calls failed")
    calls = sum(r["calls"] for r in replies)
    if calls == 0:
        raise BenchError(f"{kind}: no call completed in {duration:g} s")
    rate = sum(r["calls"] / r["seconds"] for r in replies)
    cpu_us = (after["cpu_seconds"] - before["cpu_seconds"]) / calls * 1e6
    return rate, cpu_us, calls


async def run_read(
    opts: Options,
    *,
    units: int = DEFAULT_UNITS,
    concurrency: int = DEFAULT_CONCURRENCY,
    duration: float = DEFAULT_DURATION,
) -> Report:
    """Run the read workload (see the module docstring)."""
    opts.check()
    if units < 1 or concurrency < 1 or duration <= 0:
        raise ValueError("--units, --concurrency and --duration must be > 0")
    async with session(opts, "read") as s:
        names = await s.create_app("fleet", units)
        parts = s.split(names)
        rates: dict[str, list[float]] = {side: [] for side in SIDES}
        cpu: dict[str, list[float]] = {side: [] for side in SIDES}
        calls: dict[str, int] = dict.fromkeys(SIDES, 0)
        # Unmeasured warm-up of both sides (connections, caches, the memoized config).
        for side in SIDES:
            await _phase(s, side, parts, concurrency, min(1.0, duration))
        for r in range(opts.repeat):
            for side in turns(SIDES, r):
                rate, cpu_us, n = await _phase(s, side, parts, concurrency, duration)
                rates[side].append(rate)
                cpu[side].append(cpu_us)
                calls[side] += n
        mongodb = s.mongodb

    best = {side: max(rates[side]) for side in SIDES}
    figures = [
        Figure(
            "GetConfig calls/s",
            "calls/s",
            best["genconf"],
            best["baseline"],
            higher_is_better=True,
            target_ratio=TARGET_RATIO,
        ),
        Figure(
            "calls/s, median round",
            "calls/s",
            statistics.median(rates["genconf"]),
            statistics.median(rates["baseline"]),
            higher_is_better=True,
        ),
        Figure(
            "server CPU per call",
            "us",
            min(cpu["genconf"]),
            min(cpu["baseline"]),
        ),
    ]
    details: dict[str, Any] = {
        "calls": calls,
        "calls_per_s_per_round": rates,
        "server_cpu_us_per_round": cpu,
    }
    return Report(
        workload="read",
        title=f"GetConfig over {units:,} units from {opts.workers} client processes x "
        f"{concurrency} callers ({opts.channels} channels each), {duration:g} s per round, "
        f"best of {opts.repeat} rounds per side",
        baseline="an empty unary handler on the same server (genconf.bench.baseline Empty), "
        "same requests, same callers",
        params={
            "units": units,
            "concurrency": concurrency,
            "duration_s": duration,
            "repeat": opts.repeat,
            **opts.run_params(),
        },
        machine=machine(mongodb),
        figures=figures,
        details=details,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = workload_parser(
        "read",
        "GetConfig throughput against an empty unary handler on the same server "
        f"(target ratio >= {TARGET_RATIO}).",
        streams=None,
        repeat=DEFAULT_REPEAT,
    )
    parser.add_argument("--units", type=int, default=DEFAULT_UNITS, help="units to read")
    parser.add_argument(
        "--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="callers per process"
    )
    parser.add_argument(
        "--duration", type=float, default=DEFAULT_DURATION, help="seconds per round"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    return workload_main(build_parser(), argv, run_read, "units", "concurrency", "duration")


if __name__ == "__main__":
    import sys

    sys.exit(main())
