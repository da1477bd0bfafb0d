"""Rollouts driven end to end by one server (real mongod, real gRPC server, agents
that really watch and really report): the acceptance run over 100 agents, failing
applies that pause or roll back, operators' pause, resume and abort, a branch
committed by hand, a commit that conflicts, and the refusals of a start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import grpc
import httpx
import pytest
from pymongo import MongoClient
from rollout_fleet import (
    TrackingBound,
    agent_process,
    file_config,
    report_where,
    rollout_where,
    running_fleet,
    state_is,
    steps_reached,
)
from support.servers import assert_code, background_server, digest, eventually

from genconf.api.server import RunningServer
from genconf.client import Client, ClientError, Config
from genconf.domain.cohorts import hash_order
from genconf.domain.rollouts import check_sizes, parse_steps
from genconf.v1 import admin_pb2

PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT
SCHEMA = {"port": {"type": "int", "default": 80}, "motd": {"type": "string"}}


@pytest.fixture
async def driven(mongo_uri: str, db_name: str) -> AsyncIterator[RunningServer]:
    """A server whose driver looks every 50 ms."""
    async with background_server(
        mongo_uri, db_name, rollout_tick=0.05, lease_seconds=3, replica_id="r1"
    ) as server:
        yield server


@pytest.fixture
async def client(driven: RunningServer) -> AsyncIterator[Client]:
    async with Client(driven.address, timeout=20) as c:
        yield c


async def staged(client: Client, units: int, branch: str = "canary") -> int:
    """web with ``units`` units, ``branch`` staging port 9090 for it; the revision."""
    await client.create_application("web", schema=SCHEMA, units=units)
    await client.add_branch(branch)
    return (await client.set_branch_config(branch, "web", {"port": 9090})).revision


def units_of(n: int) -> list[str]:
    return [f"web/{i}" for i in range(n)]


async def test_a_rollout_over_a_hundred_agents_ends_committed_within_each_step(
    client: Client, driven: RunningServer, tmp_path: Path
) -> None:
    """97 agents in process and 3 real `genconf agent` processes: steps 1, 10%, 50%,
    100% with a 1 s bake. After every unit delta on the admin feed the units on the
    branch are at most the step's; each step is reached once; every agent ends on
    port 9090; the generation and the versions name the rollout."""
    since = await staged(client, 100)
    units = units_of(100)
    real = hash_order("canary", units)[:1] + hash_order("canary", units)[50:52]
    steps = parse_steps("1,10%,50%,100%")
    bound = TrackingBound("canary", "web", check_sizes(steps, 100))
    async with anyio.create_task_group() as tg:
        await tg.start(bound.follow, client, since)
        async with (
            running_fleet(client, [u for u in units if u not in real]) as fleet,
            agent_process(driven.address, real[0], tmp_path / "0.json", log=tmp_path / "0.log"),
            agent_process(driven.address, real[1], tmp_path / "1.json", log=tmp_path / "1.log"),
            agent_process(driven.address, real[2], tmp_path / "2.json", log=tmp_path / "2.log"),
        ):
            for unit in real:  # each real agent has applied its first config
                await report_where(client, unit, since, lambda d: d.unit.HasField("applied"))
            await client.start_rollout(
                "canary",
                application="web",
                steps=["1", "10%", "50%", "100%"],
                bake_seconds=1,
                commit=True,
                reason="new port",
                created_by="ann",
            )
            r = await rollout_where(client, "canary", state_is("committed", "paused"), since)
            assert r.state == "committed", r.reason
            latest = dict(fleet.latest)
    # Every agent holds port 9090: the in-process ones, and the files of the real ones.
    assert all(latest[u].config["port"] == 9090 for u in units if u not in real)
    assert [file_config(tmp_path / f"{n}.json")["port"] for n in range(3)] == [9090] * 3
    assert bound.most == [1, 10, 50, 100] and bound.deltas >= 200
    assert steps_reached(r) == [0, 1, 2, 3]
    assert [t.to for t in r.transitions].count("baking") == 4
    assert all(t.by == "replica r1" and t.epoch == 1 for t in r.transitions[1:])
    assert r.transitions[0].by == "ann" and "steps 1,10%,50%,100% of 100 unit(s)" in (
        r.transitions[0].why
    )
    generation = (await client.list_generations()).generations[0]
    assert generation.kind == "commit" and generation.branch == "canary"
    assert generation.reason == (
        "new port (rollout of branch canary to web: steps 1,10%,50%,100%, committed by replica r1)"
    )
    assert generation.created_by == "ann"
    version = await client.get_version("web", generation.versions["web"])
    meta = dict(version.metadata.items())
    assert meta["rollout"] == "canary" and meta["rollout_replica"] == "r1"


async def test_a_failing_apply_pauses_naming_the_unit_and_resume_after_the_fix_continues(
    client: Client, driven: RunningServer, tmp_path: Path
) -> None:
    """The first unit's real agent runs an --exec that fails until a file exists:
    the rollout pauses at step 1 naming it; the file made, the agent's retry
    reports ok, and a resume goes on to the end."""
    since = await staged(client, 6)
    units = units_of(6)
    first = hash_order("canary", units)[0]
    fixed = tmp_path / "fixed"
    async with (
        running_fleet(client, [u for u in units if u != first]),
        agent_process(
            driven.address,
            first,
            tmp_path / "first.json",
            "--exec",
            f"test -f {fixed}",
            log=tmp_path / "agent.log",
        ),
    ):
        await report_where(client, first, since, lambda d: d.unit.HasField("applied"))
        await client.start_rollout("canary", application="web", steps=[1, "100%"], commit=True)
        r = await rollout_where(client, "canary", state_is("paused", "committed"), since)
        assert (r.state, r.step, list(r.failed)) == ("paused", 0, [first])
        assert (
            "1 unit(s) failed at step 1/2 (1), more than the failure budget of 0: "
            f"{first} (apply failed: " in r.reason
        )
        assert list(r.tracking) == [first]  # paused where it was: nothing more tracked
        paused_at = r.transitions[-1]
        fixed.touch()
        ok = await report_where(client, first, since, lambda d: d.unit.applied.ok)
        await client.resume_rollout("canary", reason="exec fixed", created_by="bob")
        r = await rollout_where(client, "canary", state_is("committed", "paused"), ok)
    assert r.state == "committed", r.reason
    resumed = [t for t in r.transitions if t.by == "bob"]
    assert len(resumed) == 1 and resumed[0].why == "resumed by bob at step 1/2 (1): exec fixed"
    assert paused_at.to == "paused" and steps_reached(r) == [0, 1]


async def test_unhealthy_units_past_the_budget_roll_back_every_unit_to_master(
    client: Client,
) -> None:
    """Two units fail their health check at 50%; the budget is one: every unit of web
    leaves the branch (back on master), the branch is kept."""
    since = await staged(client, 8)
    order = hash_order("canary", units_of(8))
    sick = set(order[1:3])

    def verdict(unit: str, config: Config) -> tuple[bool, str]:
        on_branch = config.branch == "canary"
        return True, "unhealthy" if on_branch and unit in sick else "healthy"

    async with running_fleet(client, units_of(8), verdict):
        await client.start_rollout(
            "canary",
            application="web",
            steps=["1", "50%", "100%"],
            max_failed=1,
            on_failure="rollback",
        )
        r = await rollout_where(client, "canary", state_is("rolled_back", "committed"), since)
    assert r.state == "rolled_back" and r.step == 1 and sorted(r.failed) == sorted(sick)
    assert "more than the failure budget of 1" in r.reason
    assert "unhealthy: health check failed" in r.reason
    assert "every unit of web is back on master (the branch is kept)" in r.reason
    assert list(r.tracking) == []
    branch = await client.get_branch("canary")
    assert list(branch.units) == [] and branch.changes  # kept, with its changes
    units = await client.list_units("web")
    assert all(u.branch == "" for u in units)


async def test_operators_pause_resume_and_abort_and_each_is_recorded(client: Client) -> None:
    since = await staged(client, 4)
    units = units_of(4)
    # Units on the branch never report it applied: the rollout waits at step 1.
    async with running_fleet(client, units, holding=True):
        fleet_pending = hash_order("canary", units)[0]
        await client.start_rollout("canary", application="web", steps=[1, 2, "100%"])
        r = await rollout_where(client, "canary", lambda r: r.phase == "waiting", since)
        assert list(r.tracking) == [fleet_pending] and list(r.behind) == [fleet_pending]
        w = await client.pause_rollout("canary", reason="looks odd", created_by="ann")
        r = await client.get_rollout("canary", min_revision=w.revision)
        assert (r.state, r.reason) == ("paused", "paused by ann: looks odd")
        with pytest.raises(ClientError) as caught:
            await client.pause_rollout("canary")
        assert (
            "is paused, not running: nothing to pause"
            in assert_code(caught.value, PRECONDITION).message
        )
        w = await client.resume_rollout("canary", created_by="ann")
        assert (await client.get_rollout("canary", min_revision=w.revision)).state == "running"
        w = await client.abort_rollout("canary", reason="wrong change", created_by="cy")
        assert list(w.units) == [fleet_pending]
        r = await client.get_rollout("canary", min_revision=w.revision)
    assert r.state == "aborted" and r.reason.startswith(
        "aborted by cy at step 1/3 (1): wrong change"
    )
    ops = [(t.by, t.to) for t in r.transitions if not t.by.startswith("replica")]
    assert ops[1:] == [("ann", "paused"), ("ann", "waiting"), ("cy", "aborted")]
    assert all(u.branch == "" for u in await client.list_units("web"))
    assert (await client.get_branch("canary")).name == "canary"
    with pytest.raises(ClientError) as caught:
        await client.resume_rollout("canary")
    assert "is aborted, not paused" in assert_code(caught.value, PRECONDITION).message


async def test_a_branch_committed_by_hand_aborts_its_rollout_saying_so(client: Client) -> None:
    since = await staged(client, 3)
    async with running_fleet(client, units_of(3), holding=True):
        await client.start_rollout("canary", application="web", steps=[1, "100%"])
        await rollout_where(client, "canary", lambda r: r.phase == "waiting", since)
        await client.commit_branch("canary", reason="by hand")
        r = await rollout_where(client, "canary", state_is("aborted"), since)
    assert r.reason == "branch 'canary' is gone: committed or aborted outside the rollout"
    assert r.transitions[-1].by == "replica r1"


async def test_a_conflicting_commit_at_the_end_pauses_naming_the_keys(client: Client) -> None:
    since = await staged(client, 2)
    async with running_fleet(client, units_of(2)):
        await client.set_config("web", {"port": 8081})  # master moves under the branch
        await client.start_rollout("canary", application="web", steps=["100%"], commit=True)
        r = await rollout_where(client, "canary", state_is("paused", "committed"), since)
    assert r.state == "paused"
    assert r.reason.startswith("the commit of branch canary was refused: branch 'canary' ")
    assert "web.port (from absent, master now 8081" in r.reason


async def test_starts_that_cannot_be_are_refused_and_write_nothing(
    client: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await staged(client, 4)
    await client.add_branch("empty")
    before = digest(mongo_client, db_name)
    refusals: list[tuple[dict[str, Any], Any, str]] = [
        ({"branch": "nope"}, NOT_FOUND, "branch 'nope' not found: add it and stage"),
        ({"application": "db"}, NOT_FOUND, "application 'db' not found"),
        ({"branch": "empty"}, PRECONDITION, "branch 'empty' changes nothing in 'web'"),
        ({"steps": ["10%", "5%"]}, INVALID, "5% is not more than an earlier step (10%)"),
        ({"steps": ["3", "10%"]}, INVALID, "step 2 (10%) would hold fewer units than step 1"),
        ({"selector": "zone=z"}, PRECONDITION, "no unit of 'web' matches selector zone=z"),
        ({"on_failure": "retry"}, INVALID, "on_failure must be pause or rollback"),
        ({"bake_seconds": -1}, INVALID, "bake time must be 0 to 604800 seconds"),
    ]
    for change, code, message in refusals:
        request: dict[str, Any] = {"application": "web", "steps": ["1", "100%"], **change}
        branch = request.pop("branch", "canary")
        with pytest.raises(ClientError) as caught:
            await client.start_rollout(branch, **request)
        assert message in assert_code(caught.value, code).message, change
    outside = hash_order("canary", units_of(4))[-1]
    await client.track_branch("canary", units=[outside])
    before = digest(mongo_client, db_name)
    with pytest.raises(ClientError) as caught:
        await client.start_rollout("canary", application="web", steps=["1", "100%"])
    assert f"already track 'canary' outside the first step's 1 unit(s): {outside}" in (
        assert_code(caught.value, PRECONDITION).message
    )
    assert digest(mongo_client, db_name) == before


async def test_one_running_rollout_per_branch_and_a_finished_one_is_replaced(
    client: Client,
) -> None:
    since = await staged(client, 2)
    async with running_fleet(client, units_of(2)):
        await client.start_rollout("canary", application="web", steps=["100%"])
        with pytest.raises(ClientError) as caught:
            await client.start_rollout("canary", application="web", steps=["100%"])
        assert "already has a running rollout (step 1/1 (100%))" in (
            assert_code(caught.value, PRECONDITION).message
        )
        done = await rollout_where(client, "canary", state_is("completed"), since)
        assert "commit the branch when ready: genconf branch commit canary" in done.reason
        again = await client.start_rollout("canary", application="web", steps=["100%"])
        r = await client.get_rollout("canary", min_revision=again.revision)
    assert r.state == "running" and len(r.transitions) == 1  # a new history


async def test_the_admin_feed_carries_rollouts_filtered_by_application(client: Client) -> None:
    since = await staged(client, 1)
    async with running_fleet(client, units_of(1)):
        start = await client.start_rollout("canary", application="web", steps=["100%"])
        feed = client.watch_deltas(since_revision=since, kinds=["rollout"], applications=["web"])
        seen: list[admin_pb2.Delta] = []
        with anyio.fail_after(30):
            async for batch in feed:
                seen.extend(batch.deltas)
                if seen[-1].rollout.state == "completed":
                    break
    assert {d.kind for d in seen} == {"rollout"} and seen[0].rollout.state == "running"
    assert seen[0].rollout.transitions[0].to == "tracking" and start.revision > since
    # A feed of another application sees none of it: its first delta is that
    # application's own creation, after the whole rollout.
    other = client.watch_deltas(
        since_revision=since, kinds=["rollout", "application"], applications=["db"]
    )
    await client.create_application("db")
    with anyio.fail_after(30):
        async for batch in other:
            assert [(d.kind, d.key) for d in batch.deltas] == [("application", "db")]
            break


async def test_an_idle_driver_writes_nothing_and_holds_no_lease(
    client: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str, driven: RunningServer
) -> None:
    await staged(client, 2)
    driver = driven.driver
    assert driver is not None
    rounds = driver.stats.rounds

    async def looked() -> bool:  # rounds leave no trace to wait on: that is the point
        return driver.stats.rounds >= rounds + 5

    await eventually(looked, "five rounds of the driver")
    assert mongo_client[db_name]["leases"].count_documents({}) == 0
    assert driver.stats.actions == 0 and not driver.lease.held()


async def test_branch_expiry_runs_under_the_driver_lease(
    client: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    """No rollout runs; a branch due to expire is aborted by the replica that takes
    the lease for it (the lease document says which), its unit back on master."""
    await client.create_application("web", schema=SCHEMA, units=1)
    added = await client.add_branch("short", expires_in_seconds=1)
    await client.track_branch("short", units=["web/0"])
    with anyio.fail_after(30):
        async for batch in client.watch_deltas(since_revision=added.revision, kinds=["branch"]):
            if any(d.key == "short" and d.removed for d in batch.deltas):
                break
    lease = mongo_client[db_name]["leases"].find_one({"_id": "rollouts"})
    assert lease is not None and (lease["holder"], lease["epoch"]) == ("r1", 1)
    assert [u.branch for u in await client.list_units("web")] == [""]


async def test_the_snapshot_holds_every_rollout(client: Client) -> None:
    """Snapshot, then the feed from its revision, hold every rollout as it is."""
    since = await staged(client, 1)
    async with running_fleet(client, units_of(1)):
        await client.start_rollout("canary", application="web", steps=["100%"])
        await rollout_where(client, "canary", state_is("completed"), since)
        snapshot = await client.snapshot()
    assert [(r.branch, r.state) for r in snapshot.rollouts] == [("canary", "completed")]
    got = await client.get_rollout("canary", min_revision=snapshot.revision)
    for now in ("tracking", "behind", "candidates", "step_size"):  # the server's view of now
        got.ClearField(now)
    assert snapshot.rollouts[0] == got


async def test_the_json_api_starts_follows_and_aborts_a_rollout(
    mongo_uri: str, db_name: str
) -> None:
    async with (
        background_server(
            mongo_uri, db_name, http_listen="127.0.0.1:0", rollout_tick=0.05, replica_id="h"
        ) as srv,
        Client(srv.address, timeout=20) as client,
        httpx.AsyncClient(base_url=f"http://{srv.http_address}/api/v1", timeout=20) as web,
    ):
        since = await staged(client, 3)
        async with running_fleet(client, units_of(3), holding=True):
            body = {"branch": "canary", "application": "web", "steps": ["1", "100%"]}
            started = await web.post("/rollouts", json={**body, "max_failed": "10%"})
            assert started.status_code == 200, started.text
            await rollout_where(client, "canary", lambda r: r.phase == "waiting", since)
            shown = (await web.get("/rollouts/canary")).json()
            assert (shown["state"], shown["step"], shown["max_failed"]) == ("running", 1, "10%")
            assert len(shown["tracking"]) == 1 and shown["behind"] == shown["tracking"]
            again = await web.post("/rollouts", json=body)
            assert again.status_code == 412
            assert "already has a running rollout" in again.json()["message"]
            bad = await web.post("/rollouts", json={**body, "branch": "b2", "steps": ["x"]})
            assert bad.status_code == 400 and "invalid step 'x'" in bad.json()["message"]
            aborted = await web.post("/rollouts/canary/abort", json={"reason": "enough"})
            assert aborted.status_code == 200 and aborted.json()["units"] == shown["tracking"]
        listed = (await web.get("/rollouts", params={"application": "web"})).json()
    assert [(r["branch"], r["state"]) for r in listed] == [("canary", "aborted")]
    assert listed[0]["transitions"][-1]["by"] == "http"
