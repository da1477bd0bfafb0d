"""AdminService end to end: Snapshot and the resumable WatchDeltas feed."""

from __future__ import annotations

import random
from contextlib import AsyncExitStack
from typing import Any

import anyio
import grpc
import pytest
from support.servers import (
    apply_batch,
    assert_code,
    collect_until,
    running_server,
    snapshot_model,
)

from genconf.api.admin import AdminServicer
from genconf.client import Client
from genconf.domain import schema as domain_schema
from genconf.domain.deltas import Batch, Delta, Kind
from genconf.domain.records import Application
from genconf.errors import ClientError
from genconf.readside.cache import ModelCache
from genconf.readside.feed import FeedFilter
from genconf.v1 import admin_pb2

SCHEMA: dict[str, Any] = {
    "k": {"type": "int", "default": 1},
    "s": {"type": "string", "default": "x"},
}
HASH = "ab" * 32


async def test_snapshot_is_the_whole_model_at_one_revision(client: Client) -> None:
    empty = await client.snapshot()
    assert (list(empty.applications), list(empty.units), list(empty.branches)) == ([], [], [])
    assert empty.last_generation == 0
    assert empty.revision > 0

    await client.create_application("web", schema=SCHEMA, units=2)
    await client.create_application("db", schema=SCHEMA, units=1)
    await client.set_config("web", {"k": 5})
    await client.add_branch("canary", created_by="alice")
    await client.set_branch_config("canary", "web", {"s": "c"})
    last = await client.track_branch("canary", units=["web/1"])
    await client.list_applications(min_revision=last.revision)

    snap = await client.snapshot()
    assert snap.revision >= last.revision
    assert [a.name for a in snap.applications] == ["db", "web"]
    web = snap.applications[1]
    assert list(web.units) == ["web/0", "web/1"]
    assert web.version == 2
    assert dict(web.settings) == {"k": 5}
    assert [(u.name, u.branch) for u in snap.units] == [
        ("db/0", ""),
        ("web/0", ""),
        ("web/1", "canary"),
    ]
    [branch] = snap.branches
    assert (branch.name, branch.created_by, list(branch.units)) == ("canary", "alice", ["web/1"])
    assert [c.application for c in branch.changes] == ["web"]
    assert snap.last_generation == 1


async def watched_deltas(
    client: Client, since: int, until: int, **filters: Any
) -> list[tuple[str, str]]:
    """The (kind, key) of every delta a filtered WatchDeltas feed sends from ``since``
    up to the batch at ``until``; the feed is closed after."""
    feed = client.watch_deltas(since_revision=since, **filters)
    try:
        batches = await collect_until(feed, until)
    finally:
        await feed.aclose()  # type: ignore[attr-defined]
    return [(d.kind, d.key) for b in batches for d in b.deltas]


async def test_watch_deltas_replays_then_follows(client: Client) -> None:
    start = await client.snapshot()
    created = await client.create_application("web", schema=SCHEMA, units=1)
    feed = client.watch_deltas(since_revision=start.revision)
    try:
        [first] = await collect_until(feed, created.revision)  # replayed from the ring
        assert first.revision == created.revision
        assert sorted((d.kind, d.key) for d in first.deltas) == [
            ("application", "web"),
            ("unit", "web/0"),
        ]
        app_delta = next(d for d in first.deltas if d.kind == "application")
        assert app_delta.WhichOneof("value") == "application"
        assert app_delta.application.name == "web" and not app_delta.removed

        set_ = await client.set_config("web", {"k": 2})  # live from here
        [batch] = await collect_until(feed, set_.revision)
        assert batch.revision == set_.revision
        kinds = {d.kind: d for d in batch.deltas}
        assert set(kinds) == {"application", "generation"}  # one transaction, one batch
        assert kinds["generation"].generation.id == 1
        assert kinds["generation"].generation.kind == "set"
        assert kinds["application"].application.version == 2

        removed = await client.remove_unit("web/0")
        [batch] = await collect_until(feed, removed.revision)
        [delta] = batch.deltas
        assert (delta.kind, delta.key, delta.removed) == ("unit", "web/0", True)
        assert delta.WhichOneof("value") is None
    finally:
        await feed.aclose()  # type: ignore[attr-defined]


async def test_watch_deltas_filters_by_kind_and_application(client: Client) -> None:
    start = await client.snapshot()
    await client.create_application("web", schema=SCHEMA, units=1)
    await client.create_application("db", schema=SCHEMA, units=1)
    await client.set_config("db", {"k": 3})
    await client.add_branch("for-db")
    await client.set_branch_config("for-db", "db", {"s": "y"})
    await client.add_branch("for-web")
    await client.set_branch_config("for-web", "web", {"s": "y"})
    await client.add_units("web", count=1)
    await client.set_config("web", {"k": 4})
    marker = await client.add_units("db", count=1)  # the last write, a unit (and app) one

    seen = await watched_deltas(client, start.revision, marker.revision, kinds=["unit"])
    assert seen == [("unit", "web/0"), ("unit", "db/0"), ("unit", "web/1"), ("unit", "db/1")]

    seen = await watched_deltas(client, start.revision, marker.revision, applications=["db"])
    assert ("application", "web") not in seen and ("unit", "web/0") not in seen
    assert ("branch", "for-web") not in seen
    assert ("branch", "for-db") in seen
    assert ("application", "db") in seen and ("unit", "db/0") in seen and ("unit", "db/1") in seen
    assert ("generation", "1") in seen  # the generation of db's set
    assert ("generation", "2") not in seen  # web's


async def test_live_feed_starts_now(client: Client) -> None:
    """Without since_revision the feed replays nothing: only what happens after it opens."""
    before = await client.create_application("web", schema=SCHEMA, units=1)
    # The creation must be in the cache before the feed opens, or it would be "new".
    await client.list_applications(min_revision=before.revision)
    feed = client.watch_deltas()
    received: list[admin_pb2.DeltaBatch] = []
    got = anyio.Event()

    async def read() -> None:
        async for batch in feed:
            received.append(batch)
            got.set()

    try:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                # The subscription is registered when the server handles the call; write
                # until the feed shows a write (no sleep: each write is a round trip).
                n = 0
                while not got.is_set():
                    n += 1
                    await client.report_applied("web/0", HASH, message=f"try {n}")
                tg.cancel_scope.cancel()
    finally:
        await feed.aclose()  # type: ignore[attr-defined]
    assert received and all(b.revision > before.revision for b in received)
    assert all((d.kind, d.key) == ("unit", "web/0") for b in received for d in b.deltas)


async def test_watch_deltas_errors(mongo_uri: str, db_name: str) -> None:
    async with running_server(mongo_uri, db_name, ring_size=2) as srv:
        async with Client(srv.address, timeout=10) as client:
            start = await client.snapshot()
            for n in range(4):
                await client.create_application(f"app{n}", units=1)

            async def first(**kwargs: Any) -> admin_pb2.DeltaBatch | None:
                feed = client.watch_deltas(**kwargs)
                try:
                    with anyio.fail_after(5):
                        async for batch in feed:
                            return batch
                finally:
                    await feed.aclose()  # type: ignore[attr-defined]
                return None

            # Older than the ring (2 deltas: the last write's batch only).
            with pytest.raises(ClientError) as caught:
                await first(since_revision=start.revision)
            error = assert_code(caught.value, grpc.StatusCode.OUT_OF_RANGE)
            assert "Snapshot" in error.message

            # Ahead of this server.
            ahead = srv.read.cache.revision + (3600 << 32)
            with pytest.raises(ClientError) as caught:
                await first(since_revision=ahead)
            assert_code(caught.value, grpc.StatusCode.OUT_OF_RANGE)

            with pytest.raises(ClientError) as caught:
                await first(kinds=["unit", "widget"])
            error = assert_code(caught.value, grpc.StatusCode.INVALID_ARGUMENT)
            assert "widget" in error.message

            # A fresh snapshot's revision is always within the ring.
            snap = await client.snapshot()
            feed = client.watch_deltas(since_revision=snap.revision)
            try:
                write = await client.create_application("late", units=0)
                [batch] = await collect_until(feed, write.revision)
                assert [(d.kind, d.key) for d in batch.deltas] == [("application", "late")]
            finally:
                await feed.aclose()  # type: ignore[attr-defined]


async def test_watch_deltas_ends_unavailable_on_shutdown(mongo_uri: str, db_name: str) -> None:
    outcome: list[BaseException] = []
    async with AsyncExitStack() as stack:  # the client and its feed outlive the server
        async with running_server(mongo_uri, db_name) as srv:
            client = await stack.enter_async_context(Client(srv.address, timeout=10))
            snap = await client.snapshot()
            feed = client.watch_deltas(since_revision=snap.revision)
            stack.push_async_callback(feed.aclose)  # type: ignore[attr-defined]
            write = await client.create_application("web")
            await collect_until(feed, write.revision)  # the stream is open and live
        # The server is gone; the open stream must have ended with UNAVAILABLE.
        with anyio.fail_after(5):
            try:
                async for _ in feed:
                    pass
            except ClientError as exc:
                outcome.append(exc)
    assert outcome, "the feed ended without an error"
    assert_code(outcome[0], grpc.StatusCode.UNAVAILABLE)


async def test_snapshot_then_deltas_reconstruct_the_model_under_concurrent_writes(
    client: Client,
) -> None:
    """Snapshot while writers run, then WatchDeltas(since=snapshot.revision): applying
    every delta to the snapshot gives exactly a fresh snapshot taken at the end."""
    rng = random.Random(7)
    await client.create_application("web", schema=SCHEMA, units=3)
    await client.create_application("db", schema=SCHEMA, units=2)
    revisions: list[int] = []
    halfway = anyio.Event()

    async def writer(name: str, steps: int) -> None:
        for step in range(steps):
            choice = rng.randrange(6)
            branch = f"{name}-b{step}"
            if choice == 0:
                w = await client.set_config(name, {"k": rng.randrange(1000)})
            elif choice == 1:
                w = await client.add_units(name, count=1)
            elif choice == 2:
                await client.add_branch(branch)
                await client.set_branch_config(branch, name, {"s": f"v{step}"})
                w = await client.commit_branch(branch, force=True)
            elif choice == 3:
                await client.add_branch(branch)
                await client.track_branch(branch, application=name, count=1)
                w = await client.abort_branch(branch, force=True)
            elif choice == 4:
                w = await client.report_applied(f"{name}/0", HASH, message=f"s{step}")
            else:
                app = f"{name}-tmp{step}"
                await client.create_application(app, units=2)
                w = await client.remove_application(app, force=True)
            revisions.append(w.revision)
            if step == steps // 2:
                halfway.set()

    async with AsyncExitStack() as stack:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(writer, "web", 30)
                tg.start_soon(writer, "db", 30)
                await halfway.wait()
                snap = await client.snapshot()  # taken while both writers run
                model = snapshot_model(snap)
                feed = client.watch_deltas(since_revision=snap.revision)
                stack.push_async_callback(feed.aclose)  # type: ignore[attr-defined]
            last = max(revisions)
            assert snap.revision < last, "the snapshot should be taken mid-way"
            batches = await collect_until(feed, last, limit=30)

    previous = snap.revision
    for batch in batches:
        assert batch.revision > previous, "batches arrive in revision order, once each"
        previous = batch.revision
        apply_batch(model, batch)
    await client.list_applications(min_revision=last)
    fresh = snapshot_model(await client.snapshot())
    assert model == fresh


def test_a_feed_delta_is_encoded_once_with_the_memoized_effective_config() -> None:
    schema = domain_schema.parse_schema({"k": {"type": "int", "default": 1}})
    web = Application("web", "web", schema, {"k": 2}, 1, 0, 1)
    cache = ModelCache()
    cache.load([web], [], [], last_generation=0, revision=100)
    admin = AdminServicer(cache)
    delta = Delta(Kind.APPLICATION, "web", 100, web)
    message = admin._delta(delta)
    assert admin._delta(delta) is message  # one message for every feed that sends it
    assert message.application.effective["k"] == 2
    recomputed = cache.statistics().groups_recomputed
    admin._delta(Delta(Kind.APPLICATION, "web", 100, web))  # another delta, same record
    assert cache.statistics().groups_recomputed == recomputed  # the cache's memo, not again
    older = Application("web", "web", schema, {}, 0, 0, 0)  # not the cached state
    assert admin._delta(Delta(Kind.APPLICATION, "web", 90, older)).application.effective["k"] == 1


def test_feeds_with_one_filter_share_one_batch_message() -> None:
    """The feed's hot path: a batch is encoded once for every feed with the same
    filter; a narrower filter gets its own batch of the same delta messages."""
    schema = domain_schema.parse_schema({"k": {"type": "int", "default": 1}})
    web = Application("web", "web", schema, {"k": 2}, 1, 0, 1)
    db = Application("db", "db", schema, {}, 1, 0, 1)
    cache = ModelCache()
    cache.load([web, db], [], [], last_generation=0, revision=100)
    admin = AdminServicer(cache)
    batch = Batch(
        101, (Delta(Kind.APPLICATION, "web", 101, web), Delta(Kind.APPLICATION, "db", 101, db))
    )
    everything, only_web = FeedFilter(), FeedFilter(applications=frozenset({"web"}))
    first = admin._encode(everything.view(batch))  # type: ignore[arg-type]
    assert admin._encode(everything.view(batch)) is first  # type: ignore[arg-type]
    assert [d.key for d in first.deltas] == ["web", "db"] and first.revision == 101
    narrow = admin._encode(only_web.view(batch))  # type: ignore[arg-type]
    assert narrow is not first and [d.key for d in narrow.deltas] == ["web"]
    assert narrow.deltas[0] == first.deltas[0]
