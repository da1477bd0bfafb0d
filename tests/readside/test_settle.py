"""Configs settled once per run of batches (`ModelCache.settle`; no I/O).

The multiwatcher applies the transactions of a change-stream batch back to back
with ``apply(batch, settle=False)`` and settles before it awaits anything: each
watched unit is offered at most one config per run, the one at the run's last
revision, and none when its hash ended where it started. Reads, waiters and the
admin feed see every batch at once.

The fixture model, loaded at revision `START`:

    application a: units a/0, a/1 (master) and a/2 (tracks branch b)
    application c: units c/0 (master) and c/1 (tracks branch b)
    branch b:      a.k = 10 (from master's absent)
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from model_builders import START, app, batch, branch, fixture_model, rm, unit

from genconf.domain.deltas import Batch, Kind
from genconf.errors import WatchClosed
from genconf.readside.cache import ModelCache
from genconf.readside.watch import ConfigWatch

UNITS = ("a/0", "a/1", "a/2", "c/0", "c/1")


@pytest.fixture
async def cache() -> ModelCache:
    c = ModelCache()
    apps, units, branches = fixture_model()
    c.load(apps, units, branches, last_generation=2, revision=START)
    return c


async def offered(watches: dict[str, ConfigWatch]) -> dict[str, tuple[int, int]]:
    """Per watch with an update pending: (its config's k, the revision it carries)."""
    out: dict[str, tuple[int, int]] = {}
    for name, w in watches.items():
        if w.pending:
            with anyio.fail_after(1):
                effective = await w.next()
            out[name] = (effective.config["k"], w.revision)
    return out


async def test_a_run_offers_each_unit_once_at_its_last_revision(cache: ModelCache) -> None:
    watches = {u: cache.watch(u) for u in UNITS}
    _, feed = cache.subscribe()
    run = [
        batch(START + 1, app("a", 2, k=2)),
        batch(START + 2, app("a", 3, k=3)),
        batch(START + 3, app("c", 2, k=7)),  # c: k 1 -> 7 -> 1 within the run
        batch(START + 4, app("c", 3, k=1)),
        batch(START + 5, branch("b", a={"k": 10}, c={"k": 1})),  # c/1 keeps k = 1
    ]
    for b in run:
        cache.apply(b, settle=False)
    # Reads, waiters and the feed have every batch; watches nothing yet.
    assert cache.revision == START + 5 and cache.config("a/0").config["k"] == 3
    assert await cache.wait_for(START + 5)
    assert feed.queued() == len(run)
    with anyio.fail_after(1):
        assert [(await feed.next()).revision for _ in run] == [b.revision for b in run]
    assert not any(w.pending for w in watches.values())

    cache.settle()

    # a/0 and a/1 once, at the run's last revision (a later batch than a's last
    # write); c's units went back to k = 1 and a/2 keeps its branch's k = 10.
    assert await offered(watches) == {"a/0": (3, START + 5), "a/1": (3, START + 5)}
    stats = cache.statistics()
    assert stats.notifications == 2 and stats.coalesced == 0
    cache.settle()  # nothing left of the run
    assert not any(w.pending for w in watches.values())


async def test_a_unit_changed_and_changed_back_in_a_run_is_not_offered(
    cache: ModelCache,
) -> None:
    watches = {u: cache.watch(u) for u in UNITS}
    cache.apply(batch(START + 1, unit("a", 0, "b")), settle=False)  # k 1 -> 10
    cache.apply(batch(START + 2, unit("a", 0)), settle=False)  # and back
    cache.apply(batch(START + 3, branch("b", a={"k": 11})), settle=False)
    assert cache.config("a/0").config["k"] == 1
    cache.settle()
    assert await offered(watches) == {"a/2": (11, START + 3)}
    # The same writes as runs of one batch each offer every change.
    cache.apply(batch(START + 4, unit("a", 0, "b")))
    assert await offered(watches) == {"a/0": (11, START + 4)}
    cache.apply(batch(START + 5, unit("a", 0)))
    assert await offered(watches) == {"a/0": (1, START + 5)}


async def test_a_removed_unit_s_watch_ends_at_once_not_at_settle(cache: ModelCache) -> None:
    gone, other = cache.watch("a/1"), cache.watch("a/0")
    cache.apply(batch(START + 1, rm(Kind.UNIT, "a/1", START + 1)), settle=False)
    with pytest.raises(WatchClosed) as info, anyio.fail_after(1):
        await gone.next()
    assert info.value.removed
    # Back within the same run: nothing owed to the ended watch, nor to a/0.
    cache.apply(batch(START + 2, unit("a", 1)), settle=False)
    cache.settle()
    assert not other.pending and cache.statistics().watchers == 1


async def test_a_watch_opened_mid_run_starts_at_the_run_s_end(cache: ModelCache) -> None:
    early = cache.watch("a/0")
    cache.apply(batch(START + 1, app("a", 2, k=2)), settle=False)
    late = cache.watch("a/0")  # settles first: the reader's first read sees k = 2
    assert await offered({"early": early, "late": late}) == {"early": (2, START + 1)}
    assert cache.config("a/0").config["k"] == 2
    cache.apply(batch(START + 2, app("a", 3)), settle=False)  # back to k = 1
    cache.settle()
    assert await offered({"early": early, "late": late}) == {
        "early": (1, START + 2),
        "late": (1, START + 2),
    }


# One write per step: master of a or c, a unit moving on or off branch b, or b's value;
# and whether the run ends after it.
steps = st.lists(
    st.tuples(
        st.one_of(
            st.tuples(st.just("master"), st.sampled_from(("a", "c")), st.integers(0, 2)),
            st.tuples(st.just("track"), st.sampled_from(("a/0", "a/1", "c/0")), st.booleans()),
            st.tuples(st.just("branch"), st.just("b"), st.integers(0, 2)),
        ),
        st.booleans(),
    ),
    min_size=1,
    max_size=30,
)


def _batch(revision: int, op: str, name: str, arg: Any, versions: dict[str, int]) -> Batch:
    if op == "master":
        versions[name] += 1
        return batch(revision, app(name, versions[name], k=arg))
    if op == "track":
        application, number = name.split("/")
        return batch(revision, unit(application, int(number), "b" if arg else None))
    return batch(revision, branch(name, a={"k": 10 + arg}, c={"k": 20 + arg}))


@settings(max_examples=60, deadline=None)
@given(steps)
async def test_a_settled_config_is_the_unit_s_config_at_the_revision_it_carries(
    ops: list[tuple[tuple[str, str, Any], bool]],
) -> None:
    """Resuming from the revision a run's config carries stays exact: a replica at
    that revision holds that config; and after every run each watch's reader holds
    the unit's current config, having been offered it at most once per run."""
    cache = ModelCache()
    cache.load(*fixture_model(), 0, START)
    replica = ModelCache()
    replica.load(*fixture_model(), 0, START)
    watches = {u: cache.watch(u) for u in ("a/0", "a/2", "c/0", "c/1")}
    held = {u: cache.config(u).hash for u in watches}
    versions = {"a": 1, "c": 1}
    at: dict[int, dict[str, str]] = {}  # per revision, the replica's hashes there
    for i, ((op, name, arg), run_ends) in enumerate(ops, start=1):
        b = _batch(START + i, op, name, arg, versions)
        cache.apply(b, settle=False)
        replica.apply(b)
        at[b.revision] = {u: replica.config(u).hash for u in watches}
        if not run_ends and i < len(ops):
            continue
        before = {u: w.delivered for u, w in watches.items()}
        cache.settle()
        for u, w in watches.items():
            if w.pending:
                effective = await w.next()
                assert w.revision == b.revision, "stamped with the run's last revision"
                assert effective.hash != held[u], "offered only when the hash changed"
                assert effective.hash == at[w.revision][u]
                held[u] = effective.hash
            assert w.delivered - before[u] <= 1
            assert held[u] == cache.config(u).hash == at[b.revision][u]
