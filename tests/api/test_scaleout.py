"""Two server replicas on one replica set: same answers, a feed that resumes across
replicas without gap or duplicate, and agents that move when a replica restarts.
Each scenario ends with a full consistency check against MongoDB."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from typing import Any

import anyio
from pymongo import MongoClient
from support.fleet import AGENTS, Fleet
from support.model_check import expected_hashes
from support.servers import background_server, collect_until

from genconf.backoff import Backoff
from genconf.client import Client
from genconf.v1 import admin_pb2

SCHEMA: dict[str, Any] = {"k": {"type": "int", "default": 0}, "s": {"type": "string"}}
CLIENTS = 4  # balanced channels the fleet's streams are spread over


async def seed(client: Client) -> int:
    await client.create_application("web", schema=SCHEMA, units=AGENTS // 2)
    await client.create_application("db", schema=SCHEMA, units=AGENTS // 2)
    await client.add_branch("canary")
    await client.set_branch_config("canary", "web", {"k": 7})
    done = await client.track_branch("canary", units=["web/0", "web/1"])
    return done.revision


def keys_by_revision(
    batches: list[admin_pb2.DeltaBatch],
) -> list[tuple[int, list[tuple[str, str]]]]:
    """Each batch's revision with the (kind, key) of its deltas."""
    return [(b.revision, [(d.kind, d.key) for d in b.deltas]) for b in batches]


async def test_both_replicas_serve_the_same_configs_and_feed(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(background_server(mongo_uri, db_name))
        b = await stack.enter_async_context(background_server(mongo_uri, db_name))
        ca = await stack.enter_async_context(Client(a.address, timeout=10))
        cb = await stack.enter_async_context(Client(b.address, timeout=10))
        seeded = await seed(ca)

        # The admin feed on A, live from now; writes go through A and B alike.
        feed_a = ca.watch_deltas(since_revision=seeded)
        try:
            writes = [
                await ca.set_config("web", {"k": 1}),
                await cb.set_config("db", {"s": "x"}),
                await ca.set_branch_config("canary", "web", {"s": "y"}),
                await cb.commit_branch("canary", force=True),
                await ca.set_config("db", {"k": 2}),
            ]
            seen_a = keys_by_revision(await collect_until(feed_a, writes[-1].revision, limit=20))
        finally:
            await feed_a.aclose()
        assert [r for r, _ in seen_a] == sorted({r for r, _ in seen_a})

        # Resume on B from the revision of the second batch A delivered: B continues
        # with exactly the batches A had after it.
        resume_from = seen_a[1][0]
        feed_b = cb.watch_deltas(since_revision=resume_from)
        try:
            seen_b = keys_by_revision(await collect_until(feed_b, writes[-1].revision, limit=20))
        finally:
            await feed_b.aclose()
        assert seen_b == [entry for entry in seen_a if entry[0] > resume_from]

        # Every unit: the same config and hash from either replica, and from MongoDB.
        last = writes[-1].revision
        expected = expected_hashes(mongo_client, db_name)
        assert len(expected) == AGENTS
        for unit, want in expected.items():
            from_a = await ca.get_config(unit, min_revision=last)
            from_b = await cb.get_config(unit, min_revision=last)
            assert (from_a.hash, from_a.config) == (from_b.hash, from_b.config)
            assert from_a.hash == want, unit


async def test_agents_move_to_the_other_replica_on_restart_and_miss_nothing(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    async with AsyncExitStack() as stack:
        a_stack = AsyncExitStack()
        a = await a_stack.enter_async_context(background_server(mongo_uri, db_name))
        b = await stack.enter_async_context(background_server(mongo_uri, db_name))
        stack.push_async_callback(a_stack.aclose)
        writer = await stack.enter_async_context(Client(b.address, timeout=10))
        seeded = await seed(writer)
        # Agents balance over both replicas, as a fleet behind two addresses would.
        clients = [
            await stack.enter_async_context(
                Client(f"{a.address},{b.address}", timeout=None, backoff=Backoff(0.05, 0.5))
            )
            for _ in range(CLIENTS)
        ]
        units = sorted(expected_hashes(mongo_client, db_name))
        fleet = Fleet()
        async with anyio.create_task_group() as tg:
            with anyio.fail_after(120):
                await fleet.start(tg, clients, units, seeded)
            # Replica A goes away with its share of the agents; writes keep coming.
            on_a, on_b = a.read.cache.statistics().watchers, b.read.cache.statistics().watchers
            assert on_a > 0 and on_b > 0 and on_a + on_b == len(units)
            stopped = time.monotonic()
            await a_stack.aclose()
            await writer.set_config("web", {"k": 11})
            await writer.set_config("db", {"s": "after"})
            await writer.set_branch_config("canary", "web", {"k": 12})
            final = expected_hashes(mongo_client, db_name)
            with anyio.fail_after(120):
                await fleet.wait_all(lambda c: c.hash == final[c.unit])
            moved = time.monotonic() - stopped
            assert b.read.cache.statistics().watchers == len(units)  # all on B now
            tg.cancel_scope.cancel()
        print(
            f"\nrestart with {len(units)} agents: {on_a} moved from the stopped replica; "
            f"every agent had the three writes made meanwhile {moved:.2f}s after the stop"
        )
        assert fleet.hashes() == final == expected_hashes(mongo_client, db_name)
        assert fleet.latest["web/0"].config["k"] == 12 and fleet.latest["web/5"].config["k"] == 11
        assert fleet.latest["db/0"].config["s"] == "after"
