"""The MongoDB write side (`genconf.store.store.Store`) against a real mongod replica set.

Every rejected write must leave the database byte-for-byte unchanged (`digest`)
and raise a typed `GenconfError` whose message says what to do.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from support.model_check import stored_configs
from support.servers import store_digest

from genconf.domain import names, schema
from genconf.domain.results import WriteResult
from genconf.domain.values import ABSENT
from genconf.errors import (
    AlreadyExists,
    Conflict,
    ConflictedKey,
    FailedPrecondition,
    GenconfError,
    InvalidArgument,
    NotFound,
    VersionMismatch,
)
from genconf.store.documents import (
    APPLICATIONS,
    BRANCHES,
    FENCES,
    GENERATIONS,
    UNITS,
    VERSIONS,
)
from genconf.store.history import History
from genconf.store.store import Store

SCHEMA: dict[str, Any] = {
    "k": {"type": "int", "default": 1, "description": "a number"},
    "s": {"type": "string", "default": "x"},
    "o": {"type": "object"},
}


async def effective(store: Store, unit: str) -> dict[str, Any]:
    """A unit's effective config computed straight from the stored documents."""
    return (await stored_configs(store))[unit]


async def branch_of(store: Store, unit: str) -> str | None:
    return (await store.load())[UNITS][unit]["branch"]


async def count(store: Store, collection: str, query: dict[str, Any] | None = None) -> int:
    return await store.db[collection].count_documents(query or {})


# ---------------------------------------------------------------------------
# 1. Effective config: unset on a branch restores the charm default


async def test_unset_on_branch_restores_charm_default_not_master(store: Store) -> None:
    await store.create_application("app", schema={"k": {"type": "int", "default": 1}}, units=3)
    await store.set_config("app", set={"k": 5})
    await store.add_branch("b")
    await store.set_branch_config("b", "app", set={"k": 7})
    await store.track_branch("b", units=["app/0"])

    assert await effective(store, "app/0") == {"k": 7}
    assert await effective(store, "app/1") == {"k": 5}

    await store.set_branch_config("b", "app", unset=["k"])
    state = await store.load()
    # the first touch's "from" (master's 5) is kept by later edits
    assert state[BRANCHES]["b"]["changes"]["app"] == {"k": {"op": "unset", "from": 5}}
    assert state[APPLICATIONS]["app"]["settings"] == {"k": 5}
    assert await effective(store, "app/0") == {"k": 1}
    for untracked in ("app/1", "app/2"):
        assert await effective(store, untracked) == {"k": 5}

    # Committing the unset: master loses k, so everyone now gets the default,
    # and app/0 sees the same config as before the commit.
    result = await store.commit_branch("b")
    assert result.units == ["app/0"]
    assert await branch_of(store, "app/0") is None
    for unit in ("app/0", "app/1", "app/2"):
        assert await effective(store, unit) == {"k": 1}
    assert (await store.load())[APPLICATIONS]["app"]["settings"] == {}


# ---------------------------------------------------------------------------
# 2. Commit conflicts


async def test_second_commit_of_same_key_conflicts_then_force_wins(store: Store) -> None:
    await store.create_application("app", schema={"k": {"type": "int", "default": 1}})
    await store.set_config("app", set={"k": 5})
    for name, value in (("b1", 7), ("b2", 9)):
        await store.add_branch(name)
        await store.set_branch_config(name, "app", set={"k": value})

    await store.commit_branch("b1")
    before = await store_digest(store.db)
    with pytest.raises(Conflict) as caught:
        await store.commit_branch("b2")
    err = caught.value
    assert err.keys == [ConflictedKey("app", "k", 5, 7, 9)]
    message = str(err)
    for part in ("app.k", "from 5", "master now 7", "wants 9", "force"):
        assert part in message, (part, message)
    assert isinstance(err, FailedPrecondition)
    assert await store_digest(store.db) == before

    result = await store.commit_branch("b2", force=True)
    state = await store.load()
    assert state[APPLICATIONS]["app"]["settings"] == {"k": 9}
    assert "b2" not in state[BRANCHES]
    assert result.versions == {"app": 4}
    generation = await History(store.db).get_generation(result.generation or 0)
    assert generation["changes"] == {"app": {"k": {"from": 7, "to": 9}}}


async def test_conflict_lists_every_key_with_absent_values(store: Store) -> None:
    await store.create_application("app", schema=SCHEMA)
    await store.create_application("db", schema=SCHEMA)
    await store.set_config("app", set={"k": 5})
    await store.add_branch("b")
    # app.k: from 5, master will be removed, branch wants 6
    # db.s: from absent, master will be "m", branch unsets it
    # app.s: from absent, master will be "same", branch sets "same": agreement, no conflict
    await store.set_branch_config("b", "app", set={"k": 6, "s": "same"})
    await store.set_branch_config("b", "db", unset=["s"])
    await store.set_config("app", unset=["k"], set={"s": "same"})
    await store.set_config("db", set={"s": "m"})

    before = await store_digest(store.db)
    with pytest.raises(Conflict) as caught:
        await store.commit_branch("b")
    assert caught.value.keys == [
        ConflictedKey("app", "k", 5, ABSENT, 6),
        ConflictedKey("db", "s", ABSENT, "m", ABSENT),
    ]
    message = str(caught.value)
    assert "2 key(s)" in message
    assert "app.k (from 5, master now absent, branch 'b' wants 6)" in message
    assert "db.s (from absent, master now \"m\", branch 'b' wants absent)" in message
    assert await store_digest(store.db) == before


async def test_same_target_on_two_branches_is_not_a_conflict(store: Store) -> None:
    await store.create_application("app", schema=SCHEMA)
    for name in ("b1", "b2"):
        await store.add_branch(name)
        await store.set_branch_config(name, "app", set={"k": 7})
    await store.commit_branch("b1")
    result = await store.commit_branch("b2")
    assert result.versions == {"app": 3}
    assert (await store.load())[APPLICATIONS]["app"]["settings"] == {"k": 7}


# ---------------------------------------------------------------------------
# 3. Tracking


async def test_unit_tracks_only_one_branch(store: Store) -> None:
    await store.create_application("app", schema=SCHEMA, units=3)
    await store.add_branch("b1")
    await store.add_branch("b2")
    await store.track_branch("b1", units=["app/0"])

    before = await store_digest(store.db)
    with pytest.raises(FailedPrecondition) as caught:
        await store.track_branch("b2", units=["app/0", "app/1"])
    assert "app/0 tracks 'b1'" in str(caught.value)
    assert "at most one branch" in str(caught.value)
    assert "Untrack" in str(caught.value)
    with pytest.raises(FailedPrecondition, match="app/0 tracks 'b1'"):
        await store.track_branch("b2", applications=["app"])
    assert await store_digest(store.db) == before

    # tracking the same branch again is fine and changes nothing for the unit
    await store.track_branch("b1", units=["app/0"])
    assert await branch_of(store, "app/0") == "b1"

    result = await store.untrack_branch("b1", units=["app/0"])
    assert result.units == ["app/0"]
    assert await branch_of(store, "app/0") is None
    with pytest.raises(FailedPrecondition, match="does not track branch 'b1'"):
        await store.untrack_branch("b1", units=["app/0"])


async def test_tracking_an_application_covers_units_added_later(store: Store) -> None:
    await store.create_application("app", schema=SCHEMA, units=2)
    await store.create_application("other", schema=SCHEMA, units=1)
    await store.add_branch("b")
    await store.add_branch("c")
    result = await store.track_branch("b", applications=["app"])
    assert result.units == ["app/0", "app/1"]

    added = await store.add_units("app", count=2)
    assert added.units == ["app/2", "app/3"]
    named = await store.add_units("app", names=["app/7"])
    state = await store.load()
    for unit in ("app/0", "app/1", "app/2", "app/3", "app/7"):
        assert state[UNITS][unit]["branch"] == "b"
    assert named.units == ["app/7"]
    assert state[UNITS]["other/0"]["branch"] is None
    assert (await store.add_units("other", count=1)).units == ["other/1"]
    assert await branch_of(store, "other/1") is None

    with pytest.raises(FailedPrecondition, match="tracked by branch 'b'"):
        await store.track_branch("c", applications=["app"])

    await store.untrack_branch("b", applications=["app"])
    state = await store.load()
    assert state[BRANCHES]["b"]["track_applications"] == []
    assert all(u["branch"] is None for u in state[UNITS].values())
    await store.add_units("app", count=1)
    assert await branch_of(store, "app/8") is None


async def test_track_count_picks_lowest_free_units_and_is_stable(store: Store) -> None:
    await store.create_application("app", schema=SCHEMA, units=6)
    await store.add_branch("b1")
    await store.add_branch("b2")
    await store.track_branch("b1", units=["app/0", "app/2"])

    first = await store.track_branch("b2", count=2, application="app")
    assert first.units == ["app/1", "app/3"]

    before = await store_digest(store.db)
    again = await store.track_branch("b2", count=2, application="app")
    assert await store_digest(store.db) == before
    state = await store.load()
    assert sorted(u for u, d in state[UNITS].items() if d["branch"] == "b2") == [
        "app/1",
        "app/3",
    ]
    assert set(again.units) <= {"app/1", "app/3"}

    more = await store.track_branch("b2", count=3, application="app")
    assert "app/4" in more.units
    assert await branch_of(store, "app/5") is None

    before = await store_digest(store.db)
    with pytest.raises(FailedPrecondition, match="fewer than 5"):
        await store.track_branch("b2", count=5, application="app")
    with pytest.raises(InvalidArgument, match="needs the application"):
        await store.track_branch("b2", count=1)
    assert await store_digest(store.db) == before


async def test_abort_refused_while_units_track_unless_forced(store: Store) -> None:
    await store.create_application("app", schema=SCHEMA, units=3)
    await store.set_config("app", set={"k": 5})
    await store.add_branch("b")
    await store.set_branch_config("b", "app", set={"k": 7})
    await store.track_branch("b", units=["app/2", "app/0"])

    before = await store_digest(store.db)
    with pytest.raises(FailedPrecondition) as caught:
        await store.abort_branch("b")
    message = str(caught.value)
    assert "2 unit(s): app/0, app/2" in message
    assert "force" in message
    assert await store_digest(store.db) == before

    result = await store.abort_branch("b", force=True)
    assert result.units == ["app/0", "app/2"]
    state = await store.load()
    assert "b" not in state[BRANCHES]
    assert all(u["branch"] is None for u in state[UNITS].values())
    assert await effective(store, "app/0") == {"k": 5, "s": "x"}
    assert state[APPLICATIONS]["app"]["settings"] == {"k": 5}
    with pytest.raises(NotFound, match="branch 'b' not found"):
        await store.abort_branch("b")

    # a branch nobody tracks aborts without force
    await store.add_branch("idle")
    assert (await store.abort_branch("idle")).units == []


# ---------------------------------------------------------------------------
# 4. Optimistic locking


async def test_expected_version_mismatch_writes_nothing(store: Store) -> None:
    await store.create_application("app", schema=SCHEMA)
    await store.set_config("app", set={"k": 5})

    before = await store_digest(store.db)
    with pytest.raises(VersionMismatch) as caught:
        await store.set_config("app", set={"k": 6}, expected_version=1)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert "at version 2" in str(caught.value)
    assert "expected version 1" in str(caught.value)
    assert await store_digest(store.db) == before

    result = await store.set_config("app", set={"k": 6}, expected_version=2)
    assert result.versions == {"app": 3}


async def test_concurrent_writers_with_same_expected_version_one_wins(store: Store) -> None:
    await store.create_application("app", schema=SCHEMA)
    writers = 10
    results = await asyncio.gather(
        *(store.set_config("app", set={"k": 100 + i}, expected_version=1) for i in range(writers)),
        return_exceptions=True,
    )
    wins = [i for i, r in enumerate(results) if isinstance(r, WriteResult)]
    losses = [r for r in results if not isinstance(r, WriteResult)]
    assert len(wins) == 1, results
    assert len(losses) == writers - 1
    for loss in losses:
        assert isinstance(loss, VersionMismatch), repr(loss)
        assert (loss.expected, loss.actual) == (1, 2)
    assert await count(store, VERSIONS, {"application": "app"}) == 2
    assert await count(store, GENERATIONS) == 1
    app = (await store.load())[APPLICATIONS]["app"]
    assert app["version"] == 2
    assert app["settings"] == {"k": 100 + wins[0]}


async def test_concurrent_writers_on_different_apps_all_succeed(store: Store) -> None:
    apps = [f"app{i}" for i in range(8)]
    for name in apps:
        await store.create_application(name, schema=SCHEMA)
    results = await asyncio.gather(*(store.set_config(n, set={"k": 2}) for n in apps))
    assert sorted(r.generation or 0 for r in results) == list(range(1, len(apps) + 1))
    assert all(r.versions == {n: 2} for r, n in zip(results, apps, strict=True))
    assert await count(store, GENERATIONS) == len(apps)


# ---------------------------------------------------------------------------
# 5. Commit atomicity as seen by a snapshot reader


async def test_commit_is_atomic_for_snapshot_readers(store: Store, mongo_uri: str) -> None:
    for name in ("a", "b"):
        await store.create_application(name, schema=SCHEMA)
    commits = 30
    done = asyncio.Event()

    async def writer() -> None:
        try:
            for i in range(commits):
                branch = f"br{i}"
                await store.add_branch(branch)
                await store.set_branch_config(branch, "a", set={"k": 1000 + i})
                await store.set_branch_config(branch, "b", set={"k": 1000 + i})
                await store.commit_branch(branch)
        finally:
            done.set()

    reader_client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    db = reader_client[store.db.name]
    seen: set[tuple[int, int]] = set()

    async def read_once() -> None:
        async with reader_client.start_session(snapshot=True) as s:
            apps = {d["_id"]: d async for d in db[APPLICATIONS].find({}, session=s)}
            gens = [d async for d in db[GENERATIONS].find({}, session=s)]
            branches = {d["_id"] async for d in db[BRANCHES].find({}, {"_id": 1}, session=s)}
            versions = {d["_id"]: d async for d in db[VERSIONS].find({}, session=s)}
        for name in ("a", "b"):
            app = apps[name]
            produced = [g["versions"][name] for g in gens if name in g["versions"]]
            assert app["version"] == max(produced, default=1), (name, app, gens)
            assert versions[f"{name}@{app['version']}"]["settings"] == app["settings"]
            assert len(versions) == apps["a"]["version"] + apps["b"]["version"]
        assert apps["a"]["version"] == apps["b"]["version"] == len(gens) + 1
        assert apps["a"]["settings"] == apps["b"]["settings"]
        for g in gens:
            assert g["kind"] == "commit"
            assert set(g["versions"]) == {"a", "b"}
            assert g["branch"] not in branches
        seen.add((apps["a"]["version"], apps["b"]["version"]))

    async def reader() -> int:
        reads = 0
        while not done.is_set():
            await read_once()
            reads += 1
        return reads

    try:
        _, reads = await asyncio.gather(writer(), reader())
        await read_once()
    finally:
        await reader_client.close()
    assert reads >= 5
    assert len(seen) >= 5, seen
    assert (commits + 1, commits + 1) in seen


# ---------------------------------------------------------------------------
# 6. Rejected writes: typed error, actionable message, nothing written

Call = Callable[[Store], Awaitable[Any]]
BIG = "x" * (schema.MAX_VALUE_BYTES + 1)

REJECTED: list[tuple[str, Call, type[GenconfError], str]] = [
    (
        "bad app name",
        lambda s: s.create_application("Bad_Name", schema=SCHEMA),
        InvalidArgument,
        "invalid application name 'Bad_Name'",
    ),
    (
        "bad app name on set",
        lambda s: s.set_config("no way", set={"k": 1}),
        InvalidArgument,
        "lowercase letter first",
    ),
    (
        "duplicate application",
        lambda s: s.create_application("app", schema=SCHEMA),
        AlreadyExists,
        "application 'app' already exists",
    ),
    (
        "schema with bad type",
        lambda s: s.create_application("new", schema={"x": {"type": "bytes"}}),
        InvalidArgument,
        "type 'bytes'; use one of string, int, float, boolean, object, list",
    ),
    (
        "schema default of the wrong type",
        lambda s: s.create_application("new", schema={"x": {"type": "int", "default": "1"}}),
        InvalidArgument,
        "'x' is of type int",
    ),
    (
        "update with bad schema type",
        lambda s: s.update_application("app", schema={"k": {"type": "number"}}),
        InvalidArgument,
        "use one of",
    ),
    (
        "unknown application",
        lambda s: s.set_config("nope", set={"k": 1}),
        NotFound,
        "application 'nope' not found",
    ),
    (
        "unknown application on update",
        lambda s: s.update_application("nope", charm="c"),
        NotFound,
        "application 'nope' not found",
    ),
    (
        "unknown application on remove",
        lambda s: s.remove_application("nope"),
        NotFound,
        "application 'nope' not found",
    ),
    (
        "unknown application for units",
        lambda s: s.add_units("nope", count=1),
        NotFound,
        "application 'nope' not found",
    ),
    (
        "unknown key",
        lambda s: s.set_config("app", set={"zz": 1}),
        InvalidArgument,
        "unknown config key 'zz'; the schema has: k, o, s",
    ),
    (
        "unknown key to unset",
        lambda s: s.set_config("app", unset=["zz"]),
        InvalidArgument,
        "the schema has: k, o, s",
    ),
    (
        "wrong type",
        lambda s: s.set_config("app", set={"k": "five"}),
        InvalidArgument,
        "'k' is of type int; got str \"five\"",
    ),
    (
        "boolean is not an int",
        lambda s: s.set_config("app", set={"k": True}),
        InvalidArgument,
        "'k' is of type int",
    ),
    (
        "bad object key",
        lambda s: s.set_config("app", set={"o": {"a.b": 1}}),
        InvalidArgument,
        "object keys must be non-empty strings",
    ),
    (
        "oversized value",
        lambda s: s.set_config("app", set={"s": BIG}),
        InvalidArgument,
        f"the limit is {schema.MAX_VALUE_BYTES}",
    ),
    (
        "set and unset the same key",
        lambda s: s.set_config("app", set={"k": 2}, unset=["k"]),
        InvalidArgument,
        "both set and unset",
    ),
    (
        "nothing to change",
        lambda s: s.set_config("app"),
        InvalidArgument,
        "nothing to change",
    ),
    (
        "bad unit name",
        lambda s: s.add_units("app", names=["App/9"]),
        InvalidArgument,
        "invalid unit name 'App/9'",
    ),
    (
        "unit of another application",
        lambda s: s.add_units("app", names=["db/9"]),
        InvalidArgument,
        "does not belong to 'app'",
    ),
    (
        "unit number in use",
        lambda s: s.add_units("app", names=["app/0"]),
        AlreadyExists,
        "numbers are never reused: the next free one is 3",
    ),
    (
        "unit number used before",
        lambda s: s.add_units("app", names=["app/2", "app/5"]),
        AlreadyExists,
        "unit number(s) [2] of 'app' are in use or were used before",
    ),
    (
        "negative unit count",
        lambda s: s.add_units("app", count=-1),
        InvalidArgument,
        "whole number >= 0",
    ),
    (
        "unknown unit",
        lambda s: s.remove_unit("app/7"),
        NotFound,
        "unit 'app/7' not found",
    ),
    (
        "removed unit",
        lambda s: s.remove_unit("app/2"),
        NotFound,
        "unit 'app/2' not found",
    ),
    (
        "bad unit name on remove",
        lambda s: s.remove_unit("app-0"),
        InvalidArgument,
        "use <application>/<number>",
    ),
    (
        "unknown unit on report",
        lambda s: s.set_applied("app/9", hash="h", ok=True),
        NotFound,
        "unit 'app/9' not found",
    ),
    (
        "duplicate branch",
        lambda s: s.add_branch("b"),
        AlreadyExists,
        "branch 'b' already exists",
    ),
    (
        "bad branch name",
        lambda s: s.add_branch("Bad Branch"),
        InvalidArgument,
        "invalid branch name 'Bad Branch'",
    ),
    (
        "unknown branch",
        lambda s: s.set_branch_config("nope", "app", set={"k": 1}),
        NotFound,
        "branch 'nope' not found",
    ),
    (
        "unknown branch on commit",
        lambda s: s.commit_branch("nope"),
        NotFound,
        "branch 'nope' not found",
    ),
    (
        "unknown branch on track",
        lambda s: s.track_branch("nope", units=["app/0"]),
        NotFound,
        "branch 'nope' not found",
    ),
    (
        "unknown unit on track",
        lambda s: s.track_branch("b", units=["app/9"]),
        NotFound,
        "unit 'app/9' not found",
    ),
    (
        "unknown application on track",
        lambda s: s.track_branch("b", applications=["nope"]),
        NotFound,
        "application 'nope' not found",
    ),
    (
        "untrack a unit that does not track",
        lambda s: s.untrack_branch("b", units=["app/1"]),
        FailedPrecondition,
        "unit 'app/1' does not track branch 'b'",
    ),
    (
        "unknown application on a branch",
        lambda s: s.set_branch_config("b", "nope", set={"k": 1}),
        NotFound,
        "application 'nope' not found",
    ),
    (
        "unknown key on a branch",
        lambda s: s.set_branch_config("b", "app", set={"zz": 1}),
        InvalidArgument,
        "the schema has: k, o, s",
    ),
    (
        "wrong type on a branch",
        lambda s: s.set_branch_config("b", "app", set={"k": 1.5}),
        InvalidArgument,
        "'k' is of type int",
    ),
    (
        "oversized value on a branch",
        lambda s: s.set_branch_config("b", "app", set={"o": {"big": BIG}}),
        InvalidArgument,
        f"the limit is {schema.MAX_VALUE_BYTES}",
    ),
    (
        "more keys than one write may hold",
        lambda s: s.set_config("app", set={f"x{i}": i for i in range(schema.MAX_KEYS + 1)}),
        InvalidArgument,
        f"{schema.MAX_KEYS + 1} keys in one write (set and unset together); the limit is "
        f"{schema.MAX_KEYS} keys per write",
    ),
    (
        "more keys than one write may hold on a branch",
        lambda s: s.set_branch_config(
            "b", "app", set={f"x{i}": i for i in range(schema.MAX_KEYS + 1)}
        ),
        InvalidArgument,
        f"the limit is {schema.MAX_KEYS} keys per write",
    ),
    (
        "set and unset together over the key limit",
        lambda s: s.set_config(
            "app", set={"k": 1}, unset=[f"x{i}" for i in range(schema.MAX_KEYS)]
        ),
        InvalidArgument,
        f"{schema.MAX_KEYS + 1} keys in one write (set and unset together)",
    ),
    (
        "unset over the key limit on a branch",
        lambda s: s.set_branch_config(
            "b", "app", unset=[f"x{i}" for i in range(schema.MAX_KEYS + 1)]
        ),
        InvalidArgument,
        f"the limit is {schema.MAX_KEYS} keys per write",
    ),
    (
        "set and unset the same key on a branch",
        lambda s: s.set_branch_config("b", "app", set={"k": 1}, unset=["k"]),
        InvalidArgument,
        "both set and unset",
    ),
    (
        "stale expected_version",
        lambda s: s.set_config("app", set={"k": 9}, expected_version=1),
        VersionMismatch,
        "is at version 2, not the expected version 1",
    ),
    (
        "abort with tracking units",
        lambda s: s.abort_branch("b"),
        FailedPrecondition,
        "tracked by 1 unit(s): app/0",
    ),
]


@pytest.fixture
async def populated(store: Store) -> Store:
    """app (units 0, 1; 2 was removed; k=5, version 2), branch b (k=7, tracked by app/0)."""
    await store.create_application("app", schema=SCHEMA, units=3)
    await store.create_application("db", schema=SCHEMA)
    await store.remove_unit("app/2")
    await store.set_config("app", set={"k": 5})
    await store.add_branch("b")
    await store.set_branch_config("b", "app", set={"k": 7})
    await store.track_branch("b", units=["app/0"])
    return store


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [pytest.param(call, error, text, id=name) for name, call, error, text in REJECTED],
)
async def test_rejected_write_is_typed_and_writes_nothing(
    populated: Store, call: Call, error: type[GenconfError], text: str
) -> None:
    before = await store_digest(populated.db)
    with pytest.raises(GenconfError) as caught:
        await call(populated)
    assert type(caught.value) is error, repr(caught.value)
    assert text in caught.value.message, caught.value.message
    assert await store_digest(populated.db) == before


# ---------------------------------------------------------------------------
# 7. Versions and generations


async def test_set_config_writes_one_version_and_one_set_generation(store: Store) -> None:
    created = await store.create_application("app", schema=SCHEMA)
    assert created.versions == {"app": 1}
    first = await History(store.db).get_version("app", 1)
    assert (first["previous_version"], first["settings"], first["generation"]) == (0, {}, None)

    result = await store.set_config(
        "app", set={"k": 5}, reason="tune", created_by="alice", metadata={"ticket": "T-1"}
    )
    assert (result.generation, result.versions) == (1, {"app": 2})
    version = await History(store.db).get_version("app", 2)
    assert version["previous_version"] == 1
    assert version["settings"] == {"k": 5}
    assert version["generation"] == 1
    assert (version["reason"], version["created_by"]) == ("tune", "alice")
    assert version["metadata"] == {"ticket": "T-1"}
    assert version["tags"] == []
    generation = await History(store.db).get_generation(1)
    assert generation["kind"] == "set"
    assert generation["branch"] is None
    assert generation["changes"] == {"app": {"k": {"to": 5}}}  # from absent
    assert generation["versions"] == {"app": 2}
    assert (generation["reason"], generation["created_by"]) == ("tune", "alice")

    result = await store.set_config("app", set={"k": 6, "s": "y"})
    assert (result.generation, result.versions) == (2, {"app": 3})
    assert (await History(store.db).get_version("app", 3))["previous_version"] == 2
    assert (await History(store.db).get_generation(2))["changes"] == {
        "app": {"k": {"from": 5, "to": 6}, "s": {"to": "y"}}
    }

    result = await store.set_config("app", unset=["k"])
    assert (result.generation, result.versions) == (3, {"app": 4})
    assert (await History(store.db).get_generation(3))["changes"] == {"app": {"k": {"from": 6}}}
    assert (await History(store.db).get_version("app", 4))["settings"] == {"s": "y"}

    # A write that changes nothing writes nothing and returns the current version.
    before = await store_digest(store.db)
    noop = await store.set_config("app", set={"s": "y"}, unset=["k"])
    assert (noop.generation, noop.versions) == (None, {"app": 4})
    assert isinstance(noop.revision, int)
    assert await store_digest(store.db) == before
    assert await count(store, VERSIONS) == 4
    assert await count(store, GENERATIONS) == 3


async def test_commit_writes_one_version_per_app_and_one_commit_generation(
    store: Store,
) -> None:
    for name in ("a", "b", "c"):
        await store.create_application(name, schema=SCHEMA, units=1)
    await store.set_config("a", set={"k": 3})
    await store.set_config("b", set={"s": "m"})
    await store.add_branch("rel", created_by="bob")
    await store.set_branch_config("rel", "a", set={"k": 4, "o": {"x": [1, 2]}})
    await store.set_branch_config("rel", "b", unset=["s"])
    await store.track_branch("rel", units=["a/0", "c/0"])

    result = await store.commit_branch("rel", created_by="bob", reason="release", metadata={"n": 1})
    assert result.generation == 3
    assert result.versions == {"a": 3, "b": 3}
    assert result.units == ["a/0", "c/0"]
    generation = await History(store.db).get_generation(3)
    assert generation["kind"] == "commit"
    assert generation["branch"] == "rel"
    assert generation["versions"] == {"a": 3, "b": 3}
    assert generation["changes"] == {
        "a": {"k": {"from": 3, "to": 4}, "o": {"to": {"x": [1, 2]}}},
        "b": {"s": {"from": "m"}},
    }
    assert (generation["created_by"], generation["reason"]) == ("bob", "release")
    for app in ("a", "b"):
        version = await History(store.db).get_version(app, 3)
        assert version["previous_version"] == 2
        assert version["generation"] == 3
        assert version["metadata"] == {"n": 1}
        assert version["reason"] == "release"
    assert (await History(store.db).get_version("a", 3))["settings"] == {"k": 4, "o": {"x": [1, 2]}}
    assert (await History(store.db).get_version("b", 3))["settings"] == {}
    state = await store.load()
    assert {n: a["version"] for n, a in state[APPLICATIONS].items()} == {"a": 3, "b": 3, "c": 1}
    assert await count(store, VERSIONS) == 3 + 3 + 1
    assert await count(store, GENERATIONS) == 3
    assert state[BRANCHES] == {}
    assert all(u["branch"] is None for u in state[UNITS].values())
    with pytest.raises(NotFound):
        await History(store.db).get_version("c", 2)


# ---------------------------------------------------------------------------
# 8. Revisions


async def test_every_write_returns_a_strictly_increasing_revision(store: Store) -> None:
    writes: list[Callable[[], Awaitable[WriteResult]]] = [
        lambda: store.create_application("app", schema=SCHEMA, units=2),
        lambda: store.create_application("db", schema=SCHEMA),
        lambda: store.update_application("app", charm="app-v2"),
        lambda: store.add_units("app", count=1),
        lambda: store.set_config("app", set={"k": 2}),
        lambda: store.add_branch("b"),
        lambda: store.set_branch_config("b", "app", set={"k": 3}),
        lambda: store.track_branch("b", units=["app/0"]),
        lambda: store.untrack_branch("b", units=["app/0"]),
        lambda: store.track_branch("b", applications=["app"]),
        lambda: store.commit_branch("b"),
        lambda: store.add_branch("c"),
        lambda: store.abort_branch("c"),
        lambda: store.set_applied("app/1", hash="h", ok=True, message="fine"),
        lambda: store.remove_unit("app/2"),
        lambda: store.remove_application("db", force=True),
    ]
    revisions = []
    for write in writes:
        result = await write()
        assert type(result.revision) is int
        revisions.append(result.revision)
    assert all(a < b for a, b in itertools.pairwise(revisions)), revisions


# ---------------------------------------------------------------------------
# 9. Application lifecycle


async def test_update_application_schema_must_fit_values_in_use(store: Store) -> None:
    await store.create_application("app", charm="ch", schema=SCHEMA, units=1)
    await store.set_config("app", set={"k": 5})
    await store.add_branch("b")
    await store.set_branch_config("b", "app", set={"s": "long"})

    before = await store_digest(store.db)
    with pytest.raises(FailedPrecondition) as caught:
        await store.update_application("app", schema={**SCHEMA, "k": {"type": "string"}})
    assert "the new schema of 'app' does not fit" in str(caught.value)
    assert "master: 'k' is of type string" in str(caught.value)
    with pytest.raises(FailedPrecondition, match="master: unknown config key 'k'"):
        await store.update_application("app", schema={"s": {"type": "string"}})
    with pytest.raises(FailedPrecondition, match="branch 'b': unknown config key 's'"):
        await store.update_application("app", schema={"k": {"type": "int"}})
    assert await store_digest(store.db) == before

    await store.update_application("app", charm="ch2")
    app = (await store.load())[APPLICATIONS]["app"]
    assert app["charm"] == "ch2"
    assert app["version"] == 2  # the charm is not config: no new version

    widened = {**SCHEMA, "k": {"type": "int", "default": 3}, "on": {"type": "boolean"}}
    await store.update_application("app", schema=widened)
    await store.set_config("app", unset=["k"], set={"on": True})
    assert await effective(store, "app/0") == {"k": 3, "s": "x", "on": True}


async def test_remove_application_removes_units_versions_and_branch_parts(store: Store) -> None:
    await store.create_application("app", schema=SCHEMA, units=2)
    await store.create_application("db", schema=SCHEMA, units=1)
    await store.set_config("app", set={"k": 2})
    await store.add_branch("b")
    await store.set_branch_config("b", "app", set={"k": 3})
    await store.set_branch_config("b", "db", set={"k": 4})
    await store.track_branch("b", applications=["app"])
    await store.track_branch("b", units=["db/0"])

    await store.remove_application("app", force=True)
    state = await store.load()
    assert "app" not in state[APPLICATIONS]
    assert sorted(state[UNITS]) == ["db/0"]
    assert await count(store, VERSIONS, {"application": "app"}) == 0
    assert await count(store, VERSIONS, {"application": "db"}) == 1
    assert state[BRANCHES]["b"]["changes"] == {"db": {"k": {"op": "set", "value": 4}}}
    assert state[BRANCHES]["b"]["track_applications"] == []
    with pytest.raises(NotFound):
        await History(store.db).get_version("app", 1)
    with pytest.raises(NotFound):
        await store.remove_application("app", force=True)

    # the branch still commits what is left of it
    result = await store.commit_branch("b")
    assert result.versions == {"db": 2}


async def test_removed_unit_numbers_are_never_reused(store: Store) -> None:
    await store.create_application("app", schema=SCHEMA, units=2)
    await store.remove_unit("app/1")
    before = await store_digest(store.db)
    with pytest.raises(AlreadyExists, match="never reused"):
        await store.add_units("app", names=["app/1"])
    assert await store_digest(store.db) == before
    assert (await store.add_units("app", count=1)).units == ["app/2"]
    assert (await store.add_units("app", names=["app/5"])).units == ["app/5"]
    assert (await store.add_units("app", count=1)).units == ["app/6"]


async def test_schema_type_change_stores_values_in_the_new_type(store: Store) -> None:
    """int -> float turns master's 2 into 2.0 and the branch's from/value too, so a
    commit after the change sees no spurious conflict."""
    await store.create_application("app", schema={"k": {"type": "int"}}, units=1)
    await store.set_config("app", set={"k": 2})
    await store.add_branch("b")
    await store.set_branch_config("b", "app", set={"k": 3})
    await store.update_application("app", schema={"k": {"type": "float"}})
    docs = await store.load()
    master = docs["applications"]["app"]["settings"]["k"]
    change = docs["branches"]["b"]["changes"]["app"]["k"]
    assert (master, type(master)) == (2.0, float)
    assert (change["from"], type(change["from"])) == (2.0, float)
    assert (change["value"], type(change["value"])) == (3.0, float)
    result = await store.commit_branch("b")
    assert result.versions == {"app": 3}


async def test_concurrent_tags_of_one_label_leave_exactly_one_holder(store: Store) -> None:
    await store.create_application("app", schema=SCHEMA)
    for k in range(2, 6):
        await store.set_config("app", set={"k": k})
    results = await asyncio.gather(
        *(store.tag_version("app", "3.0.0", version=v) for v in range(1, 6)), return_exceptions=True
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1, results
    assert all(isinstance(r, AlreadyExists) for r in results if isinstance(r, BaseException))
    holders = await store.db["versions"].count_documents({"application": "app", "tags": "3.0.0"})
    assert holders == 1


def test_retain_versions_must_keep_at_least_one(mongo_uri: str) -> None:
    with pytest.raises(InvalidArgument, match="at least 1"):
        Store.connect(mongo_uri, "unused", retain_versions=0)


async def test_unit_numbers_stay_addressable(store: Store) -> None:
    """After the last addressable unit, adding one more is refused, not made unreachable."""
    await store.create_application("nums", schema=SCHEMA)
    last = f"nums/{names.MAX_UNIT_NUMBER}"
    await store.add_units("nums", names=[last])
    before = await store_digest(store.db)
    with pytest.raises(InvalidArgument, match=f"go from 0 to {names.MAX_UNIT_NUMBER}"):
        await store.add_units("nums", count=1)
    assert await store_digest(store.db) == before
    assert names.parse_unit_name(last) == ("nums", names.MAX_UNIT_NUMBER)


async def test_a_unit_cannot_leave_a_wholly_tracked_application_alone(store: Store) -> None:
    """Every unit of an application tracked as a whole tracks the branch: untracking
    one of them is refused (the seeded random schedule found it)."""
    await store.create_application("app", schema=SCHEMA, units=2)
    await store.add_branch("b")
    await store.track_branch("b", applications=["app"])
    before = await store_digest(store.db)
    with pytest.raises(FailedPrecondition, match="untrack the application 'app'"):
        await store.untrack_branch("b", units=["app/1"])
    assert await store_digest(store.db) == before
    result = await store.untrack_branch("b", units=["app/1"], applications=["app"])
    assert result.units == ["app/0", "app/1"]


async def test_fences_go_with_what_they_guard(store: Store) -> None:
    """Fences of committed or aborted branches and removed applications are dropped,
    so names long gone leave nothing behind."""
    await store.create_application("app", schema=SCHEMA, units=1)
    for name in ("done", "dropped"):
        await store.add_branch(name)
        await store.set_branch_config(name, "app", set={"k": 2})
    assert await count(store, FENCES) == 3
    await store.commit_branch("done")
    await store.abort_branch("dropped")
    await store.remove_application("app", force=True)
    assert await count(store, FENCES) == 0
