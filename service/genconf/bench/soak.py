"""Soak: everything at once for ``--minutes``; server memory over time, and every agent
ends on the config MongoDB says it should hold.

Method
------
The model: ``--apps`` applications whose units make up the initial ``--streams``
agents, each with a ``WatchConfig`` stream from one of ``--workers`` client
processes (`genconf.bench.soak_agents`). Then, concurrently, for the whole run:

- steady writes: ``SetConfig`` round-robin over the applications at
  ``--write-rate`` per second, values always new (and now and then a key unset);
- branch lifecycles, one every ``--branch-interval`` seconds: add a branch, track
  ``--branch-units`` units, set branch config on two applications, hold half the
  interval, then end it; in turn: commit, forced abort (units still tracking),
  forced commit (over a key the writes change), untrack-then-abort;
- churn every ``--churn-interval`` seconds: ``--churn-fraction`` of the connected
  agents leave (stream cancelled), ``--unit-churn`` units are added and as many
  removed (a removed unit's agent sees its stream end with NOT_FOUND), and agents
  join for the new units and for units without one, back to ``--streams``; every
  other rejoining agent sends the hash it held (a bookmark when it is current);
- the server's resident memory (as its Stats reports it) and open watch streams,
  every ``--sample-interval`` seconds, from the moment the initial agents are
  connected (the warm-up sample).

At the end the churn stops, every application gets one last write, and each
unit's expected config hash is computed straight from the MongoDB documents
(`genconf.store.documents.effective_from_docs`). The run passes iff every connected agent
comes to hold its unit's hash (within ``--timeout``), every agent of a removed
unit had its stream ended, and ``GetConfig`` answers the same hash for every
unit. Memory growth is reported, not judged: after warm-up against the end, and
the least-squares slope over the run's second half.

There is no same-run baseline: the server is compared with itself over time.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import time
from typing import Any, Final

from genconf.bench.figures import Figure, Report, machine
from genconf.bench.options import (
    Options,
    add_bookmark_interval,
    options_from,
    run_main,
    workload_parser,
)
from genconf.bench.session import session
from genconf.bench.soak_activity import Plan, Soak, slope_per_minute

__all__ = ["DEFAULT_STREAMS", "main", "run_soak"]

AGENTS_MODULE: Final = "genconf.bench.soak_agents"
DEFAULT_STREAMS: Final = 200


async def run_soak(opts: Options, plan: Plan | None = None) -> Report:
    """Run the soak workload (see the module docstring)."""
    plan = plan or Plan()
    opts.check()
    plan.check()
    if opts.server is not None:
        raise ValueError(
            "soak reads its server's memory and its database: it starts its own (no --server)"
        )
    opts = dataclasses.replace(
        opts,
        agents_module=AGENTS_MODULE,
        server_args=(*opts.server_args, "--ring-size", str(plan.ring_size)),
    )
    seed = plan.seed if plan.seed is not None else random.randrange(2**31)
    rng = random.Random(seed)
    duration = plan.minutes * 60.0
    async with session(opts, "soak") as s:
        soak = Soak(s, plan, rng)
        sizes = [
            opts.streams // plan.apps + (i < opts.streams % plan.apps) for i in range(plan.apps)
        ]
        for i, size in enumerate(sizes):
            for unit in await s.create_app(f"app{i}", size):
                soak.units[unit] = s.app(f"app{i}")
            soak.apps.append(s.app(f"app{i}"))
        joined = time.monotonic()
        await soak.join([(unit, "", 0) for unit in soak.units], churn=False)
        join_s = time.monotonic() - joined
        soak.began = time.monotonic()
        await soak.sample()  # the warm-up sample: every initial agent is connected
        try:
            async with asyncio.TaskGroup() as tasks:
                for work in (soak.writes, soak.branches, soak.churn, soak.sampler):
                    tasks.create_task(work())
                # The run's length is the workload itself: wait it out, then stop the tasks.
                await soak.pause(soak.began + duration)
                soak.stop.set()
        except ExceptionGroup as group:
            raise _first(group) from None
        await soak.sample()  # the end sample: churn stopped, every task done
        consistency = await soak.check()
        totals = await s.each(lambda i, w: w.request(30, op="counts"))
        mongodb = s.mongodb

    counts = soak.counts
    for key in ("configs", "bookmarks", "reconnects"):
        counts[key] = sum(t[key] for t in totals)
    return _report(opts, plan, seed, soak, consistency, join_s, mongodb)


def _first(group: BaseExceptionGroup[Exception]) -> Exception:
    """The first failure in a task group (run_main shows one error, not a group)."""
    first = group.exceptions[0]
    return _first(first) if isinstance(first, BaseExceptionGroup) else first


def _report(
    opts: Options,
    plan: Plan,
    seed: int,
    soak: Soak,
    consistency: dict[str, Any],
    join_s: float,
    mongodb: str,
) -> Report:
    samples = soak.samples
    warm, end = samples[0], samples[-1]
    half = [(p.t, p.rss_mib) for p in samples if p.t >= plan.minutes * 30.0]
    if len(half) < 2:
        half = [(p.t, p.rss_mib) for p in samples[-2:]]
    growth = end.rss_mib - warm.rss_mib
    c = soak.counts
    figures = [
        Figure("server RSS after warm-up", "MiB", warm.rss_mib),
        Figure("server RSS at end", "MiB", end.rss_mib),
        Figure("peak server RSS", "MiB", max(p.rss_mib for p in samples)),
        Figure("RSS growth", "MiB", growth),
        Figure("RSS growth, relative", "%", growth / warm.rss_mib * 100 if warm.rss_mib else 0),
        Figure("RSS growth/min, 2nd half", "MiB/min", slope_per_minute(half)),
        Figure(
            "agents off MongoDB's config", "agents", consistency["agent_mismatches"], target_max=0
        ),
        Figure(
            "GetConfig off MongoDB", "units", consistency["get_config_mismatches"], target_max=0
        ),
        Figure("model invariants broken", "", consistency["invariant_violations"], target_max=0),
    ]
    watchers = [p.watchers for p in samples]
    return Report(
        workload="soak",
        title=f"{plan.minutes:g} min: {plan.write_rate:g} writes/s over {plan.apps} "
        f"applications, a branch every {plan.branch_interval:g} s, "
        f"{plan.churn_fraction:.0%} of {opts.streams:,} agents leaving and as many joining "
        f"every {plan.churn_interval:g} s ({opts.workers} client processes x "
        f"{opts.channels} channels)",
        baseline="none: the server against itself over time (memory), and against "
        "MongoDB's documents (configs)",
        params={
            "minutes": plan.minutes,
            "streams": opts.streams,
            "apps": plan.apps,
            "write_rate_per_s": plan.write_rate,
            "branch_interval_s": plan.branch_interval,
            "branch_units": plan.branch_units,
            "churn_interval_s": plan.churn_interval,
            "churn_fraction": plan.churn_fraction,
            "unit_churn": plan.unit_churn,
            "sample_interval_s": plan.sample_interval,
            "ring_size": plan.ring_size,
            "bookmark_interval_s": opts.bookmark_interval,
            "seed": seed,
            "workers": opts.workers,
            "channels": opts.channels,
        },
        machine=machine(mongodb),
        figures=figures,
        details={
            "counts": {
                "writes": c["writes"],
                "branches_committed": c["branches_committed"],
                "forced_commits": c["forced_commits"],
                "commit_conflicts_forced": c["commit_conflicts"],
                "branches_aborted": c["branches_aborted"],
                "forced_aborts": c["forced_aborts"],
                "units_added": c["units_added"],
                "units_removed": c["units_removed"],
                "agents_initial": c["agents_initial"],
                "agents_joined": c["agents_joined"],
                "agents_left": c["agents_left"],
                "agents_of_removed_units": len(soak.removed_with_agent),
                "config_messages": c["configs"],
                "bookmarks": c["bookmarks"],
                "reconnects": c["reconnects"],
                "join_failures": c["join_failures"],
                "errors": c["errors"],
            },
            "consistency": consistency,
            "memory": {
                "samples": len(samples),
                "interval_s": plan.sample_interval,
                "initial_join_s": round(join_s, 3),
                "watch_streams_min": min(watchers),
                "watch_streams_max": max(watchers),
                "watch_streams_end": end.watchers,
                "ring_deltas_warm_up": warm.ring_deltas,
                "ring_deltas_end": end.ring_deltas,
                "ring_size": plan.ring_size,
            },
            "rss_mib_series": [round(p.rss_mib, 1) for p in samples],
            "sample_times_s": [round(p.t, 1) for p in samples],
            "errors": soak.errors,
        },
    )


def build_parser() -> argparse.ArgumentParser:
    parser = workload_parser(
        "soak",
        "Writes, branch lifecycles and agents joining and leaving, all at once "
        "for --minutes; the server's memory over time, and a final check that every agent "
        "and every GetConfig matches MongoDB (exit 1 when not).",
        streams=DEFAULT_STREAMS,
        repeat=1,
    )
    d = Plan()
    parser.add_argument("--minutes", type=float, default=d.minutes, help="length of the run")
    parser.add_argument("--apps", type=int, default=d.apps, help="applications")
    parser.add_argument(
        "--write-rate", type=float, default=d.write_rate, help="SetConfig per second in all"
    )
    parser.add_argument(
        "--branch-interval", type=float, default=d.branch_interval, help="s between branches"
    )
    parser.add_argument(
        "--branch-units", type=int, default=d.branch_units, help="units each branch tracks"
    )
    parser.add_argument(
        "--churn-interval", type=float, default=d.churn_interval, help="s between churn ticks"
    )
    parser.add_argument(
        "--churn-fraction",
        type=float,
        default=d.churn_fraction,
        help="share of the connected agents leaving per tick (as many join)",
    )
    parser.add_argument(
        "--unit-churn", type=int, default=d.unit_churn, help="units added and removed per tick"
    )
    parser.add_argument(
        "--sample-interval", type=float, default=d.sample_interval, help="s between RSS samples"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument(
        "--ring-size",
        type=int,
        default=d.ring_size,
        help="the server's admin-feed ring in deltas (memory grows until it is full)",
    )
    add_bookmark_interval(parser)
    # A soak is a check: a consistency failure is a failed run, --check or not.
    parser.set_defaults(check=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()

    async def run(args: argparse.Namespace) -> Report:
        plan = Plan(
            minutes=args.minutes,
            apps=args.apps,
            write_rate=args.write_rate,
            branch_interval=args.branch_interval,
            branch_units=args.branch_units,
            churn_interval=args.churn_interval,
            churn_fraction=args.churn_fraction,
            unit_churn=args.unit_churn,
            sample_interval=args.sample_interval,
            seed=args.seed,
            ring_size=args.ring_size,
        )
        return await run_soak(options_from(args), plan)

    return run_main(parser, argv, run)


if __name__ == "__main__":
    import sys

    sys.exit(main())
