"""ControllerService end to end: real mongod, a real server on loopback, a real client.

Every RPC has its success path here, and every error code it can return is in
the `ERRORS` table, each checked to have written nothing (the whole model, read
through Snapshot after a barrier write, is unchanged).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import grpc
import pytest
from google.protobuf import json_format
from support.servers import assert_code, settled_model

from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.errors import ClientError

SCHEMA: dict[str, Any] = {
    "k": {"type": "int", "default": 1, "description": "a number"},
    "s": {"type": "string", "default": "x"},
    "o": {"type": "object"},
}

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXISTS = grpc.StatusCode.ALREADY_EXISTS
ABORTED = grpc.StatusCode.ABORTED
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


def plain(value: Any) -> Any:
    return json_format.MessageToDict(value)


# -- success paths ---------------------------------------------------------------


async def test_applications_create_update_get_list_remove(client: Client) -> None:
    created = await client.create_application("web", schema=SCHEMA, units=2, created_by="ops")
    assert created.units == ["web/0", "web/1"]
    assert dict(created.versions) == {"web": 1}
    assert created.revision > 0

    app = await client.get_application("web", min_revision=created.revision)
    assert app.name == "web"
    assert app.charm == "web"  # the charm defaults to the application's name
    assert app.version == 1
    assert list(app.units) == ["web/0", "web/1"]
    assert set(app.schema) == {"k", "s", "o"}
    assert app.schema["k"].type == "int"
    assert app.schema["k"].description == "a number"
    assert not app.schema["o"].HasField("default")
    assert plain(app.settings) == {}
    assert plain(app.effective) == {"k": 1, "s": "x"}

    other = await client.create_application("db", charm="postgres")
    updated = await client.update_application("web", charm="web-v2")
    assert updated.revision > other.revision > created.revision
    app = await client.get_application("web", min_revision=updated.revision)
    assert app.charm == "web-v2"
    assert set(app.schema) == {"k", "s", "o"}  # a charm change keeps the schema

    reschema = await client.update_application(
        "web", schema={**SCHEMA, "n": {"type": "float", "default": 0.5}}
    )
    app = await client.get_application("web", min_revision=reschema.revision)
    assert plain(app.effective) == {"k": 1, "s": "x", "n": 0.5}
    assert app.charm == "web-v2"

    apps = await client.list_applications(min_revision=reschema.revision)
    assert [a.name for a in apps] == ["db", "web"]
    assert apps[0].charm == "postgres"

    removed = await client.remove_application("web")
    apps = await client.list_applications(min_revision=removed.revision)
    assert [a.name for a in apps] == ["db"]
    assert await client.list_units(min_revision=removed.revision) == []
    with pytest.raises(ClientError) as caught:
        await client.get_application("web")
    assert_code(caught.value, NOT_FOUND)


async def test_units_add_list_remove(client: Client) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    await client.create_application("db", units=1)
    added = await client.add_units("web", count=2)
    assert list(added.units) == ["web/1", "web/2"]
    named = await client.add_units("web", names=["web/7", "web/5"])
    assert list(named.units) == ["web/5", "web/7"]
    after = await client.add_units("web", count=1)
    assert list(after.units) == ["web/8"]  # numbering continues after the highest

    units = await client.list_units("web", min_revision=after.revision)
    assert [u.name for u in units] == ["web/0", "web/1", "web/2", "web/5", "web/7", "web/8"]
    assert all(u.application == "web" and u.branch == "" for u in units)
    every = await client.list_units(min_revision=after.revision)
    assert [u.name for u in every] == ["db/0"] + [u.name for u in units]

    removed = await client.remove_unit("web/1")
    assert list(removed.units) == ["web/1"]
    units = await client.list_units("web", min_revision=removed.revision)
    assert "web/1" not in [u.name for u in units]
    again = await client.add_units("web", count=1)
    assert list(again.units) == ["web/9"]  # a removed number is never reused


async def test_set_config_versions_and_effective(client: Client) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    first = await client.set_config(
        "web",
        {"k": 5, "o": {"a": [1, 2]}},
        reason="tune",
        created_by="alice",
        metadata={"ticket": "T-1"},
    )
    assert dict(first.versions) == {"web": 2}
    assert first.generation == 1
    app = await client.get_application("web", min_revision=first.revision)
    assert app.version == 2
    assert plain(app.settings) == {"k": 5, "o": {"a": [1, 2]}}
    assert plain(app.effective) == {"k": 5, "s": "x", "o": {"a": [1, 2]}}

    second = await client.set_config("web", unset=["k"], expected_version=2)
    assert dict(second.versions) == {"web": 3}
    assert second.generation == 2
    cfg = await client.get_config("web/0", min_revision=second.revision)
    assert cfg.config == {"k": 1, "s": "x", "o": {"a": [1, 2]}}
    assert cfg.app_version == 3

    # A write that changes nothing writes nothing: same version, no generation.
    same = await client.set_config("web", {"o": {"a": [1, 2]}})
    assert dict(same.versions) == {"web": 3}
    assert same.generation == 0


async def test_branch_lifecycle(client: Client) -> None:
    await client.create_application("web", schema=SCHEMA, units=4)
    await client.create_application("db", schema=SCHEMA, units=1)
    base = await client.set_config("web", {"s": "master"})

    added = await client.add_branch("canary", created_by="alice")
    assert added.revision > base.revision
    branch = await client.get_branch("canary", min_revision=added.revision)
    assert branch.name == "canary"
    assert branch.created_by == "alice"
    assert branch.created_at.seconds > 0
    assert list(branch.units) == [] and list(branch.changes) == []

    tracked = await client.track_branch("canary", units=["web/0"])
    assert list(tracked.units) == ["web/0"]
    by_count = await client.track_branch("canary", application="web", count=2)
    assert list(by_count.units) == ["web/1"]  # web/0 counts already: the lowest free one
    whole = await client.track_branch("canary", applications=["db"])
    assert list(whole.units) == ["db/0"]

    staged = await client.set_branch_config("canary", "web", {"k": 10, "o": {"x": 1}})
    restaged = await client.set_branch_config("canary", "web", {"s": "canary"}, unset=["o"])
    branch = await client.get_branch("canary", min_revision=restaged.revision)
    assert list(branch.units) == ["db/0", "web/0", "web/1"]
    assert list(branch.track_applications) == ["db"]
    [changes] = branch.changes
    assert changes.application == "web"
    by_key = {c.key: c for c in changes.changes}
    assert by_key["k"].op == "set" and plain(by_key["k"].value) == 10
    assert not by_key["k"].has_from  # master had no k when the branch first touched it
    assert by_key["s"].op == "set" and by_key["s"].has_from
    assert plain(getattr(by_key["s"], "from")) == "master"
    assert by_key["o"].op == "unset"  # set then unset: the first touch's from is kept
    assert staged.revision < restaged.revision

    assert [b.name for b in await client.list_branches(min_revision=restaged.revision)] == [
        "canary"
    ]
    cfg = await client.get_config("web/0", min_revision=restaged.revision)
    assert (cfg.branch, cfg.config) == ("canary", {"k": 10, "s": "canary"})
    assert (await client.get_config("web/2")).config == {"k": 1, "s": "master"}

    diff = await client.diff_branch("canary", min_revision=restaged.revision)
    assert diff.branch == "canary"
    [web_diff] = diff.applications
    assert web_diff.application == "web"
    entries = {e.path: e for e in web_diff.entries}
    assert entries["k"].kind == "changed"
    assert plain(entries["k"].old) == 1 and plain(entries["k"].new) == 10
    assert entries["s"].kind == "changed"
    assert list(web_diff.conflicts) == []

    untracked = await client.untrack_branch("canary", units=["web/1"])
    assert list(untracked.units) == ["web/1"]
    cfg = await client.get_config("web/1", min_revision=untracked.revision)
    assert cfg.branch == "" and cfg.config == {"k": 1, "s": "master"}
    by_app = await client.untrack_branch("canary", applications=["db"])
    assert list(by_app.units) == ["db/0"]

    committed = await client.commit_branch("canary", created_by="bob", reason="ship it")
    assert committed.generation == 2
    assert dict(committed.versions) == {"web": 3}
    assert list(committed.units) == ["web/0"]
    app = await client.get_application("web", min_revision=committed.revision)
    assert plain(app.settings) == {"k": 10, "s": "canary"}
    assert await client.list_branches(min_revision=committed.revision) == []
    cfg = await client.get_config("web/0", min_revision=committed.revision)
    assert cfg.branch == "" and cfg.config == {"k": 10, "s": "canary"}

    # Abort: refused while tracked (see ERRORS); forced, the units fall back to master.
    await client.add_branch("doomed")
    await client.set_branch_config("doomed", "web", {"k": 99})
    await client.track_branch("doomed", units=["web/3"])
    aborted = await client.abort_branch("doomed", force=True)
    assert list(aborted.units) == ["web/3"]
    cfg = await client.get_config("web/3", min_revision=aborted.revision)
    assert cfg.branch == "" and cfg.config == {"k": 10, "s": "canary"}
    app = await client.get_application("web", min_revision=aborted.revision)
    assert app.version == 3  # an abort changes no master

    await client.add_branch("empty")
    plain_abort = await client.abort_branch("empty")
    assert list(plain_abort.units) == []
    assert await client.list_branches(min_revision=plain_abort.revision) == []


async def test_diff_branch_lists_what_a_commit_would_refuse(client: Client) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    await client.set_config("web", {"s": "m"})
    await client.add_branch("late")
    await client.set_branch_config("late", "web", {"s": "b"})
    moved = await client.set_config("web", {"s": "m2"})
    diff = await client.diff_branch("late", min_revision=moved.revision)
    [web_diff] = diff.applications
    [conflict] = web_diff.conflicts
    assert (conflict.application, conflict.key) == ("web", "s")
    assert (getattr(conflict, "from"), conflict.current, conflict.proposed) == (
        '"m"',
        '"m2"',
        '"b"',
    )
    forced = await client.commit_branch("late", force=True)
    app = await client.get_application("web", min_revision=forced.revision)
    assert plain(app.settings) == {"s": "b"}  # force: last write wins


# -- errors ------------------------------------------------------------------------


async def seed(client: Client) -> None:
    """web (units 0-2, master s=m2, version 3), db (unit 0); branch b1 stages web.k=10
    and web/0 tracks it; b2 is empty; `conflicted` set web.s from "m" but master
    moved to "m2" since."""
    await client.create_application("web", schema=SCHEMA, units=3)
    await client.create_application("db", schema=SCHEMA, units=1)
    await client.set_config("web", {"s": "m"})
    await client.add_branch("b1", created_by="alice")
    await client.set_branch_config("b1", "web", {"k": 10})
    await client.track_branch("b1", units=["web/0"])
    await client.add_branch("b2")
    await client.add_branch("conflicted")
    await client.set_branch_config("conflicted", "web", {"s": "b"})
    await client.set_config("web", {"s": "m2"})


def version_detail(exc: ClientError) -> None:
    assert (exc.expected_version, exc.actual_version) == (1, 3)
    assert "version 3" in exc.message and "expected version 1" in exc.message


def conflict_detail(exc: ClientError) -> None:
    assert [
        (c.application, c.key, getattr(c, "from"), c.current, c.proposed) for c in exc.conflicts
    ] == [("web", "s", '"m"', '"m2"', '"b"')]
    assert exc.detail.code == "Conflict"


def mentions(*words: str) -> Callable[[ClientError], None]:
    def check(exc: ClientError) -> None:
        for word in words:
            assert word in exc.message, f"{word!r} not in {exc.message!r}"

    return check


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[Client], Awaitable[Any]]
    code: grpc.StatusCode
    check: Callable[[ClientError], None] | None = None


ERRORS: list[Case] = [
    # CreateApplication
    Case("create: bad name", lambda c: c.create_application("Web_1"), INVALID, mentions("Web_1")),
    Case(
        "create: unknown type",
        lambda c: c.create_application("new", schema={"k": {"type": "int2"}}),
        INVALID,
        mentions("int2"),
    ),
    Case(
        "create: default of the wrong type",
        lambda c: c.create_application("new", schema={"k": {"type": "int", "default": "one"}}),
        INVALID,
    ),
    Case(
        "create: bad key",
        lambda c: c.create_application("new", schema={"9k": {"type": "int"}}),
        INVALID,
    ),
    Case("create: too many units", lambda c: c.create_application("new", units=1001), INVALID),
    Case("create: negative units", lambda c: c.create_application("new", units=-1), INVALID),
    Case("create: exists", lambda c: c.create_application("web"), EXISTS, mentions("web")),
    # UpdateApplication
    Case("update: nothing to do", lambda c: c.update_application("web"), INVALID),
    Case("update: bad name", lambda c: c.update_application("Web", charm="c"), INVALID),
    Case("update: empty charm", lambda c: c.update_application("web", charm=""), INVALID),
    Case(
        "update: bad schema",
        lambda c: c.update_application("web", schema={"k": {"type": "nope"}}),
        INVALID,
    ),
    Case("update: unknown app", lambda c: c.update_application("nope", charm="c"), NOT_FOUND),
    Case(
        "update: schema drops a key in use",
        lambda c: c.update_application("web", schema={"k": {"type": "int"}}),
        PRECONDITION,
        mentions("'s'"),
    ),
    # RemoveApplication
    Case("remove app: bad name", lambda c: c.remove_application("-web"), INVALID),
    Case("remove app: unknown", lambda c: c.remove_application("nope"), NOT_FOUND),
    # GetApplication
    Case("get app: bad name", lambda c: c.get_application("Web"), INVALID),
    Case("get app: unknown", lambda c: c.get_application("nope"), NOT_FOUND),
    # AddUnits
    Case("add units: unknown app", lambda c: c.add_units("nope", count=1), NOT_FOUND),
    Case("add units: bad app name", lambda c: c.add_units("No", count=1), INVALID),
    Case("add units: neither count nor names", lambda c: c.add_units("web"), INVALID),
    Case("add units: both", lambda c: c.add_units("web", count=1, names=["web/9"]), INVALID),
    Case("add units: other app's name", lambda c: c.add_units("web", names=["db/9"]), INVALID),
    Case("add units: bad unit name", lambda c: c.add_units("web", names=["web/x"]), INVALID),
    Case("add units: twice", lambda c: c.add_units("web", names=["web/9", "web/9"]), INVALID),
    Case("add units: too many", lambda c: c.add_units("web", count=1001), INVALID),
    Case("add units: number used", lambda c: c.add_units("web", names=["web/1"]), EXISTS),
    # RemoveUnit
    Case("remove unit: bad name", lambda c: c.remove_unit("web"), INVALID),
    Case("remove unit: unknown", lambda c: c.remove_unit("web/99"), NOT_FOUND),
    # ListUnits
    Case("list units: bad app name", lambda c: c.list_units("Web"), INVALID),
    Case("list units: unknown app", lambda c: c.list_units("nope"), NOT_FOUND),
    # SetConfig
    Case("set: unknown key", lambda c: c.set_config("web", {"zz": 1}), INVALID, mentions("zz")),
    Case("set: string for int", lambda c: c.set_config("web", {"k": "abc"}), INVALID),
    Case("set: float for int", lambda c: c.set_config("web", {"k": 1.5}), INVALID),
    Case("set: int for string", lambda c: c.set_config("web", {"s": 5}), INVALID),
    Case("set: list for object", lambda c: c.set_config("web", {"o": [1]}), INVALID),
    Case("set: nothing", lambda c: c.set_config("web"), INVALID),
    Case("set: set and unset", lambda c: c.set_config("web", {"k": 2}, unset=["k"]), INVALID),
    Case("set: unset unknown key", lambda c: c.set_config("web", unset=["zz"]), INVALID),
    Case("set: bad app name", lambda c: c.set_config("Web", {"k": 2}), INVALID),
    Case("set: unknown app", lambda c: c.set_config("nope", {"k": 2}), NOT_FOUND),
    Case(
        "set: expected_version",
        lambda c: c.set_config("web", {"k": 2}, expected_version=1),
        ABORTED,
        version_detail,
    ),
    # AddBranch
    Case("add branch: bad name", lambda c: c.add_branch("Bad Name"), INVALID),
    Case("add branch: exists", lambda c: c.add_branch("b1"), EXISTS),
    # TrackBranch
    Case("track: nothing", lambda c: c.track_branch("b2"), INVALID),
    Case("track: bad unit name", lambda c: c.track_branch("b2", units=["web"]), INVALID),
    Case("track: bad branch name", lambda c: c.track_branch("B", units=["web/1"]), INVALID),
    Case("track: count without app", lambda c: c.track_branch("b2", count=1), INVALID),
    Case("track: unknown branch", lambda c: c.track_branch("zz", units=["web/1"]), NOT_FOUND),
    Case("track: unknown unit", lambda c: c.track_branch("b2", units=["web/99"]), NOT_FOUND),
    Case("track: unknown app", lambda c: c.track_branch("b2", applications=["nope"]), NOT_FOUND),
    Case(
        "track: unit on another branch",
        lambda c: c.track_branch("b2", units=["web/1", "web/0"]),
        PRECONDITION,
        mentions("web/0", "'b1'"),
    ),
    Case(
        "track: app with a unit on another branch",
        lambda c: c.track_branch("b2", applications=["web"]),
        PRECONDITION,
        mentions("web/0"),
    ),
    Case(
        "track: not enough free units",
        lambda c: c.track_branch("b2", application="web", count=3),
        PRECONDITION,
    ),
    # UntrackBranch
    Case("untrack: nothing", lambda c: c.untrack_branch("b1"), INVALID),
    Case("untrack: bad unit", lambda c: c.untrack_branch("b1", units=["web-0"]), INVALID),
    Case("untrack: bad branch", lambda c: c.untrack_branch("B1", units=["web/0"]), INVALID),
    Case("untrack: unknown branch", lambda c: c.untrack_branch("zz", units=["web/0"]), NOT_FOUND),
    Case("untrack: unknown unit", lambda c: c.untrack_branch("b1", units=["web/99"]), NOT_FOUND),
    Case(
        "untrack: unit not on it",
        lambda c: c.untrack_branch("b1", units=["web/0", "web/1"]),
        PRECONDITION,
        mentions("web/1"),
    ),
    Case(
        "untrack: app not tracked whole",
        lambda c: c.untrack_branch("b1", applications=["web"]),
        PRECONDITION,
    ),
    # SetBranchConfig
    Case("branch set: unknown key", lambda c: c.set_branch_config("b1", "web", {"zz": 1}), INVALID),
    Case("branch set: wrong type", lambda c: c.set_branch_config("b1", "web", {"k": "x"}), INVALID),
    Case("branch set: nothing", lambda c: c.set_branch_config("b1", "web"), INVALID),
    Case(
        "branch set: set and unset",
        lambda c: c.set_branch_config("b1", "web", {"k": 3}, unset=["k"]),
        INVALID,
    ),
    Case(
        "branch set: unset unknown",
        lambda c: c.set_branch_config("b1", "web", unset=["zz"]),
        INVALID,
    ),
    Case("branch set: bad branch", lambda c: c.set_branch_config("B", "web", {"k": 3}), INVALID),
    Case(
        "branch set: unknown branch",
        lambda c: c.set_branch_config("zz", "web", {"k": 3}),
        NOT_FOUND,
    ),
    Case(
        "branch set: unknown app",
        lambda c: c.set_branch_config("b1", "nope", {"k": 3}),
        NOT_FOUND,
    ),
    # DiffBranch
    Case("diff: bad name", lambda c: c.diff_branch("B"), INVALID),
    Case("diff: unknown", lambda c: c.diff_branch("zz"), NOT_FOUND),
    # CommitBranch
    Case("commit: bad name", lambda c: c.commit_branch("B"), INVALID),
    Case("commit: unknown", lambda c: c.commit_branch("zz"), NOT_FOUND),
    Case(
        "commit: conflict", lambda c: c.commit_branch("conflicted"), PRECONDITION, conflict_detail
    ),
    # AbortBranch
    Case("abort: bad name", lambda c: c.abort_branch("B"), INVALID),
    Case("abort: unknown", lambda c: c.abort_branch("zz"), NOT_FOUND),
    Case(
        "abort: units track it",
        lambda c: c.abort_branch("b1"),
        PRECONDITION,
        mentions("web/0", "force"),
    ),
    # GetBranch
    Case("get branch: bad name", lambda c: c.get_branch("B"), INVALID),
    Case("get branch: unknown", lambda c: c.get_branch("zz"), NOT_FOUND),
]


async def test_every_error_is_typed_and_writes_nothing(
    client: Client, subtests: pytest.Subtests
) -> None:
    await seed(client)
    before = await settled_model(client)
    assert set(before["branches"]) == {"b1", "b2", "conflicted"}  # the barrier leaves no trace
    for case in ERRORS:
        with subtests.test(case.name):
            try:
                with pytest.raises(ClientError) as caught:
                    await case.call(client)
            finally:
                # Whatever happened, the next case compares against the model as it is.
                previous, before = before, await settled_model(client)
            assert before == previous, f"{case.name}: a rejected request changed the model"
            error = assert_code(caught.value, case.code)
            assert error.detail.code, "the genconf error class travels in the details"
            if case.check is not None:
                case.check(error)


async def test_reads_waiting_for_a_future_revision_end_unavailable(srv: RunningServer) -> None:
    """min_revision beyond the cache, and a short deadline: UNAVAILABLE (retry elsewhere),
    not a hang and not DEADLINE_EXCEEDED."""
    future = srv.read.cache.revision + (3600 << 32)
    reads: dict[str, Callable[[Client], Awaitable[Any]]] = {
        "GetApplication": lambda c: c.get_application("web", min_revision=future),
        "ListApplications": lambda c: c.list_applications(min_revision=future),
        "ListUnits": lambda c: c.list_units(min_revision=future),
        "DiffBranch": lambda c: c.diff_branch("b1", min_revision=future),
        "ListBranches": lambda c: c.list_branches(min_revision=future),
        "GetBranch": lambda c: c.get_branch("b1", min_revision=future),
    }
    outcomes: dict[str, Any] = {}

    async def attempt(name: str, client: Client) -> None:
        try:
            outcomes[name] = await reads[name](client)
        except ClientError as exc:
            outcomes[name] = exc

    async with Client(srv.address, timeout=1.0) as client:
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for name in reads:
                    tg.start_soon(attempt, name, client)
    for name, outcome in outcomes.items():
        error = assert_code(outcome, UNAVAILABLE)
        assert "revision" in error.message, name
    assert set(outcomes) == set(reads)
