"""The per-replica driver loop: every replica runs one; the one holding the lease
drives every running rollout.

Each round (every `tick` seconds):

1. nothing running in the cache -> nothing at all (no lease renewed, no write):
   an idle model costs MongoDB nothing and its documents stay as they are;
2. otherwise hold the lease: acquire it when it is free or expired, renew it
   every lease/3 seconds (`Lease.acquire`); a replica that does not hold it stops
   here, and takes over once the holder's lease has expired;
3. for each running rollout, `plan.decide` on what the cache shows now, and
   `RolloutStore.act` on the decision: one transaction fenced by the lease and by
   the rollout's revision. A refusal (`LeaseLost`, `Stale`, a branch write
   refused) writes nothing; the next round looks again.

The cache is consulted at one revision per decision (no await between reading
the rollout and its units), and a round after one of this replica's own writes
first waits for the cache to hold it, so a decision never rests on a state older
than the one it acts on (`Stale` catches the rest).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final

import anyio

from genconf.defaults import DEFAULT_LEASE_SECONDS, DEFAULT_ROLLOUT_TICK
from genconf.domain.rollouts import RUNNING, Rollout
from genconf.errors import (
    Conflict,
    FailedPrecondition,
    GenconfError,
    NotApplied,
    NotFound,
    Unavailable,
)
from genconf.readside.cache import ModelCache
from genconf.rollout import plan
from genconf.rollout.lease import Lease, LeaseLost, utcnow
from genconf.rollout.store import RolloutStore, Stale
from genconf.store.store import Store

log = logging.getLogger("genconf.rollout")

# A round waits this many ticks at most for the cache to show the replica's last write.
SETTLE_TICKS: Final = 20

# Work other than rollouts that runs under the lease (e.g. expiring branches):
# ``due()`` says, from the cache, whether there is any (no lease is taken for
# nothing); ``run(lease)`` does it, fencing its writes with ``lease.check``.
Due = Callable[[], bool]
Run = Callable[[Lease], Awaitable[None]]


@dataclass
class DriverStats:
    """What the driver did, for logs and tests."""

    rounds: int = 0
    actions: int = 0
    stale: int = 0  # decisions on a state that had changed: looked again
    refused: int = 0  # branch writes refused (a unit taken meanwhile, the branch gone)
    lease_lost: int = 0
    errors: int = 0


@dataclass(frozen=True)
class Maintenance:
    name: str
    due: Due
    run: Run


def observe(cache: ModelCache, r: Rollout, now: dt.datetime) -> plan.Observation:
    """What the cache shows of ``r``'s application and branch now (no await)."""
    app = cache.applications.get(r.application)
    branch = cache.branches.get(r.branch)
    if app is None:
        return plan.Observation(now, (), branch_exists=branch is not None, app_exists=False)
    units = tuple(
        plan.UnitState(
            u.name,
            u.branch,
            u.labels,
            u.applied,
            cache.config(u.name).hash if u.branch == r.branch else None,
        )
        for u in cache.units_of(r.application)
    )
    whole = branch is not None and (
        r.application in branch.track_applications or r.application in branch.cohorts
    )
    return plan.Observation(now, units, branch_exists=branch is not None, whole=whole)


def branch_expiry(store: Store, cache: ModelCache) -> Maintenance:
    """Branches past their expiry aborted (`Store.expire_branches`) by the replica
    holding the lease, each abort fenced by it; due when the cache shows one."""

    def due() -> bool:
        now = store.clock()
        return any(
            b.expires_at is not None and b.expires_at <= now for b in cache.branches.values()
        )

    async def run(lease: Lease) -> None:
        await store.expire_branches(store.clock(), guard=lease.check)

    return Maintenance("branch expiry", due, run)


class Driver:
    """One replica's rollout driver (`run` until cancelled)."""

    def __init__(
        self,
        store: Store,
        cache: ModelCache,
        *,
        replica: str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        tick: float = DEFAULT_ROLLOUT_TICK,
        clock: Callable[[], dt.datetime] = utcnow,
        maintenance: Sequence[Maintenance] = (),
    ) -> None:
        if not tick > 0:
            raise ValueError(f"a driver's tick must be positive, not {tick}")
        self.cache = cache
        self.rollouts = RolloutStore(store)
        self.lease = Lease(store.client, store.db, replica, lease_seconds, clock=clock)
        self.replica = replica
        self.tick = tick
        self.clock = clock
        self.maintenance = list(maintenance)
        self.stats = DriverStats()
        self._renewed = 0.0  # monotonic time of the last acquire or renewal
        self._last_write = 0  # revision of this replica's last write

    async def run(self) -> None:
        log.info(
            "rollout driver of replica %s: lease %gs, tick %gs",
            self.replica,
            self.lease.seconds,
            self.tick,
        )
        await self.cache.wait_synced()
        try:
            while True:
                try:
                    await self.round()
                except Unavailable as exc:
                    self.stats.errors += 1
                    log.warning("rollout driver: MongoDB unavailable (%s); trying again", exc)
                except GenconfError as exc:
                    self.stats.errors += 1
                    log.warning("rollout driver: %s", exc)
                except Exception:  # a bug: said loudly, but it must not stop the server
                    self.stats.errors += 1
                    log.exception("rollout driver: the round failed; the next one tries again")
                await self._next_round()
        finally:
            with anyio.move_on_after(2, shield=True):
                try:
                    await self.lease.release()
                except GenconfError as exc:
                    log.warning("rollout driver: could not release the lease: %s", exc)

    async def _next_round(self) -> None:
        """A tick: polling keeps no waiter parked on the cache between rounds (the
        cache's read-your-writes waiters are for reads)."""
        await anyio.sleep(self.tick)

    def running(self) -> list[str]:
        return sorted(b for b, r in self.cache.rollouts.items() if r.state == RUNNING)

    async def round(self) -> None:
        """One look at every running rollout (and due maintenance)."""
        self.stats.rounds += 1
        if self._last_write > self.cache.revision:
            with anyio.move_on_after(self.tick * SETTLE_TICKS):
                await self.cache.wait_for(self._last_write)
        running = self.running()
        due = [m for m in self.maintenance if m.due()]
        if not running and not due:
            return
        if not await self.hold():
            return
        for m in due:
            try:
                await m.run(self.lease)
            except LeaseLost as exc:
                self._lost(exc)
                return
        for branch in running:
            r = self.cache.rollouts.get(branch)
            if r is None or r.state != RUNNING:
                continue
            action = plan.decide(r, observe(self.cache, r, self.clock()))
            if action is not None and not await self._act(r, action):
                return

    async def hold(self) -> bool:
        """Whether this replica holds the lease, acquiring or renewing it as due."""
        fresh = time.monotonic() - self._renewed < self.lease.seconds / 3
        if self.lease.held() and fresh:
            return True
        was = self.lease.epoch
        if await self.lease.acquire():
            self._renewed = time.monotonic()
            if self.lease.epoch != was:
                log.info(
                    "replica %s now drives rollouts (lease epoch %d)",
                    self.replica,
                    self.lease.epoch,
                )
            return True
        if was:
            self.stats.lease_lost += 1
            log.warning("replica %s lost the rollout lease (epoch %d)", self.replica, was)
        return False

    def _lost(self, exc: LeaseLost) -> None:
        self.stats.lease_lost += 1
        log.warning("%s", exc.message)

    async def _act(self, r: Rollout, action: plan.Action) -> bool:
        """Carry out ``action``; False when the lease is gone (stop this round)."""
        try:
            written = await self.rollouts.act(self.lease, r, action)
        except LeaseLost as exc:
            self._lost(exc)
            return False
        except Stale:
            self.stats.stale += 1
            return True
        except (Conflict, NotApplied) as exc:
            if not action.commit:
                raise
            # The end's commit was refused: pause, saying why.
            return await self._act(r, plan.commit_refused(r, exc.message))
        except (FailedPrecondition, NotFound) as exc:
            if action.commit and not isinstance(exc, NotFound):
                return await self._act(r, plan.commit_refused(r, exc.message))
            # A unit taken by another branch meanwhile, the branch gone: look again.
            self.stats.refused += 1
            log.info("rollout %s: %s refused (%s); looking again", r.branch, action.kind, exc)
            return True
        self.stats.actions += 1
        self._last_write = max(self._last_write, written.revision)
        log.info(
            "rollout %s: %s -> %s at %s (replica %s, epoch %d): %s",
            r.branch,
            r.label,
            action.state if action.state != RUNNING else action.phase,
            r.step_text(action.step),
            self.replica,
            self.lease.epoch,
            action.why,
        )
        return True
