"""`genconf status [APP]` as the real CLI against a real server, with real agents
reporting: one line per application, each unit's state under one APP (and for every
application in -o wide), the counts scripts read from -o json, exit 0 whatever the
states; `branch show` listing each tracking unit's report; the demo model's status;
and `unit list`'s STATE column."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import yaml
from agent_harness import agent_process, report_where
from support.cli_runner import Genconf, clean_env

from genconf import shapes
from genconf.api.server import RunningServer
from genconf.cli import render
from genconf.cli.output import Format, Output
from genconf.cli.status import render_status, with_states
from genconf.client import Client
from genconf.dev import demo
from genconf.store.store import Store

SCHEMA: dict[str, Any] = {"port": {"type": "int", "default": 8080}}
AGO = re.compile(r"^\d+[smhd] ago$")


def cells(text: str) -> list[list[str]]:
    """Each line's cells (columns are two or more spaces apart)."""
    return [re.split(r"  +", line.strip()) for line in text.splitlines() if line.strip()]


def row_of(text: str, first: str) -> list[str]:
    [row] = [r for r in cells(text) if r[0] == first]
    return row


async def agents_report(srv: RunningServer, tmp_path: Path, c: Client) -> None:
    """web (3 units; web/0 on canary, which sets port): a real agent applies web/1's
    config (exec ok, current) and web/2's (exec fails, failed); web/0 never reports."""
    created = await c.create_application("web", schema=SCHEMA, units=3)
    await c.create_application("db", units=1)
    await c.add_branch("canary")
    await c.track_branch("canary", units=["web/0"])
    staged = await c.set_branch_config("canary", "web", {"port": 9090})
    since = staged.revision
    for unit, command in (("web/1", "true"), ("web/2", "exit 3")):
        config = await c.get_config(unit, min_revision=created.revision)
        path, log = tmp_path / f"{unit[-1]}.json", tmp_path / f"{unit[-1]}.log"
        async with agent_process(srv.address, unit, path, "--exec", command, log=log):
            await report_where(c, unit, since, lambda r, h=config.hash: r.hash == h)


async def test_one_line_per_application_then_each_unit_of_one(
    srv: RunningServer, tmp_path: Path
) -> None:
    genconf = Genconf(srv.address, clean_env(tmp_path))
    async with Client(srv.address, timeout=10) as c:
        await agents_report(srv, tmp_path, c)
    every, one, as_json, as_yaml, missing = await genconf.all(
        ["status"],
        ["status", "web"],
        ["status", "-o", "json"],
        ["status", "-o", "yaml"],
        ["status", "nope"],
    )
    assert every.ok().out.splitlines() == [
        "db   v1  units 1: 1 unreported",
        "web  v1  units 3: 1 current, 1 failed, 1 unreported  branches: canary (1 unit)",
    ]
    lines = one.ok().out.splitlines()
    assert lines[0] == (
        "web  v1  units 3: 1 current, 1 failed, 1 unreported  branches: canary (1 unit)"
    )
    table = "\n".join(lines[2:])
    assert cells(table)[0] == ["UNIT", "BRANCH", "STATE", "REPORTED", "MESSAGE"]
    assert row_of(table, "web/0") == ["web/0", "canary", "unreported", "-"]
    current = row_of(table, "web/1")
    assert current[:3] == ["web/1", "-", "current"] and AGO.match(current[3]), current
    assert current[4].startswith("wrote ")
    failed = row_of(table, "web/2")
    assert failed == ["web/2", "-", "failed", failed[3], "exec exited with code 3"]

    data = as_json.json()  # exit 0 although a unit failed: a status is a read
    web = next(a for a in data["applications"] if a["name"] == "web")
    assert web["counts"] == {"current": 1, "behind": 0, "failed": 1, "unreported": 1}
    assert web["branches"] == [{"name": "canary", "units": 1, "keys": 1}]
    assert [u["state"] for u in web["units"]] == ["unreported", "current", "failed"]
    assert yaml.safe_load(as_yaml.ok().out) == data
    assert missing.rc == 1
    assert missing.err.strip() == "error: NOT_FOUND: application 'nope' not found"


async def test_wide_shows_every_applications_units_in_full(
    srv: RunningServer, tmp_path: Path
) -> None:
    genconf = Genconf(srv.address, clean_env(tmp_path))
    async with Client(srv.address, timeout=10) as c:
        await agents_report(srv, tmp_path, c)
        web1 = (await c.get_config("web/1")).hash
    wide = (await genconf("status", "-o", "wide")).ok().out
    assert "canary (1 unit, 1 key)" in wide
    assert [r[0] for r in cells(wide) if r[0] == "UNIT"] == ["UNIT", "UNIT"], "db's and web's"
    assert cells(wide)[1][:6] == ["UNIT", "BRANCH", "STATE", "REPORTED", "HASH", "HEALTH"]
    row = row_of(wide, "web/1")
    assert row[3].endswith("Z") and row[4] == web1 and row[5] == "unknown"


async def test_branch_show_lists_each_tracking_units_report(
    srv: RunningServer, tmp_path: Path
) -> None:
    genconf = Genconf(srv.address, clean_env(tmp_path))
    async with Client(srv.address, timeout=10) as c:
        await agents_report(srv, tmp_path, c)
        await c.track_branch("canary", units=["web/1"])  # its report is master's config
        canary = await c.get_config("web/0")
        await c.report_applied("web/0", canary.hash, message="on canary")
    before = await genconf("branch", "show", "canary")
    text = before.ok().out
    assert [r for r in cells(text) if r[0] == "UNIT"] == [["UNIT", "STATE", "REPORTED", "MESSAGE"]]
    zero = row_of(text, "web/0")
    assert zero[:2] == ["web/0", "current"] and zero[3] == "on canary"
    assert row_of(text, "web/1")[:2] == ["web/1", "behind"]
    shown = (await genconf("branch", "show", "canary", "-o", "json")).json()
    assert [(r["name"], r["state"], r["branch"]) for r in shown["reports"]] == [
        ("web/0", "current", "canary"),
        ("web/1", "behind", "canary"),
    ]


async def test_status_of_the_demo_model(srv: RunningServer, store: Store, tmp_path: Path) -> None:
    """What `make run` (`genconf serve --demo`) loads: web at version 2 with canary
    tracked by web/0, db at version 1, no agent yet."""
    assert await demo.load(store)
    genconf = Genconf(srv.address, clean_env(tmp_path))
    async with Client(srv.address, timeout=10) as c:
        barrier = await c.add_branch("barrier")  # after every demo write: settles them
        await c.abort_branch("barrier")
        await c.list_branches(min_revision=barrier.revision)
    every, web = await genconf.all(["status"], ["status", "web"])
    assert every.ok().out.splitlines() == [
        "db   v1  units 2: 2 unreported",
        "web  v2  units 3: 3 unreported  branches: canary (1 unit)",
    ]
    table = web.ok().out
    assert [row_of(table, f"web/{n}")[:3] for n in range(3)] == [
        ["web/0", "canary", "unreported"],
        ["web/1", "-", "unreported"],
        ["web/2", "-", "unreported"],
    ]


async def test_unit_list_states_come_from_the_status(srv: RunningServer, tmp_path: Path) -> None:
    """`with_states` gives `unit list`'s views their state; `render_units` shows STATE
    then (and without it, the table as it was)."""
    async with Client(srv.address, timeout=10) as c:
        await agents_report(srv, tmp_path, c)
        views = [shapes.unit_view(u) for u in await c.list_units("web")]
        stated = await with_states(c, views, "web")
    assert [u["state"] for u in stated] == ["unreported", "current", "failed"]
    assert "state" not in views[0], "the views given are left as they were"
    out = Output(Format.TABLE, False, io.StringIO())
    table = "\n".join(render.render_units(stated)(out))
    assert cells(table)[0] == ["UNIT", "BRANCH", "STATE", "APPLIED", "MESSAGE"]
    assert row_of(table, "web/2")[:3] == ["web/2", "-", "failed"]
    plain = "\n".join(render.render_units(views)(out))
    assert cells(plain)[0] == ["UNIT", "BRANCH", "APPLIED", "MESSAGE"]


def test_status_table_without_a_server() -> None:
    """Ages count from now; zero counts are left out; no applications says so."""
    now = dt.datetime(2024, 1, 2, 12, 0, 0, tzinfo=dt.UTC)
    unit = {
        "name": "web/0",
        "branch": None,
        "state": "failed",
        "reported_at": "2024-01-02T10:59:00Z",
        "hash": "a" * 64,
        "ok": True,
        "message": "wrote /etc/web.json",
        "health": "unhealthy",
        "health_message": "connection refused",
        "health_since": "2024-01-02T10:59:00Z",
    }
    app = {
        "name": "web",
        "version": 4,
        "label": "1.2.0",
        "counts": {"current": 0, "behind": 0, "failed": 1, "unreported": 0},
        "branches": [],
        "units": [unit],
    }
    out = Output(Format.TABLE, False, io.StringIO())
    lines = list(render_status({"revision": 1, "applications": [app]}, units=True, now=now)(out))
    assert lines[0] == "web  v4 (1.2.0)  units 1: 1 failed"
    assert cells("\n".join(lines[2:]))[1] == [
        "web/0",
        "-",
        "failed",
        "1h ago",
        "connection refused",
    ]
    empty = list(render_status({"revision": 1, "applications": []}, units=False)(out))
    assert empty == ["no applications"]
    assert render.age_text(None) == "-"
    assert render.age_text("2024-01-02T11:59:58Z", now) == "2s ago"
    assert render.age_text("2024-01-02T12:00:09Z", now) == "0s ago", "a clock ahead of ours"
    assert render.age_text("2023-12-30T12:00:00Z", now) == "3d ago"
