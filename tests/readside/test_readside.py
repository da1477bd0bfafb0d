"""The read side (multiwatcher + cache) against a real mongod and its change stream.

The oracle is MongoDB itself: at a quiescent point (``cache.wait_for`` the last
write's revision) every unit's cached effective config and hash must equal a
from-scratch recomputation from the stored documents (`model_check.expected_configs`).
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from pymongo import UpdateOne
from support.model_check import expected_configs, with_hashes

from genconf.domain.deltas import Kind
from genconf.domain.results import WriteResult
from genconf.errors import AlreadyExists, GenconfError, Unavailable, WatchClosed
from genconf.readside.cache import ModelCache
from genconf.readside.core import EffectiveConfig
from genconf.readside.multiwatcher import Multiwatcher, Snapshot, State, Tuning
from genconf.readside.resume import ResumeToken
from genconf.readside.supervisor import ReadSide, read_side
from genconf.readside.watch import ConfigWatch
from genconf.store.documents import APPLICATIONS, BRANCHES, GENERATIONS, UNITS
from genconf.store.store import Store

SCHEMA: dict[str, Any] = {
    "k": {"type": "int", "default": 1},
    "s": {"type": "string", "default": "x"},
    "n": {"type": "int"},
    "o": {"type": "object"},
}
# The same keys with other defaults: switching schemas changes effective configs.
SCHEMA_ALT: dict[str, Any] = {
    **SCHEMA,
    "k": {"type": "int", "default": 2},
    "s": {"type": "string", "default": "y"},
}
TUNING = Tuning(max_await_ms=100, backoff_initial=0.05, backoff_max=0.5)


@asynccontextmanager
async def running(store: Store, tuning: Tuning = TUNING, **kwargs: Any) -> AsyncIterator[ReadSide]:
    async with read_side(store.db, tuning=tuning, **kwargs) as rs:
        with anyio.fail_after(10):
            await rs.wait_synced()
        yield rs


async def settle(rs: ReadSide | ModelCache, revision: int) -> None:
    cache = rs.cache if isinstance(rs, ReadSide) else rs
    with anyio.fail_after(10):
        await cache.wait_for(revision)


async def truth(store: Store) -> dict[str, tuple[str | None, dict[str, Any], str]]:
    """Every unit's (branch, effective config, hash), recomputed from MongoDB."""
    state = await store.load()
    configs = with_hashes(expected_configs(state[APPLICATIONS], state[UNITS], state[BRANCHES]))
    return {name: (doc["branch"], *configs[name]) for name, doc in state[UNITS].items()}


def cached(cache: ModelCache) -> dict[str, tuple[str | None, dict[str, Any], str]]:
    out = {}
    for name, unit in cache.units.items():
        uc = cache.config(name)
        out[name] = (unit.branch, dict(uc.config), uc.hash)
    return out


async def assert_cache_is_mongodb(store: Store, cache: ModelCache) -> None:
    expected = await truth(store)
    got = cached(cache)
    assert sorted(got) == sorted(expected), "the unit sets differ"
    for name in expected:
        assert got[name] == expected[name], name
    state = await store.load()
    assert sorted(cache.applications) == sorted(state[APPLICATIONS])
    assert sorted(cache.branches) == sorted(state[BRANCHES])
    last = await store.db[GENERATIONS].find_one({}, sort=[("_id", -1)])
    assert cache.last_generation == (last["_id"] if last else 0)


async def marker(store: Store) -> WriteResult:
    """A write no watched unit cares about: after it, earlier changes are all applied."""
    try:
        await store.create_application("zz-marker")
    except AlreadyExists:  # a marker before this one made it
        pass
    return await store.add_units("zz-marker", count=1)


# -- the model-based test ------------------------------------------------------------

# More seeds for a longer hunt: GENCONF_SEEDS=4,5,6 pytest tests/readside/test_readside.py -k random
SEEDS = [int(s) for s in os.environ.get("GENCONF_SEEDS", "1,2,3").split(",")]
APP_POOL = ("a", "b", "c", "d")
BRANCH_POOL = ("x", "y", "z")


class RandomWriter:
    """Random writes through the store; it only roughly knows the model, so many
    requests are refused, which is part of the test (a refusal writes nothing)."""

    def __init__(self, store: Store, seed: int) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.apps: dict[str, list[str]] = {}
        self.branches: set[str] = set()
        self.last_revision = 0
        self.applied: dict[str, int] = {}
        self.refused: dict[str, int] = {}
        self.reasons: list[str] = []

    def value(self, key: str) -> Any:
        r = self.rng
        if key in ("k", "n"):
            return r.randint(0, 3)
        if key == "s":
            return r.choice(["x", "y", "z"])
        return {"p": r.randint(0, 2)} if r.random() < 0.8 else {}

    def some_units(self, app: str) -> list[str]:
        units = self.apps.get(app, [])
        return self.rng.sample(units, self.rng.randint(1, min(2, len(units)))) if units else []

    def some_app(self) -> str:
        known = sorted(self.apps)
        return (
            self.rng.choice(known)
            if known and self.rng.random() < 0.9
            else self.rng.choice(APP_POOL)
        )

    def some_branch(self) -> str:
        known = sorted(self.branches)
        if known and self.rng.random() < 0.9:
            return self.rng.choice(known)
        return self.rng.choice(BRANCH_POOL)

    def fresh(self, pool: tuple[str, ...], taken: Any) -> str:
        free = [name for name in pool if name not in taken]
        return self.rng.choice(free or list(pool))

    def settings(self) -> tuple[dict[str, Any], list[str]]:
        keys = self.rng.sample(sorted(SCHEMA), self.rng.randint(1, 2))
        unset = [k for k in keys if self.rng.random() < 0.25]
        return {k: self.value(k) for k in keys if k not in unset}, unset

    def op(self) -> tuple[str, Callable[[], Awaitable[WriteResult]]]:
        s, r = self.store, self.rng
        app, branch = self.some_app(), self.some_branch()
        new_app, new_branch = (
            self.fresh(APP_POOL, self.apps),
            self.fresh(BRANCH_POOL, self.branches),
        )
        set_, unset = self.settings()
        ops: list[tuple[float, str, Callable[[], Awaitable[WriteResult]]]] = [
            (
                2,
                "create",
                lambda: s.create_application(new_app, schema=SCHEMA, units=r.randint(0, 4)),
            ),
            (0.4, "remove_app", lambda: s.remove_application(app, force=True)),
            (1, "schema", lambda: s.update_application(app, schema=r.choice([SCHEMA, SCHEMA_ALT]))),
            (3, "add_units", lambda: s.add_units(app, count=r.randint(1, 2))),
            (1.5, "remove_unit", lambda: s.remove_unit(r.choice(self.apps.get(app) or ["a/0"]))),
            (8, "set", lambda: s.set_config(app, set=set_, unset=unset)),
            (4, "add_branch", lambda: s.add_branch(new_branch)),
            (3, "track", lambda: s.track_branch(branch, units=self.some_units(app) or ["a/0"])),
            (1, "track_app", lambda: s.track_branch(branch, applications=[app])),
            (
                1,
                "track_count",
                lambda: s.track_branch(branch, count=r.randint(1, 2), application=app),
            ),
            (
                1.5,
                "untrack",
                lambda: s.untrack_branch(branch, units=self.some_units(app) or ["a/0"]),
            ),
            (0.5, "untrack_app", lambda: s.untrack_branch(branch, applications=[app])),
            (8, "branch_set", lambda: s.set_branch_config(branch, app, set=set_, unset=unset)),
            (1.2, "commit", lambda: s.commit_branch(branch)),
            (0.6, "force_commit", lambda: s.commit_branch(branch, force=True)),
            (0.6, "abort", lambda: s.abort_branch(branch)),
            (0.6, "force_abort", lambda: s.abort_branch(branch, force=True)),
        ]
        _, name, call = r.choices(ops, weights=[w for w, _, _ in ops])[0]
        # Remember which names the call concerns, for bookkeeping after it succeeds.
        if name == "create":
            app = new_app
        elif name == "add_branch":
            branch = new_branch
        self._pending = (name, app, branch)
        return name, call

    def note(self, name: str, result: WriteResult) -> None:
        _, app, branch = self._pending
        if name == "create":
            self.apps[app] = list(result.units)
        elif name == "remove_app":
            self.apps.pop(app, None)
        elif name == "add_units":
            self.apps.setdefault(app, []).extend(result.units)
        elif name == "remove_unit":
            for units in self.apps.values():
                for u in result.units:
                    if u in units:
                        units.remove(u)
        elif name == "add_branch":
            self.branches.add(branch)
        elif name in ("commit", "force_commit", "abort", "force_abort"):
            self.branches.discard(branch)

    async def step(self) -> None:
        name, call = self.op()
        try:
            result = await call()
        except GenconfError as exc:
            assert not isinstance(exc, Unavailable), exc
            self.refused[name] = self.refused.get(name, 0) + 1
            self.reasons.append(f"{name}: {type(exc).__name__}: {exc.message[:90]}")
            return
        self.applied[name] = self.applied.get(name, 0) + 1
        self.last_revision = max(self.last_revision, result.revision)
        self.note(name, result)


class WatchLedger:
    """A watch on every unit; at each check, each watch's latest value must be the truth."""

    def __init__(self, cache: ModelCache) -> None:
        self.cache = cache
        self.watches: dict[str, ConfigWatch] = {}
        self.seen: dict[str, str] = {}

    async def check(self, expected: dict[str, tuple[str | None, dict[str, Any], str]]) -> None:
        for name, w in list(self.watches.items()):
            if w.pending:
                with anyio.fail_after(1):
                    self.seen[name] = (await w.next()).hash
            if (closed := await closed_now(w)) is not None:
                # Removed (perhaps re-created since, with its application: a new unit).
                assert closed.removed, name
                del self.watches[name]
                continue
            assert name in expected, f"{name} was removed but its watch is open"
            assert self.seen[name] == expected[name][2], f"{name}: missed a change"
        for name in expected:
            if name not in self.watches:
                self.watches[name] = self.cache.watch(name)
                self.seen[name] = self.cache.config(name).hash


async def closed_now(w: ConfigWatch) -> WatchClosed | None:
    """Poll a drained watch: its WatchClosed if it has ended, else None."""
    assert not w.pending
    with anyio.move_on_after(0):  # a poll, not a wait: an open watch blocks at once
        try:
            await w.next()
        except WatchClosed as exc:
            return exc
        raise AssertionError(f"{w.unit}: an update appeared out of nowhere")
    return None


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_writes_cache_equals_mongodb(store: Store, seed: int) -> None:
    writer = RandomWriter(store, seed)
    async with running(store) as rs:
        ledger = WatchLedger(rs.cache)
        for i in range(1, 301):
            await writer.step()
            if i % 25 == 0:
                await settle(rs, writer.last_revision)
                await assert_cache_is_mongodb(store, rs.cache)
                await ledger.check(await truth(store))
        assert rs.watcher.stats.resyncs == 0 and rs.watcher.state is State.SYNCED
    # The sequence really exercised the model, refusals included.
    applied = writer.applied
    for name in ("create", "set", "add_branch", "track", "branch_set", "add_units", "schema"):
        assert applied.get(name, 0) > 0, (name, applied)
    assert applied.get("commit", 0) + applied.get("force_commit", 0) > 0, applied
    assert sum(writer.refused.values()) > 0
    assert len(ledger.watches) > 3


# -- start without a gap ------------------------------------------------------------------


async def test_no_gap_when_starting_during_writes(store: Store) -> None:
    await store.create_application("app", schema=SCHEMA, units=3)
    total, before_start, during_load = 200, 40, 40
    results: list[WriteResult] = []
    progress = anyio.Condition()

    async def until(count: int) -> None:
        async with progress:
            while len(results) < count:
                await progress.wait()

    class SlowStart(Multiwatcher):
        """Lets writes land between the snapshot and the change stream's opening."""

        snapshot: Snapshot

        async def read_snapshot(self) -> Snapshot:
            self.snapshot = await super().read_snapshot()
            await until(len(results) + during_load)
            return self.snapshot

    async def writer() -> None:
        for i in range(total):
            result = await store.set_config("app", set={"k": 100 + i})
            async with progress:
                results.append(result)
                progress.notify_all()

    cache = ModelCache()
    watcher = SlowStart(store.db, cache, tuning=TUNING)
    seen: dict[str, list[EffectiveConfig]] = {}

    async def record(w: ConfigWatch) -> None:
        while True:
            eff = await w.next()
            seen[w.unit].append(eff)
            if eff.config["k"] == 100 + total - 1:
                return

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(writer)
            await until(before_start)
            tg.start_soon(watcher.run)
            await cache.wait_synced()
            assert len(results) < total, "the read side started after the writes ended"
            async with anyio.create_task_group() as readers:
                for name in sorted(cache.units):
                    seen[name] = []
                    readers.start_soon(record, cache.watch(name))
            await settle(cache, results[-1].revision)
            await assert_cache_is_mongodb(store, cache)
            tg.cancel_scope.cancel()

    # The snapshot fell inside the writes, and writes landed before the stream opened.
    snap = watcher.snapshot
    assert results[0].revision < snap.revision < results[-1].revision
    after = [r for r in results if r.revision > snap.revision]
    assert len(after) >= during_load
    # Every write after the snapshot came through the stream exactly once, in order;
    # every write before it was in the snapshot.
    replay, feed = cache.subscribe(since=snap.revision)
    feed.close()
    assert [b.revision for b in replay] == [r.revision for r in after]
    assert cache.statistics().batches_applied == len(after)  # nothing applied twice
    ks = [d.value.settings["k"] for b in replay for d in b.deltas if d.kind is Kind.APPLICATION]
    assert ks == [100 + results.index(r) for r in after]
    gens = [d.value.id for b in replay for d in b.deltas if d.kind is Kind.GENERATION]
    assert gens == [r.generation for r in after]
    assert snap.last_generation == min(gens) - 1
    # Each unit's notifications: no duplicate, never backwards, ending at the last write.
    for name, effs in seen.items():
        ks = [e.config["k"] for e in effs]
        assert ks == sorted(set(ks)), f"{name}: duplicate or out-of-order notifications {ks}"
        revisions = [e.revision for e in effs]
        assert revisions == sorted(set(revisions)), name
        assert ks[-1] == 100 + total - 1


# -- atomic commits ---------------------------------------------------------------------------


async def test_commit_is_applied_atomically_as_one_batch(store: Store) -> None:
    await store.create_application("a", schema=SCHEMA, units=3)
    await store.create_application("b", schema=SCHEMA, units=2)
    setup = await store.set_config("a", set={"k": 0, "s": "x"})
    async with running(store) as rs:
        await settle(rs, setup.revision)
        w = rs.cache.watch("a/0")
        observed_send, observed = anyio.create_memory_object_stream[
            tuple[EffectiveConfig, dict[str, Any]]
        ](100)

        async def reader() -> None:
            while True:
                eff = await w.next()
                # Read b's config in the same instant: one batch, one state.
                await observed_send.send((eff, dict(rs.cache.config("b/1").config)))

        commits: list[WriteResult] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            for i in range(1, 6):
                name = f"c{i}"
                await store.add_branch(name)
                await store.track_branch(name, units=["a/2"])
                await store.set_branch_config(name, "a", set={"k": i, "s": f"v{i}"})
                await store.set_branch_config(name, "b", set={"k": 10 * i, "n": i})
                staged = await store.set_branch_config(name, "b", unset=["o"])
                await settle(rs, staged.revision)
                _, feed = rs.cache.subscribe()
                commit = await store.commit_branch(name)
                commits.append(commit)
                await settle(rs, commit.revision)
                with anyio.fail_after(5):
                    eff, b_config = await observed.receive()
                # Never half a commit: a's two keys and b's keys move together.
                assert (eff.config["k"], eff.config["s"]) == (i, f"v{i}")
                assert (b_config["k"], b_config["n"]) == (10 * i, i)
                assert eff.revision == commit.revision
                # The multiwatcher delivered the commit as exactly one batch.
                batches = []
                while feed._receive.statistics().current_buffer_used:
                    batches.append(await feed.next())
                feed.close()
                assert [b.revision for b in batches] == [commit.revision]
                kinds = sorted((d.kind.value, d.key, d.removed) for d in batches[0].deltas)
                assert kinds == [
                    ("application", "a", False),
                    ("application", "b", False),
                    ("branch", name, True),
                    ("generation", str(commit.generation), False),
                    ("unit", "a/2", False),
                ]
            tg.cancel_scope.cancel()
        assert not w.pending and w.coalesced == 0 and w.delivered == 5
        await assert_cache_is_mongodb(store, rs.cache)


# -- notification precision ----------------------------------------------------------------------


async def test_notifications_go_exactly_to_units_whose_config_changes(store: Store) -> None:
    await store.create_application("a", schema=SCHEMA, units=4)
    await store.create_application("c", schema=SCHEMA, units=2)
    await store.add_branch("b")
    await store.track_branch("b", units=["a/2", "a/3"])
    await store.set_branch_config("b", "a", set={"k": 5})
    async with running(store) as rs:
        setup = await store.set_config("c", set={"s": "y"})
        await settle(rs, setup.revision)
        units = ["a/0", "a/1", "a/2", "a/3", "c/0", "c/1"]
        watches = {u: rs.cache.watch(u) for u in units}

        async def notified() -> dict[str, int]:
            """Units notified since the last call, and how often (coalesced + 1)."""
            await settle(rs, (await marker(store)).revision)
            out = {}
            for u, w in watches.items():
                if w.pending:
                    before = w.coalesced
                    await w.next()
                    out[u] = 1 + w.coalesced - before
            return out

        # A conflict-free commit: the tracking units already run it.
        await store.commit_branch("b")
        assert await notified() == {"a/0": 1, "a/1": 1}
        assert (
            rs.cache.config("a/2").config["k"] == 5
            and rs.cache.config("a/2").effective.branch is None
        )

        # A master write to a key the branch overrides: nobody on the branch hears of it.
        await store.add_branch("b2")
        await store.track_branch("b2", units=["a/1"], applications=["c"])
        assert await notified() == {}  # tracking an empty branch changes nothing
        await store.set_branch_config("b2", "a", set={"k": 7})
        assert await notified() == {"a/1": 1}
        await store.set_config("a", set={"k": 9})
        assert await notified() == {"a/0": 1, "a/2": 1, "a/3": 1}

        # Writes that change no effective config notify nobody.
        await store.set_config("a", set={"s": "x"})  # master now names the default
        await store.set_config("a", set={"k": 9})  # no change at all
        await store.set_applied("a/0", hash=rs.cache.config("a/0").hash, ok=True)
        await store.set_branch_config("b2", "c", set={"s": "y"})  # c's master already is y
        await store.update_application("a", charm="other")
        assert await notified() == {}

        # Branch config for c reaches exactly c's (whole-application) trackers.
        await store.set_branch_config("b2", "c", set={"k": 2})
        assert await notified() == {"c/0": 1, "c/1": 1}
        await store.abort_branch("b2", force=True)
        assert await notified() == {"a/1": 1, "c/0": 1, "c/1": 1}
        await assert_cache_is_mongodb(store, rs.cache)


# -- resync after history lost ---------------------------------------------------------------------


async def foreign_token(store: Store) -> dict[str, Any]:
    """A well-formed resume token of another database's stream: ours cannot resume from it."""
    other = store.client[store.db.name + "_other"]
    async with await other.watch(max_await_time_ms=100) as stream:
        await other["t"].insert_one({"_id": 1})
        with anyio.fail_after(10):
            while (event := await stream.try_next()) is None:
                pass
    await store.client.drop_database(other.name)
    return event["_id"]


@asynccontextmanager
async def following(watcher: Multiwatcher) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(watcher.run)
        try:
            yield
        finally:
            tg.cancel_scope.cancel()


async def test_history_lost_reloads_and_notifies_exactly_the_changed_units(store: Store) -> None:
    await store.create_application("a", schema=SCHEMA, units=3)
    await store.create_application("c", schema=SCHEMA, units=2)
    await store.add_branch("b")
    await store.track_branch("b", units=["a/2"])
    await store.set_branch_config("b", "a", set={"k": 5})
    cache = ModelCache()
    watcher = Multiwatcher(store.db, cache, tuning=TUNING)
    async with following(watcher):
        with anyio.fail_after(10):
            await cache.wait_synced()
        watches = {u: cache.watch(u) for u in ("a/0", "a/1", "a/2", "c/0", "c/1")}
        before = cached(cache)
        first_gen = cache.last_generation
    assert watcher.state is State.STOPPED
    # Taken before the writes below, so the server meets them and finds no such event
    # (a token from after them would silently skip them: it is a position, not a check).
    token = await foreign_token(store)

    # While nobody watches the stream: changes the cache can only learn by reloading.
    await store.set_config("a", set={"k": 7})  # a/0, a/1 change; a/2 keeps b's k=5
    await store.remove_unit("c/1")
    await store.add_units("a", count=1)
    await store.add_branch("b3")
    await store.track_branch("b3", units=["c/0"])
    await store.set_branch_config("b3", "c", set={"s": "q"})
    last = await store.set_applied("a/1", hash="h", ok=True)
    await store.set_branch_config("b", "c", set={"n": 1})  # no c unit tracks b

    _, feed = cache.subscribe()
    watcher.resume = ResumeToken(token)
    async with following(watcher):
        await settle(cache, last.revision)
        assert watcher.stats.resyncs == 1 and cache.statistics().resyncs == 1
        assert "resume token was not found" in watcher.stats.last_error
        await assert_cache_is_mongodb(store, cache)
        after = cached(cache)
        changed = {u for u in before if u in after and before[u][2] != after[u][2]}
        assert changed == {"a/0", "a/1", "c/0"}
        for u, w in watches.items():
            if u == "c/1":
                with pytest.raises(WatchClosed) as info, anyio.fail_after(1):
                    await w.next()
                assert info.value.removed
            elif u in changed:
                eff = await w.next()
                assert eff.hash == after[u][2] and w.coalesced == 0
            else:
                assert not w.pending, u
        # The reload's differences reached the admin feed as ordinary deltas, in one batch.
        resync = await feed.next()
        assert {(d.kind.value, d.key) for d in resync.deltas} >= {
            ("application", "a"),
            ("unit", "c/1"),
            ("unit", "a/3"),
            ("unit", "a/1"),
            ("branch", "b3"),
            ("branch", "b"),
        }
        assert [d for d in resync.deltas if d.kind is Kind.GENERATION]
        assert cache.last_generation > first_gen
        # And it follows the stream again afterwards.
        w3 = cache.watch("a/3")
        again = await store.set_config("a", set={"k": 8})
        await settle(cache, again.revision)
        assert (await w3.next()).config["k"] == 8
        assert watcher.stats.resyncs == 1


async def test_restart_resumes_from_the_token_without_reloading(store: Store) -> None:
    await store.create_application("a", schema=SCHEMA, units=2)
    cache = ModelCache()
    watcher = Multiwatcher(store.db, cache, tuning=TUNING)
    async with following(watcher):
        with anyio.fail_after(10):
            await cache.wait_synced()
        w = cache.watch("a/0")
        first = await store.set_config("a", set={"k": 2})
        await settle(cache, first.revision)
        assert (await w.next()).config["k"] == 2
    assert isinstance(watcher.resume, ResumeToken)
    results = [await store.set_config("a", set={"k": k}) for k in (3, 4)]
    _, feed = cache.subscribe()
    async with following(watcher):
        await settle(cache, results[-1].revision)
        # Both missed writes arrive from the stream, in order, each its own batch.
        assert [(await feed.next()).revision for _ in results] == [r.revision for r in results]
        assert (await w.next()).config["k"] == 4
        # One config for both, at the last write's revision: settled once for the
        # run (one server batch), or the first offer coalesced into the second.
        assert w.revision == results[-1].revision and w.delivered == 2 and not w.pending
    assert watcher.stats.resyncs == 0


# -- a slow watcher under 10,000 changes ----------------------------------------------------------


async def test_slow_watch_holds_one_update_while_10000_changes_flow(store: Store) -> None:
    n, base = 10_000, 100_000  # k = base + 1 .. base + n: every write changes the config
    await store.create_application("app", schema=SCHEMA, units=2)
    # yield_interval=0: readers get a turn after every transaction, so a reader that
    # keeps up sees most changes one by one. (The default budget trades that for
    # ingest throughput: a fast reader then sees coalesced, still prompt, updates.)
    async with running(store, dataclasses.replace(TUNING, yield_interval=0.0)) as rs:
        slow, fast = rs.cache.watch("app/0"), rs.cache.watch("app/1")
        fast_seen: list[int] = []
        done = anyio.Event()

        async def read_fast() -> None:
            while True:
                k = (await fast.next()).config["k"]
                fast_seen.append(k)
                if k == base + n:
                    done.set()
                    return

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_fast)
            # Each update its own oplog entry, change event and revision (no transaction).
            started = time.monotonic()
            for chunk in range(0, n, 1000):
                await store.db[APPLICATIONS].bulk_write(
                    [
                        UpdateOne(
                            {"_id": "app"},
                            {"$set": {"settings.k": base + k}, "$inc": {"revision": 1}},
                        )
                        for k in range(chunk + 1, chunk + 1001)
                    ]
                )
            written = time.monotonic()
            with anyio.fail_after(10):
                await done.wait()
            lag = time.monotonic() - written
        end = await marker(store)
        await settle(rs, end.revision)
        print(
            f"{n} writes in {written - started:.2f}s; the fast reader saw {len(fast_seen)} "
            f"updates and caught up {lag:.2f}s after the last write"
        )
        assert lag < 5
        # The slow watch held exactly one pending update: the newest.
        assert slow.pending and slow.delivered == 0
        assert slow.coalesced == n - 1
        assert (await slow.next()).config["k"] == base + n
        # The fast one saw many updates, in order, ending with the last.
        assert len(fast_seen) > n // 10 and fast_seen == sorted(set(fast_seen))
        assert fast.delivered + fast.coalesced == n
        assert rs.watcher.stats.events >= n
        await assert_cache_is_mongodb(store, rs.cache)
