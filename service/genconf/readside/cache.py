"""The model cache: every read and watch is answered from here.

Exactly one writer, the multiwatcher, calls `load`, `apply`, `settle` and
`advance`, always from one task; everything else only reads or subscribes.
There are no locks: each call runs to completion on the event loop, so a batch
is applied atomically with respect to every reader.

Watches are offered configs once per run of batches the writer applies back to
back (``apply(batch, settle=False)`` each, then `settle`), not once per batch:
the writer settles before it awaits anything, so no reader ever runs between a
batch and its settle. Reads, waiters and the admin feed see every batch at once.

`ModelCache` composes the synchronous state core (`core.ModelState`: records,
indexes, memoized effective configs) with what tells others about its changes:
unit config watches (`watch`), the admin feed and its ring (`feed`) and
read-your-writes waiters (`waiters`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import anyio

from genconf.defaults import (
    DEFAULT_FEED_BUFFER,
    DEFAULT_FEED_BYTES,
    DEFAULT_RING_BYTES,
    DEFAULT_RING_SIZE,
    MIB,
)
from genconf.domain.deltas import Batch, Delta, Kind
from genconf.domain.records import Application, Branch, Generation, Unit
from genconf.domain.rollouts import Rollout
from genconf.errors import NotFound, RevisionTooOld
from genconf.readside.core import ModelState, UnitConfig
from genconf.readside.feed import FeedFilter, FeedHub, FeedSubscription, batch_bytes
from genconf.readside.waiters import DeadlinePacer, RevisionWaiters
from genconf.readside.watch import ConfigWatch, UnitWatches

# A reload's differences up to this size reach the feeds as one ordinary batch
# (what a gRPC client receives by default); larger ones end the feeds OUT_OF_RANGE.
DEFAULT_RESYNC_FEED_BYTES: Final = 4 * MIB


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of the cache's figures (`ModelCache.statistics`)."""

    revision: int = 0
    batches_applied: int = 0
    deltas_applied: int = 0
    groups_recomputed: int = 0
    notifications: int = 0
    coalesced: int = 0  # updates a slow watcher never saw (a newer one replaced them)
    watchers: int = 0
    feeds: int = 0
    feed_overflows: int = 0  # admin feeds closed because their buffer was full
    ring_size: int = 0
    ring_bytes: int = 0  # estimated bytes of the deltas the ring holds
    resyncs: int = 0
    # Admin feeds ended OUT_OF_RANGE because a reload's differences were too large
    # to send as one batch.
    feeds_ended_by_resync: int = 0


class ModelCache:
    """Applications, units and branches at one revision, with watches.

    Single writer (the multiwatcher); see the module docstring.
    """

    def __init__(
        self,
        *,
        ring_size: int = DEFAULT_RING_SIZE,
        feed_buffer: int = DEFAULT_FEED_BUFFER,
        ring_bytes: int = DEFAULT_RING_BYTES,
        feed_bytes: int = DEFAULT_FEED_BYTES,
        resync_feed_bytes: int = DEFAULT_RESYNC_FEED_BYTES,
    ) -> None:
        self._state = ModelState()
        self._watches = UnitWatches()
        self._feed = FeedHub(
            ring_size=ring_size,
            ring_bytes=ring_bytes,
            feed_buffer=feed_buffer,
            feed_bytes=feed_bytes,
        )
        self._resync_feed_bytes = resync_feed_bytes
        self._resyncs = 0
        self.synced = False
        self._waiters = RevisionWaiters()
        self._expiry = DeadlinePacer(self._waiters)
        self._synced_event = anyio.Event()

    # -- reads ---------------------------------------------------------------

    @property
    def applications(self) -> Mapping[str, Application]:
        return self._state.applications

    @property
    def units(self) -> Mapping[str, Unit]:
        return self._state.units

    @property
    def branches(self) -> Mapping[str, Branch]:
        return self._state.branches

    @property
    def rollouts(self) -> Mapping[str, Rollout]:
        """Rollout plans by branch, finished ones too (`genconf.rollout`)."""
        return self._state.rollouts

    @property
    def last_generation(self) -> int:
        return self._state.last_generation

    @property
    def revision(self) -> int:
        return self._state.revision

    @property
    def oldest_revision(self) -> int:
        """The oldest revision from which `deltas_since` can replay without a gap."""
        return self._feed.oldest_revision

    def config(self, unit: str) -> UnitConfig:
        """The unit's effective config; O(1) when memoized."""
        return self._state.config(unit)

    def master_config(self, app: Application) -> Mapping[str, Any]:
        """``app``'s effective config off any branch, memoized while it is current."""
        return self._state.master_config(app)

    def public_keys(self, application: str) -> frozenset[str] | None:
        """The keys of ``application`` observers may see (see `ModelState.public_keys`)."""
        return self._state.public_keys(application)

    def units_of(self, application: str) -> list[Unit]:
        return self._state.units_of(application)

    def tracking(self, branch: str) -> list[Unit]:
        return self._state.tracking(branch)

    def statistics(self) -> CacheStats:
        state, watches, feed = self._state, self._watches, self._feed
        return CacheStats(
            revision=state.revision,
            batches_applied=state.batches_applied,
            deltas_applied=state.deltas_applied,
            groups_recomputed=state.groups_recomputed,
            notifications=watches.notifications,
            coalesced=watches.coalesced,
            watchers=watches.count,
            feeds=feed.feeds,
            feed_overflows=feed.overflows,
            ring_size=feed.ring_deltas,
            ring_bytes=feed.ring_bytes,
            resyncs=self._resyncs,
            feeds_ended_by_resync=feed.ended_by_resync,
        )

    async def wait_synced(self) -> None:
        await self._synced_event.wait()

    async def wait_for(self, revision: int, deadline: float | None = None) -> bool:
        """Wait until the cache has applied ``revision``: read-your-writes. False when
        ``deadline`` (event-loop time) came first.

        A deadline is kept by one timer for every waiter, which spreads a crowd's
        expiry over several turns of the loop (`genconf.readside.waiters`); callers may also
        bound the wait themselves (``anyio.fail_after``): cancellation leaves no waiter.
        """
        if self.revision >= revision:
            return True
        event = anyio.Event()
        waiter = self._waiters.add(revision, event.set, deadline)
        if deadline is not None:
            self._expiry.arm()
        try:
            await event.wait()
        finally:
            # O(1): the heaps drop it lazily; a no-op once it was woken.
            self._waiters.abandon(waiter)
        return waiter.released

    def deltas_since(self, revision: int) -> list[Batch]:
        """Every batch after ``revision``; RevisionTooOld when that is older than the ring."""
        return self._feed.deltas_since(revision)

    # -- subscriptions -------------------------------------------------------

    def watch(self, unit: str) -> ConfigWatch:
        """Subscribe to a unit's effective config changes (hash changes only)."""
        if unit not in self._state.units:
            raise NotFound(f"unit {unit!r} not found")
        # A watch starts at a run's end (a no-op for the multiwatcher, which never
        # awaits mid-run): a run's changes before it would be compared with a hash
        # from before the reader's first config.
        self.settle()
        return self._watches.open(unit)

    def subscribe(
        self,
        *,
        kinds: Iterable[Kind] = (),
        applications: Iterable[str] = (),
        since: int | None = None,
        buffer: int | None = None,
        max_bytes: int | None = None,
    ) -> tuple[list[Batch], FeedSubscription]:
        """Replay from ``since`` (RevisionTooOld if too old) and subscribe to what follows,
        with no gap and no duplicate between the two. ``buffer`` and ``max_bytes``
        bound the batches and bytes held for a slow reader (None: the cache's
        ``feed_buffer`` and ``feed_bytes``)."""
        flt = FeedFilter(frozenset(kinds), frozenset(applications))
        return self._feed.subscribe(flt, since, buffer, max_bytes)

    # -- the single writer ---------------------------------------------------

    def load(
        self,
        applications: Iterable[Application],
        units: Iterable[Unit],
        branches: Iterable[Branch],
        last_generation: int,
        revision: int,
        *,
        rollouts: Iterable[Rollout] = (),
    ) -> None:
        """Initial state at ``revision`` (no watchers can exist yet: nothing is notified)."""
        self._state.load(applications, units, branches, last_generation, rollouts)
        self._feed.oldest_revision = max(self.revision, revision)
        self.synced = True
        self._synced_event.set()
        # Readers that asked for a revision the snapshot already covers (e.g. a
        # write made while the read side was starting) are answered now, not at
        # the next batch or idle getMore.
        self.advance(revision)

    def diff_snapshot(
        self,
        applications: Iterable[Application],
        units: Iterable[Unit],
        branches: Iterable[Branch],
        generations: Iterable[Generation],
        revision: int,
        *,
        rollouts: Iterable[Rollout] = (),
    ) -> Batch:
        """The deltas that turn the cache into this snapshot (after history was lost)."""
        return self._state.diff_snapshot(
            applications, units, branches, generations, revision, rollouts
        )

    def apply(self, batch: Batch, *, settle: bool = True) -> None:
        """Apply one transaction's deltas atomically, then (``settle``) notify exactly
        the units whose effective config hash changed. The multiwatcher passes
        ``settle=False`` and calls `settle` once per run of batches."""
        changes = self._notify(batch)
        if changes:
            self._feed.publish(Batch(batch.revision, changes))
        self.advance(batch.revision)
        if settle:
            self.settle()

    def settle(self) -> None:
        """End a run of batches: offer each unit whose config hash differs from the
        one it had before the run its config once, as of the run's last revision."""
        revision, configs = self._state.settle()
        if configs:
            self._watches.offer(configs, revision)

    def apply_resync(self, batch: Batch) -> None:
        """Apply a reload's differences (after history was lost, or an unreadable
        event): to watchers like any batch. Up to ``resync_feed_bytes`` they reach
        the ring and the admin feeds as one ordinary batch. A larger one (a model
        reloaded after a long outage can differ by gigabytes) would be a batch no
        feed could receive nor the ring hold; and splitting it would not do: a
        split batch's revision would claim a state that never existed, from which
        a reader resuming (on this replica or another) would skip deltas. So the
        ring restarts at the reload's revision and every feed ends OUT_OF_RANGE,
        the feed's typed "too old": its reader takes a new Snapshot."""
        self._resyncs += 1
        size = batch_bytes(batch)
        if size <= self._resync_feed_bytes:
            self.apply(batch)
            return
        self._notify(batch)
        self.settle()
        reason = RevisionTooOld(
            f"this server reloaded its model at revision {batch.revision} "
            f"(its change stream could not go on) and the differences, ~{size:,} bytes, "
            f"are more than a feed batch holds ({self._resync_feed_bytes:,}); "
            "take a new Snapshot and watch from its revision"
        )
        self._feed.restart(batch.revision, reason)
        self.advance(batch.revision)

    def advance(self, revision: int) -> None:
        """Everything up to ``revision`` is applied (also called when the stream is idle)."""
        state = self._state
        if revision > state.revision:
            state.revision = revision
        self._waiters.release(state.revision)

    def close_all(self, reason: str) -> None:
        """End every watch (server shutdown)."""
        self._watches.end_all(reason)
        self._feed.close_all()

    def _notify(self, batch: Batch) -> tuple[Delta, ...]:
        """Apply ``batch`` to the state (unsettled) and end the watches of the units
        it removed, at once; the deltas as the ring and the feeds keep them."""
        changes = self._state.apply(batch, settle=False)
        if changes.removed_units:
            self._watches.end_removed(changes.removed_units)
        return changes.deltas
