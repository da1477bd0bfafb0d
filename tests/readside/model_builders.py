"""Records, deltas and the fixture model the cache tests build on (no I/O).

The fixture model, loaded at revision `START`:

    application a: units a/0, a/1 (master) and a/2 (tracks branch b)
    application c: units c/0 (master) and c/1 (tracks branch b)
    branch b:      a.k = 10 (from master's absent)
"""

from __future__ import annotations

from typing import Any

from genconf.domain import schema
from genconf.domain.config import Change, Op
from genconf.domain.deltas import Batch, Delta, Kind, Record
from genconf.domain.records import Application, Branch, Generation, Unit

SCHEMA = schema.parse_schema(
    {"k": {"type": "int", "default": 1}, "s": {"type": "string", "default": "x"}}
)
START = 100

KINDS: dict[type, Kind] = {
    Application: Kind.APPLICATION,
    Unit: Kind.UNIT,
    Branch: Kind.BRANCH,
    Generation: Kind.GENERATION,
}


def app(name: str, version: int = 1, charm: str = "", **settings: Any) -> Application:
    return Application(name, charm or name, SCHEMA, settings, version, 10, version)


def unit(application: str, number: int, branch: str | None = None) -> Unit:
    return Unit(f"{application}/{number}", application, number, branch, None, 1)


def branch(name: str, track: tuple[str, ...] = (), **changes: dict[str, Any]) -> Branch:
    """``branch("b", a={"k": 10, "s": None})``: set k, unset s on application a."""
    return Branch(
        name,
        "tester",
        None,
        track,
        {
            application: {
                key: Change(Op.SET, v) if v is not None else Change(Op.UNSET)
                for key, v in keys.items()
            }
            for application, keys in changes.items()
        },
        1,
    )


def generation(gid: int, **changes: dict[str, Any]) -> Generation:
    return Generation(gid, "set", None, changes, "tester", None, "")


def up(record: Record, revision: int) -> Delta:
    key = str(record.id) if isinstance(record, Generation) else record.name
    return Delta(KINDS[type(record)], key, revision, record)


def rm(kind: Kind, key: str, revision: int) -> Delta:
    return Delta(kind, key, revision, None)


def batch(revision: int, *records_or_deltas: Record | Delta) -> Batch:
    deltas = tuple(r if isinstance(r, Delta) else up(r, revision) for r in records_or_deltas)
    return Batch(revision, deltas)


def fixture_model() -> tuple[list[Application], list[Unit], list[Branch]]:
    return (
        [app("a"), app("c")],
        [unit("a", 0), unit("a", 1), unit("a", 2, "b"), unit("c", 0), unit("c", 1, "b")],
        [branch("b", a={"k": 10})],
    )
