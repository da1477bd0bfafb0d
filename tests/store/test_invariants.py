"""The invariant checker finds each kind of broken model (pure, over documents)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from genconf.store import invariants, limits

Model = dict[str, dict[str, dict[str, Any]]]


def sound() -> Model:
    schema = {"port": {"type": "int", "default": 80}, "level": {"type": "string"}}
    return {
        "apps": {
            "web": {"_id": "web", "schema": schema, "settings": {"port": 8080}, "next_unit": 2},
            "db": {"_id": "db", "schema": schema, "settings": {}, "next_unit": 1},
        },
        "units": {
            "web/0": {"_id": "web/0", "application": "web", "number": 0, "branch": "canary"},
            "web/1": {"_id": "web/1", "application": "web", "number": 1, "branch": "canary"},
            "db/0": {"_id": "db/0", "application": "db", "number": 0, "branch": None},
        },
        "branches": {
            "canary": {
                "_id": "canary",
                "track_applications": ["web"],
                "changes": {"web": {"level": {"op": "set", "value": "debug"}}},
            }
        },
    }


def check(m: Model) -> list[str]:
    return invariants.violations(m["apps"], m["units"], m["branches"])


def test_a_sound_model_has_no_violations() -> None:
    assert check(sound()) == []


BREAKS: list[tuple[str, Callable[[Model], None], str]] = [
    (
        "unit tracks a missing branch",
        lambda m: m["units"]["db/0"].update(branch="gone"),
        "tracks missing branch 'gone'",
    ),
    (
        "whole-application tracking misses a unit",
        lambda m: m["units"]["web/1"].update(branch=None),
        "tracks application 'web' as a whole",
    ),
    (
        "branch tracks a missing application",
        lambda m: m["branches"]["canary"]["track_applications"].append("gone"),
        "tracks missing application 'gone'",
    ),
    (
        "branch holds changes for a missing application",
        lambda m: m["branches"]["canary"]["changes"].update(gone={}),
        "changes for missing application 'gone'",
    ),
    (
        "master value of the wrong type",
        lambda m: m["apps"]["web"]["settings"].update(port="8080"),
        "master of 'web'",
    ),
    (
        "branch value of the wrong type",
        lambda m: m["branches"]["canary"]["changes"]["web"].update(level={"op": "set", "value": 3}),
        "branch 'canary' for 'web'",
    ),
    (
        "branch unsets a key the schema lacks",
        lambda m: m["branches"]["canary"]["changes"]["web"].update(nope={"op": "unset"}),
        "unset key 'nope'",
    ),
    (
        "unit of a missing application",
        lambda m: m["units"].update(
            {"x/0": {"_id": "x/0", "application": "x", "number": 0, "branch": None}}
        ),
        "missing application 'x'",
    ),
    (
        "unit of an earlier incarnation",
        lambda m: m["apps"]["db"].update(uid="new"),
        "another incarnation of 'db'",
    ),
    (
        "unit numbered past next_unit",
        lambda m: m["apps"]["db"].update(next_unit=0),
        "past next_unit",
    ),
    (
        "application over the size limit",
        lambda m: m["apps"]["db"]["settings"].update(
            {f"k{i}": "x" * 60_000 for i in range(limits.MAX_APPLICATION_BYTES // 60_000 + 1)}
        ),
        "over the limit",
    ),
]


@pytest.mark.parametrize(("name", "damage", "needle"), BREAKS, ids=[b[0] for b in BREAKS])
def test_each_broken_invariant_is_found(
    name: str, damage: Callable[[Model], None], needle: str
) -> None:
    m = copy.deepcopy(sound())
    damage(m)
    found = check(m)
    assert any(needle in line for line in found), (name, found)
