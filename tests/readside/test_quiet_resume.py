"""Resuming a quiet config watch needs no bookmark (pure, no I/O).

A watch's config carries the revision of the batch that offered it. An agent
resumes with that revision as ``min_revision``: whichever replica it reaches has
applied at least that batch, perhaps more. The claim that makes periodic bookmarks
unnecessary: a replica at ANY revision from that one up to the unit's next offer
holds the same config, so resuming from a revision that lagged the model for any
number of unrelated writes hands back exactly what the agent has, never older.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from model_builders import START, app, batch, branch, fixture_model, unit

from genconf.domain.deltas import Batch
from genconf.readside.cache import ModelCache

WATCHED = ("a/0", "a/2", "c/0")

# One write per step: master of a or c, a unit moving on or off branch b, or b's value.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("master"), st.sampled_from(("a", "c")), st.integers(0, 3)),
        st.tuples(st.just("track"), st.sampled_from(("a/0", "a/1", "c/0")), st.booleans()),
        st.tuples(st.just("branch"), st.just("b"), st.integers(0, 3)),
    ),
    min_size=1,
    max_size=30,
)


def _batches(ops: list[tuple[str, str, Any]]) -> list[Batch]:
    versions = {"a": 1, "c": 1}
    out: list[Batch] = []
    for i, (op, name, arg) in enumerate(ops, start=1):
        revision = START + i
        if op == "master":
            versions[name] += 1
            out.append(batch(revision, app(name, versions[name], k=arg)))
        elif op == "track":
            application, number = name.split("/")
            out.append(batch(revision, unit(application, int(number), "b" if arg else None)))
        else:
            out.append(batch(revision, branch(name, a={"k": 10 + arg}, c={"k": 20 + arg})))
    return out


def _replica(batches: list[Batch], upto: int) -> ModelCache:
    """A replica that has applied the batches up to revision ``upto``."""
    cache = ModelCache()
    cache.load(*fixture_model(), 0, START)
    for b in batches:
        if b.revision <= upto:
            cache.apply(b)
    return cache


@settings(max_examples=60, deadline=None)
@given(steps)
async def test_any_replica_at_or_past_a_config_s_revision_holds_that_config(
    ops: list[tuple[str, str, Any]],
) -> None:
    batches = _batches(ops)
    cache = ModelCache()
    cache.load(*fixture_model(), 0, START)
    watches = {u: cache.watch(u) for u in WATCHED}
    # What each agent holds after each revision: (hash, the revision it resumes from).
    held = {u: (cache.config(u).hash, START) for u in WATCHED}
    timeline: dict[str, list[tuple[int, str, int]]] = {u: [] for u in WATCHED}
    for b in batches:
        cache.apply(b)
        for u, watch in watches.items():
            if watch.pending:
                effective = await watch.next()
                held[u] = (effective.hash, watch.revision)
                assert watch.revision == b.revision, "a config carries its batch's revision"
            timeline[u].append((b.revision, *held[u]))
    last = batches[-1].revision
    for u, points in timeline.items():
        for _at, hash_, resume_from in points:
            # Every replica the agent could reach when resuming from there: one at the
            # resume revision, and every one that has applied more since.
            for upto in range(resume_from, last + 1):
                newer = [h for r, h, f in points if f <= upto and r <= upto]
                expected = newer[-1] if newer else hash_
                assert _replica(batches, upto).config(u).hash == expected, (u, upto)
