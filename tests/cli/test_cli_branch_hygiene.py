"""`genconf branch rebase`, `branch drop` and `branch add --expires` as the real CLI
against a real server: a conflicted commit goes through after a rebase with the
branch's values, a dropped key leaves the branch and its units see master's value,
and an expired branch is aborted by the server with its units back on master."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import anyio
import pytest
from pymongo import MongoClient
from support.cli_runner import Genconf, clean_env
from support.servers import digest

from genconf.api.server import RunningServer
from genconf.client import Client

SCHEMA: dict[str, Any] = {"port": {"type": "int", "default": 80}, "level": {"type": "int"}}


@pytest.fixture
def genconf(srv: RunningServer, tmp_path: Path) -> Genconf:
    return Genconf(srv.address, clean_env(tmp_path))


async def canary(client: Client, genconf: Genconf, **staged: int) -> None:
    """web (two units, port 8080 on master) and a branch canary tracked by web/0."""
    await client.create_application("web", schema=SCHEMA, units=2)
    await client.set_config("web", {"port": 8080})
    (await genconf("branch", "add", "canary")).ok()
    (await genconf("branch", "track", "canary", "web/0")).ok()
    pairs = [f"{key}={value}" for key, value in staged.items()]
    (await genconf("config", "set", "web", *pairs, "--branch", "canary")).ok()


async def test_rebase_makes_a_conflicted_commit_go_through_without_force(
    client: Client, genconf: Genconf
) -> None:
    await canary(client, genconf, port=9090)
    await client.set_config("web", {"port": 9000})
    refused = await genconf("branch", "commit", "canary")
    assert refused.rc == 1
    assert "web.port (from 8080, master now 9000, branch 'canary' wants 9090)" in refused.err
    assert "`genconf branch rebase canary` to take master's current values" in refused.err
    assert "`genconf branch drop canary web port` to drop a key" in refused.err
    assert "or pass --force to overwrite (last write wins)" in refused.err

    rebased = await genconf("branch", "rebase", "canary")
    assert (
        "rebased branch canary on master, each key keeping its target: web.port (from 9000)"
        in rebased.ok().out
    )
    diff = (await genconf("branch", "diff", "canary", "-o", "json")).json()
    assert diff["applications"][0]["conflicts"] == []

    committed = await genconf("branch", "commit", "canary", "-o", "json")
    assert committed.json()["versions"] == {"web": 4}
    for unit in ("web/0", "web/1"):
        assert (await client.get_config(unit)).config == {"port": 9090}


async def test_rebase_of_one_key_and_its_refusals(
    client: Client, genconf: Genconf, mongo_client: MongoClient[Any], db_name: str
) -> None:
    await canary(client, genconf, port=9090, level=3)
    await client.set_config("web", {"port": 9000, "level": 1})
    one = await genconf("branch", "rebase", "canary", "--key", "port", "--app", "web")
    assert "web.port (from 9000)" in one.ok().out and "level" not in one.out
    shown = (await genconf("branch", "show", "canary", "-o", "json")).json()
    assert shown["changes"]["web"]["port"]["from"] == 9000
    assert shown["changes"]["web"]["level"]["from"] is None  # master had none when staged

    (await genconf("branch", "add", "empty")).ok()
    before = digest(mongo_client, db_name)
    unknown, nothing, app = await genconf.all(
        ("branch", "rebase", "canary", "--key", "prot"),
        ("branch", "rebase", "empty"),
        ("branch", "rebase", "canary", "--app", "db"),
    )
    assert unknown.rc == 1 and "NOT_FOUND" in unknown.err
    assert "stages no key 'prot'; it stages web.level, web.port" in unknown.err
    assert nothing.rc == 1 and "'empty' stages no change: nothing to rebase" in nothing.err
    assert app.rc == 1 and "stages nothing for application(s) db" in app.err
    assert digest(mongo_client, db_name) == before


async def test_drop_removes_the_key_and_the_unit_sees_master(
    client: Client, genconf: Genconf, mongo_client: MongoClient[Any], db_name: str
) -> None:
    await canary(client, genconf, port=9090, level=3)
    assert (await client.get_config("web/0")).config == {"port": 9090, "level": 3}
    dropped = await genconf("branch", "drop", "canary", "web", "port")
    assert "dropped web.port from branch canary: its units see master's value" in dropped.ok().out
    diff = (await genconf("branch", "diff", "canary", "-o", "json")).json()
    assert [e["path"] for e in diff["applications"][0]["entries"]] == ["level"]
    assert (await client.get_config("web/0")).config == {"port": 8080, "level": 3}

    before = digest(mongo_client, db_name)
    again = await genconf("branch", "drop", "canary", "web", "port")
    assert again.rc == 1 and "NOT_FOUND" in again.err
    assert "stages no key 'port' for application 'web'; it stages web.level" in again.err
    assert digest(mongo_client, db_name) == before


async def test_expiry_shows_in_list_and_show(
    genconf: Genconf, mongo_client: MongoClient[Any], db_name: str
) -> None:
    added = await genconf("branch", "add", "keep", "--expires", "2h")
    assert "added branch keep (it expires in 2h: then it is aborted" in added.ok().out
    (await genconf("branch", "add", "plain")).ok()
    listed = {b["name"]: b for b in (await genconf("branch", "list", "-o", "json")).json()}
    assert listed["plain"]["expires_at"] is None
    expires = dt.datetime.fromisoformat(listed["keep"]["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)) < dt.timedelta(minutes=1)
    table = (await genconf("branch", "list")).ok().out.splitlines()
    assert "EXPIRES" in table[0]
    assert next(line for line in table if line.startswith("plain")).rstrip().endswith("never")
    shown = (await genconf("branch", "show", "keep")).ok().out
    assert f"{listed['keep']['expires_at']} (then aborted, units back on master)" in shown

    before = digest(mongo_client, db_name)
    bad = await genconf("branch", "add", "soon", "--expires", "soon")
    assert bad.rc == 2 and "expected a duration such as 12h or 30d" in bad.err
    assert digest(mongo_client, db_name) == before


async def test_an_expired_branch_is_gone_and_its_units_are_on_master(
    client: Client, genconf: Genconf
) -> None:
    await client.create_application("web", schema=SCHEMA, units=2)
    await client.set_config("web", {"port": 8080})
    (await genconf("branch", "add", "canary", "--expires", "4s")).ok()
    await client.track_branch("canary", units=["web/0"])
    staged = await client.set_branch_config("canary", "web", {"port": 9090})
    seen = []
    with anyio.fail_after(30):
        async for config in client.watch_config("web/0", min_revision=staged.revision):
            seen.append((config.branch, dict(config.config)))
            if config.branch == "":
                break
    assert seen == [("canary", {"port": 9090}), ("", {"port": 8080})]
    assert (await genconf("branch", "list", "-o", "json")).json() == []
    units = {u["name"]: u for u in (await genconf("unit", "list", "web", "-o", "json")).json()}
    assert units["web/0"]["branch"] is None
