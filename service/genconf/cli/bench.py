"""`genconf bench`: the entry to the benchmarks (`genconf.bench`), which own their
options; this module only lists them in --help."""

from __future__ import annotations

import argparse
from typing import Final

from genconf.cli.framework import Commands


def bench_workloads() -> list[str]:
    from genconf.bench import WORKLOADS

    return list(WORKLOADS)


# What each workload measures, for `genconf bench --help` (its own --help has the rest).
BENCH_SUMMARIES: Final = {
    "ingest": "change events applied to the model cache per second, vs a raw change stream",
    "fanout": "one change to S watching agents: time until the last has it",
    "targeted": "commit-to-notified latency of one-unit changes at a steady rate",
    "read": "GetConfig throughput, vs an empty unary handler",
    "http-read": "GET of a unit's config over HTTP, vs an empty route of the same stack",
    "idle": "server memory per idle stream and CPU while idle",
    "storm": "S agents reconnecting at once: time until all have their config",
    "soak": "writes, branches and agent churn for N minutes: memory, then a full check",
    "scale": "per-unit memory, cold start, resync and latencies at 1k, 10k, 100k units",
    "all": "every workload but soak, each in its own process: one table, the machine",
}
BENCH_EXAMPLES: Final = (
    "ingest --events 20000",
    "fanout --streams 1000 -o json",
    "targeted --rate 50 --duration 10 --check",
    "soak --minutes 10",
    "storm --help",
    "all --check --only ingest,read",
)


def register(commands: Commands) -> None:
    """`bench` hands everything after WORKLOAD to that workload's own parser, so it
    takes none of the common options; its help lists the workloads instead."""
    workloads = sorted(bench_workloads())
    width = max(len(w) for w in workloads)
    listing = "\n".join(f"  {w.ljust(width)}  {BENCH_SUMMARIES.get(w, '')}" for w in workloads)
    examples = "\n".join(f"  genconf bench {e}" for e in BENCH_EXAMPLES)
    b = commands.sub.add_parser(
        "bench",
        help="benchmarks (figures with a same-run baseline)",
        description="Run one benchmark. Each prints its figures next to a baseline measured\n"
        "in the same run, and their ratio; --check exits 1 when a target is missed.\n"
        "Without --mongo-uri it starts an embedded MongoDB.\n\nWorkloads:\n" + listing,
        epilog="Examples:\n" + examples + "\n\n`genconf bench WORKLOAD --help` shows a "
        "workload's own options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument("workload", choices=workloads, metavar="WORKLOAD", help="what to measure")
    b.add_argument(
        "rest", nargs=argparse.REMAINDER, metavar="ARGS", help="the workload's own options"
    )
    b.set_defaults(func=None)


def run(args: argparse.Namespace) -> int:
    """Run the workload ``args`` names with the rest of the command line."""
    from genconf import bench

    return bench.main(args.workload, args.rest)
