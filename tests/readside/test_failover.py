"""The read side across replica set failovers (3-node `replica_set` fixture).

Under a steady write load we (a) kill the primary's process, then restart it, and
(b) step the primary down. The store must find the new primary (its URI lists
every member), the multiwatcher must resume, and afterwards every unit's cached
effective config must equal a recomputation from MongoDB.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from support.model_check import stored_configs, with_hashes
from support.writer import Writer

from genconf.dev.replicaset import EmbeddedReplicaSet
from genconf.errors import Unavailable
from genconf.readside.cache import ModelCache
from genconf.readside.multiwatcher import Tuning
from genconf.readside.supervisor import read_side
from genconf.readside.watch import ConfigWatch
from genconf.store.store import Store

SCHEMA: dict[str, Any] = {"k": {"type": "int", "default": 0}, "s": {"type": "string"}}
TUNING = Tuning(max_await_ms=100, backoff_initial=0.05, backoff_max=1.0)


@pytest.fixture
def store(replica_store: Store) -> Store:
    """This file's store is on the three-node replica set."""
    return replica_store


async def cache_equals_mongodb(store: Store, cache: ModelCache) -> None:
    expected = with_hashes(await stored_configs(store))
    got = {name: (dict(cache.config(name).config), cache.config(name).hash) for name in cache.units}
    assert got == expected


def store_writer(store: Store) -> Writer:
    """set_config in a loop; Unavailable (no primary for a moment) is retried."""
    return Writer(
        lambda k: store.set_config("app", set={"k": k}),
        lambda exc: isinstance(exc, (Unavailable, PyMongoError)),
        retry_pace=0.05,
    )


async def record(w: ConfigWatch, seen: list[int], until: int) -> None:
    while seen[-1:] != [until]:
        seen.append((await w.next()).config["k"])


@pytest.mark.parametrize("reader", ["shared", "impatient"])
async def test_read_side_survives_primary_crash_and_step_down(
    replica_set: EmbeddedReplicaSet, store: Store, reader: str
) -> None:
    """``shared``: the read side uses the store's client, whose driver rides out an
    election inside its one internal resume. ``impatient``: its own client gives up
    on server selection sooner than an election takes, so the multiwatcher's own
    resume-with-backoff loop does the work."""
    rs = replica_set
    await store.create_application("app", schema=SCHEMA, units=3)
    await store.add_branch("canary")
    await store.track_branch("canary", units=["app/2"])
    setup = await store.set_branch_config("canary", "app", set={"s": "canary"})
    writer = store_writer(store)
    recovery: dict[str, float] = {}
    final = 1_000_000
    own_client = reader == "impatient"
    client: AsyncMongoClient[dict[str, Any]] = (
        AsyncMongoClient(rs.uri, tz_aware=True, serverSelectionTimeoutMS=500, retryReads=False)
        if own_client
        else store.client
    )
    try:
        async with read_side(client[store.db.name], tuning=TUNING) as side:
            cache = side.cache
            with anyio.fail_after(20):
                await side.wait_synced()
                await cache.wait_for(setup.revision)
            seen: dict[str, list[int]] = {"app/0": [], "app/2": []}

            async def fault(name: str, action: Callable[[], None]) -> None:
                """Inject a fault; time until the cache holds a write made after it."""
                started = time.monotonic()
                await anyio.to_thread.run_sync(action)
                after = len(writer.acked)
                with anyio.fail_after(60):
                    # Write after+1 may have been committed before the fault took effect;
                    # write after+2 was issued after after+1 was acknowledged.
                    fresh = (await writer.ack(after + 2)).result
                    acked = time.monotonic() - started
                    await cache.wait_for(fresh.revision)
                recovery[name] = time.monotonic() - started
                primary = await anyio.to_thread.run_sync(rs.primary_index)
                print(
                    f"{reader} {name}: the first write after it was acknowledged after "
                    f"{acked:.2f}s and in the cache after {recovery[name]:.2f}s "
                    f"(primary now member {primary}; resumes {side.watcher.stats.resumes})"
                )

            with anyio.fail_after(120):  # the recorders end when they see the final write
                async with anyio.create_task_group() as recorders:
                    for unit, values in seen.items():
                        recorders.start_soon(record, cache.watch(unit), values, final)
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(writer.run)
                        with anyio.fail_after(20):
                            await cache.wait_for((await writer.ack(20)).result.revision)

                        # The change stream runs on the primary: killing it breaks the
                        # stream. Restarted even if the test fails on the way: the replica
                        # set is shared by the session.
                        victim = await anyio.to_thread.run_sync(rs.primary_index)
                        try:
                            await fault("kill primary", lambda: rs.kill(victim))
                        finally:
                            with anyio.CancelScope(shield=True):
                                await anyio.to_thread.run_sync(rs.restart, victim, 60)
                        await anyio.to_thread.run_sync(rs.wait_healthy, 60)
                        with anyio.fail_after(20):
                            await cache.wait_for(
                                (await writer.ack(len(writer.acked) + 20)).result.revision
                            )

                        # A stepped-down primary keeps its open cursors (as a secondary,
                        # which may serve a change stream): writes move, the stream may stay.
                        old = await anyio.to_thread.run_sync(rs.primary_index)
                        await fault("step down", lambda: rs.step_down(old, seconds=10))
                        with anyio.fail_after(20):
                            await cache.wait_for(
                                (await writer.ack(len(writer.acked) + 20)).result.revision
                            )

                        # Not cancelled: a transaction cut off mid-way could hold the
                        # document until the server times it out.
                        writer.stopping = True
                    with anyio.fail_after(30):
                        while True:
                            try:
                                last = await store.set_config("app", set={"k": final})
                                break
                            except Unavailable:
                                await anyio.sleep(0.05)
                        await cache.wait_for(last.revision)
            await cache_equals_mongodb(store, cache)
            stats = side.watcher.stats
            print(
                f"{reader}: writes acknowledged {len(writer.acked)}, refused while failing over "
                f"{writer.refused}; multiwatcher resumes {stats.resumes}, "
                f"resyncs {stats.resyncs}, last error {stats.last_error[:100]!r}"
            )
    finally:
        if own_client:
            with anyio.CancelScope(shield=True):
                await client.close()

    assert await anyio.to_thread.run_sync(rs.primary_index) != old, "no step-down happened"
    if reader == "impatient":
        assert stats.resumes >= 1, "the multiwatcher's own resume was not exercised"
    assert stats.resyncs == 0, "resuming should not need a reload"
    # Once the stream works again, the next failure starts from a short delay.
    assert side.watcher.retries == 0
    # Each watch saw the config move forward only, ending at the final write; the
    # canary unit overrides only s, so it follows k like everyone else.
    for unit, values in seen.items():
        assert values == sorted(set(values)), f"{unit} went backwards or repeated: {values}"
        assert len(values) > 20 and values[-1] == final, unit
    assert cache.config("app/2").config["s"] == "canary"
    assert max(recovery.values()) < 30
