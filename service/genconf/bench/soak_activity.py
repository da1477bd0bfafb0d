"""The soak's activity: writes, branch lifecycles, agents joining and leaving, and
the server's memory sampled, all at once on one event loop; then the check of
every agent and every GetConfig against MongoDB's documents (`Soak.check`).
`genconf.bench.soak` runs it and reports."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import grpc
from pymongo import AsyncMongoClient

from genconf.bench.session import Session
from genconf.client import ClientError
from genconf.defaults import DEFAULT_RING_SIZE
from genconf.domain.values import config_hash
from genconf.store import invariants
from genconf.store.documents import APPLICATIONS, BRANCHES, UNITS, effective_by_unit

LIFECYCLES: Final = ("commit", "abort", "commit-force", "abort-untracked")
LEVELS: Final = ("debug", "info", "warning")
REGIONS: Final = ("eu-west", "us-east", "ap-south")
GET_CONFIG_CONCURRENCY: Final = 32
SAMPLE_LIMIT: Final = 5  # mismatches and errors listed in the report (all are counted)
MIB: Final = 2**20


@dataclass
class Plan:
    """The soak's own sizes and rates (the common ones are in `Options`)."""

    minutes: float = 10.0
    apps: int = 3
    write_rate: float = 5.0  # SetConfig per second, over all applications
    branch_interval: float = 4.0  # seconds from one branch lifecycle to the next
    branch_units: int = 3  # units each branch tracks
    churn_interval: float = 5.0
    churn_fraction: float = 0.1  # of the connected agents, leaving per churn tick
    unit_churn: int = 1  # units added, and units removed, per churn tick
    sample_interval: float = 5.0
    seed: int | None = None
    # The server's admin-feed ring (deltas kept for resume): memory grows until it is full.
    ring_size: int = DEFAULT_RING_SIZE

    def check(self) -> None:
        if not self.minutes > 0:
            raise ValueError("--minutes must be > 0")
        if self.apps < 1 or self.branch_units < 1 or self.unit_churn < 0:
            raise ValueError("--apps and --branch-units must be >= 1, --unit-churn >= 0")
        if min(self.write_rate, self.branch_interval, self.churn_interval) <= 0:
            raise ValueError("--write-rate, --branch-interval and --churn-interval must be > 0")
        if not 0 <= self.churn_fraction <= 1:
            raise ValueError("--churn-fraction must be within 0..1")
        if self.sample_interval <= 0:
            raise ValueError("--sample-interval must be > 0")
        if self.ring_size < 1:
            raise ValueError("--ring-size must be >= 1")


@dataclass
class Sample:
    """The server at one moment: seconds since warm-up, resident memory, watch streams,
    and deltas in the admin feed's ring (which holds old records until it is full)."""

    t: float
    rss_mib: float
    watchers: int
    ring_deltas: int


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    den = sum((t - mean_t) ** 2 for t, _ in points)
    if den == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / den * 60.0


async def expected_hashes(
    mongo_uri: str, database: str, apps: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """Each unit's config hash of ``apps``, computed straight from the MongoDB documents,
    and every broken model invariant (`genconf.store.invariants`) in those documents."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
    try:
        db = client[database]
        configs = effective_by_unit(
            {a["_id"]: a async for a in db[APPLICATIONS].find({"_id": {"$in": list(apps)}})},
            {b["_id"]: b async for b in db[BRANCHES].find()},
            [u async for u in db[UNITS].find({"application": {"$in": list(apps)}})],
        )
        broken = await invariants.check_database(db)
        return {unit: config_hash(config) for unit, config in configs.items()}, broken
    finally:
        await client.close()


class Soak:
    """The run's bookkeeping: what exists, which agent is where, what happened.

    Every task runs on this one event loop, and each picks what it works on and
    marks it (``busy``, or gone from ``units``) with no await in between, so no two
    tasks work on the same unit at once.
    """

    def __init__(self, s: Session, plan: Plan, rng: random.Random) -> None:
        self.s = s
        self.plan = plan
        self.rng = rng
        self.client = s.need_client()
        self.apps: list[str] = []
        self.units: dict[str, str] = {}  # unit -> application, as in MongoDB
        self.agents: dict[str, int] = {}  # unit -> agent process of its connected agent
        self.held: dict[str, str] = {}  # unit -> the hash its agent held when it left
        self.removed_with_agent: set[str] = set()
        self.busy: set[str] = set()  # tracked by the branch in flight: not removed
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self.samples: list[Sample] = []
        self.stop = asyncio.Event()
        self.turn = 0  # the agent process the next joining agent goes to
        self.began = 0.0

    # -- pacing and errors ----------------------------------------------------------

    async def pause(self, until: float) -> bool:
        """Wait until ``until`` (monotonic) unless the run stops first (pacing, not
        synchronization); whether the run goes on."""
        delay = until - time.monotonic()
        if delay > 0 and not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self.stop.wait()
        return not self.stop.is_set()

    def failed(self, what: str, exc: Exception) -> None:
        """A write the server refused: counted and listed, and the run goes on."""
        self.counts["errors"] += 1
        if len(self.errors) < SAMPLE_LIMIT:
            self.errors.append(f"{what}: {exc}")

    # -- agents ----------------------------------------------------------------------

    async def join(self, entries: Sequence[tuple[str, str, int]], *, churn: bool = True) -> None:
        """Agents for these (unit, known hash, min revision), spread over the processes
        (``churn``: counted as joining, unlike the initial population). An agent that
        fails to start stays counted as connected: the final check reports it."""
        workers = self.s.workers
        parts: list[list[tuple[str, str, int]]] = [[] for _ in workers]
        for entry in entries:
            parts[self.turn % len(workers)].append(entry)
            self.turn += 1
        timeout = self.s.opts.timeout
        replies = await asyncio.gather(
            *(
                w.request(timeout, op="join", agents=parts[i], timeout=timeout)
                for i, w in enumerate(workers)
            )
        )
        for i, reply in enumerate(replies):
            for unit, _, _ in parts[i]:
                self.agents[unit] = i
                self.held.pop(unit, None)
            self.counts["agents_joined" if churn else "agents_initial"] += len(parts[i])
            self.counts["join_failures"] += len(reply["failed"])
            for unit, why in reply["failed"][:SAMPLE_LIMIT]:
                if len(self.errors) < SAMPLE_LIMIT:
                    self.errors.append(f"join {unit}: {why}")

    async def leave(self, units: Sequence[str]) -> None:
        by_worker: dict[int, list[str]] = {}
        for unit in units:
            by_worker.setdefault(self.agents.pop(unit), []).append(unit)
        replies = await asyncio.gather(
            *(
                self.s.workers[i].request(30, op="leave", units=part)
                for i, part in by_worker.items()
            )
        )
        for reply in replies:
            self.held.update(reply["hashes"])
        self.counts["agents_left"] += len(units)

    # -- the workload's tasks ---------------------------------------------------------

    async def writes(self) -> None:
        """Steady SetConfig round-robin over the applications, each with new values."""
        n = 0
        apps = self.apps
        while await self.pause(self.began + n / self.plan.write_rate):
            app = apps[n % len(apps)]
            try:
                if n % 6 == 5:
                    await self.client.set_config(app, {"seq": n + 1}, unset=["region"])
                else:
                    values = {"seq": n + 1, "round": n // len(apps), "region": REGIONS[n % 3]}
                    await self.client.set_config(app, values)
                self.counts["writes"] += 1
            except ClientError as exc:
                self.failed(f"set_config {app}", exc)
            n += 1

    async def branches(self) -> None:
        """One branch lifecycle per interval, the kinds in turn."""
        interval = self.plan.branch_interval
        cycle = 0
        while await self.pause(self.began + cycle * interval):
            await self.lifecycle(cycle, self.began + (cycle + 0.5) * interval)
            cycle += 1

    async def lifecycle(self, cycle: int, end_at: float) -> None:
        kind = LIFECYCLES[cycle % len(LIFECYCLES)]
        name = f"soak-{cycle}"
        app = self.apps[cycle % len(self.apps)]
        other = self.apps[(cycle + 1) % len(self.apps)]
        free = sorted(u for u, a in self.units.items() if a == app and u not in self.busy)
        chosen = self.rng.sample(free, min(self.plan.branch_units, len(free)))
        self.busy.update(chosen)
        client = self.client
        try:
            await client.add_branch(name, created_by="bench-soak")
            if chosen:
                await client.track_branch(name, units=chosen)
            changes: dict[str, Any] = {"replicas": 2 + cycle, "log-level": LEVELS[cycle % 3]}
            if kind == "commit-force":
                changes["round"] = -cycle  # the writes' key too: only force gets it through
            unset = ["region"] if kind.startswith("abort") else []
            await client.set_branch_config(name, app, changes, unset=unset)
            if other != app:
                await client.set_branch_config(name, other, {"timeout": 30 + cycle})
            if not await self.pause(end_at):
                return  # the run is over: the branch stays active, and is checked as it is
            if kind == "commit":
                try:
                    await client.commit_branch(name)
                except ClientError as exc:
                    if exc.code != grpc.StatusCode.FAILED_PRECONDITION:
                        raise
                    self.counts["commit_conflicts"] += 1
                    await client.commit_branch(name, force=True)
                self.counts["branches_committed"] += 1
            elif kind == "commit-force":
                await client.commit_branch(name, force=True)
                self.counts["branches_committed"] += 1
                self.counts["forced_commits"] += 1
            elif kind == "abort":
                await client.abort_branch(name, force=True)
                self.counts["branches_aborted"] += 1
                self.counts["forced_aborts"] += 1
            else:
                if chosen:
                    await client.untrack_branch(name, units=chosen)
                await client.abort_branch(name)
                self.counts["branches_aborted"] += 1
        except ClientError as exc:
            self.failed(f"branch {name} ({kind})", exc)
            with contextlib.suppress(ClientError):
                await client.abort_branch(name, force=True)
        finally:
            self.busy.difference_update(chosen)

    async def churn(self) -> None:
        """Agents leave, units come and go, agents join; once per interval."""
        interval = self.plan.churn_interval
        tick = 1
        while await self.pause(self.began + tick * interval):
            await self.churn_once()
            tick += 1

    async def churn_once(self) -> None:
        connected = sorted(self.agents)
        count = min(len(connected), max(1, round(self.plan.churn_fraction * len(connected))))
        await self.leave(self.rng.sample(connected, count))
        joining: list[tuple[str, str, int]] = []
        for _ in range(self.plan.unit_churn):
            app = self.rng.choice(self.apps)
            try:
                added = await self.client.add_units(app, count=1)
            except ClientError as exc:
                self.failed(f"add_units {app}", exc)
                continue
            for unit in added.units:
                self.units[unit] = app
                joining.append((unit, "", added.revision))
            self.counts["units_added"] += len(added.units)
            new = {unit for unit, _, _ in joining}
            victims = sorted(u for u in self.units if u not in self.busy and u not in new)
            if victims:
                await self.remove_unit(self.rng.choice(victims))
        new = {unit for unit, _, _ in joining}
        free = sorted(u for u in self.units if u not in self.agents and u not in new)
        wanted = max(0, self.s.opts.streams - len(self.agents) - len(joining))
        back = self.rng.sample(free, min(len(free), wanted))
        # Every other one comes back with the hash it held, as an agent that restarted.
        joining += [(u, self.held.get(u, "") if i % 2 else "", 0) for i, u in enumerate(back)]
        await self.join(joining)

    async def remove_unit(self, unit: str) -> None:
        app = self.units.pop(unit)
        worker = self.agents.pop(unit, None)
        try:
            await self.client.remove_unit(unit)
        except ClientError as exc:
            self.units[unit] = app  # still there, and so is its agent
            if worker is not None:
                self.agents[unit] = worker
            self.failed(f"remove_unit {unit}", exc)
            return
        self.counts["units_removed"] += 1
        self.held.pop(unit, None)
        if worker is not None:
            self.removed_with_agent.add(unit)  # the server ends its stream

    async def sample(self) -> Sample:
        stats = await self.s.server_stats()
        point = Sample(
            time.monotonic() - self.began,
            stats["rss_bytes"] / MIB,
            int(stats["config_watchers"]),
            int(stats["ring_deltas"]),
        )
        self.samples.append(point)
        return point

    async def sampler(self) -> None:
        k = 1
        while await self.pause(self.began + k * self.plan.sample_interval):
            await self.sample()
            k += 1

    # -- the end -----------------------------------------------------------------------

    async def check(self) -> dict[str, Any]:
        """One last write to every application, then every agent and every GetConfig
        against the hashes computed from MongoDB's documents."""
        client = self.client
        revision = 0
        for i, app in enumerate(self.apps):
            result = await client.set_config(app, {"seq": -1 - i, "round": -1})
            revision = max(revision, result.revision)
        self.counts["writes"] += len(self.apps)
        assert self.s.mongo_uri is not None
        expected, broken = await expected_hashes(self.s.mongo_uri, self.s.database, self.apps)
        started = time.monotonic()
        timeout = self.s.opts.timeout
        replies = await self.s.each(
            lambda i, w: w.request(timeout, op="converge", expected=expected, timeout=timeout)
        )
        converged = time.monotonic() - started
        samples: list[str] = []
        mismatches = checked = removed = 0
        for i, reply in enumerate(replies):
            checked += len(reply["checked"])
            removed += reply["removed"]
            mismatches += reply["mismatch_count"]
            for unit, have, want, state in reply["mismatches"]:
                samples.append(
                    f"{unit}: holds {have[:12]}, MongoDB says {str(want)[:12]} ({state})"
                )
            # The process holds exactly the agents the bench put there.
            ours = {u for u, w in self.agents.items() if w == i}
            for unit in sorted(ours.symmetric_difference(reply["checked"])):
                mismatches += 1
                samples.append(f"{unit}: agent {'missing' if unit in ours else 'unexpected'}")
        get_mismatches = await self.check_get_config(expected, revision, samples)
        samples.extend(f"invariant: {line}" for line in broken)
        return {
            "invariant_violations": len(broken),
            "agents_checked": checked,
            "agents_connected": len(self.agents),
            "agent_mismatches": mismatches,
            "removed_unit_streams_ended": removed,
            "units_in_mongodb": len(expected),
            "units_as_the_bench_made_them": set(expected) == set(self.units),
            "get_config_checked": len(expected),
            "get_config_mismatches": get_mismatches,
            "wait_for_agents_s": round(converged, 3),
            "sample": samples[:SAMPLE_LIMIT],
        }

    async def check_get_config(
        self, expected: dict[str, str], revision: int, samples: list[str]
    ) -> int:
        gate = asyncio.Semaphore(GET_CONFIG_CONCURRENCY)
        wrong = 0

        async def one(unit: str, want: str) -> None:
            nonlocal wrong
            async with gate:
                got = await self.client.get_config(unit, min_revision=revision)
            if got.hash != want:
                wrong += 1
                samples.append(f"GetConfig {unit}: {got.hash[:12]}, MongoDB says {want[:12]}")

        await asyncio.gather(*(one(u, h) for u, h in expected.items()))
        return wrong
