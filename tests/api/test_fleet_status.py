"""GetStatus over a real server and real reports: per application its version and
label, the branches in flight, and each unit current / behind / failed /
unreported by its effective hash (its branch's view when it tracks one) against its
agent's latest report; read-your-writes; the same states for observers, who never
get a raw hash; and the same answer over HTTP."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
import pytest
from support.servers import BOOTSTRAP, admin_session, assert_code, running_server

from genconf import shapes
from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.errors import ClientError
from genconf.security import redact

SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 8080},
    "password": {"type": "string", "secret": True},
}


def by_unit(status: dict[str, Any], app: str) -> dict[str, dict[str, Any]]:
    [entry] = [a for a in status["applications"] if a["name"] == app]
    return {u["name"]: u for u in entry["units"]}


def app_of(status: dict[str, Any], app: str) -> dict[str, Any]:
    [entry] = [a for a in status["applications"] if a["name"] == app]
    return entry


async def seed_fleet(c: Client) -> int:
    """web/0 on canary and current; web/1 current; web/2 failed its apply; web/3
    behind; web/4 never reported; web/5 unhealthy on the right config; web/6 on
    canary but reported master's config (behind). Returns the last write's revision."""
    await c.create_application("web", schema=SCHEMA, units=7)
    await c.create_application("db", units=0)
    await c.add_branch("canary")
    await c.track_branch("canary", units=["web/0", "web/6"])
    await c.set_branch_config("canary", "web", {"port": 9090})
    old = await c.get_config("web/3")
    await c.report_applied("web/3", old.hash, message="applied the old one")
    moved = await c.set_config("web", {"password": "hunter2"})
    master = await c.get_config("web/1", min_revision=moved.revision)
    canary = await c.get_config("web/0", min_revision=moved.revision)
    assert master.hash != canary.hash and master.hash != old.hash
    await c.report_applied("web/0", canary.hash, message="wrote canary")
    await c.report_applied("web/1", master.hash, health="healthy", health_message="fine")
    await c.report_applied("web/2", master.hash, ok=False, message="exec failed: exit 3")
    await c.report_applied(
        "web/5", master.hash, health="unhealthy", health_message="port 8080 refused"
    )
    last = await c.report_applied("web/6", master.hash)
    return last.revision


async def test_each_unit_is_current_behind_failed_or_unreported(client: Client) -> None:
    revision = await seed_fleet(client)
    status = shapes.status_view(await client.get_status(min_revision=revision))
    assert status["revision"] >= revision
    assert [a["name"] for a in status["applications"]] == ["db", "web"]
    web = app_of(status, "web")
    assert web["version"] == 2 and web["label"] is None
    assert web["counts"] == {"current": 2, "behind": 2, "failed": 2, "unreported": 1}
    assert web["branches"] == [{"name": "canary", "units": 2, "keys": 1}]
    units = by_unit(status, "web")
    assert list(units) == [f"web/{n}" for n in range(7)], "by unit number"
    assert {name: u["state"] for name, u in units.items()} == {
        "web/0": "current",
        "web/1": "current",
        "web/2": "failed",
        "web/3": "behind",
        "web/4": "unreported",
        "web/5": "failed",
        "web/6": "behind",
    }
    assert units["web/0"]["branch"] == "canary" and units["web/1"]["branch"] is None
    assert units["web/2"]["message"] == "exec failed: exit 3" and units["web/2"]["ok"] is False
    assert units["web/5"]["health"] == "unhealthy"
    assert units["web/5"]["health_message"] == "port 8080 refused"
    assert units["web/1"]["reported_at"].endswith("Z") and units["web/1"]["health"] == "healthy"
    assert all(v is None for k, v in units["web/4"].items() if k not in ("name", "state", "branch"))
    db = app_of(status, "db")
    assert db == {
        "name": "db",
        "version": 1,
        "label": None,
        "counts": {"current": 0, "behind": 0, "failed": 0, "unreported": 0},
        "branches": [],
        "units": [],
    }


async def test_a_unit_catches_up_and_a_commit_moves_master_units_behind(client: Client) -> None:
    """States follow the model: the behind unit reports the new config (current); a
    commit changes master, so master's units are behind until they report again,
    while canary's units, whose config does not change, stay current."""
    await seed_fleet(client)
    now = await client.get_config("web/3")
    caught_up = await client.report_applied("web/3", now.hash)
    status = shapes.status_view(await client.get_status("web", min_revision=caught_up.revision))
    assert by_unit(status, "web")["web/3"]["state"] == "current"

    committed = await client.commit_branch("canary")
    after = shapes.status_view(await client.get_status("web", min_revision=committed.revision))
    states = {n: u["state"] for n, u in by_unit(after, "web").items()}
    assert states["web/0"] == "current", "its config is the same after the commit"
    assert states["web/1"] == states["web/3"] == "behind"
    assert app_of(after, "web")["branches"] == []
    assert app_of(after, "web")["version"] == 3


async def test_branches_in_flight_include_staged_and_whole_application_tracking(
    client: Client,
) -> None:
    await client.create_application("web", units=2, open=True)
    await client.create_application("db", units=1, open=True)
    for name in ("staged", "whole", "elsewhere"):
        await client.add_branch(name)
    await client.set_branch_config("staged", "web", {"a": 1, "b": 2})
    await client.track_branch("whole", applications=["db"])
    last = await client.set_branch_config("elsewhere", "db", {"c": 3})
    status = shapes.status_view(await client.get_status(min_revision=last.revision))
    assert app_of(status, "web")["branches"] == [{"name": "staged", "units": 0, "keys": 2}]
    assert app_of(status, "db")["branches"] == [
        {"name": "elsewhere", "units": 0, "keys": 1},
        {"name": "whole", "units": 1, "keys": 0},
    ]


async def test_the_label_is_the_current_versions(client: Client) -> None:
    await client.create_application("web", units=1, open=True)
    await client.set_config("web", {"x": 1})
    await client.tag_version("web", "1.0.0", version=1)
    await client.tag_version("web", "1.1.0", version=2)
    tagged = await client.bump_version("web", "patch")  # 1.1.1, also on version 2
    status = shapes.status_view(await client.get_status("web", min_revision=tagged.revision))
    assert (app_of(status, "web")["version"], app_of(status, "web")["label"]) == (2, "1.1.1")
    moved = await client.set_config("web", {"x": 2})
    status = shapes.status_view(await client.get_status("web", min_revision=moved.revision))
    assert (app_of(status, "web")["version"], app_of(status, "web")["label"]) == (3, None)


async def test_refusals_name_the_problem(srv: RunningServer, client: Client) -> None:
    await client.create_application("web", units=1)
    with pytest.raises(ClientError) as missing:
        await client.get_status("nope")
    assert assert_code(missing.value, grpc.StatusCode.NOT_FOUND).message == (
        "application 'nope' not found"
    )
    with pytest.raises(ClientError) as malformed:
        await client.get_status("Not A Name")
    assert "Not A Name" in assert_code(malformed.value, grpc.StatusCode.INVALID_ARGUMENT).message
    future = srv.read.cache.revision + (3600 << 32)
    async with Client(srv.address, timeout=1.0) as hurried:
        with pytest.raises(ClientError) as waited:
            await hurried.get_status(min_revision=future)
    assert "revision" in assert_code(waited.value, grpc.StatusCode.UNAVAILABLE).message


async def test_observers_see_the_same_states_and_never_a_raw_hash(
    mongo_uri: str, db_name: str
) -> None:
    """States are worked out from the true hashes, so an observer (whose hashes are
    keyed) sees exactly what an admin sees; an agent may not ask at all."""
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        revision = await seed_fleet(admin)
        observer = (await admin.create_token("observer")).token
        agent = (await admin.create_token("agent", unit="web/0")).token
        as_admin = shapes.status_view(await admin.get_status(min_revision=revision))
        raw = {c.hash for c in [await admin.get_config(f"web/{n}") for n in range(7)]}
        async with Client(srv.address, token=observer, timeout=10) as obs:
            reply = await obs.get_status(min_revision=revision)
        as_observer = shapes.status_view(reply)
        states = {n: u["state"] for n, u in by_unit(as_admin, "web").items()}
        assert {n: u["state"] for n, u in by_unit(as_observer, "web").items()} == states
        assert app_of(as_observer, "web")["counts"] == app_of(as_admin, "web")["counts"]
        shown = reply.SerializeToString()
        assert not any(h.encode() in shown for h in raw), "a raw hash reached an observer"
        assert b"hunter2" not in shown
        admin_hash = by_unit(as_admin, "web")["web/1"]["hash"]
        assert admin_hash in raw
        assert by_unit(as_observer, "web")["web/1"]["hash"] == redact.keyed_hash(
            await srv.store.observer_key(), admin_hash
        )
        async with Client(srv.address, token=agent, timeout=10) as bound:
            with pytest.raises(ClientError) as refused:
                await bound.get_status("web")
        assert "may not call ControllerService/GetStatus" in (
            assert_code(refused.value, grpc.StatusCode.PERMISSION_DENIED).message
        )
        assert BOOTSTRAP not in str(as_observer)


async def test_http_answers_the_same_status(mongo_uri: str, db_name: str) -> None:
    async with (
        running_server(mongo_uri, db_name, http_listen="127.0.0.1:0") as srv,
        Client(srv.address, timeout=10) as c,
    ):
        revision = await seed_fleet(c)
        expected = shapes.status_view(await c.get_status(min_revision=revision))
        one = shapes.status_view(await c.get_status("web", min_revision=revision))
        async with httpx.AsyncClient(base_url=f"http://{srv.http_address}", timeout=10) as web:
            every = (await web.get("/api/v1/status")).json()
            only = (await web.get("/api/v1/status/web")).json()
            missing = await web.get("/api/v1/status/nope")
    assert {k: v for k, v in every.items() if k != "revision"} == {
        k: v for k, v in expected.items() if k != "revision"
    }
    assert [a["name"] for a in only["applications"]] == ["web"]
    assert only["applications"] == one["applications"]
    assert missing.status_code == 404
    assert missing.json()["message"] == "application 'nope' not found"
