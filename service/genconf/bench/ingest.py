"""Ingest benchmark: change events applied to the model cache per second, against
a raw change-stream read of the same events in the same run (target: the median
ratio of 3 rounds >= 0.8).

Method
------
1. Setup through `Store` in a fresh database: ``apps`` applications with a small
   schema (int and string keys) and ``units_per_app`` units each. Take the
   multiwatcher's own snapshot (`Multiwatcher.read_snapshot`): the model state and
   its cluster time T.
2. Write N events straight into MongoDB, with no reader attached: unordered
   ``bulk_write`` chunks of ``UpdateOne`` on application documents (``$set
   settings.<key>``, ``$inc version``, ``$inc revision``), several chunks in
   flight. Each update is its own change event with its own cluster time, so the
   cache sees N one-event batches: the worst case per event.
3. Replay those N events, alternately, ``repeat`` times on each side (after one
   unmeasured warm-up of each):

   - **raw**: a plain ``db.watch`` with the multiwatcher's pipeline and options
     (``$match`` on the watched collections, ``full_document="required"``, the
     same batch size and await time) opened just after T; time from opening the
     stream until the N-th event is decoded. This is what reading the oplog
     through a change stream costs in this process: the floor for any consumer.
   - **cache**: a fresh `ModelCache` loaded with the snapshot at T (every unit's
     effective config memoized, and by default one `ConfigWatch` per unit, as in
     a service whose agents are connected), and a `Multiwatcher` whose stream
     starts just after T (``resume = AfterClusterTime(T)``, then its ``_follow`` loop, exactly
     what ``run`` does after its initial load); time from opening the stream until
     ``cache.revision`` reaches the last event's revision.

Why this is fair: both sides read the same N events from the same oplog range
with the same stream options, one at a time and with nothing else running, so
neither competes with the writer or the other reader for the CPU (the host may
have only two cores, and mongod needs one). Their difference is exactly
genconf's per-event cost: building the typed delta (``Application.from_doc``,
schema parsing), applying it, recomputing and hashing the affected group's
effective config, offering it to watchers, the delta ring buffer and the
multiwatcher's bookkeeping. The headline is the median of ``repeat`` runs (3 by
default) on each side, and the target (`TARGET`) and ``--check`` judge the ratio
of those medians: a single lucky run cannot pass. The best of each side (least
disturbed by the host) is reported alongside.

Run it with ``python -m genconf.bench.ingest`` (an embedded mongod is started in
a temporary directory unless ``--mongo-uri`` is given).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio.to_thread
from pymongo.errors import PyMongoError

from genconf.bench.ingest_passes import SCHEMA, cache_pass, raw_pass, write_events
from genconf.dev.embedded import EmbeddedMongo
from genconf.errors import GenconfError
from genconf.readside.cache import ModelCache
from genconf.readside.multiwatcher import Multiwatcher, Tuning
from genconf.readside.supervisor import tune_gc
from genconf.store.store import Store

__all__ = ["TARGET", "IngestResult", "headline_ratio", "main", "run_ingest"]

# The ratio of the medians (cache / raw) that passes; `--check` exits 1 below it.
TARGET: Final = 0.8
DEFAULT_REPEAT: Final = 3


@dataclass
class IngestResult:
    """The figures of one run; rates are events per second.

    The headline is ``median_ratio`` (``passed`` judges it); ``raw_events_per_s``,
    ``cache_events_per_s`` and ``ratio`` are the best runs, kept alongside."""

    events: int
    raw_events_per_s: float
    cache_events_per_s: float
    ratio: float
    target: float
    passed: bool
    seconds: float
    mongo_version: str
    apps: int = 0
    units_per_app: int = 0
    watches: int = 0
    repeat: int = 0
    raw_median_events_per_s: float = 0.0
    cache_median_events_per_s: float = 0.0
    median_ratio: float = 0.0
    raw_runs: list[float] = field(default_factory=list)
    cache_runs: list[float] = field(default_factory=list)
    write_events_per_s: float = 0.0
    raw_events_seen: int = 0
    cache_events_seen: int = 0
    start_revision: int = 0
    end_revision: int = 0
    profile: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not out["profile"]:
            del out["profile"]
        return out

    def format_table(self) -> str:
        def rate(x: float) -> str:
            return f"{x:>12,.0f}"

        def secs(x: float) -> str:
            return f"{self.events / x:>9.3f}" if x > 0 else f"{'-':>9}"

        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            f"genconf ingest: {self.events:,} events over {self.apps} applications x "
            f"{self.units_per_app} units ({self.watches} unit watches), MongoDB "
            f"{self.mongo_version}",
            f"median of {self.repeat} runs per side (best in the last column); "
            f"revisions {self.start_revision}..{self.end_revision}",
            "",
            f"  {'side':<34}{'median/s':>12}{'seconds':>9}{'best/s':>12}",
            f"  {'raw change stream (baseline)':<34}{rate(self.raw_median_events_per_s)}"
            f"{secs(self.raw_median_events_per_s)}{rate(self.raw_events_per_s)}",
            f"  {'multiwatcher -> model cache':<34}{rate(self.cache_median_events_per_s)}"
            f"{secs(self.cache_median_events_per_s)}{rate(self.cache_events_per_s)}",
            f"  {'ratio cache / raw':<34}{self.median_ratio:>12.2f}{'':>9}{self.ratio:>12.2f}",
            f"  {'target (median)':<34}{'>= ' + format(self.target, '.2f'):>12}{'':>9}"
            f"{verdict:>12}",
            "",
            f"  {'write (bulk_write, unordered)':<34}{rate(self.write_events_per_s)}"
            f"{secs(self.write_events_per_s)}",
            f"  events seen: raw {self.raw_events_seen:,}, cache {self.cache_events_seen:,}; "
            f"total run {self.seconds:.1f} s",
        ]
        return "\n".join(lines)


def _profile_text(profiler: cProfile.Profile, top: int = 30) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats(pstats.SortKey.TIME).print_stats(top)
    stats.sort_stats(pstats.SortKey.CUMULATIVE).print_stats(top)
    return out.getvalue()


# ---------------------------------------------------------------------------
# public entry points


async def run_ingest(
    uri: str | None = None,
    *,
    events: int = 20_000,
    apps: int = 20,
    units_per_app: int = 5,
    database: str | None = None,
    repeat: int = DEFAULT_REPEAT,
    watch_units: bool = True,
    profile: bool = False,
    tuning: Tuning | None = None,
) -> IngestResult:
    """Run the benchmark (see the module docstring); an embedded mongod if no ``uri``.

    ``database`` must not exist (default: a random name); it is dropped at the end.
    With ``profile``, one more cache pass runs under cProfile (not timed) and its
    statistics are in ``IngestResult.profile``.
    """
    if events < 1 or apps < 1 or units_per_app < 0 or repeat < 1:
        raise ValueError("events, apps and repeat must be >= 1, units_per_app >= 0")
    started = time.perf_counter()
    tmp: tempfile.TemporaryDirectory[str] | None = None
    server: EmbeddedMongo | None = None
    try:
        if uri is None:
            tmp = tempfile.TemporaryDirectory(prefix="genconf-bench-")
            server = EmbeddedMongo(Path(tmp.name))
            await anyio.to_thread.run_sync(server.start)
            uri = server.uri
        return await _run(
            uri,
            events=events,
            apps=apps,
            units_per_app=units_per_app,
            database=database or f"bench_ingest_{uuid.uuid4().hex[:12]}",
            repeat=repeat,
            watch_units=watch_units,
            profile=profile,
            tuning=tuning or Tuning(),
            started=started,
        )
    finally:
        if server is not None:
            await anyio.to_thread.run_sync(server.stop)
        if tmp is not None:
            tmp.cleanup()


async def _run(
    uri: str,
    *,
    events: int,
    apps: int,
    units_per_app: int,
    database: str,
    repeat: int,
    watch_units: bool,
    profile: bool,
    tuning: Tuning,
    started: float,
) -> IngestResult:
    store = Store.connect(uri, database)
    try:
        if database in await store.client.list_database_names():
            raise ValueError(f"database {database!r} exists; the benchmark needs a fresh one")
        try:
            build = await store.client.admin.command("buildInfo")
            await store.ensure_schema()
            names = [f"app-{i:03d}" for i in range(apps)]
            for name in names:
                await store.create_application(
                    name, charm="bench", schema=SCHEMA, units=units_per_app
                )
            snap = await Multiwatcher(store.db, ModelCache()).read_snapshot()
            write_s = await write_events(store.db, names, events)
            # Generous: a pass normally takes well under a second per 10k events.
            limit = 60.0 + events / 200

            # Warm-up (unmeasured): pages the oplog in, fixes the end revision.
            _, raw_seen, end_revision = await raw_pass(
                store.db, snap.timestamp, events, tuning, limit
            )
            await cache_pass(store.db, snap, end_revision, tuning, limit, watch_units=watch_units)
            raw_runs: list[float] = []
            cache_runs: list[float] = []
            cache_seen = 0
            for _ in range(repeat):
                secs, raw_seen, last = await raw_pass(
                    store.db, snap.timestamp, events, tuning, limit
                )
                if last != end_revision:
                    raise RuntimeError(f"raw pass ended at {last}, expected {end_revision}")
                raw_runs.append(raw_seen / secs)
                secs, cache_seen, cache = await cache_pass(
                    store.db, snap, end_revision, tuning, limit, watch_units=watch_units
                )
                cache_runs.append(events / secs)
                _check_cache(cache, names, events, end_revision)
            profile_text = ""
            if profile:
                profiler = cProfile.Profile()
                await cache_pass(
                    store.db,
                    snap,
                    end_revision,
                    tuning,
                    limit,
                    watch_units=watch_units,
                    profiler=profiler,
                )
                profile_text = _profile_text(profiler)
        finally:
            await store.client.drop_database(database)
    finally:
        await store.aclose()

    if raw_seen != events or cache_seen != events:
        raise RuntimeError(f"expected {events} events; raw saw {raw_seen}, cache {cache_seen}")
    raw_best, cache_best = max(raw_runs), max(cache_runs)
    raw_median, cache_median = statistics.median(raw_runs), statistics.median(cache_runs)
    median_ratio = headline_ratio(raw_runs, cache_runs)
    return IngestResult(
        events=events,
        raw_events_per_s=raw_best,
        cache_events_per_s=cache_best,
        ratio=cache_best / raw_best,
        target=TARGET,
        passed=median_ratio >= TARGET,
        seconds=time.perf_counter() - started,
        mongo_version=str(build.get("version", "?")),
        apps=apps,
        units_per_app=units_per_app,
        watches=apps * units_per_app if watch_units else 0,
        repeat=repeat,
        raw_median_events_per_s=raw_median,
        cache_median_events_per_s=cache_median,
        median_ratio=median_ratio,
        raw_runs=raw_runs,
        cache_runs=cache_runs,
        write_events_per_s=events / write_s,
        raw_events_seen=raw_seen,
        cache_events_seen=cache_seen,
        start_revision=snap.revision,
        end_revision=end_revision,
        profile=profile_text,
    )


def headline_ratio(raw_runs: Sequence[float], cache_runs: Sequence[float]) -> float:
    """The figure the target judges: the median cache rate over the median raw rate
    (rates of the same rounds), so one undisturbed run on either side cannot
    decide it."""
    if not raw_runs or not cache_runs:
        raise ValueError("no runs to take a median of")
    return statistics.median(cache_runs) / statistics.median(raw_runs)


def _check_cache(cache: ModelCache, names: Sequence[str], events: int, end_revision: int) -> None:
    """The replayed cache holds the final state: every event was applied."""
    bumps = sum(cache.applications[name].version - 1 for name in names)
    if bumps != events or cache.revision < end_revision:
        raise RuntimeError(
            f"the cache applied {bumps} of {events} events (revision {cache.revision})"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="genconf bench ingest",
        description="Change events applied to the model cache per second, against a raw "
        f"change-stream read of the same events (target: median ratio >= {TARGET}).",
    )
    parser.add_argument("--events", type=int, default=20_000, help="events to write and replay")
    parser.add_argument("--apps", type=int, default=20, help="applications")
    parser.add_argument("--units-per-app", type=int, default=5, help="units per application")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="runs per side")
    parser.add_argument(
        "--mongo-uri", default=None, help="a MongoDB 6.0+ replica set (default: embedded mongod)"
    )
    parser.add_argument("--database", default=None, help="database to use (must not exist)")
    parser.add_argument(
        "--watches",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="subscribe one config watch per unit (default: on)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile one extra cache pass; stats to stderr"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the median ratio is below the target",
    )
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    args = parser.parse_args(argv)
    # The same process-wide GC settings as `genconf serve`, for both sides alike.
    tune_gc()
    try:
        result = asyncio.run(
            run_ingest(
                args.mongo_uri,
                events=args.events,
                apps=args.apps,
                units_per_app=args.units_per_app,
                database=args.database,
                repeat=args.repeat,
                watch_units=args.watches,
                profile=args.profile,
            )
        )
    except (ValueError, RuntimeError, TimeoutError, GenconfError, PyMongoError) as exc:
        print(f"genconf bench ingest: {exc}", file=sys.stderr)
        return 2
    if args.output == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.format_table())
    if result.profile:
        print(result.profile, file=sys.stderr)
    return 1 if args.check and not result.passed else 0


if __name__ == "__main__":
    sys.exit(main())
