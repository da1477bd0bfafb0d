"""The model cache (`genconf.readside.cache`) fed `Batch`es of `records` directly: no I/O.

The fixture model, loaded at revision 100:

    application a: units a/0, a/1 (master) and a/2 (tracks branch b)
    application c: units c/0 (master) and c/1 (tracks branch b)
    branch b:      a.k = 10 (from master's absent)
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import bson
import pytest
from model_builders import (
    SCHEMA,
    START,
    app,
    batch,
    branch,
    fixture_model,
    generation,
    rm,
    unit,
    up,
)

from genconf.domain import config, schema, values
from genconf.domain.deltas import Batch, Delta, Kind, Record, estimate_bytes, plain_bytes
from genconf.domain.records import Application, Branch, Unit
from genconf.errors import FeedOverflow, NotFound, RevisionTooOld, WatchClosed
from genconf.readside.cache import ModelCache
from genconf.readside.core import EffectiveConfig
from genconf.readside.watch import ConfigWatch


@pytest.fixture
async def cache() -> ModelCache:
    c = ModelCache()
    apps, units, branches = fixture_model()
    c.load(apps, units, branches, last_generation=2, revision=START)
    return c


def config_of(cache: ModelCache, name: str) -> dict[str, Any]:
    return dict(cache.config(name).config)


async def take(w: ConfigWatch) -> EffectiveConfig:
    """The watch's pending update, which must be there already."""
    assert w.pending, f"{w.unit} has no pending update"
    with anyio.fail_after(1):
        return await w.next()


# -- effective config and memoization ------------------------------------------


async def test_load_computes_effective_config_per_unit(cache: ModelCache) -> None:
    assert config_of(cache, "a/0") == {"k": 1, "s": "x"}
    assert config_of(cache, "a/2") == {"k": 10, "s": "x"}
    assert config_of(cache, "c/1") == {"k": 1, "s": "x"}  # b changes nothing of c
    assert cache.config("a/2").hash == values.config_hash({"k": 10, "s": "x"})
    assert cache.synced and cache.revision == START
    with pytest.raises(NotFound):
        cache.config("a/9")


async def test_units_of_one_group_share_one_effective_config(cache: ModelCache) -> None:
    before = cache.statistics().groups_recomputed
    first, second = cache.config("a/0"), cache.config("a/1")
    assert first.effective is second.effective
    assert cache.config("a/2").effective is not first.effective
    assert cache.statistics().groups_recomputed == before + 2  # (a, None) and (a, b), once each

    cache.apply(batch(START + 1, app("a", version=2, k=5)))
    recomputed = cache.statistics().groups_recomputed
    assert cache.config("a/0").effective is cache.config("a/1").effective
    assert cache.config("a/0").config == {"k": 5, "s": "x"}
    assert cache.config("a/0").effective.app_version == 2
    assert cache.statistics().groups_recomputed == recomputed  # read after apply: already memoized
    assert cache.config("a/0").effective is not first.effective


async def test_app_change_notifies_each_unit_once(cache: ModelCache) -> None:
    watches = {name: cache.watch(name) for name in ("a/0", "a/1", "a/2", "c/0", "c/1")}
    cache.apply(batch(START + 1, app("a", version=2, s="y")))
    for name in ("a/0", "a/1", "a/2"):
        eff = await take(watches[name])
        assert eff.config["s"] == "y" and eff.revision == START + 1
        assert not watches[name].pending and watches[name].coalesced == 0
    assert not watches["c/0"].pending and not watches["c/1"].pending
    assert cache.statistics().notifications == 3


async def test_master_change_overridden_by_branch_notifies_only_master_units(
    cache: ModelCache,
) -> None:
    w_master, w_branch = cache.watch("a/0"), cache.watch("a/2")
    cache.apply(batch(START + 1, app("a", version=2, k=7)))
    assert (await take(w_master)).config["k"] == 7
    assert not w_branch.pending  # b sets k = 10 for a/2 whatever master says
    assert config_of(cache, "a/2")["k"] == 10


async def test_schema_change_notifies_units_whose_default_changes(cache: ModelCache) -> None:
    w0, w1 = cache.watch("a/0"), cache.watch("a/1")
    cache.apply(batch(START + 1, Unit("a/1", "a", 1, None, None, 2)))  # same group
    cache.apply(batch(START + 2, app("c", version=2, k=3)))
    assert not w0.pending and not w1.pending
    new_schema = schema.parse_schema(
        {"k": {"type": "int", "default": 2}, "s": {"type": "string", "default": "x"}}
    )
    wc = cache.watch("c/0")
    cache.apply(batch(START + 3, Application("a", "a", new_schema, {}, 1, 10, 2)))
    cache.apply(batch(START + 3, Application("c", "c", new_schema, {"k": 3}, 2, 10, 3)))
    assert (await take(w0)).config == {"k": 2, "s": "x"}
    assert (await take(w1)).config == {"k": 2, "s": "x"}
    assert not wc.pending  # c sets k in master: the new default does not show


async def test_change_with_equal_effective_config_notifies_nobody(cache: ModelCache) -> None:
    watches = [cache.watch(n) for n in ("a/0", "a/1", "a/2")]
    # Setting k to its default in master: a new version, the same effective config.
    cache.apply(batch(START + 1, app("a", version=2, k=1)))
    # A charm-only change does not even recompute.
    recomputed = cache.statistics().groups_recomputed
    changed_charm = Application("a", "other-charm", SCHEMA, {"k": 1}, 2, 10, 3)
    cache.apply(batch(START + 2, changed_charm))
    assert cache.config("a/0").effective.app_version == 2
    assert cache.statistics().groups_recomputed == recomputed
    assert not any(w.pending for w in watches)
    assert cache.statistics().notifications == 0


async def test_unit_switching_branch_is_notified_only_if_its_hash_changes(
    cache: ModelCache,
) -> None:
    cache.apply(batch(START + 1, branch("same", a={"k": 1}), branch("empty")))
    w = cache.watch("a/0")
    # Both branches leave a/0's effective config as it is on master.
    cache.apply(batch(START + 2, unit("a", 0, "same")))
    cache.apply(batch(START + 3, unit("a", 0, "empty")))
    cache.apply(batch(START + 4, unit("a", 0, None)))
    assert not w.pending
    # b really changes it, and back to master changes it again.
    cache.apply(batch(START + 5, unit("a", 0, "b")))
    assert (await take(w)).config["k"] == 10
    cache.apply(batch(START + 6, unit("a", 0, None)))
    assert (await take(w)).config["k"] == 1
    assert cache.statistics().notifications == 2
    assert [u.name for u in cache.tracking("b")] == ["a/2", "c/1"]


async def test_branch_change_notifies_only_tracking_units_of_affected_apps(
    cache: ModelCache,
) -> None:
    watches = {name: cache.watch(name) for name in ("a/0", "a/1", "a/2", "c/0", "c/1")}
    cache.apply(batch(START + 1, branch("b", a={"k": 10, "s": "z"})))
    assert (await take(watches["a/2"])).config == {"k": 10, "s": "z"}
    assert not any(w.pending for w in watches.values())
    # Now b touches c too: only c/1 (the tracking unit of c) hears of it.
    cache.apply(batch(START + 2, branch("b", a={"k": 10, "s": "z"}, c={"k": 3})))
    assert (await take(watches["c/1"])).config == {"k": 3, "s": "x"}
    assert not any(w.pending for w in watches.values())
    # A branch edit that changes nothing effective (k=1 is c's default) is silent.
    cache.apply(batch(START + 3, branch("b", a={"k": 10, "s": "z"}, c={"k": 1})))
    assert (await take(watches["c/1"])).config == {"k": 1, "s": "x"}
    cache.apply(batch(START + 4, branch("b", a={"k": 10, "s": "z"}, c={"k": None})))
    assert not any(w.pending for w in watches.values())  # unset k: the default, 1 again
    assert cache.statistics().notifications == 3


async def test_commit_batch_notifies_other_units_once_and_tracking_units_never(
    cache: ModelCache,
) -> None:
    """A commit's deltas in one batch: master takes b's value, a/2 is released."""
    watches = {name: cache.watch(name) for name in ("a/0", "a/1", "a/2", "c/0", "c/1")}
    cache.apply(
        batch(
            START + 1,
            app("a", version=2, k=10),
            generation(3, a={"k": {"to": 10}}),
            unit("a", 2, None),
            unit("c", 1, None),
            rm(Kind.BRANCH, "b", START + 1),
        )
    )
    assert (await take(watches["a/0"])).config["k"] == 10
    assert (await take(watches["a/1"])).config["k"] == 10
    assert not any(w.pending for w in watches.values())
    assert cache.config("a/2").effective is cache.config("a/0").effective
    assert cache.last_generation == 3 and "b" not in cache.branches
    assert cache.tracking("b") == []


async def test_unit_removal_closes_its_watch(cache: ModelCache) -> None:
    w, other = cache.watch("a/1"), cache.watch("a/0")
    cache.apply(batch(START + 1, rm(Kind.UNIT, "a/1", START + 1)))
    with pytest.raises(WatchClosed) as info, anyio.fail_after(1):
        await w.next()
    assert info.value.removed
    assert not other.pending
    with pytest.raises(NotFound):
        cache.watch("a/1")
    with pytest.raises(NotFound):
        cache.config("a/1")
    assert [u.name for u in cache.units_of("a")] == ["a/0", "a/2"]
    assert cache.statistics().watchers == 1


async def test_application_removal_closes_every_unit_watch(cache: ModelCache) -> None:
    watches = [cache.watch(n) for n in ("c/0", "c/1")]
    cache.apply(
        batch(
            START + 1,
            rm(Kind.UNIT, "c/0", START + 1),
            rm(Kind.UNIT, "c/1", START + 1),
            rm(Kind.APPLICATION, "c", START + 1),
        )
    )
    for w in watches:
        with pytest.raises(WatchClosed) as info, anyio.fail_after(1):
            await w.next()
        assert info.value.removed
    assert cache.units_of("c") == [] and "c" not in cache.applications


async def test_close_all_ends_watches_not_as_removed(cache: ModelCache) -> None:
    w = cache.watch("a/0")
    cache.close_all("shutting down")
    with pytest.raises(WatchClosed) as info, anyio.fail_after(1):
        await w.next()
    assert not info.value.removed and info.value.reason == "shutting down"


async def test_watch_close_unsubscribes(cache: ModelCache) -> None:
    with cache.watch("a/0") as w:
        assert cache.statistics().watchers == 1
    assert cache.statistics().watchers == 0
    cache.apply(batch(START + 1, app("a", version=2, k=5)))
    assert not w.pending
    with pytest.raises(WatchClosed):
        await w.next()


# -- latest-state coalescing -----------------------------------------------------


async def test_slow_watch_holds_one_pending_update_however_many_arrive(
    cache: ModelCache,
) -> None:
    slow = cache.watch("a/0")
    n = 10_000
    for i in range(1, n + 1):
        cache.apply(batch(START + i, app("a", version=1 + i, k=1000 + i)))
    assert slow.pending
    assert slow.coalesced == n - 1
    assert slow.delivered == 0
    latest = await take(slow)
    assert latest.config["k"] == 1000 + n and latest.revision == START + n
    assert not slow.pending and slow.delivered == 1
    assert cache.statistics().notifications == n


async def test_reader_waiting_in_next_is_woken_by_an_update(cache: ModelCache) -> None:
    w = cache.watch("a/0")
    got: list[EffectiveConfig] = []

    async def reader() -> None:
        got.append(await w.next())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            await anyio.wait_all_tasks_blocked()
            assert got == []
            cache.apply(batch(START + 1, app("a", version=2, k=2)))
    assert [e.config["k"] for e in got] == [2]


# -- ring buffer and the admin feed ------------------------------------------------


def fill(cache: ModelCache, count: int, first: int = START + 1) -> list[int]:
    """``count`` single-delta batches changing c's master; their revisions."""
    revisions = []
    for i in range(count):
        rev = first + i
        cache.apply(batch(rev, app("c", version=2 + rev - first, k=rev)))
        revisions.append(rev)
    return revisions


async def test_deltas_since_replays_the_ring_and_refuses_what_it_dropped() -> None:
    cache = ModelCache(ring_size=5)
    apps, units, branches = fixture_model()
    cache.load(apps, units, branches, last_generation=0, revision=START)
    assert cache.deltas_since(START) == []
    revs = fill(cache, 12)
    assert cache.statistics().ring_size == 5
    assert [b.revision for b in cache.deltas_since(cache.oldest_revision)] == revs[-5:]
    assert [b.revision for b in cache.deltas_since(revs[-3])] == revs[-2:]
    assert cache.deltas_since(revs[-1]) == []
    with pytest.raises(RevisionTooOld):
        cache.deltas_since(cache.oldest_revision - 1)
    with pytest.raises(RevisionTooOld):
        cache.deltas_since(START)
    # Replayed updates carry the new value only: the feed never sends the old one,
    # and keeping it would double what the ring holds.
    last = cache.deltas_since(revs[-2])[0].deltas[0]
    assert last.value == cache.applications["c"] and last.previous is None


async def test_ring_counts_deltas_and_keeps_whole_batches() -> None:
    cache = ModelCache(ring_size=3)
    cache.load([app("a")], [], [], 0, START)
    cache.apply(batch(START + 1, unit("a", 0), unit("a", 1)))
    cache.apply(batch(START + 2, unit("a", 2), unit("a", 3)))
    # 4 deltas > 3: the first batch goes whole; replay after it has no gap.
    assert cache.oldest_revision == START + 1
    assert [len(b.deltas) for b in cache.deltas_since(START + 1)] == [2]
    big = batch(START + 3, *(unit("a", n) for n in range(4, 9)))
    cache.apply(big)  # larger than the ring on its own: kept, alone
    assert [b.revision for b in cache.deltas_since(cache.oldest_revision)] == [START + 3]


async def test_subscribe_replays_then_goes_live_without_gap_or_duplicate(
    cache: ModelCache,
) -> None:
    revs = fill(cache, 5)
    replay, sub = cache.subscribe(since=revs[1])
    assert [b.revision for b in replay] == revs[2:]
    more = fill(cache, 3, first=revs[-1] + 1)
    seen = [b.revision for b in replay]
    with anyio.fail_after(1):
        for _ in more:
            seen.append((await sub.next()).revision)
    assert seen == revs[2:] + more
    assert sub.queued() == 0  # nothing more queued
    sub.close()
    assert cache.statistics().feeds == 0


async def test_subscribe_too_old_is_out_of_range() -> None:
    cache = ModelCache(ring_size=2)
    cache.load([app("c")], [], [], 0, START)
    fill(cache, 5)
    with pytest.raises(RevisionTooOld):
        cache.subscribe(since=START)
    assert cache.statistics().feeds == 0


async def test_subscribe_filters_by_kind_and_application(cache: ModelCache) -> None:
    _, units_c = cache.subscribe(kinds=[Kind.UNIT], applications=["c"])
    _, apps_only = cache.subscribe(kinds=[Kind.APPLICATION])
    _, of_a = cache.subscribe(applications=["a"])
    _, everything = cache.subscribe()
    cache.apply(batch(START + 1, app("c", version=2, k=3), unit("c", 2)))
    cache.apply(batch(START + 2, unit("a", 3), branch("b2", a={"s": "q"})))
    cache.apply(batch(START + 3, generation(3, a={"s": {"to": "q"}})))
    cache.apply(batch(START + 4, branch("b3", c={"k": 2})))

    async def drain(sub: Any) -> list[tuple[int, list[tuple[str, str]]]]:
        out = []
        while sub.queued():
            with anyio.fail_after(1):
                b = await sub.next()
            out.append((b.revision, [(d.kind.value, d.key) for d in b.deltas]))
        return out

    assert await drain(units_c) == [(START + 1, [("unit", "c/2")])]
    assert await drain(apps_only) == [(START + 1, [("application", "c")])]
    assert await drain(of_a) == [
        (START + 2, [("unit", "a/3"), ("branch", "b2")]),
        (START + 3, [("generation", "3")]),
    ]
    assert len(await drain(everything)) == 4


async def test_feed_subscriber_that_falls_behind_gets_feed_overflow(cache: ModelCache) -> None:
    _, slow = cache.subscribe(buffer=2)
    _, fast = cache.subscribe(buffer=2)
    revs = fill(cache, 2)
    with anyio.fail_after(1):
        assert [(await fast.next()).revision for _ in revs] == revs
    fill(cache, 1, first=revs[-1] + 1)  # the third batch does not fit in slow's buffer
    with anyio.fail_after(1):
        assert [(await slow.next()).revision for _ in revs] == revs
        with pytest.raises(FeedOverflow, match="feed_buffer=2") as caught:
            await slow.next()
        assert caught.value.buffer == 2
        assert (await fast.next()).revision == revs[-1] + 1  # the others go on
    assert slow.overflowed and not fast.overflowed
    stats = cache.statistics()
    assert (stats.feed_overflows, stats.feeds) == (1, 1)  # slow is no longer fed


async def test_feed_buffer_defaults_to_the_caches_and_must_hold_a_batch() -> None:
    cache = ModelCache(feed_buffer=4)
    cache.load([], [], [], 0, START)
    _, feed = cache.subscribe()
    assert feed.buffer == 4
    assert cache.subscribe(buffer=1)[1].buffer == 1
    for bad in (0, -1):
        with pytest.raises(ValueError, match="at least one batch"):
            cache.subscribe(buffer=bad)


# -- memory follows bytes, not counts ------------------------------------------------


def sized(record: Record, revision: int, size: int) -> Delta:
    """An upsert delta with the size the multiwatcher would have measured."""
    d = up(record, revision)
    return Delta(d.kind, d.key, d.revision, d.value, None, size)


def fill_sized(cache: ModelCache, sizes: list[int], first: int = START + 1) -> list[int]:
    """One single-delta batch changing c's master per size; their revisions."""
    revisions = []
    for i, size in enumerate(sizes):
        rev = first + i
        cache.apply(Batch(rev, (sized(app("c", version=2 + i, k=rev), rev, size),)))
        revisions.append(rev)
    return revisions


async def test_ring_drops_the_oldest_by_bytes_and_refuses_resume_before_them() -> None:
    cache = ModelCache(ring_size=1_000, ring_bytes=1_000)
    cache.load([app("c")], [], [], 0, START)
    revs = fill_sized(cache, [300, 300, 300])
    assert cache.statistics().ring_bytes == 900
    assert cache.oldest_revision == START  # all three fit
    more = fill_sized(cache, [300, 450], first=revs[-1] + 1)
    # 900 + 300 + 450 = 1,650 > 1,000: the three oldest go, oldest first.
    stats = cache.statistics()
    assert (stats.ring_size, stats.ring_bytes) == (2, 750)
    assert cache.oldest_revision == revs[-1]
    assert [b.revision for b in cache.deltas_since(cache.oldest_revision)] == more
    with pytest.raises(RevisionTooOld):
        cache.deltas_since(revs[-2])
    with pytest.raises(RevisionTooOld):
        cache.subscribe(since=revs[0])
    # Counts still bound it too: whichever limit is reached first.
    by_count = ModelCache(ring_size=2, ring_bytes=10**9)
    by_count.load([app("c")], [], [], 0, START)
    fill_sized(by_count, [10, 10, 10])
    assert by_count.statistics().ring_size == 2


async def test_a_batch_larger_than_the_byte_budget_is_not_kept() -> None:
    cache = ModelCache(ring_bytes=1_000)
    cache.load([app("c")], [], [], 0, START)
    small, big = fill_sized(cache, [100, 5_000])
    stats = cache.statistics()
    assert (stats.ring_size, stats.ring_bytes) == (0, 0)
    assert cache.oldest_revision == big
    assert cache.deltas_since(big) == []  # resuming from the newest revision still works
    with pytest.raises(RevisionTooOld):
        cache.deltas_since(small)


async def test_deltas_without_a_size_are_estimated_once_from_their_value() -> None:
    small, large = app("c", k=1), app("c", s="x" * 100_000)
    assert 0 < up(small, 1).bytes < 1_000
    assert 100_000 < up(large, 1).bytes < 101_000
    cache = ModelCache(ring_bytes=150_000)
    cache.load([app("c")], [], [], 0, START)
    cache.apply(batch(START + 1, large))
    cache.apply(batch(START + 2, app("c", version=3, s="y" * 100_000)))
    assert cache.statistics().ring_size == 1  # two ~100 kB deltas pass 150 kB
    assert cache.oldest_revision == START + 1


def test_plain_bytes_is_close_to_the_bson_size() -> None:
    """The multiwatcher's cheap estimate of decoded documents against BSON itself."""
    docs: list[dict[str, Any]] = [
        {"port": 8080, "name": "web", "ratio": 0.5, "on": True, "none": None},
        {f"key-{i}": "v" * (i * 37 % 500) for i in range(300)},
        {"deep": {"a": [1, 2, {"b": ["x" * 1000, {"c": "y"}]}], "d": {"e": {"f": 1}}}},
        {"blob": "z" * 3_000_000},
    ]
    for doc in docs:
        actual = len(bson.encode(doc))
        assert 0.7 * actual <= plain_bytes(doc) <= 1.3 * actual + 64, (actual, plain_bytes(doc))
        assert 0.7 * actual <= estimate_bytes(doc) <= 1.3 * actual + 64


async def test_the_ring_keeps_no_previous_state_and_a_slim_one_for_removals(
    cache: ModelCache,
) -> None:
    """An update keeps only its new value (the feed never sends the old one); a
    removal keeps what feed filters need, not the removed object's settings."""
    cache.apply(batch(START + 1, app("c", version=2, big="x" * 10_000)))
    cache.apply(batch(START + 2, rm(Kind.APPLICATION, "c", START + 2)))
    cache.apply(batch(START + 3, rm(Kind.BRANCH, "b", START + 3)))
    update, removal, branch_removal = (b.deltas[0] for b in cache.deltas_since(START))
    assert update.previous is None
    assert isinstance(removal.previous, Application) and removal.previous.settings == {}
    assert removal.application == "c"
    assert isinstance(branch_removal.previous, Branch)
    assert set(branch_removal.previous.changes) == {"a"}
    assert all(not changes for changes in branch_removal.previous.changes.values())
    # Filters still place removals by application, replayed or live.
    replay, _ = cache.subscribe(since=START, applications=["a"])
    assert [(b.revision, [d.key for d in b.deltas]) for b in replay] == [(START + 3, ["b"])]
    replay_c, _ = cache.subscribe(since=START, applications=["c"])
    assert [b.revision for b in replay_c] == [START + 1, START + 2]


async def test_feed_whose_queued_bytes_pass_its_budget_is_closed_like_an_overflow() -> None:
    cache = ModelCache(feed_bytes=1_000)
    cache.load([app("c")], [], [], 0, START)
    _, slow = cache.subscribe()
    _, small_budget = cache.subscribe(max_bytes=500)
    _, roomy = cache.subscribe(max_bytes=10_000)
    assert slow.max_bytes == 1_000
    revs = fill_sized(cache, [400, 400])
    assert slow.queued_bytes == 800 and not slow.overflowed
    assert small_budget.overflowed  # 400 queued + 400 > 500
    more = fill_sized(cache, [400], first=revs[-1] + 1)  # 1,200 > 1,000
    assert slow.overflowed and slow.overflowed_bytes and not roomy.overflowed
    with anyio.fail_after(1):
        assert [(await slow.next()).revision for _ in revs] == revs  # what it holds
        with pytest.raises(FeedOverflow, match="feed_bytes=1000 bytes") as caught:
            await slow.next()
        assert caught.value.max_bytes == 1_000
        assert [(await roomy.next()).revision for _ in range(3)] == revs + more
    assert roomy.queued_bytes == 0
    stats = cache.statistics()
    assert (stats.feed_overflows, stats.feeds) == (2, 1)
    with pytest.raises(ValueError, match="byte budget"):
        cache.subscribe(max_bytes=0)


async def test_an_empty_feed_takes_one_batch_larger_than_its_budget() -> None:
    """A reader that keeps up is never cut off by one large change."""
    cache = ModelCache(feed_bytes=1_000)
    cache.load([app("c")], [], [], 0, START)
    _, feed = cache.subscribe()
    (rev,) = fill_sized(cache, [50_000])
    with anyio.fail_after(1):
        assert (await feed.next()).revision == rev
    (rev2,) = fill_sized(cache, [50_000], first=rev + 1)
    assert not feed.overflowed
    with anyio.fail_after(1):
        assert (await feed.next()).revision == rev2


async def test_a_small_resync_reaches_feeds_as_one_ordinary_batch(cache: ModelCache) -> None:
    _, feed = cache.subscribe()
    _, units, branches = fixture_model()
    diff = cache.diff_snapshot([app("a"), app("c", version=2, k=3)], units, branches, [], 500)
    cache.apply_resync(diff)
    assert cache.statistics().resyncs == 1
    with anyio.fail_after(1):
        got = await feed.next()
    assert got.revision == 500 and [(d.kind, d.key) for d in got.deltas] == [
        (Kind.APPLICATION, "c")
    ]
    assert [b.revision for b in cache.deltas_since(START)] == [500]


async def test_a_resync_too_large_for_one_batch_ends_feeds_out_of_range() -> None:
    """Split, its batches would claim states that never existed (a reader resuming
    from one would skip deltas); so the ring restarts at the reload's revision and
    each feed ends OUT_OF_RANGE once it has read what it holds: take a new Snapshot."""
    cache = ModelCache(resync_feed_bytes=10_000)
    apps, units, branches = fixture_model()
    cache.load(apps, units, branches, 0, START)
    before = fill_sized(cache, [100])
    _, feed = cache.subscribe()
    queued = fill_sized(cache, [100], first=before[-1] + 1)
    watch = cache.watch("c/0")
    fresh = [app("a"), app("c", version=9, k=7, blob="x" * 20_000)]
    cache.apply_resync(cache.diff_snapshot(fresh, units, branches, [], 500))
    assert cache.revision == 500 and config_of(cache, "c/0")["k"] == 7
    assert (await take(watch)).config["k"] == 7  # watchers get the reload as usual
    with anyio.fail_after(1):
        assert (await feed.next()).revision == queued[0]
        with pytest.raises(RevisionTooOld, match="new Snapshot"):
            await feed.next()
    stats = cache.statistics()
    assert (stats.resyncs, stats.feeds_ended_by_resync, stats.ring_size) == (1, 1, 0)
    assert cache.oldest_revision == 500
    with pytest.raises(RevisionTooOld):
        cache.subscribe(since=queued[0])
    replay, live = cache.subscribe(since=500)  # from the reload on, feeds work again
    assert replay == []
    (after,) = fill_sized(cache, [100], first=501)
    with anyio.fail_after(1):
        assert (await live.next()).revision == after


# -- read-your-writes -----------------------------------------------------------------


def recording_waiter(cache: ModelCache, woke: list[int]) -> Callable[[int], Awaitable[None]]:
    """A task that waits for ``revision`` in ``cache``, then appends it to ``woke``."""

    async def waiter(revision: int) -> None:
        await cache.wait_for(revision)
        woke.append(revision)

    return waiter


async def test_wait_for_wakes_on_advance_in_revision_order(cache: ModelCache) -> None:
    woke: list[int] = []
    waiter = recording_waiter(cache, woke)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for rev in (START + 30, START + 10, START + 20):
                tg.start_soon(waiter, rev)
            await anyio.wait_all_tasks_blocked()
            assert len(cache._waiters) == 3
            cache.advance(START + 9)
            await anyio.wait_all_tasks_blocked()
            assert woke == []
            cache.advance(START + 20)
            await anyio.wait_all_tasks_blocked()
            assert woke == [START + 10, START + 20]
            cache.apply(batch(START + 30, app("c", version=2, k=9)))
    assert woke == [START + 10, START + 20, START + 30]
    assert len(cache._waiters) == 0
    await cache.wait_for(START + 30)  # already there: returns at once


async def test_cancelled_wait_for_leaves_no_waiter(cache: ModelCache) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(cache.wait_for, START + 50)
        tg.start_soon(cache.wait_for, START + 60)
        await anyio.wait_all_tasks_blocked()
        assert len(cache._waiters) == 2
        tg.cancel_scope.cancel()
    assert len(cache._waiters) == 0
    with anyio.move_on_after(0.01):  # the timeout is the cancellation under test
        await cache.wait_for(START + 70)
    assert len(cache._waiters) == 0
    cache.advance(START + 100)  # nothing stale to pop
    assert cache.revision == START + 100


async def test_load_wakes_waiters_it_satisfies() -> None:
    cache = ModelCache()
    woke: list[int] = []
    waiter = recording_waiter(cache, woke)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter, START)
            tg.start_soon(cache.wait_synced)
            await anyio.wait_all_tasks_blocked()
            cache.load([app("a")], [unit("a", 0)], [], 0, START)
    assert woke == [START]


# -- resync -----------------------------------------------------------------------------


async def test_diff_snapshot_emits_exactly_the_differing_objects(cache: ModelCache) -> None:
    apps, units, branches = fixture_model()
    unchanged = cache.diff_snapshot(apps, units, branches, [generation(1), generation(2)], 500)
    assert unchanged == Batch(500, ())

    fresh_apps = [app("a"), app("c", version=2, k=4), app("d")]
    fresh_units = [
        unit("a", 0),
        unit("a", 2, "b"),  # a/1 is gone
        unit("c", 0, "b2"),  # moved to a new branch
        unit("c", 1, "b"),
        unit("d", 0),
    ]
    fresh_branches = [branch("b", a={"k": 11}), branch("b2", c={"s": "w"})]
    gens = [generation(g) for g in (1, 2, 3, 4)]
    diff = cache.diff_snapshot(fresh_apps, fresh_units, fresh_branches, gens, 500)
    assert diff.revision == 500
    assert all(d.revision == 500 for d in diff.deltas)
    assert {(d.kind.value, d.key, d.removed) for d in diff.deltas} == {
        ("application", "c", False),
        ("application", "d", False),
        ("unit", "a/1", True),
        ("unit", "c/0", False),
        ("unit", "d/0", False),
        ("branch", "b", False),
        ("branch", "b2", False),
        ("generation", "3", False),
        ("generation", "4", False),
    }

    watches = {n: cache.watch(n) for n in ("a/0", "a/1", "a/2", "c/0", "c/1")}
    cache.apply(diff)
    assert (await take(watches["a/2"])).config == {"k": 11, "s": "x"}
    assert (await take(watches["c/0"])).config == {"k": 4, "s": "w"}
    assert (await take(watches["c/1"])).config == {"k": 4, "s": "x"}
    assert not watches["a/0"].pending
    with pytest.raises(WatchClosed), anyio.fail_after(1):
        await watches["a/1"].next()
    assert cache.last_generation == 4
    # Applying the snapshot makes the cache equal to it.
    again = cache.diff_snapshot(fresh_apps, fresh_units, fresh_branches, gens, 501)
    assert again.deltas == ()


async def test_cache_matches_recomputation_after_random_batches() -> None:
    """Every unit's memoized config equals a from-scratch computation, batch after batch."""
    rng = random.Random(7)
    cache = ModelCache()
    apps_ = {n: app(n) for n in ("a", "c")}
    units_ = {u.name: u for u in (unit("a", n) for n in range(4))}
    units_ |= {u.name: u for u in (unit("c", n) for n in range(3))}
    branches_: dict[str, Branch] = {}
    cache.load(apps_.values(), units_.values(), [], 0, START)
    watches = {n: cache.watch(n) for n in units_}
    last_seen = {n: cache.config(n).hash for n in units_}
    rev = itertools.count(START + 1)
    for _ in range(400):
        deltas: list[Delta] = []
        r = next(rev)
        for _ in range(rng.randint(1, 3)):
            choice = rng.random()
            if choice < 0.3:
                name = rng.choice(sorted(apps_))
                old = apps_[name]
                key = rng.choice("ks")
                settings = dict(old.settings)
                if rng.random() < 0.3:
                    settings.pop(key, None)
                else:
                    settings[key] = rng.randint(1, 3) if key == "k" else rng.choice("xy")
                apps_[name] = app(name, old.version + 1, **settings)
                deltas.append(up(apps_[name], r))
            elif choice < 0.6:
                name = rng.choice(sorted(units_))
                u = units_[name]
                target = rng.choice([None, *sorted(branches_)])
                units_[name] = Unit(
                    u.name, u.application, u.number, target, None, u.write_count + 1
                )
                deltas.append(up(units_[name], r))
            elif choice < 0.9 or not branches_:
                name = rng.choice(["b1", "b2"])
                changes = {
                    a: {
                        k: (rng.randint(1, 3) if k == "k" else rng.choice("xy"))
                        if rng.random() < 0.8
                        else None
                        for k in rng.sample("ks", rng.randint(0, 2))
                    }
                    for a in rng.sample(["a", "c"], rng.randint(0, 2))
                }
                branches_[name] = branch(name, **changes)
                deltas.append(up(branches_[name], r))
            else:
                name = rng.choice(sorted(branches_))
                del branches_[name]
                deltas.append(rm(Kind.BRANCH, name, r))
        cache.apply(Batch(r, tuple(deltas)))
        for name, u in units_.items():
            b = branches_.get(u.branch) if u.branch else None
            a = apps_[u.application]
            changes = b.changes.get(u.application) if b else None
            expected = config.effective_config(SCHEMA, a.settings, changes)
            assert cache.config(name).config == expected, name
            h = values.config_hash(expected)
            w = watches[name]
            if h != last_seen[name]:
                assert (await take(w)).hash == h
                last_seen[name] = h
            assert not w.pending
