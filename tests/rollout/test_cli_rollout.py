"""`genconf rollout` as the real CLI against a real server that drives rollouts:
start, status (one and all, table and JSON), pause, resume, abort, and refusals
that name the flag (usage: exit 2) or the problem (exit 1) and write nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from rollout_fleet import rollout_where, running_fleet, state_is
from support.cli_runner import Genconf, clean_env
from support.servers import background_server, digest

from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.domain.cohorts import hash_order


@pytest.fixture
async def driven(mongo_uri: str, db_name: str) -> AsyncIterator[RunningServer]:
    async with background_server(mongo_uri, db_name, rollout_tick=0.05, replica_id="r1") as srv:
        yield srv


@pytest.fixture
async def client(driven: RunningServer) -> AsyncIterator[Client]:
    async with Client(driven.address, timeout=20) as c:
        yield c


@pytest.fixture
def genconf(driven: RunningServer, tmp_path: Path) -> Genconf:
    return Genconf(driven.address, clean_env(tmp_path, USER="ann"))


async def staged(client: Client, units: int = 4) -> int:
    await client.create_application("web", schema={"port": {"type": "int"}}, units=units)
    await client.add_branch("canary")
    return (await client.set_branch_config("canary", "web", {"port": 9090})).revision


async def test_start_and_follow_a_rollout_to_its_commit(client: Client, genconf: Genconf) -> None:
    since = await staged(client)
    async with running_fleet(client, [f"web/{n}" for n in range(4)]):
        run = await genconf(
            "rollout", "start", "canary", "--app", "web", "--steps", "1,50%,100%",
            "--bake", "200ms", "--commit", "--reason", "new port",
        )  # fmt: skip
        assert run.ok().out.strip() == (
            "started the rollout of branch canary to web: steps 1, 50%, 100%; bake 0.2s; "
            "failure budget 0 (then pause); commit at the end; follow it with: genconf "
            "rollout status canary"
        )
        await rollout_where(client, "canary", state_is("committed"), since)
    shown = (await genconf("rollout", "status", "canary")).ok().out
    assert "rollout:  canary -> web" in shown
    assert "state:    committed at step 3/3 (100%)" in shown
    assert "every step done; branch canary committed" in shown
    assert "started:" in shown and "by ann (unauthenticated)" in shown
    data = (await genconf("rollout", "status", "canary", "-o", "json")).json()
    assert (data["state"], data["step"], data["steps"]) == ("committed", 3, ["1", "50%", "100%"])
    assert data["note"] == "new port" and data["tracking"] == [] and data["candidates"] == 4
    assert [t["to"] for t in data["transitions"]] == [
        "tracking", "waiting", "baking", "waiting", "baking", "waiting", "baking", "committed",
    ]  # fmt: skip
    listing = (await genconf("rollout", "status")).ok().out.splitlines()
    assert listing[0].split() == ["BRANCH", "APPLICATION", "STATE", "STEP", "UNITS", "WHY"]
    assert listing[1].startswith("canary") and "committed" in listing[1]
    assert (await genconf("rollout", "status", "--app", "db", "-o", "json")).json() == []


async def test_pause_resume_and_abort_from_the_command_line(
    client: Client, genconf: Genconf
) -> None:
    since = await staged(client)
    units = [f"web/{n}" for n in range(4)]
    first = hash_order("canary", units)[0]
    async with running_fleet(client, units, holding=True):
        (await genconf("rollout", "start", "canary", "--app", "web", "--steps", "1,100%")).ok()
        await rollout_where(client, "canary", lambda r: r.phase == "waiting", since)
        status = (await genconf("rollout", "status", "canary")).ok().out
        assert f"units:    1 of 4 on the branch (this step: 1); not current yet: {first}" in status
        paused = await genconf("rollout", "pause", "canary", "--reason", "a look first")
        assert paused.ok().out.strip() == (
            "paused the rollout of branch canary; its units stay as they are"
        )
        again = await genconf("rollout", "pause", "canary")
        assert again.rc == 1 and "FAILED_PRECONDITION: the rollout of 'canary' is paused" in (
            again.err
        )
        (await genconf("rollout", "resume", "canary")).ok()
        aborted = await genconf(
            "rollout", "abort", "canary", "--reason", "wrong port", "-o", "json"
        )
        assert aborted.json()["units"] == [first]
    data = (await genconf("rollout", "status", "canary", "-o", "json")).json()
    assert data["state"] == "aborted"
    assert data["reason"] == (
        "aborted by ann at step 1/2 (1): wrong port; 1 unit(s) of web back on master"
    )
    ops = [(t["by"], t["to"]) for t in data["transitions"] if not t["by"].startswith("replica")]
    assert ops == [("ann", "tracking"), ("ann", "paused"), ("ann", "waiting"), ("ann", "aborted")]


async def test_refusals_name_the_flag_or_the_problem_and_write_nothing(
    client: Client, genconf: Genconf, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await staged(client)
    before = digest(mongo_client, db_name)
    start = ("rollout", "start", "canary", "--app", "web")
    usage = [
        ((*start, "--steps", "1,1"), "argument --steps: steps 1,1: 1 is not more than"),
        ((*start, "--steps", "x"), "argument --steps: invalid step 'x'"),
        ((*start, "--steps", "1", "--bake", "soon"), "expected a duration such as 30s"),
        ((*start, "--steps", "1", "--max-failed", "-1"), "invalid failure budget '-1'"),
        ((*start, "--steps", "1", "--selector", "zone"), "argument --selector: invalid"),
        ((*start, "--steps", "1", "--on-failure", "retry"), "invalid choice: 'retry'"),
        (("rollout", "start", "canary", "--steps", "1"), "the following arguments are required"),
    ]
    for argv, message in usage:
        run = await genconf(*argv)
        assert run.rc == 2 and message in run.err, (argv, run.err)
    missing = await genconf("rollout", "start", "nope", "--app", "web", "--steps", "1")
    assert missing.rc == 1 and "NOT_FOUND: branch 'nope' not found" in missing.err
    none = await genconf("rollout", "status", "canary")
    assert none.rc == 1 and "NOT_FOUND: branch 'canary' has no rollout" in none.err
    assert digest(mongo_client, db_name) == before
