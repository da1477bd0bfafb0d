"""Branch changes, the effective config, conflicts, inverse changes and key history
(`genconf.domain.config`)."""

from __future__ import annotations

from typing import Any

import pytest
from domain_strategies import (
    PROPERTY,
    branch_edits,
    config_keys,
    masters,
    same,
    scalars,
    schemas,
    values_for,
)
from hypothesis import given
from hypothesis import strategies as st

from genconf.domain.config import (
    Change,
    Op,
    apply_changes,
    effective_config,
    find_conflicts,
    inverse_changes,
    key_history,
    touch,
)
from genconf.domain.schema import (
    OptionSpec,
    ValueType,
    parse_schema,
)
from genconf.domain.values import ABSENT, config_hash, values_equal
from genconf.errors import Conflict, ConflictedKey

# ---------------------------------------------------------------------------
# Branch changes and effective config: the seed scenario

SEED_SCHEMA = parse_schema({"k": {"type": "int", "default": 1}})
SEED_MASTER = {"k": 5}


def test_seed_branch_set_is_effective() -> None:
    changes = {"k": touch(None, SEED_MASTER.get("k", ABSENT), Op.SET, 7)}
    assert changes["k"] == Change(Op.SET, 7, 5)
    assert effective_config(SEED_SCHEMA, SEED_MASTER, changes) == {"k": 7}


def test_seed_branch_unset_restores_the_default_not_master() -> None:
    existing = touch(None, 5, Op.SET, 7)
    changes = {"k": touch(existing, master_value=5, op=Op.UNSET)}
    assert changes["k"] == Change(Op.UNSET, ABSENT, 5)
    assert effective_config(SEED_SCHEMA, SEED_MASTER, changes) == {"k": 1}


def test_seed_unit_without_changes_sees_master() -> None:
    assert effective_config(SEED_SCHEMA, SEED_MASTER) == {"k": 5}
    assert effective_config(SEED_SCHEMA, SEED_MASTER, {}) == {"k": 5}


def test_seed_from_is_kept_across_later_touches() -> None:
    first = touch(None, 5, Op.SET, 7)
    second = touch(first, 9, Op.SET, 8)
    third = touch(second, 11, Op.UNSET)
    fourth = touch(third, ABSENT, Op.SET, 2)
    assert [c.from_ for c in (first, second, third, fourth)] == [5, 5, 5, 5]
    assert second.value == 8
    assert third.value is ABSENT
    assert fourth.value == 2


def test_unset_without_default_removes_the_key() -> None:
    schema = parse_schema({"k": {"type": "int"}})
    assert effective_config(schema, {"k": 5}, {"k": touch(None, 5, Op.UNSET)}) == {}


def test_effective_config_ignores_keys_outside_the_schema() -> None:
    changes = {"gone": touch(None, ABSENT, Op.SET, 1)}
    assert effective_config(SEED_SCHEMA, {"stale": 3}, changes) == {"k": 1}


def test_apply_changes_set_and_unset() -> None:
    changes = {"a": Change(Op.SET, 2, 1), "b": Change(Op.UNSET, ABSENT, 3)}
    assert apply_changes({"a": 1, "b": 3, "c": 4}, changes) == {"a": 2, "c": 4}


@pytest.mark.parametrize(
    "change", [Change(Op.SET, 7, 5), Change(Op.UNSET, ABSENT, 5), Change(Op.SET, {"a": 1})]
)
def test_change_doc_round_trip(change: Change) -> None:
    assert Change.from_doc(change.to_doc()) == change


# ---------------------------------------------------------------------------
# find_conflicts


def test_no_conflict_when_master_is_still_from() -> None:
    assert find_conflicts("web", {"k": 5}, {"k": Change(Op.SET, 7, 5)}) == []


def test_conflict_when_master_moved() -> None:
    conflicts = find_conflicts("web", {"k": 6}, {"k": Change(Op.SET, 7, 5)})
    assert conflicts == [ConflictedKey("web", "k", expected=5, current=6, proposed=7)]


def test_conflict_on_unset_proposes_absent() -> None:
    conflicts = find_conflicts("web", {"k": 6}, {"k": Change(Op.UNSET, ABSENT, 5)})
    assert conflicts == [ConflictedKey("web", "k", 5, 6, ABSENT)]


@pytest.mark.parametrize(
    ("master", "change"),
    [
        ({"k": 7}, Change(Op.SET, 7, 5)),
        ({}, Change(Op.UNSET, ABSENT, 5)),
    ],
)
def test_no_conflict_when_master_moved_to_the_branch_target(
    master: dict[str, Any], change: Change
) -> None:
    assert find_conflicts("web", master, {"k": change}) == []


def test_absent_from_and_still_absent_is_no_conflict() -> None:
    assert find_conflicts("web", {}, {"k": touch(None, ABSENT, Op.SET, 3)}) == []


def test_absent_from_but_someone_set_it_meanwhile_is_a_conflict() -> None:
    change = touch(None, ABSENT, Op.SET, 3)
    assert find_conflicts("web", {"k": 4}, {"k": change}) == [
        ConflictedKey("web", "k", ABSENT, 4, 3)
    ]


def test_master_unset_meanwhile_is_a_conflict() -> None:
    assert find_conflicts("web", {}, {"k": Change(Op.SET, 7, 5)}) == [
        ConflictedKey("web", "k", 5, ABSENT, 7)
    ]


def test_conflict_compares_json_types() -> None:
    # master holding 1.0 is not the branch's from 1 (nor true)
    assert len(find_conflicts("web", {"k": 1.0}, {"k": Change(Op.SET, 2, 1)})) == 1
    assert len(find_conflicts("web", {"k": True}, {"k": Change(Op.SET, 2, 1)})) == 1


def test_conflicts_list_every_key_sorted() -> None:
    changes = {
        "b": Change(Op.SET, 1, 0),
        "a": Change(Op.SET, 1, 0),
        "c": Change(Op.SET, 1, 9),
    }
    conflicts = find_conflicts("web", {"a": 5, "b": 5, "c": 9}, changes)
    assert [c.key for c in conflicts] == ["a", "b"]


def test_conflict_message_names_key_from_master_and_branch_value() -> None:
    err = Conflict(
        "branch 'b1'",
        [ConflictedKey("web", "port", 80, 81, 8080), ConflictedKey("db", "x", ABSENT, "y", ABSENT)],
    )
    assert "2 key(s)" in err.message
    assert "web.port (from 80, master now 81, branch 'b1' wants 8080)" in err.message
    assert "db.x (from absent, master now \"y\", branch 'b1' wants absent)" in err.message
    assert "force" in err.message
    assert err.keys[0].key == "port"


@PROPERTY
@given(st.data())
def test_prop_commit_of_conflict_free_branch_keeps_tracking_units_config(
    data: st.DataObject,
) -> None:
    schema = data.draw(schemas)
    master = data.draw(masters(schema))
    master["stale-key-not-in-schema"] = 1  # e.g. left behind by a schema change
    changes = data.draw(branch_edits(schema, master))
    assert find_conflicts("app", master, changes) == []
    before = effective_config(schema, master, changes)
    after = effective_config(schema, apply_changes(master, changes))
    assert same(after, before)
    assert config_hash(after) == config_hash(before)


@PROPERTY
@given(st.data())
def test_prop_effective_config_only_has_schema_keys(data: st.DataObject) -> None:
    schema = data.draw(schemas)
    master = data.draw(masters(schema))
    master.update(data.draw(st.dictionaries(config_keys, scalars, max_size=3)))
    changes = data.draw(branch_edits(schema, master))
    changes.update(
        {
            k: Change(Op.SET, 1)
            for k in data.draw(st.lists(config_keys, max_size=3))
            if k not in schema
        }
    )
    config = effective_config(schema, master, changes)
    assert set(config) <= set(schema)
    for key, spec in schema.items():
        if spec.default is not ABSENT:
            assert key in config  # a key with a default is never missing


@PROPERTY
@given(st.data())
def test_prop_set_then_unset_on_a_branch_gives_the_default(data: st.DataObject) -> None:
    schema = data.draw(schemas.filter(bool))
    master = data.draw(masters(schema))
    key = data.draw(st.sampled_from(sorted(schema)))
    current = master.get(key, ABSENT)
    set_once = touch(None, current, Op.SET, data.draw(values_for(key, schema[key])))
    changes = {key: touch(set_once, current, Op.UNSET)}
    config = effective_config(schema, master, changes)
    default = schema[key].default
    if default is ABSENT:
        assert key not in config
    else:
        assert same(config[key], default)
    assert changes[key].from_ is current


# -- history: inverse of a generation, per-key history ----------------------------------

SMALL_VALUES = st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b"]))
SMALL_SETTINGS = st.dictionaries(st.sampled_from(["p", "q", "r"]), SMALL_VALUES, max_size=3)


def generation_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What a generation records: ``{key: {from?, to?}}`` for each key that changed."""
    out: dict[str, dict[str, Any]] = {}
    for key in set(old) | set(new):
        if values_equal(old.get(key, ABSENT), new.get(key, ABSENT)):
            continue
        entry = {}
        if key in old:
            entry["from"] = old[key]
        if key in new:
            entry["to"] = new[key]
        out[key] = entry
    return out


@PROPERTY
@given(SMALL_SETTINGS, SMALL_SETTINGS)
def test_inverse_changes_undo_a_generation_without_conflicts(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    inverse = inverse_changes(generation_changes(old, new))
    assert find_conflicts("app", new, inverse) == []
    assert apply_changes(new, inverse) == old


@PROPERTY
@given(SMALL_SETTINGS, SMALL_SETTINGS, SMALL_SETTINGS)
def test_inverse_changes_conflict_exactly_on_keys_moved_since(
    old: dict[str, Any], new: dict[str, Any], later: dict[str, Any]
) -> None:
    changes = generation_changes(old, new)
    conflicts = find_conflicts("app", later, inverse_changes(changes))
    moved = {
        key
        for key, ft in changes.items()
        if not values_equal(later.get(key, ABSENT), ft.get("to", ABSENT))
        and not values_equal(later.get(key, ABSENT), ft.get("from", ABSENT))
    }
    assert {c.key for c in conflicts} == moved


def test_inverse_of_an_added_key_is_an_unset() -> None:
    inverse = inverse_changes({"k": {"to": 5}, "s": {"from": "x"}})
    assert inverse == {"k": Change(Op.UNSET, ABSENT, 5), "s": Change(Op.SET, "x", ABSENT)}


@PROPERTY
@given(st.lists(SMALL_SETTINGS, min_size=1, max_size=8), st.none() | SMALL_VALUES)
def test_key_history_lists_exactly_the_versions_where_the_value_changed(
    settings_seq: list[dict[str, Any]], default: Any
) -> None:
    spec = OptionSpec(ValueType.STRING, ABSENT if default is None else default)
    versions = list(enumerate(settings_seq, start=1))
    rows = key_history(spec, versions, "p")

    def value(settings: dict[str, Any]) -> Any:
        return settings.get("p", spec.default)

    changed = [1] + [
        n
        for n in range(2, len(settings_seq) + 1)
        if not values_equal(value(settings_seq[n - 1]), value(settings_seq[n - 2]))
    ]
    assert [r.version for r in rows] == changed
    for row in rows:
        assert values_equal(row.value, value(settings_seq[row.version - 1]))
        assert row.is_default == ("p" not in settings_seq[row.version - 1])


def test_key_history_change_back_to_default_counts_but_explicit_default_does_not() -> None:
    spec = OptionSpec(ValueType.INT, 80)
    versions = [(1, {}), (2, {"p": 8080}), (3, {}), (4, {"p": 80}), (5, {"q": 1})]
    rows = key_history(spec, versions, "p")
    assert [(r.version, r.value, r.is_default) for r in rows] == [
        (1, 80, True),
        (2, 8080, False),
        (3, 80, True),
    ]
