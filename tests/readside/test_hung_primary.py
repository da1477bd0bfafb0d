"""A primary that hangs, rather than dies, costs the read side seconds (issue 14,
item 4): the change stream's getMore has a deadline a few seconds past
``max_await_ms``, so the stream resumes on the new primary soon after the
election, instead of waiting on a socket that never answers (27 s in the field,
forever while the process stays stopped).

The three-node `replica_set` fixture's primary is stopped (SIGSTOP, by the PID the
fixture started it with; SIGCONT afterwards, whatever happens), a write is made
through the new primary, and the time until the multiwatcher's cache holds it is
printed (``pytest tests/readside/test_hung_primary.py -s``).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import anyio
import anyio.to_thread
import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.errors import PyMongoError

from genconf.dev.replicaset import EmbeddedReplicaSet
from genconf.readside.multiwatcher import Tuning
from genconf.readside.supervisor import read_side
from genconf.store.documents import APPLICATIONS, revision_of
from genconf.store.store import Store

SCHEMA: dict[str, Any] = {"k": {"type": "int", "default": 0}}
LIMIT = 60.0


@pytest.fixture
def store(replica_store: Store) -> Store:
    """The store on the three-node replica set (its client is shared by the read
    side, as in the server)."""
    return replica_store


def wait_for_new_primary(rs: EmbeddedReplicaSet, old: int, limit: float) -> float:
    """When another member than ``old`` says it is the writable primary (asked
    directly, with short timeouts: the hung member is never asked)."""
    clients = {
        i: MongoClient(
            rs.member_uri(i),
            serverSelectionTimeoutMS=500,
            socketTimeoutMS=1000,
            connectTimeoutMS=500,
        )
        for i in range(len(rs.hosts))
        if i != old
    }
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline:
            for client in clients.values():
                try:
                    if client.admin.command("hello").get("isWritablePrimary"):
                        return time.monotonic()
                except PyMongoError:
                    pass
            time.sleep(0.05)  # polling another process's state: no event to wait on
        raise AssertionError(f"no new primary within {limit}s")
    finally:
        for client in clients.values():
            client.close()


async def write_through_new_primary(writer: AsyncMongoClient[dict[str, Any]], db: str) -> int:
    """Set k=1 as soon as some primary acknowledges it; the write's revision."""
    while True:
        try:
            async with writer.start_session() as session:
                await writer[db][APPLICATIONS].update_one(
                    {"_id": "app"},
                    {"$set": {"settings.k": 1}, "$inc": {"revision": 1}},
                    session=session,
                )
                assert session.operation_time is not None
                return revision_of(session.operation_time)
        except PyMongoError:
            pass  # no primary yet, or the hung one: the client's own timeout ended it


async def test_a_hung_primary_delays_the_cache_by_seconds_not_minutes(
    replica_set: EmbeddedReplicaSet, store: Store
) -> None:
    rs = replica_set
    tuning = Tuning()  # the production deadlines
    await store.create_application("app", schema=SCHEMA, units=2)
    # A writer that gives up on the hung member after 2 s (genconf's own store is
    # not under test here).
    writer: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(rs.uri, timeoutMS=2000)
    try:
        async with read_side(store.db, tuning=tuning) as side:
            with anyio.fail_after(30):
                await side.wait_synced()
            watch = side.cache.watch("app/0")
            victim = await anyio.to_thread.run_sync(rs.primary_index)
            pid = rs.pids[victim]
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
            stopped = time.monotonic()
            try:
                with anyio.fail_after(LIMIT):
                    async with anyio.create_task_group() as tg:
                        elected: list[float] = []

                        async def election() -> None:
                            elected.append(
                                await anyio.to_thread.run_sync(
                                    wait_for_new_primary, rs, victim, LIMIT
                                )
                            )

                        tg.start_soon(election)
                        revision = await write_through_new_primary(writer, store.db.name)
                        acked = time.monotonic()
                        await side.cache.wait_for(revision)
                        cached = time.monotonic()
                        assert (await watch.next()).config["k"] == 1
            finally:
                os.kill(pid, signal.SIGCONT)
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(rs.wait_healthy, 60)
            stats = side.watcher.stats
    finally:
        with anyio.CancelScope(shield=True):
            await writer.close()

    election_s, acked_s, cached_s = (t - stopped for t in (elected[0], acked, cached))
    deadline = tuning.max_await_ms / 1000 + tuning.stream_timeout
    print(
        f"\nprimary (member {victim}) stopped: new primary after {election_s:.2f}s, write "
        f"acknowledged after {acked_s:.2f}s, in the cache after {cached_s:.2f}s "
        f"(getMore deadline {deadline:.1f}s; resumes {stats.resumes}, "
        f"last error {stats.last_error[:90]!r})"
    )
    # MongoDB acknowledges (majority-commits) the write, and a change stream returns
    # it, only once a secondary syncs from the new primary, which can be seconds
    # after the election: the cache must follow within a getMore deadline of that,
    # never wait on the hung member (without the deadline: until SIGCONT).
    assert cached_s - acked_s < deadline
    assert cached_s < max(election_s, acked_s) + 10
    assert stats.resumes >= 1 and stats.resyncs == 0
