"""Legal requests racing each other cannot corrupt the model (issue: write skew).

Each scenario races two write RPCs from two clients (two channels) against one
real server and MongoDB, ROUNDS times. After every round the model's invariants
hold in MongoDB's documents, and the server's Snapshot and every unit's
GetConfig equal what those documents say. Each race was seen to break an
invariant in nearly every round before transactions fenced what they read.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pymongo import MongoClient
from support.model_check import assert_consistent, mongo_violations
from support.servers import settled_model

from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.errors import ClientError

ROUNDS = 25
SCHEMA = {"port": {"type": "int", "default": 80}, "level": {"type": "string", "default": "info"}}


@pytest.fixture
async def pair(srv: RunningServer) -> AsyncIterator[tuple[Client, Client]]:
    """Two clients on two channels, so the two requests really travel side by side."""
    async with Client(srv.address, timeout=30) as a, Client(srv.address, timeout=30) as b:
        yield a, b


Outcome = str


async def race(first: Awaitable[Any], second: Awaitable[Any]) -> tuple[Outcome, Outcome]:
    """Run two requests at once; each outcome is 'ok' or the status code's name."""
    results = await asyncio.gather(first, second, return_exceptions=True)
    outcomes = []
    for result in results:
        if isinstance(result, ClientError):
            outcomes.append(result.code.name)
        elif isinstance(result, BaseException):
            raise result
        else:
            outcomes.append("ok")
    return outcomes[0], outcomes[1]


async def app_and_branch(a: Client, prefix: str, r: int, units: int) -> tuple[str, str]:
    """Round ``r``'s own application (with ``units`` units) and empty branch."""
    app, branch = f"{prefix}{r}", f"{prefix}-b{r}"
    await a.create_application(app, schema=SCHEMA, units=units)
    await a.add_branch(branch)
    return app, branch


Round = Callable[[Client, Client, int], Awaitable[tuple[Outcome, Outcome]]]


async def run_rounds(
    pair: tuple[Client, Client],
    mongo_client: MongoClient[dict[str, Any]],
    db_name: str,
    one_round: Round,
    name: str,
) -> Counter[tuple[Outcome, Outcome]]:
    a, b = pair
    seen: Counter[tuple[Outcome, Outcome]] = Counter()
    for r in range(ROUNDS):
        seen[await one_round(a, b, r)] += 1
        await assert_consistent(a, mongo_client, db_name, f"{name} round {r}")
    print(f"\n{name}: outcomes over {ROUNDS} rounds: {dict(seen)}")
    return seen


async def test_track_racing_commit(
    pair: tuple[Client, Client], mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    """No unit is left tracking the committed branch, so a later branch of the same
    name reaches nobody."""

    async def one(a: Client, b: Client, r: int) -> tuple[Outcome, Outcome]:
        app, branch = await app_and_branch(a, "tc", r, units=2)
        await a.set_branch_config(branch, app, {"port": 8080})
        outcome = await race(
            a.track_branch(branch, units=[f"{app}/0"]), b.commit_branch(branch, force=True)
        )
        assert not mongo_violations(mongo_client, db_name)
        # The same name again: nobody tracked it.
        again = await a.add_branch(branch)
        tracking = [
            u.name for u in await a.list_units(app, min_revision=again.revision) if u.branch
        ]
        assert tracking == [], tracking
        await a.abort_branch(branch)
        return outcome

    seen = await run_rounds(pair, mongo_client, db_name, one, "track vs commit")
    assert sum(seen.values()) == ROUNDS


async def test_add_units_racing_track_of_the_whole_application(
    pair: tuple[Client, Client], mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    """A unit added while the application becomes tracked as a whole tracks the branch."""

    async def one(a: Client, b: Client, r: int) -> tuple[Outcome, Outcome]:
        app, branch = await app_and_branch(a, "at", r, units=1)
        outcome = await race(a.add_units(app, count=1), b.track_branch(branch, applications=[app]))
        await settled_model(a)  # a's cache has b's write too: a barrier write, then read
        units = await a.list_units(app)
        assert outcome == ("ok", "ok")
        assert {u.branch for u in units} == {branch}, [(u.name, u.branch) for u in units]
        return outcome

    await run_rounds(pair, mongo_client, db_name, one, "add units vs track application")


async def test_add_units_racing_forced_abort(
    pair: tuple[Client, Client], mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    """A unit added while the branch tracking its application is aborted tracks nothing."""

    async def one(a: Client, b: Client, r: int) -> tuple[Outcome, Outcome]:
        app, branch = await app_and_branch(a, "ab", r, units=1)
        await a.track_branch(branch, applications=[app])
        outcome = await race(a.add_units(app, count=1), b.abort_branch(branch, force=True))
        assert outcome == ("ok", "ok")
        return outcome

    await run_rounds(pair, mongo_client, db_name, one, "add units vs forced abort")


async def committed_or_empty(client: Client, branch: str, seen: Any) -> None:
    """Commit ``branch``: it must work when it stages a change, and be refused as
    empty (then aborted) when it stages none."""
    if any(group.changes for group in seen.changes):
        await client.commit_branch(branch)
        return
    with pytest.raises(ClientError, match="nothing to commit"):
        await client.commit_branch(branch)
    await client.abort_branch(branch, force=True)


@pytest.mark.parametrize("write", ["set-branch-config", "track-application"])
async def test_branch_writes_racing_remove_application(
    pair: tuple[Client, Client],
    mongo_client: MongoClient[dict[str, Any]],
    db_name: str,
    write: str,
) -> None:
    """Staging or tracking on a branch while the application is removed leaves the
    branch holding nothing of it: a re-created application of that name inherits
    nothing, and the branch, now empty, has nothing to commit."""

    async def one(a: Client, b: Client, r: int) -> tuple[Outcome, Outcome]:
        app, branch = await app_and_branch(a, "rm", r, units=1)
        staged = (
            a.set_branch_config(branch, app, {"port": 8080})
            if write == "set-branch-config"
            else a.track_branch(branch, applications=[app])
        )
        outcome = await race(staged, b.remove_application(app, force=True))
        assert not mongo_violations(mongo_client, db_name)
        await a.create_application(app, schema=SCHEMA, units=1)
        fresh = await a.get_branch(branch)
        assert app not in fresh.track_applications
        assert app not in {c.application for c in fresh.changes}
        await committed_or_empty(a, branch, fresh)
        return outcome

    await run_rounds(pair, mongo_client, db_name, one, f"{write} vs remove application")


async def test_schema_change_racing_branch_config(
    pair: tuple[Client, Client], mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    """Turning `port` into a string while a branch stages port=8080: either the schema
    change is refused (the value is in use) or the staging is (wrong type); a
    commit never writes an int into a string key."""

    async def one(a: Client, b: Client, r: int) -> tuple[Outcome, Outcome]:
        app, branch = await app_and_branch(a, "sc", r, units=2)
        await a.track_branch(branch, units=[f"{app}/0"])
        as_string = {**SCHEMA, "port": {"type": "string", "default": "80"}}
        outcome = await race(
            a.update_application(app, schema=as_string),
            b.set_branch_config(branch, app, {"port": 8080}),
        )
        assert outcome.count("ok") == 1, outcome
        await committed_or_empty(a, branch, await a.get_branch(branch))
        return outcome

    seen = await run_rounds(pair, mongo_client, db_name, one, "schema change vs branch config")
    assert all(o.count("ok") == 1 for o in seen)
