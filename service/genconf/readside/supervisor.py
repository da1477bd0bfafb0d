"""The read side's supervisor: the multiwatcher and the cache it feeds, run as
one anyio task group that a server (or a test) starts and stops as a unit."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
from pymongo.asynchronous.database import AsyncDatabase

from genconf.defaults import DEFAULT_FEED_BYTES, DEFAULT_RING_BYTES, DEFAULT_RING_SIZE
from genconf.readside.cache import ModelCache
from genconf.readside.multiwatcher import Multiwatcher, Tuning
from genconf.security.tokenbook import TokenBook


@dataclass
class ReadSide:
    cache: ModelCache
    watcher: Multiwatcher
    tokens: TokenBook

    async def wait_synced(self) -> None:
        """Until the cache holds a full snapshot (bound it with ``anyio.fail_after``)."""
        await self.cache.wait_synced()


def tune_gc() -> None:
    """Fewer, cheaper collections for a process that keeps a large, long-lived model.

    The cache holds many small immutable objects; the default thresholds make
    the collector rescan them all the time (a fifth of ingest cost in bench
    ingest). Objects alive now (imports, the loaded model) move out of its way.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


@asynccontextmanager
async def read_side(
    db: AsyncDatabase[dict[str, Any]],
    *,
    tuning: Tuning | None = None,
    ring_size: int = DEFAULT_RING_SIZE,
    ring_bytes: int = DEFAULT_RING_BYTES,
    feed_bytes: int = DEFAULT_FEED_BYTES,
) -> AsyncIterator[ReadSide]:
    """Run the multiwatcher until the block exits; every watch ends on the way out.

    ``ring_size`` and ``ring_bytes`` bound the deltas kept for admin feeds to
    resume from, ``feed_bytes`` what each feed may hold for a slow reader."""
    cache = ModelCache(ring_size=ring_size, ring_bytes=ring_bytes, feed_bytes=feed_bytes)
    # Agent tokens are judged against the units of this cache (their incarnation).
    tokens = TokenBook(units=cache)
    watcher = Multiwatcher(db, cache, tuning=tuning, tokens=tokens)
    async with anyio.create_task_group() as tg:
        tg.start_soon(watcher.run, name="genconf-multiwatcher")
        try:
            yield ReadSide(cache, watcher, tokens)
        finally:
            tg.cancel_scope.cancel()
            cache.close_all("the server is shutting down")
