"""What the rollout tests share: agents in-process (each a real `Client.watch_config`
stream that applies every distinct config and sends a real ReportApplied), real
`genconf agent` processes, and waits on the admin feed (no sleeps).

A plain module (not a test): the tests next to it import it as ``rollout_fleet``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.abc import TaskGroup, TaskStatus
from support.procs import stop_process

from genconf.client import Client, Config
from genconf.v1 import admin_pb2
from genconf.v1 import rollout_pb2 as rpb

WAIT = 60.0  # seconds: a bound on events, not a sleep

# (unit, config) -> (ok, health): what an agent reports after applying a config.
Verdict = Callable[[str, Config], tuple[bool, str]]


def healthy(unit: str, config: Config) -> tuple[bool, str]:
    return True, "healthy"


@dataclass
class Fleet:
    """In-process agents: each watches its unit and reports every distinct config."""

    client: Client
    verdict: Verdict = healthy
    latest: dict[str, Config] = field(default_factory=dict)
    # While holding, agents apply but do not report yet (a slow restart), until `release`.
    holding: bool = False
    held: set[str] = field(default_factory=set)

    async def start(self, tg: TaskGroup, units: Iterable[str]) -> None:
        """One agent per unit; returns once each has applied its first config (and
        reported it, unless holding)."""
        for unit in sorted(units):
            await tg.start(self._agent, unit)

    async def _agent(self, unit: str, *, task_status: TaskStatus[None]) -> None:
        started = False
        async for config in self.client.watch_config(unit):
            self.latest[unit] = config
            if self.holding:
                self.held.add(unit)
            else:
                await self.report(unit)
            if not started:
                started = True
                task_status.started()

    async def release(self, *, hold_on: bool = False) -> None:
        """Report what the held agents applied (``hold_on``: hold the next ones too)."""
        self.holding = hold_on
        held, self.held = sorted(self.held), set()
        for unit in held:
            await self.report(unit)

    async def report(self, unit: str) -> None:
        """Report the newest config of ``unit`` as the verdict has it (again: a fix)."""
        config = self.latest[unit]
        ok, health = self.verdict(unit, config)
        await self.client.report_applied(
            unit,
            config.hash,
            ok=ok,
            message="applied" if ok else "exec exited 1: reload failed",
            health=health,
            health_message="health check failed" if health == "unhealthy" else "",
        )


@asynccontextmanager
async def running_fleet(
    client: Client, units: Iterable[str], verdict: Verdict = healthy, *, holding: bool = False
) -> AsyncIterator[Fleet]:
    fleet = Fleet(client, verdict, holding=holding)
    async with anyio.create_task_group() as tg:
        await fleet.start(tg, units)
        try:
            yield fleet
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def agent_process(
    server: str, unit: str, path: Path, *extra: str, log: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """A real `genconf agent` keeping ``path`` current; stopped afterwards."""
    argv = [sys.executable, "-m", "genconf.cli.main", "agent", "--server", server]
    argv += ["--unit", unit, "--write", str(path), "--max-backoff", "0.3", *extra]
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        yield proc
    finally:
        await stop_process(proc)


def file_config(path: Path) -> dict[str, object]:
    """The config a real agent wrote (JSON)."""
    return dict(json.loads(path.read_text()))


async def rollout_where(
    client: Client,
    branch: str,
    wanted: Callable[[rpb.Rollout], bool],
    since: int,
    limit: float = WAIT,
) -> rpb.Rollout:
    """The rollout of ``branch`` (as GetRollout shows it) once ``wanted`` holds of it
    on the admin feed after revision ``since`` (so no state of it is missed)."""
    seen: rpb.Rollout | None = None
    try:
        with anyio.fail_after(limit):
            async for batch in client.watch_deltas(since_revision=since, kinds=["rollout"]):
                for delta in batch.deltas:
                    if delta.key == branch and not delta.removed:
                        seen = delta.rollout
                        if wanted(seen):
                            return await client.get_rollout(branch, min_revision=batch.revision)
    except TimeoutError:
        last = f"{seen.state}/{seen.phase} at step {seen.step + 1}: {seen.reason}" if seen else "-"
        raise AssertionError(f"rollout {branch} never got there; last seen {last}") from None
    raise AssertionError("the admin feed ended")


def state_is(*states: str) -> Callable[[rpb.Rollout], bool]:
    return lambda r: r.state in states


async def report_where(
    client: Client, unit: str, since: int, wanted: Callable[[admin_pb2.Delta], bool]
) -> int:
    """The revision at which ``unit``'s record first satisfies ``wanted`` after ``since``."""
    with anyio.fail_after(WAIT):
        async for batch in client.watch_deltas(since_revision=since, kinds=["unit"]):
            for delta in batch.deltas:
                if delta.key == unit and not delta.removed and wanted(delta):
                    return batch.revision
    raise AssertionError("the admin feed ended")


def steps_reached(r: rpb.Rollout) -> list[int]:
    """The step of each transition that reached a step (tracked its cohort): every
    step is reached once, in order."""
    return [t.step for t in r.transitions if t.to == "waiting" and "more tracked" in t.why]


@dataclass
class TrackingBound:
    """Follows the admin feed and checks, after every unit delta, that the units of
    ``application`` on ``branch`` are no more than the rollout's current step holds
    (``sizes``: each step's units). Rollout deltas of a batch apply first: a step's
    tracking and its advance are one transaction, hence one batch."""

    branch: str
    application: str
    sizes: Sequence[int]
    step: int = 0
    tracking: set[str] = field(default_factory=set)
    most: list[int] = field(default_factory=list)  # the largest count seen, per step
    deltas: int = 0
    state: str = ""

    async def follow(self, client: Client, since: int, *, task_status: TaskStatus[None]) -> None:
        feed = client.watch_deltas(
            since_revision=since, kinds=["unit", "rollout"], applications=[self.application]
        )
        task_status.started()
        self.most = [0] * len(self.sizes)
        async for batch in feed:
            for delta in batch.deltas:
                if delta.kind == "rollout" and delta.key == self.branch:
                    self.step, self.state = delta.rollout.step, delta.rollout.state
            for delta in batch.deltas:
                if delta.kind != "unit":
                    continue
                self.deltas += 1
                if not delta.removed and delta.unit.branch == self.branch:
                    self.tracking.add(delta.key)
                else:
                    self.tracking.discard(delta.key)
                assert len(self.tracking) <= self.sizes[self.step], (
                    f"{len(self.tracking)} units on {self.branch} at step {self.step + 1}, "
                    f"which holds {self.sizes[self.step]}"
                )
                self.most[self.step] = max(self.most[self.step], len(self.tracking))
            if self.state in ("committed", "completed", "rolled_back", "aborted"):
                return
