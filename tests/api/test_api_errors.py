"""ControllerService's errors end to end: every error code an RPC can return is in
the `ERRORS` table, each checked to be typed and to have written nothing (the whole
model, read through Snapshot after a barrier write, is unchanged).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from support.rpcs import INVALID
from support.servers import assert_code, settled_model

from genconf.client import Client
from genconf.errors import ClientError

SCHEMA: dict[str, Any] = {
    "k": {"type": "int", "default": 1, "description": "a number"},
    "s": {"type": "string", "default": "x"},
    "o": {"type": "object"},
}

NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXISTS = grpc.StatusCode.ALREADY_EXISTS
ABORTED = grpc.StatusCode.ABORTED
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


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


def unit_list_cases(
    verb: str, method: str, branch: str, unit: str, *, bad_unit: str, bad_branch: str
) -> list[Case]:
    """The refusals TrackBranch and UntrackBranch share, on a seeded ``branch`` and
    ``unit`` (``method`` names the `Client` call)."""

    def call(*args: Any, **kwargs: Any) -> Callable[[Client], Awaitable[Any]]:
        return lambda c: getattr(c, method)(*args, **kwargs)

    return [
        Case(f"{verb}: nothing", call(branch), INVALID),
        Case(f"{verb}: bad unit name", call(branch, units=[bad_unit]), INVALID),
        Case(f"{verb}: bad branch name", call(bad_branch, units=[unit]), INVALID),
        Case(f"{verb}: unknown branch", call("zz", units=[unit]), NOT_FOUND),
        Case(f"{verb}: unknown unit", call(branch, units=["web/99"]), NOT_FOUND),
    ]


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
    *unit_list_cases("track", "track_branch", "b2", "web/1", bad_unit="web", bad_branch="B"),
    Case("track: count without app", lambda c: c.track_branch("b2", count=1), INVALID),
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
    *unit_list_cases("untrack", "untrack_branch", "b1", "web/0", bad_unit="web-0", bad_branch="B1"),
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
