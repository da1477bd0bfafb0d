"""Identity end to end: who a write records, and agent tokens bound to one incarnation.

Real mongod, real servers on loopback. With authentication on, the author of a
write is the caller's token (the name a client claims is only "on behalf of");
without it, the claimed name, marked unauthenticated. An agent token names a unit
and the uid it had when the token was minted: once that unit is removed (or its
application re-created under the same name), the token is refused and its open
streams end UNAUTHENTICATED, whatever the new unit of that name holds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import anyio
import pytest
from pymongo import MongoClient
from support.cli_runner import Genconf, clean_env
from support.rpcs import CALL_TIMEOUT, INVALID, UNAUTHENTICATED
from support.servers import BOOTSTRAP, admin_session, assert_code

from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.domain.records import Unit
from genconf.errors import ClientError
from genconf.security import auth
from genconf.security.tokenbook import TokenBook

SCHEMA = {
    "port": {"type": "int", "default": 80},
    "pin": {"type": "string", "secret": True, "default": "0000"},
}
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


# -- who a write records ---------------------------------------------------------------


async def test_a_forged_author_is_only_on_behalf_of_the_real_principal(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]], tmp_path: Path
) -> None:
    """The client says "mallory" or "root"; the records say which token wrote them."""
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        created = await admin.create_token("controller", name="deploy-bot")
        assert (created.info.name, created.info.unit_uid) == ("deploy-bot", "")
        token_id = created.info.id
        me = f"deploy-bot (token {token_id})"
        async with Client(srv.address, token=created.token, timeout=CALL_TIMEOUT) as bot:
            await bot.create_application("web", schema=SCHEMA, units=1, created_by="mallory")
            await bot.set_config("web", {"port": 81}, created_by="root")
            await bot.add_branch("canary", created_by="mallory")
            await bot.track_branch("canary", units=["web/0"])
            staged = await bot.set_branch_config("canary", "web", {"port": 82})
            branch = await bot.get_branch("canary", min_revision=staged.revision)
            listed = await bot.list_branches()
            committed = await bot.commit_branch("canary", created_by="root")
            rolled = await bot.rollback("web", 2, created_by="mallory")
            reverted = await bot.revert_generation(rolled.generation, created_by="eve")
        # The bootstrap token has a name too; a write without a claimed name is just it.
        by_admin = await admin.set_config("web", {"port": 83})

        assert (branch.created_by, branch.on_behalf_of, branch.authenticated) == (
            me,
            "mallory",
            True,
        )
        assert [(b.created_by, b.on_behalf_of) for b in listed] == [(me, "mallory")]
        versions = (await admin.list_versions("web")).versions
        claimed = {1: "mallory", 2: "root", 3: "root", 4: "mallory", 5: "eve", 6: ""}
        assert [v.version for v in versions] == [6, 5, 4, 3, 2, 1]
        for v in versions:
            by = "bootstrap admin (token bootstrap)" if v.version == 6 else me
            assert (v.created_by, v.on_behalf_of, v.authenticated) == (
                by,
                claimed[v.version],
                True,
            ), v.version
        one = await admin.get_version("web", 3)
        assert (one.created_by, one.on_behalf_of) == (me, "root")
        generations = (await admin.list_generations()).generations
        assert [g.id for g in generations] == [
            by_admin.generation,
            reverted.generation,
            rolled.generation,
            committed.generation,
            committed.generation - 1,
        ]
        got = await admin.get_generation(committed.generation)
        assert (got.kind, got.created_by, got.on_behalf_of, got.authenticated) == (
            "commit",
            me,
            "root",
            True,
        )
        assert {g.created_by for g in generations[1:]} == {me}

        # Stored as such: no record names the forged author as its author.
        db = mongo_client[db_name]
        for collection in ("versions", "generations"):
            for doc in db[collection].find({}):
                assert doc["created_by"] in (me, "bootstrap admin (token bootstrap)"), doc
                assert doc["authenticated"] is True

        # And shown as such by the CLI, in JSON and in tables.
        genconf = Genconf(srv.address, clean_env(tmp_path))
        shown = (
            await genconf("version", "show", "web", "2", "-o", "json", "--token", BOOTSTRAP)
        ).json()
        assert (shown["created_by"], shown["on_behalf_of"], shown["authenticated"]) == (
            me,
            "root",
            True,
        )
        table = (await genconf("version", "show", "web", "2", "--token", BOOTSTRAP)).ok().out
        assert f"by {me}, on behalf of root" in table
        gen = (
            await genconf(
                "generation", "show", str(committed.generation), "-o", "json", "--token", BOOTSTRAP
            )
        ).json()
        assert (gen["created_by"], gen["on_behalf_of"], gen["authenticated"]) == (me, "root", True)
        table = (
            (await genconf("generation", "show", str(committed.generation), "--token", BOOTSTRAP))
            .ok()
            .out
        )
        assert f"by {me}, on behalf of root" in table

        # `USER=mallory genconf ...`: the CLI claims the login name, the server records
        # the token and keeps the claim as what it is.
        ops = await admin.create_token("controller", name="ops")
        ops_by = f"ops (token {ops.info.id})"
        mallory = Genconf(srv.address, clean_env(tmp_path, USER="mallory", LOGNAME="mallory"))
        (await mallory("branch", "add", "hotfix", "--token", ops.token)).ok()
        (await mallory("config", "set", "web", "port=84", "--token", ops.token)).ok()
        show = (
            await mallory("branch", "show", "hotfix", "-o", "json", "--token", ops.token)
        ).json()
        assert (show["created_by"], show["on_behalf_of"], show["authenticated"]) == (
            ops_by,
            "mallory",
            True,
        )
        table = (await mallory("branch", "show", "hotfix", "--token", ops.token)).ok().out
        assert f"by {ops_by}, on behalf of mallory" in table
        table = (await mallory("versions", "web", "--limit", "1", "--token", ops.token)).ok().out
        assert f"{ops_by}, on behalf of mallory" in table
        listed_tokens = (await genconf("token", "list", "-o", "json", "--token", BOOTSTRAP)).json()
        assert {t["name"] for t in listed_tokens} == {"deploy-bot", "ops"}


async def test_without_authentication_the_claimed_name_is_marked_unauthenticated(
    srv: RunningServer, client: Client, tmp_path: Path
) -> None:
    await client.create_application("web", schema=SCHEMA, created_by="alice")
    await client.set_config("web", {"port": 81}, created_by="bob")
    added = await client.add_branch("canary", created_by="carol")
    branch = await client.get_branch("canary", min_revision=added.revision)
    assert (branch.created_by, branch.on_behalf_of, branch.authenticated) == ("carol", "", False)
    versions = (await client.list_versions("web")).versions
    assert [(v.created_by, v.on_behalf_of, v.authenticated) for v in versions] == [
        ("bob", "", False),
        ("alice", "", False),
    ]
    (generation,) = (await client.list_generations()).generations
    assert (generation.created_by, generation.authenticated) == ("bob", False)

    genconf = Genconf(srv.address, clean_env(tmp_path))
    shown = (await genconf("version", "show", "web", "2", "-o", "json")).json()
    assert (shown["created_by"], shown["on_behalf_of"], shown["authenticated"]) == (
        "bob",
        None,
        False,
    )
    assert "by bob (unauthenticated)" in (await genconf("version", "show", "web", "2")).ok().out
    table = (await genconf("branch", "show", "canary")).ok().out
    assert "by carol (unauthenticated)" in table


async def test_token_names_are_short_and_printable(mongo_uri: str, db_name: str) -> None:
    async with admin_session(mongo_uri, db_name) as (_, admin):
        for name, fragment in (("x" * 65, "at most 64"), ("two\nlines", "control characters")):
            with pytest.raises(ClientError) as caught:
                await admin.create_token("observer", name=name)
            assert fragment in assert_code(caught.value, INVALID).message
        named = await admin.create_token("observer", name="x" * 64)
        infos = await admin.list_tokens(min_revision=named.revision)
        assert [t.name for t in infos] == ["x" * 64]


# -- agent tokens and incarnations ---------------------------------------------------


async def drain(stream: Any, seen: list[Any]) -> None:
    """Read ``stream`` to its end (an error), keeping what it delivered."""
    with anyio.fail_after(CALL_TIMEOUT):
        async for config in stream:
            seen.append(config)


async def test_a_recreated_applications_old_agent_token_is_refused(
    mongo_uri: str, db_name: str
) -> None:
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        created = await admin.create_application("reborn", schema=SCHEMA, units=1)
        first_set = await admin.set_config("reborn", {"pin": "1111"})
        (old_unit,) = await admin.list_units("reborn", min_revision=first_set.revision)
        old_app = await admin.get_application("reborn")
        assert len(old_unit.uid) == 32 and old_unit.application_uid == old_app.uid
        agent = await admin.create_token("agent", unit="reborn/0")
        assert agent.info.unit_uid == old_unit.uid

        async with Client(srv.address, token=agent.token, timeout=None) as old_agent:
            config = await old_agent.get_config("reborn/0", min_revision=first_set.revision)
            assert config.config["pin"] == "1111"
            watch = old_agent.watch_config(
                "reborn/0", reconnect=False, min_revision=created.revision
            )
            seen: list[Any] = []
            try:
                with anyio.fail_after(CALL_TIMEOUT):
                    seen.append(await anext(watch))
                await admin.remove_application("reborn", force=True)
                with pytest.raises(ClientError) as caught:
                    await drain(watch, seen)
            finally:
                await watch.aclose()
            message = assert_code(caught.value, UNAUTHENTICATED).message
            assert f"token {agent.info.id} was issued for reborn/0, which has been removed" in (
                message
            )
            assert [c.config["pin"] for c in seen] == ["1111"]

            # Re-created under the same name: a new incarnation, with a new secret.
            again = await admin.create_application("reborn", schema=SCHEMA, units=1)
            second_set = await admin.set_config("reborn", {"pin": "2222"})
            (new_unit,) = await admin.list_units("reborn", min_revision=second_set.revision)
            new_app = await admin.get_application("reborn")
            assert new_unit.uid != old_unit.uid and new_app.uid != old_app.uid
            assert new_unit.application_uid == new_app.uid

            calls = {
                "GetConfig": lambda: old_agent.get_config(
                    "reborn/0", min_revision=second_set.revision
                ),
                "ReportApplied": lambda: old_agent.report_applied("reborn/0", "0" * 64),
            }
            for name, call in calls.items():
                with pytest.raises(ClientError) as caught:
                    await call()
                message = assert_code(caught.value, UNAUTHENTICATED).message
                assert "earlier incarnation of reborn/0" in message, name
                assert "mint a new one" in message
            watch = old_agent.watch_config("reborn/0", reconnect=False, min_revision=again.revision)
            seen = []
            try:
                with pytest.raises(ClientError) as caught:
                    await drain(watch, seen)
            finally:
                await watch.aclose()
            assert "earlier incarnation" in assert_code(caught.value, UNAUTHENTICATED).message
            assert seen == []

        # A token minted for the new incarnation works.
        fresh = await admin.create_token("agent", unit="reborn/0")
        assert fresh.info.unit_uid == new_unit.uid
        async with Client(srv.address, token=fresh.token, timeout=CALL_TIMEOUT) as new_agent:
            config = await new_agent.get_config("reborn/0", min_revision=fresh.revision)
            assert config.config["pin"] == "2222"
            await new_agent.report_applied("reborn/0", config.hash)


async def test_a_unit_replaced_in_place_never_shows_the_new_config_to_the_old_token(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    """A unit can change incarnation without a removal the server sees (a reload
    after change-stream history was lost merges both): made here by one transaction
    that gives the unit a new uid and the application a new secret. The old token's
    open stream ends UNAUTHENTICATED, and the new secret never reaches it."""
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        created = await admin.create_application("web", schema=SCHEMA, units=1)
        await admin.set_config("web", {"pin": "1111"})
        agent = await admin.create_token("agent", unit="web/0")
        async with Client(srv.address, token=agent.token, timeout=None) as old_agent:
            watch = old_agent.watch_config("web/0", reconnect=False, min_revision=created.revision)
            seen: list[Any] = []
            try:
                with anyio.fail_after(CALL_TIMEOUT):
                    seen.append(await anext(watch))
                db = mongo_client[db_name]
                with mongo_client.start_session() as session, session.start_transaction():
                    db["units"].update_one(
                        {"_id": "web/0"},
                        {"$set": {"uid": "f" * 32}, "$inc": {"revision": 1}},
                        session=session,
                    )
                    db["applications"].update_one(
                        {"_id": "web"},
                        {"$set": {"settings.pin": "2222"}, "$inc": {"revision": 1}},
                        session=session,
                    )
                with pytest.raises(ClientError) as caught:
                    await drain(watch, seen)
            finally:
                await watch.aclose()
        assert "earlier incarnation of web/0" in assert_code(caught.value, UNAUTHENTICATED).message
        assert [c.config["pin"] for c in seen] == ["1111"]


# -- the token book on its own --------------------------------------------------------


class Units:
    """A stand-in for the model cache: the units that exist, and whether it is loaded."""

    def __init__(self, uids: dict[str, str]) -> None:
        self.synced = True
        self.units = {name: unit(name, uid) for name, uid in uids.items()}


def unit(name: str, uid: str) -> Unit:
    app, number = name.split("/")
    return Unit(name, app, int(number), None, None, 1, uid=uid)


def agent_doc(unit_uid: str | None) -> dict[str, Any]:
    doc = auth.mint(
        auth.Role.AGENT,
        unit="web/0",
        expires_at=None,
        created_by="t",
        description="",
        now=NOW,
        unit_uid=unit_uid or "",
    ).doc
    if unit_uid is None:  # a token minted before uids were kept
        del doc["unit_uid"]
    return doc


def test_the_book_judges_agent_tokens_by_the_unit_they_were_minted_for() -> None:
    units = Units({"web/0": "a" * 32})
    book = TokenBook(units)
    current, legacy = agent_doc("a" * 32), agent_doc(None)
    book.load([current, legacy])
    heard: list[str] = []
    for doc in (current, legacy):
        book.listen(doc["_id"], heard.append)

    def problem(doc: dict[str, Any]) -> str | None:
        record = book.get(doc["_id"])
        assert record is not None
        return book.incarnation_problem(record.id, record.role, record.unit, record.unit_uid)

    assert problem(current) is None
    # A token from before uids: it matches only a unit from before uids too.
    assert "earlier incarnation of web/0" in (problem(legacy) or "")
    units.units["web/0"] = unit("web/0", "")
    assert problem(legacy) is None and "earlier incarnation" in (problem(current) or "")
    # The sweep announces a token whose unit changed incarnation under an open stream.
    book.announce_expired(NOW)
    assert heard == [current["_id"]]
    del units.units["web/0"]
    assert "which has been removed" in (problem(legacy) or "")
    # Nothing is judged before the cache has loaded the model.
    units.synced = False
    assert problem(current) is None and problem(legacy) is None
    # Other roles are bound to no unit.
    observer = auth.Principal("o", auth.Role.OBSERVER)
    assert book.principal_problem(observer) is None


def test_authorship() -> None:
    principal = auth.Principal("0123456789abcdef", auth.Role.CONTROLLER, name="ci")
    assert auth.authorship(principal, "mallory") == auth.Authorship(
        "ci (token 0123456789abcdef)", "mallory", True
    )
    unnamed = auth.Principal("0123456789abcdef", auth.Role.ADMIN)
    assert auth.authorship(unnamed, "").created_by == "token 0123456789abcdef"
    assert auth.authorship(None, "alice") == auth.Authorship("alice", "", False)
