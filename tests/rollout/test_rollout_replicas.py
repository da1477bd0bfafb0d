"""Two real `genconf serve` processes on one mongod, one lease: kill -9 the replica
driving a rollout mid-step and the other takes over within the lease time and
finishes, each step applied once; SIGSTOP it instead, and when it wakes after
losing the lease it writes nothing (the lease's epoch and the transitions say so).

Replica a starts alone, so it is the one that takes the lease with the rollout;
replica b starts next and serves the agents (in-process ones that hold their
reports until the test releases them, so that a step waits exactly as long as the
test needs). Every wait is on the admin feed or a log line.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from pymongo import MongoClient
from rollout_fleet import WAIT, rollout_where, running_fleet, state_is, steps_reached
from support.cli_runner import clean_env
from support.procs import first_line, stop_process

from genconf.cli.serve import READY_LINE
from genconf.client import Client
from genconf.v1 import rollout_pb2 as rpb

pytestmark = pytest.mark.mongo

LEASE = 2.0
UNITS = [f"web/{n}" for n in range(10)]


@dataclass
class Replica:
    """A `genconf serve` child: its address, process, and stderr lines as they come."""

    name: str
    address: str
    proc: asyncio.subprocess.Process
    log: Path
    text: str = ""
    _line: asyncio.Event = field(default_factory=asyncio.Event)

    async def pump(self) -> None:
        assert self.proc.stderr is not None
        with self.log.open("a") as out:
            async for raw in self.proc.stderr:
                line = raw.decode(errors="replace")
                out.write(line)
                self.text += line
                self._line.set()
                self._line = asyncio.Event()

    async def logged(self, text: str) -> None:
        with anyio.fail_after(WAIT):
            while text not in self.text:
                await self._line.wait()


@asynccontextmanager
async def replica(mongo_uri: str, db_name: str, name: str, tmp: Path) -> AsyncIterator[Replica]:
    """Replica ``name`` (its --replica-id too): killed, stopped or not, afterwards."""
    argv = ["serve", "--mongo-uri", mongo_uri, "--database", db_name]
    argv += ["--listen", "127.0.0.1:0", "--replica-id", name]
    argv += ["--lease-seconds", str(LEASE), "--rollout-tick", "0.05"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "genconf.cli.main", *argv,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=clean_env(tmp),
    )  # fmt: skip
    server = Replica(name, "", proc, tmp / f"{name}.log")
    pump = asyncio.create_task(server.pump())
    try:
        line = await first_line(proc, 60)
        assert line.startswith(READY_LINE), f"{line!r}: {server.text[-2000:]}"
        server.address = line.removeprefix(READY_LINE).strip()
        yield server
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGCONT)
        await stop_process(proc)
        await asyncio.wait_for(pump, WAIT)


async def model_with_a_rollout_at_its_first_step(client: Client) -> int:
    """web, 10 units, canary staging a port; its rollout started and its first step
    tracked (by the only replica running). The revision before the rollout."""
    await client.create_application("web", schema={"port": {"type": "int"}}, units=len(UNITS))
    await client.add_branch("canary")
    since = (await client.set_branch_config("canary", "web", {"port": 9090})).revision
    await client.start_rollout(
        "canary", application="web", steps=[1, 4, "100%"], bake_seconds=0.3, commit=True
    )
    await rollout_where(client, "canary", lambda r: r.phase == "waiting", since)
    return since


def lease_of(mongo_client: MongoClient[dict[str, Any]], db_name: str) -> dict[str, Any]:
    doc = mongo_client[db_name]["leases"].find_one({"_id": "rollouts"})
    assert doc is not None
    return doc


async def test_kill_9_of_the_driving_replica_mid_step_the_other_takes_over_and_finishes(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]], tmp_path: Path
) -> None:
    async with replica(mongo_uri, db_name, "a", tmp_path) as a:
        async with Client(a.address, timeout=20) as via_a:
            await model_with_a_rollout_at_its_first_step(via_a)
        assert lease_of(mongo_client, db_name)["holder"] == "a"
        async with (
            replica(mongo_uri, db_name, "b", tmp_path) as b,
            Client(b.address, timeout=20) as client,
            running_fleet(client, UNITS, holding=True) as fleet,
        ):
            since = (await client.snapshot()).revision  # b's feed begins about here
            await fleet.release(hold_on=True)  # step 1 reported: a goes on to step 2
            await rollout_where(client, "canary", lambda r: r.step == 1, since)
            a.proc.kill()  # mid step 2: tracked, its units' reports held
            killed = time.monotonic()
            await a.proc.wait()
            await fleet.release()
            await rollout_where(client, "canary", by_replica("b"), since)
            taken = time.monotonic()
            r = await rollout_where(client, "canary", state_is("committed", "paused"), since)
    assert r.state == "committed", r.reason
    assert taken - killed <= LEASE + 1.5, f"took over {taken - killed:.1f}s after the kill"
    assert steps_reached(r) == [0, 1, 2]  # each step applied once, none skipped
    by = [(t.by, t.epoch) for t in r.transitions[1:]]
    assert set(by) == {("replica a", 1), ("replica b", 2)}
    first_b = by.index(("replica b", 2))
    assert ("replica a", 1) not in by[first_b:]  # a never wrote after b took over
    doc = lease_of(mongo_client, db_name)
    assert (doc["holder"], doc["epoch"], doc["previous"]) == ("b", 2, "a")
    assert "replica b now drives rollouts (lease epoch 2)" in b.text


def by_replica(name: str) -> Callable[[rpb.Rollout], bool]:
    return lambda r: any(t.by == f"replica {name}" for t in r.transitions)


async def test_a_stopped_holder_that_wakes_after_losing_the_lease_writes_nothing(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]], tmp_path: Path
) -> None:
    async with replica(mongo_uri, db_name, "a", tmp_path) as a:
        async with Client(a.address, timeout=20) as via_a:
            await model_with_a_rollout_at_its_first_step(via_a)
        async with (
            replica(mongo_uri, db_name, "b", tmp_path) as b,
            Client(b.address, timeout=20) as client,
            running_fleet(client, UNITS, holding=True) as fleet,
        ):
            since = (await client.snapshot()).revision  # b's feed begins about here
            a.proc.send_signal(signal.SIGSTOP)
            stopped = time.monotonic()
            await fleet.release(hold_on=True)  # step 1 reported: only b can act on it
            await rollout_where(client, "canary", by_replica("b"), since)
            took_over = time.monotonic()
            r = await rollout_where(client, "canary", lambda r: r.step == 1, since)
            assert r.transitions[-1].by == "replica b" and r.transitions[-1].epoch == 2
            # a wakes with a rollout to drive and a lease it believes it holds.
            a.proc.send_signal(signal.SIGCONT)
            await a.logged("replica a lost the rollout lease (epoch 1)")
            await fleet.release()
            r = await rollout_where(client, "canary", state_is("committed", "paused"), since)
    assert r.state == "committed", r.reason
    assert took_over - stopped <= LEASE + 1.5
    after = [t for t in r.transitions if t.by == "replica a"]
    assert [t.why.split(":")[0] for t in after] == ["step 1/3 (1)"]  # its one step, before
    assert {t.epoch for t in r.transitions if t.by == "replica b"} == {2}
    assert steps_reached(r) == [0, 1, 2]
    doc = lease_of(mongo_client, db_name)
    assert (doc["holder"], doc["epoch"]) == ("b", 2)  # a never took it back
    assert "replica a now drives rollouts (lease epoch 1)" in a.text
    assert "lease epoch 3" not in a.text + b.text
