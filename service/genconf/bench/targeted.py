"""Targeted: commits that each change one unit's config, at a steady rate, while S
agents are subscribed (default 10,000); commit-to-notified latency.

Method
------
The model: ``--targets`` applications of one unit each (the targets) and one
fleet application whose units make up the rest of the S subscribed streams. All
S agents hold a ``WatchConfig`` stream, spread over ``--workers`` client
processes. The bench writes ``--rate`` commits per second for ``--duration``
seconds, each a ``SetConfig`` of one target's ``seq`` key (so each changes
exactly one unit's config, and every one is distinct), issued on a fixed
schedule (concurrently when one takes longer than the interval). For each commit
it records ``t0`` just before the RPC; the target's agent records when the new
config (recognized by its hash) arrives. Commit-to-notified is the difference.

Baseline: a plain change stream on the same database, opened in a client
process of its own with the multiwatcher's pipeline and options, records when each
commit's event arrives: the floor for anything that learns of commits from
MongoDB. Its ratio (baseline p99 / genconf p99) is what the multiwatcher, the
cache, the stream and gRPC add; the target is genconf's p99 <= 50 ms. The fleet's
agents must get nothing (each commit touches only its target).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any, Final

from genconf.bench.figures import Figure, Report, machine, ms, percentile
from genconf.bench.options import Options, add_bookmark_interval, workload_main, workload_parser
from genconf.bench.session import Session, session
from genconf.domain import config, schema, values
from genconf.errors import BenchError

__all__ = ["DEFAULT_STREAMS", "main", "run_targeted"]

DEFAULT_STREAMS: Final = 10_000
DEFAULT_TARGETS: Final = 100
DEFAULT_RATE: Final = 50.0
DEFAULT_DURATION: Final = 10.0
TARGET_P99_MS: Final = 50.0
MAX_IN_FLIGHT: Final = 64

# The targets' config: one integer, so a commit's config hash follows from its seq.
TARGET_SCHEMA: Final[dict[str, Any]] = {
    "seq": {"type": "int", "default": 0, "description": "bumped by the bench"}
}
TARGET_OPTIONS: Final = schema.parse_schema(TARGET_SCHEMA)


def config_hash(seq: int) -> str:
    """The effective config hash of a target unit whose ``seq`` is ``seq``."""
    return values.config_hash(config.effective_config(TARGET_OPTIONS, {"seq": seq}))


async def _commit_at_rate(
    s: Session, targets: list[str], count: int, rate: float
) -> tuple[list[float], list[float]]:
    """``count`` commits at ``rate`` per second; each one's start and ack latency."""
    client = s.need_client()
    starts = [0.0] * count
    acks = [0.0] * count
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def commit(i: int) -> None:
        async with gate:
            t0 = time.monotonic()
            starts[i] = t0
            await client.set_config(targets[i % len(targets)], {"seq": i + 1})
            acks[i] = time.monotonic() - t0

    began = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    try:
        for i in range(count):
            # Pacing to the schedule (the workload's steady rate), not synchronization.
            delay = began + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(commit(i)))
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return starts, acks


async def run_targeted(
    opts: Options,
    *,
    targets: int = DEFAULT_TARGETS,
    rate: float = DEFAULT_RATE,
    duration: float = DEFAULT_DURATION,
) -> Report:
    """Run the targeted workload (see the module docstring)."""
    opts.check()
    targets = min(targets, opts.streams)
    count = max(1, round(rate * duration))
    if targets < 1 or rate <= 0 or duration <= 0:
        raise ValueError("--targets, --rate and --duration must be > 0")
    async with session(opts, "targeted") as s:
        target_apps: list[str] = []
        target_units: list[str] = []
        for i in range(targets):
            target_units += await s.create_app(f"t{i:05d}", 1, TARGET_SCHEMA)
            target_apps.append(s.app(f"t{i:05d}"))
        fleet = await s.create_app("fleet", opts.streams - targets)
        await s.subscribe("targets", "genconf", target_units)
        if fleet:
            await s.subscribe("fleet", "genconf", fleet)
        raw = s.mongo_uri is not None and s.opts.server is None
        observer = await s.extra_worker("raw") if raw else None
        if observer is not None:
            await observer.request(30, op="raw_watch", mongo_uri=s.mongo_uri, database=s.database)
        starts, acks = await _commit_at_rate(s, target_apps, count, rate)
        # Every target agent: its initial config plus one per commit to it.
        expected = [1 + count // targets + (k < count % targets) for k in range(targets)]
        await s.wait_configs("targets", [sum(part) for part in s.split(expected)])
        got = await s.records("targets")
        fleet_got = await s.records("fleet") if fleet else {"times": []}
        raw_records = (await observer.request(30, op="raw_records"))["records"] if observer else []
        mongodb = s.mongodb

    arrival = _arrivals(got)
    hashes = {config_hash(i + 1): i for i in range(count)}
    notified: list[float | None] = [None] * count
    for h, t in arrival.items():
        i = hashes.get(h)
        if i is not None:
            notified[i] = t - starts[i]
    missing = sum(1 for x in notified if x is None)
    if missing:
        raise BenchError(f"{missing} of {count} commits never reached their unit's agent")
    genconf = [x for x in notified if x is not None]
    raw_latency = [t - starts[seq - 1] for t, _, seq in raw_records if 0 < seq <= count]
    fleet_extra = sum(max(0, len(times) - 1) for times in fleet_got["times"])
    if fleet_extra:
        raise BenchError(f"the fleet's agents got {fleet_extra} configs; commits hit only targets")
    base_p50 = ms(percentile(raw_latency, 50)) if raw_latency else None
    base_p99 = ms(percentile(raw_latency, 99)) if raw_latency else None
    base_max = ms(max(raw_latency)) if raw_latency else None
    figures = [
        Figure("commit to notified p50", "ms", ms(percentile(genconf, 50)), base_p50),
        Figure(
            "commit to notified p99",
            "ms",
            ms(percentile(genconf, 99)),
            base_p99,
            target_max=TARGET_P99_MS,
        ),
        Figure("commit to notified max", "ms", ms(max(genconf)), base_max),
        Figure("SetConfig acknowledged p50", "ms", ms(percentile(acks, 50))),
        Figure("SetConfig acknowledged p99", "ms", ms(percentile(acks, 99))),
    ]
    return Report(
        workload="targeted",
        title=f"{count:,} commits at {rate:g}/s, each changing one of {targets} units' config, "
        f"with {opts.streams:,} WatchConfig streams subscribed "
        f"({opts.workers} client processes x {opts.channels} channels)",
        baseline="a plain change stream (the multiwatcher's pipeline and options) in a "
        "process of its own: when each commit's event arrives",
        params={
            "streams": opts.streams,
            "targets": targets,
            "rate_per_s": rate,
            "duration_s": duration,
            "commits": count,
            **opts.run_params(),
        },
        machine=machine(mongodb),
        figures=figures,
        details={
            "commits": count,
            "notified": len(genconf),
            "baseline_events": len(raw_latency),
            "fleet_configs_beyond_initial": fleet_extra,
        },
    )


def _arrivals(records: dict[str, Any]) -> dict[str, float]:
    """When each distinct config hash first arrived at its agent."""
    out: dict[str, float] = {}
    for times, hashes in zip(records["times"], records["hashes"], strict=True):
        for t, h in zip(times, hashes, strict=True):
            out.setdefault(h, t)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = workload_parser(
        "targeted",
        "Commit-to-notified latency of commits that each change one unit's "
        "config, at a steady rate, with S agents subscribed; against a plain change "
        f"stream (target p99 <= {TARGET_P99_MS:g} ms).",
        streams=DEFAULT_STREAMS,
        repeat=1,
    )
    parser.add_argument("--targets", type=int, default=DEFAULT_TARGETS, help="target units")
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="commits per second")
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION, help="seconds")
    add_bookmark_interval(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return workload_main(build_parser(), argv, run_targeted, "targets", "rate", "duration")


if __name__ == "__main__":
    import sys

    sys.exit(main())
