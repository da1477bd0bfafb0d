"""Branch hygiene against a real mongod: `Store.rebase_branch` (master's current values
become the staged keys' starting point, their targets kept), `Store.drop_branch_key`,
and `Store.expire_branches` (a forced abort at the branch's expiry, one transaction
per branch that checks the expiry again), with the races each one is built for.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from pymongo.asynchronous.client_session import AsyncClientSession
from support.model_check import stored_configs
from support.servers import store_digest

from genconf.domain.transfer import format_time
from genconf.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from genconf.store.branches import MAX_BRANCH_LIFETIME, expiry_after
from genconf.store.documents import APPLICATIONS, BRANCHES, UNITS
from genconf.store.invariants import check_database
from genconf.store.store import Store

SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 80},
    "motd": {"type": "string"},
    "level": {"type": "int"},
}
HOUR = dt.timedelta(hours=1)


async def staged(store: Store, branch: str) -> dict[str, dict[str, Any]]:
    """The branch document's changes: {app: {key: {op, value?, from?}}}."""
    return dict((await store.load())[BRANCHES][branch]["changes"])


async def master(store: Store, app: str) -> dict[str, Any]:
    return dict((await store.load())[APPLICATIONS][app]["settings"])


async def branch_of(store: Store, unit: str) -> str | None:
    doc = await store.db[UNITS].find_one({"_id": unit})
    assert doc is not None
    return doc["branch"]


async def conflicted_canary(store: Store) -> None:
    """``canary`` (tracked by web/0) staged three keys; master moved all three since."""
    await store.create_application("web", schema=SCHEMA, units=2)
    await store.set_config("web", {"port": 8080, "motd": "hi"})
    await store.add_branch("canary")
    await store.track_branch("canary", units=["web/0"])
    await store.set_branch_config("canary", "web", {"port": 9090, "level": 3}, unset=["motd"])
    await store.set_config("web", {"port": 9000, "motd": "bye", "level": 1})


# -- rebase --------------------------------------------------------------------------------


async def test_rebase_lets_a_conflicted_commit_through_with_the_branch_targets(
    store: Store,
) -> None:
    await conflicted_canary(store)
    with pytest.raises(Conflict) as refused:
        await store.commit_branch("canary")
    message = refused.value.message
    assert "conflicts with master on 3 key(s)" in message
    assert "web.port (from 8080, master now 9000, branch 'canary' wants 9090)" in message
    assert "`genconf branch rebase canary` to take master's current values" in message
    assert "`genconf branch drop canary web level` to drop a key" in message
    assert "or pass force to overwrite (last write wins)" in message
    assert [k.key for k in refused.value.keys] == ["level", "motd", "port"]

    seen = (await stored_configs(store))["web/0"]
    await store.rebase_branch("canary")
    assert await staged(store, "canary") == {
        "web": {
            "port": {"op": "set", "value": 9090, "from": 9000},
            "motd": {"op": "unset", "from": "bye"},
            "level": {"op": "set", "value": 3, "from": 1},
        }
    }
    assert (await stored_configs(store))["web/0"] == seen  # the targets did not move

    committed = await store.commit_branch("canary")
    assert committed.versions == {"web": 4} and committed.units == ["web/0"]
    assert await master(store, "web") == {"port": 9090, "level": 3}
    assert await check_database(store.db) == []


async def test_rebase_of_named_keys_or_applications_leaves_the_others(store: Store) -> None:
    await store.create_application("web", schema=SCHEMA)
    await store.create_application("db", schema=SCHEMA)
    await store.add_branch("b")
    await store.set_branch_config("b", "web", {"port": 1, "motd": "w"})
    await store.set_branch_config("b", "db", {"port": 2, "level": 5})
    await store.set_config("web", {"port": 10, "motd": "m"})
    await store.set_config("db", {"port": 20, "level": 50})

    await store.rebase_branch("b", keys=["port"], applications=["web"])
    changes = await staged(store, "b")
    assert changes["web"]["port"] == {"op": "set", "value": 1, "from": 10}
    assert "from" not in changes["web"]["motd"]  # master held no motd when it was staged
    assert "from" not in changes["db"]["port"] and "from" not in changes["db"]["level"]

    await store.rebase_branch("b", keys=["level"])  # every application that stages it
    changes = await staged(store, "b")
    assert changes["db"]["level"]["from"] == 50 and "from" not in changes["db"]["port"]

    await store.rebase_branch("b", applications=["db"])
    changes = await staged(store, "b")
    assert changes["db"]["port"]["from"] == 20 and "from" not in changes["web"]["motd"]


async def test_rebase_keeps_a_key_master_already_holds_and_it_commits_as_no_change(
    store: Store,
) -> None:
    await store.create_application("web", schema=SCHEMA)
    await store.add_branch("b")
    await store.set_branch_config("b", "web", {"port": 9090, "motd": "new"})
    await store.set_config("web", {"port": 9090, "motd": "other"})
    await store.rebase_branch("b")
    changes = (await staged(store, "b"))["web"]
    assert changes["port"] == {"op": "set", "value": 9090, "from": 9090}
    await store.commit_branch("b")
    assert await master(store, "web") == {"port": 9090, "motd": "new"}


async def test_rebase_refusals_name_what_is_staged_and_write_nothing(store: Store) -> None:
    await store.create_application("web", schema=SCHEMA)
    await store.create_application("db", schema=SCHEMA)
    await store.add_branch("empty")
    await store.add_branch("b")
    await store.set_branch_config("b", "web", {"port": 1, "motd": "x"})
    await store.set_config("web", {"port": 2})
    before = await store_digest(store.db)

    with pytest.raises(FailedPrecondition, match="'empty' stages no change: nothing to rebase"):
        await store.rebase_branch("empty")
    with pytest.raises(NotFound) as unknown:
        await store.rebase_branch("b", keys=["prot", "port"])
    assert unknown.value.message == (
        "branch 'b' stages no key 'prot'; it stages web.motd, web.port"
    )
    with pytest.raises(
        NotFound, match=re.escape("stages no key 'level' for web; it stages web.motd")
    ):
        await store.rebase_branch("b", keys=["level"], applications=["web"])
    with pytest.raises(
        NotFound, match=re.escape("stages nothing for application(s) db; it stages")
    ):
        await store.rebase_branch("b", applications=["db", "web"])
    with pytest.raises(NotFound, match="branch 'gone' not found"):
        await store.rebase_branch("gone")
    with pytest.raises(InvalidArgument):
        await store.rebase_branch("b", applications=["Not An App"])
    assert await store_digest(store.db) == before


async def test_rebase_and_a_master_write_serialize(store: Store, mongo_uri: str) -> None:
    """The rebase reads the application under its fence: whichever of the two commits
    second saw the first. A rebase after the master write takes its value (the commit
    goes through); one before it keeps the old value (the commit conflicts)."""
    other = Store.connect(mongo_uri, store.db.name)
    try:
        await store.create_application("web", schema=SCHEMA)
        for r in range(12):
            branch = f"b{r}"
            await store.set_config("web", {"port": 1000 + r})
            await store.add_branch(branch)
            await store.set_branch_config(branch, "web", {"port": 9000 + r})
            written, rebased = await asyncio.gather(
                other.set_config("web", {"port": 2000 + r}), store.rebase_branch(branch)
            )
            after = rebased.revision > written.revision
            start = (await staged(store, branch))["web"]["port"]["from"]
            assert start == (2000 + r if after else 1000 + r), f"round {r}"
            if after:
                await store.commit_branch(branch)
                assert (await master(store, "web"))["port"] == 9000 + r
            else:
                with pytest.raises(Conflict):
                    await store.commit_branch(branch)
                await store.abort_branch(branch)
        assert await check_database(store.db) == []
    finally:
        await other.aclose()


# -- drop ----------------------------------------------------------------------------------


async def test_drop_removes_one_key_and_its_units_see_master_again(store: Store) -> None:
    await store.create_application("web", schema=SCHEMA, units=2)
    await store.set_config("web", {"port": 8080})
    await store.add_branch("canary")
    await store.track_branch("canary", units=["web/0"])
    await store.set_branch_config("canary", "web", {"port": 9090, "motd": "hi"})
    assert (await stored_configs(store))["web/0"]["port"] == 9090

    await store.drop_branch_key("canary", "web", "port")
    assert await staged(store, "canary") == {"web": {"motd": {"op": "set", "value": "hi"}}}
    configs = await stored_configs(store)
    assert configs["web/0"] == {"port": 8080, "motd": "hi"}

    await store.drop_branch_key("canary", "web", "motd")
    assert await staged(store, "canary") == {}  # no empty entry for web is left behind
    configs = await stored_configs(store)
    assert configs["web/0"] == configs["web/1"] == {"port": 8080}
    assert await branch_of(store, "web/0") == "canary"  # it still tracks the branch
    assert await check_database(store.db) == []


async def test_drop_refusals_name_what_is_staged_and_write_nothing(store: Store) -> None:
    await store.create_application("web", schema=SCHEMA)
    await store.add_branch("b")
    await store.add_branch("empty")
    await store.set_branch_config("b", "web", {"port": 1})
    before = await store_digest(store.db)
    with pytest.raises(NotFound) as unknown:
        await store.drop_branch_key("b", "web", "motd")
    assert unknown.value.message == (
        "branch 'b' stages no key 'motd' for application 'web'; it stages web.port"
    )
    with pytest.raises(
        NotFound, match=re.escape("no key 'port' for application 'db'; it stages web.port")
    ):
        await store.drop_branch_key("b", "db", "port")
    with pytest.raises(NotFound, match="it stages nothing"):
        await store.drop_branch_key("empty", "web", "port")
    with pytest.raises(NotFound, match="branch 'gone' not found"):
        await store.drop_branch_key("gone", "web", "port")
    with pytest.raises(InvalidArgument, match="give the key to drop"):
        await store.drop_branch_key("b", "web", "")
    assert await store_digest(store.db) == before


# -- expiry --------------------------------------------------------------------------------


async def test_expires_at_is_checked_when_the_branch_is_added(store: Store) -> None:
    now = store.clock()
    before = await store_digest(store.db)
    with pytest.raises(InvalidArgument, match="which is not in the future"):
        await store.add_branch("b", expires_at=now - HOUR)
    with pytest.raises(InvalidArgument, match="at most 3650 days"):
        await store.add_branch("b", expires_at=now + MAX_BRANCH_LIFETIME + HOUR)
    with pytest.raises(InvalidArgument, match="time zone"):
        await store.add_branch("b", expires_at=dt.datetime(2999, 1, 1))
    assert await store_digest(store.db) == before
    with pytest.raises(InvalidArgument, match="must not be negative"):
        expiry_after(now, -1)
    with pytest.raises(InvalidArgument, match="at most 315360000"):
        expiry_after(now, 315360001)
    assert expiry_after(now, 0) is None and expiry_after(now, 60) == now + dt.timedelta(seconds=60)


async def test_expire_aborts_branches_past_their_expiry_and_leaves_the_others(
    store: Store,
) -> None:
    now = store.clock()
    await store.create_application("web", schema=SCHEMA, units=3)
    await store.add_branch("soon", expires_at=now + HOUR)
    await store.add_branch("later", expires_at=now + 3 * HOUR)
    await store.add_branch("never")
    await store.track_branch("soon", units=["web/0", "web/1"])
    await store.track_branch("later", units=["web/2"])
    await store.set_branch_config("soon", "web", {"port": 1})
    stored = (await store.load())[BRANCHES]
    assert abs(stored["soon"]["expires_at"] - (now + HOUR)) < dt.timedelta(milliseconds=1)
    assert "expires_at" not in stored["never"]

    assert await store.expire_branches(now) == []
    assert await store.expire_branches(now + 2 * HOUR) == ["soon"]
    assert set((await store.load())[BRANCHES]) == {"later", "never"}
    assert [await branch_of(store, u) for u in ("web/0", "web/1", "web/2")] == [
        None,
        None,
        "later",
    ]
    assert await store.expire_branches(now + 2 * HOUR) == []
    assert await store.expire_branches(now + 3 * HOUR) == ["later"]  # at its expiry exactly
    assert set((await store.load())[BRANCHES]) == {"never"}
    assert await check_database(store.db) == []


async def test_expire_checks_again_inside_its_transaction(store: Store, mongo_uri: str) -> None:
    """Between the look for expired branches and the abort, another writer gives one a
    later expiry, or commits it: the abort leaves it alone (the guard seam runs first
    in the transaction, before it reads anything)."""
    other = Store.connect(mongo_uri, store.db.name)
    try:
        now = store.clock()
        await store.create_application("web", schema=SCHEMA, units=1)
        await store.add_branch("moved", expires_at=now + HOUR)
        await store.add_branch("committed", expires_at=now + HOUR)
        await store.track_branch("committed", units=["web/0"])
        await store.set_branch_config("committed", "web", {"port": 7})
        meanwhile = {
            "moved": lambda: other.db[BRANCHES].update_one(
                {"_id": "moved"}, {"$set": {"expires_at": now + 5 * HOUR}}
            ),
            "committed": lambda: other.commit_branch("committed"),
        }
        done: set[str] = set()

        async def guard(s: AsyncClientSession) -> None:
            for name, write in meanwhile.items():
                if name not in done:  # once each, whichever transaction comes first
                    done.add(name)
                    await write()

        assert await store.expire_branches(now + 2 * HOUR, guard=guard) == []
        assert done == {"moved", "committed"}
        assert set((await store.load())[BRANCHES]) == {"moved"}
        assert await master(store, "web") == {"port": 7}  # the commit went through
        assert await store.expire_branches(now + 5 * HOUR) == ["moved"]
    finally:
        await other.aclose()


async def test_two_expirers_at_once_abort_each_branch_once(store: Store, mongo_uri: str) -> None:
    other = Store.connect(mongo_uri, store.db.name)
    try:
        now = store.clock()
        await store.create_application("web", schema=SCHEMA, units=12)
        names = [f"b{n:02d}" for n in range(12)]
        for n, name in enumerate(names):
            await store.add_branch(name, expires_at=now + HOUR)
            await store.track_branch(name, units=[f"web/{n}"])
        first, second = await asyncio.gather(
            store.expire_branches(now + HOUR), other.expire_branches(now + HOUR)
        )
        assert sorted(first + second) == names  # each one aborted, by exactly one caller
        assert (await store.load())[BRANCHES] == {}
        assert await store.db[UNITS].count_documents({"branch": {"$ne": None}}) == 0
        assert await check_database(store.db) == []
    finally:
        await other.aclose()


async def test_expire_and_commit_race_and_exactly_one_wins(store: Store, mongo_uri: str) -> None:
    other = Store.connect(mongo_uri, store.db.name)
    try:
        now = store.clock()
        await store.create_application("web", schema=SCHEMA, units=1)
        for r in range(10):
            name = f"b{r}"
            await store.add_branch(name, expires_at=now + HOUR)
            await store.track_branch(name, units=["web/0"])
            await store.set_branch_config(name, "web", {"port": 100 + r})
            committed, expired = await asyncio.gather(
                other.commit_branch(name),
                store.expire_branches(now + HOUR),
                return_exceptions=True,
            )
            if expired == [name]:
                assert isinstance(committed, NotFound), f"round {r}: {committed!r}"
                assert (await master(store, "web")).get("port") != 100 + r
            else:
                assert expired == [], f"round {r}: {expired!r}"
                assert not isinstance(committed, BaseException), f"round {r}: {committed!r}"
                assert (await master(store, "web"))["port"] == 100 + r
            assert (await store.load())[BRANCHES] == {}
            assert await branch_of(store, "web/0") is None
        assert await check_database(store.db) == []
    finally:
        await other.aclose()


# -- export and import ---------------------------------------------------------------------


async def test_export_carries_the_expiry_and_import_restores_it(
    store: Store, mongo_uri: str
) -> None:
    """A branch's ``expires_at`` travels in its record; a branch without one has no
    such field (so older exports, which never have it, still import as they are)."""
    expires_at = store.clock() + HOUR
    await store.create_application("web", schema=SCHEMA, units=1)
    await store.add_branch("soon", expires_at=expires_at)
    await store.add_branch("never")
    await store.track_branch("soon", units=["web/0"])
    texts = [text async for _, text in store.export_model()]
    branches = {r["name"]: r for r in map(json.loads, texts) if r["record"] == "branch"}
    assert branches["soon"]["expires_at"] == format_time(expires_at)
    assert "expires_at" not in branches["never"]

    target = Store.connect(mongo_uri, "t_" + uuid4().hex[:12])
    try:
        await target.ensure_schema()

        async def records() -> AsyncIterator[str]:
            for text in texts:
                yield text

        steps = [step async for step in target.import_model(records())]
        assert steps[-1].done
        stored = (await target.load())[BRANCHES]
        assert abs(stored["soon"]["expires_at"] - expires_at) < dt.timedelta(milliseconds=1)
        assert "expires_at" not in stored["never"]
        again = [text async for _, text in target.export_model()]
        assert again[1:] == texts[1:]  # the same bytes, but for the header's time
        assert await target.expire_branches(expires_at) == ["soon"]
    finally:
        await target.client.drop_database(target.db.name)
        await target.aclose()
