"""The cache's synchronous state core (`genconf.readside.core`), table-driven.

No event loop and no mongod: `ModelState.apply` is a plain function of the state
and a batch, and returns what changed. The model is `model_builders`' fixture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import model_builders as build
import pytest
from model_builders import KINDS, START, app, branch, unit

from genconf.domain.deltas import Batch, Delta, Kind, Record
from genconf.domain.records import Application, Generation
from genconf.errors import NotFound
from genconf.readside.core import ModelState, retained


def up(record: Record) -> Delta:
    return build.up(record, START + 1)


def rm(kind: Kind, key: str) -> Delta:
    return build.rm(kind, key, START + 1)


def gen(gid: int) -> Generation:
    return build.generation(gid)


def loaded() -> ModelState:
    state = ModelState()
    state.load(*build.fixture_model(), last_generation=2)
    state.revision = START
    for name in state.units:
        state.config(name)  # memoized, as in a service whose agents read theirs
    return state


@dataclass(frozen=True)
class Case:
    name: str
    deltas: tuple[Delta, ...]
    changed: dict[str, dict[str, Any]]  # unit -> its new effective config
    removed: tuple[str, ...] = ()
    applications: frozenset[str] = frozenset()
    branches: frozenset[str] = frozenset()


CASES = [
    Case(
        "master setting: every unit of the app, the branch's override stays",
        (up(app("a", 2, k=5)),),
        {"a/0": {"k": 5, "s": "x"}, "a/1": {"k": 5, "s": "x"}},
        applications=frozenset({"a"}),
    ),
    Case(
        "master setting the branch does not override reaches its units too",
        (up(app("a", 2, s="y")),),
        {u: {"k": k, "s": "y"} for u, k in (("a/0", 1), ("a/1", 1), ("a/2", 10))},
        applications=frozenset({"a"}),
    ),
    Case(
        "same config inputs (only the charm): nothing",
        (up(app("a", charm="other")),),
        {},
        applications=frozenset({"a"}),
    ),
    Case(
        "branch change: only the units tracking it, of that application",
        (up(branch("b", a={"k": 11})),),
        {"a/2": {"k": 11, "s": "x"}},
        branches=frozenset({"b"}),
    ),
    Case(
        "branch change for another application",
        (up(branch("b", a={"k": 10}, c={"s": "z"})),),
        {"c/1": {"k": 1, "s": "z"}},
        branches=frozenset({"b"}),
    ),
    Case(
        "a unit moves onto the branch",
        (up(unit("a", 0, "b")),),
        {"a/0": {"k": 10, "s": "x"}},
    ),
    Case("a unit's report (same group): nothing", (up(unit("a", 1)),), {}),
    Case("a new unit", (up(unit("c", 7)),), {"c/7": {"k": 1, "s": "x"}}),
    Case("a removed unit", (rm(Kind.UNIT, "a/1"),), {}, removed=("a/1",)),
    Case(
        "a removed application: its units have no config left to send",
        (rm(Kind.APPLICATION, "c"),),
        {},
        applications=frozenset({"c"}),
    ),
    Case(
        "a removed branch: its units fall back to master",
        (rm(Kind.BRANCH, "b"),),
        {"a/2": {"k": 1, "s": "x"}},
        branches=frozenset({"b"}),
    ),
    Case("a generation: nothing", (up(gen(3)),), {}),
    Case(
        "one transaction, two changes to one unit: notified once, with the end state",
        (up(app("a", 2, k=5)), up(unit("a", 0, "b"))),
        {"a/0": {"k": 10, "s": "x"}, "a/1": {"k": 5, "s": "x"}},
        applications=frozenset({"a"}),
    ),
    Case(
        "a change undone in the same transaction: nothing",
        (up(app("a", 2, k=5)), up(app("a"))),
        {},
        applications=frozenset({"a"}),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_apply_returns_what_changed(case: Case) -> None:
    state = loaded()
    changes = state.apply(Batch(START + 1, case.deltas))
    assert {u: dict(e.config) for u, e in changes.configs.items()} == case.changed
    assert changes.removed_units == case.removed
    assert changes.applications == case.applications
    assert changes.branches == case.branches
    assert [d.key for d in changes.deltas] == [d.key for d in case.deltas]
    assert state.revision == START + 1
    for name, config in case.changed.items():
        assert dict(state.config(name).config) == config


def test_an_application_change_keeps_the_other_groups() -> None:
    state = loaded()
    kept = {key: state.group(*key) for key in (("c", None), ("c", "b"))}
    recomputed = state.groups_recomputed
    state.apply(Batch(START + 1, (up(app("a", 2, k=5)),)))
    assert all(state.group(*key) is effective for key, effective in kept.items())
    # (a, None) and (a, b), once each, for the whole application.
    assert state.groups_recomputed == recomputed + 2


def test_a_branch_change_drops_only_that_branch_s_groups() -> None:
    state = loaded()
    state.apply(Batch(START + 1, (up(branch("other")),)))
    master = state.group("a", None)
    recomputed = state.groups_recomputed
    state.apply(Batch(START + 2, (up(branch("b", a={"k": 12})),)))
    assert state.group("a", None) is master
    assert state.groups_recomputed == recomputed + 2  # (a, b) and (c, b) only
    assert state.config("c/1").config["k"] == 1


def test_units_of_one_group_share_one_effective_config() -> None:
    state = loaded()
    assert state.config("a/0").effective is state.config("a/1").effective
    assert state.config("a/2").effective is not state.config("a/0").effective
    with pytest.raises(NotFound):
        state.config("a/9")


def test_master_config_is_memoized_for_the_current_application_only() -> None:
    state = loaded()
    current = state.applications["a"]
    assert state.master_config(current) is state.group("a", None).config  # type: ignore[union-attr]
    older = app("a", 0, k=3)
    assert dict(state.master_config(older)) == {"k": 3, "s": "x"}


def test_indexes_follow_units() -> None:
    state = loaded()
    state.apply(Batch(START + 1, (up(unit("a", 0, "b")), rm(Kind.UNIT, "c/1"))))
    assert [u.name for u in state.units_of("a")] == ["a/0", "a/1", "a/2"]
    assert [u.name for u in state.tracking("b")] == ["a/0", "a/2"]
    assert [u.name for u in state.units_of("c")] == ["c/0"]


def test_a_generation_moves_last_generation() -> None:
    state = loaded()
    state.apply(Batch(START + 1, (up(gen(7)),)))
    assert state.last_generation == 7


@pytest.mark.parametrize(
    ("previous", "kept"),
    [
        (app("a", k=5), Application("a", "a", {}, {}, 1, 10, 1)),
        (branch("b", a={"k": 1}), branch("b", a={})),
        (unit("a", 0), unit("a", 0)),
    ],
    ids=["application", "branch", "unit"],
)
def test_a_removal_keeps_a_slim_previous(previous: Record, kept: Record) -> None:
    removal = Delta(KINDS[type(previous)], "x", START, None)
    assert retained(removal, previous).previous == kept


def test_an_update_keeps_no_previous() -> None:
    update = up(app("a", k=2))
    assert retained(update, app("a")) is update


def test_diff_snapshot_lists_what_differs() -> None:
    state = loaded()
    diff = state.diff_snapshot(
        [app("a", 2, k=3), app("c")],
        [unit("a", 0), unit("a", 1), unit("a", 2, "b"), unit("c", 0)],
        [branch("b", a={"k": 10})],
        [gen(2), gen(3)],
        START + 5,
    )
    assert [(d.kind, d.key, d.removed) for d in diff.deltas] == [
        (Kind.APPLICATION, "a", False),
        (Kind.UNIT, "c/1", True),
        (Kind.GENERATION, "3", False),
    ]
    assert all(d.size > 0 for d in diff.deltas)
