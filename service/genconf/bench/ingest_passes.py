"""What the ingest benchmark writes and the two passes that read it back: a raw
change-stream read (the baseline) and the multiwatcher applying each event to a
model cache (genconf). `genconf.bench.ingest` runs them and reports."""

from __future__ import annotations

import asyncio
import cProfile
import gc
import time
from collections.abc import Sequence
from typing import Any, Final

from bson import Timestamp
from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from genconf.readside.cache import ModelCache
from genconf.readside.multiwatcher import (
    Multiwatcher,
    Snapshot,
    Tuning,
    change_stream_pipeline,
)
from genconf.readside.resume import AfterClusterTime
from genconf.store.documents import APPLICATIONS, revision_of

WRITE_CHUNK: Final = 500
WRITERS_IN_FLIGHT: Final = 4

# The applications' options; every workload's fleet carries them too.
SCHEMA: Final[dict[str, Any]] = {
    "replicas": {"type": "int", "default": 1, "description": "replica count"},
    "port": {"type": "int", "default": 8080, "description": "listen port"},
    "timeout": {"type": "int", "default": 30, "description": "seconds"},
    "log-level": {"type": "string", "default": "info", "description": "log level"},
    "region": {"type": "string", "default": "eu-west", "description": "placement"},
}
INT_KEYS: Final = tuple(k for k, v in SCHEMA.items() if v["type"] == "int")
KEYS: Final = tuple(SCHEMA)


# ---------------------------------------------------------------------------
# the two sides


def after(t: Timestamp) -> Timestamp:
    """The first cluster time after ``t`` (where the multiwatcher opens its stream)."""
    return Timestamp(t.time, t.inc + 1)


async def raw_pass(
    db: AsyncDatabase[dict[str, Any]],
    start: Timestamp,
    events: int,
    tuning: Tuning,
    limit: float,
) -> tuple[float, int, int]:
    """Drain ``events`` events after ``start``: (seconds, events seen, last revision)."""
    gc.collect()
    seen = 0
    last = 0
    started = time.perf_counter()
    async with asyncio.timeout(limit):
        async with await db.watch(
            change_stream_pipeline(tuning),
            full_document="required",
            max_await_time_ms=tuning.max_await_ms,
            batch_size=tuning.stream_batch_size,
            start_at_operation_time=after(start),
        ) as stream:
            while seen < events:
                event = await stream.try_next()
                if event is None:
                    continue
                seen += 1
                last = revision_of(event["clusterTime"])
    return time.perf_counter() - started, seen, last


async def cache_pass(
    db: AsyncDatabase[dict[str, Any]],
    snap: Snapshot,
    end_revision: int,
    tuning: Tuning,
    limit: float,
    *,
    watch_units: bool,
    profiler: cProfile.Profile | None = None,
) -> tuple[float, int, ModelCache]:
    """Replay from the snapshot to ``end_revision``: (seconds, events seen, the cache)."""
    cache = ModelCache()
    cache.load(snap.applications, snap.units, snap.branches, snap.last_generation, snap.revision)
    for unit in cache.units:
        cache.config(unit)  # memoized, as in a service whose agents have read theirs
        if watch_units:
            cache.watch(unit)
    watcher = Multiwatcher(db, cache, tuning=tuning)
    watcher.resume = AfterClusterTime(snap.timestamp)
    gc.collect()
    if profiler is not None:
        profiler.enable()
    started = time.perf_counter()
    follow = asyncio.create_task(watcher._follow(), name="bench-multiwatcher")
    reached = asyncio.create_task(cache.wait_for(end_revision), name="bench-wait")
    try:
        done, _ = await asyncio.wait(
            {follow, reached}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
        )
        elapsed = time.perf_counter() - started
        if profiler is not None:
            profiler.disable()
        if follow in done:
            follow.result()  # raises what stopped the multiwatcher
            raise RuntimeError("the multiwatcher stopped before the last event")
        if reached not in done:
            raise TimeoutError(
                f"the cache reached revision {cache.revision}, not {end_revision}, "
                f"within {limit:.0f} s"
            )
    finally:
        for task in (follow, reached):
            task.cancel()
        await asyncio.gather(follow, reached, return_exceptions=True)
        cache.close_all("benchmark over")
    return elapsed, watcher.stats.events, cache


# ---------------------------------------------------------------------------
# setup and writes


def _update(i: int, apps: Sequence[str]) -> UpdateOne[dict[str, Any]]:
    app = apps[i % len(apps)]
    key = KEYS[(i // len(apps)) % len(KEYS)]
    value: int | str = i if key in INT_KEYS else f"v{i}"
    return UpdateOne(
        {"_id": app},
        {"$set": {f"settings.{key}": value}, "$inc": {"version": 1, "revision": 1}},
    )


async def write_events(db: AsyncDatabase[dict[str, Any]], apps: Sequence[str], n: int) -> float:
    """N updates, unordered bulk chunks with several in flight; returns seconds."""
    ops = [_update(i, apps) for i in range(n)]
    gate = asyncio.Semaphore(WRITERS_IN_FLIGHT)
    coll = db[APPLICATIONS]

    async def chunk(part: list[UpdateOne[dict[str, Any]]]) -> int:
        async with gate:
            result = await coll.bulk_write(part, ordered=False)
            return result.modified_count

    started = time.perf_counter()
    modified = await asyncio.gather(
        *(chunk(ops[i : i + WRITE_CHUNK]) for i in range(0, n, WRITE_CHUNK))
    )
    elapsed = time.perf_counter() - started
    if sum(modified) != n:
        raise RuntimeError(f"{sum(modified)} of {n} updates modified a document")
    return elapsed
