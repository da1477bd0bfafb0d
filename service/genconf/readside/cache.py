"""The model cache: every read and watch is answered from here.

Exactly one writer, the multiwatcher, calls `load`, `apply` and `advance`, always
from one task; everything else only reads or subscribes. There are no locks:
each call runs to completion on the event loop, so a batch is applied
atomically with respect to every reader.

Effective config depends only on (application, branch), so it is computed and
memoized once per such *group*, not per unit: an application-wide change costs
one computation and one hash however many units share it, and every unit of
the group shares the same `EffectiveConfig` object (and later its encoding).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from genconf.defaults import (
    DEFAULT_FEED_BUFFER,
    DEFAULT_FEED_BYTES,
    DEFAULT_RING_BYTES,
    DEFAULT_RING_SIZE,
    MIB,
)
from genconf.domain import model
from genconf.domain.deltas import DELTA_OVERHEAD, Batch, Delta, Kind, Record, estimate_bytes
from genconf.domain.records import Application, Branch, Generation, Unit
from genconf.errors import FeedOverflow, GenconfError, NotFound, OutOfRange, WatchClosed
from genconf.readside.waiters import DeadlinePacer, RevisionWaiters

# A reload's differences up to this size reach the feeds as one ordinary batch
# (what a gRPC client receives by default); larger ones end the feeds OUT_OF_RANGE.
DEFAULT_RESYNC_FEED_BYTES: Final = 4 * MIB


@dataclass(frozen=True, slots=True)
class EffectiveConfig:
    """The effective config of one (application, branch) group at a revision."""

    application: str
    branch: str | None
    config: Mapping[str, Any]
    hash: str
    app_version: int
    revision: int
    # Memo for encoders (e.g. the API's serialized message): computed once per
    # distinct config, shared by every subscriber of the group.
    encoded: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class UnitConfig:
    unit: str
    effective: EffectiveConfig

    @property
    def hash(self) -> str:
        return self.effective.hash

    @property
    def config(self) -> Mapping[str, Any]:
        return self.effective.config


class ConfigWatch:
    """A unit's watch with latest-state semantics: at most one pending update.

    A slow reader's updates coalesce into the newest, so its memory is bounded
    and it never slows the writer. A watch is a handful of fields: its reader
    waits on a future made only while it waits (no event object per watch or
    per update, no timer), because a server holds one watch per connected agent.
    """

    __slots__ = (
        "_cache",
        "_closed",
        "_loop",
        "_nudged",
        "_pending",
        "_waiter",
        "coalesced",
        "delivered",
        "unit",
    )

    def __init__(self, cache: ModelCache, unit: str) -> None:
        self._cache = cache
        self.unit = unit
        self._pending: EffectiveConfig | None = None
        self._closed: WatchClosed | None = None
        self._waiter: asyncio.Future[None] | None = None
        # The reader's loop, looked up once: on Python 3.11 each get_running_loop()
        # is a getpid() system call, which shows in profiles of 10,000 streams.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nudged = False
        self.coalesced = 0
        self.delivered = 0

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _offer(self, effective: EffectiveConfig) -> None:
        if self._pending is not None:
            self.coalesced += 1
            self._cache.stats.coalesced += 1
        self._pending = effective
        self._wake()

    def _close(self, reason: WatchClosed) -> None:
        if self._closed is None:
            self._closed = reason
            self._wake()

    def nudge(self) -> None:
        """Wake the reader without a config: `next_or_nudge` returns None once. The
        API's bookmark clock uses it, so that no stream needs a timer of its own."""
        self._nudged = True
        self._wake()

    @property
    def pending(self) -> bool:
        return self._pending is not None

    async def _wait(self) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _take(self) -> EffectiveConfig:
        effective = self._pending
        assert effective is not None
        self._pending = None
        self.delivered += 1
        return effective

    async def next(self) -> EffectiveConfig:
        """The newest config not yet returned; raises WatchClosed when the watch ends."""
        while self._pending is None:
            if self._closed is not None:
                raise self._closed
            await self._wait()
        return self._take()

    async def next_or_nudge(self) -> EffectiveConfig | None:
        """Like `next`, but None when `nudge` came first (a pending config wins)."""
        while self._pending is None:
            if self._closed is not None:
                raise self._closed
            if self._nudged:
                self._nudged = False
                return None
            await self._wait()
        return self._take()

    def close(self) -> None:
        """Unsubscribe; idempotent."""
        self._cache._unwatch(self)
        self._close(WatchClosed("closed"))

    def __enter__(self) -> ConfigWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class FeedFilter:
    kinds: frozenset[Kind] = frozenset()
    applications: frozenset[str] = frozenset()

    def matches(self, delta: Delta) -> bool:
        if self.kinds and delta.kind not in self.kinds:
            return False
        if self.applications:
            if delta.kind is Kind.BRANCH:
                branch = delta.value or delta.previous
                assert isinstance(branch, Branch)
                return bool(self.applications & set(branch.changes)) or bool(
                    self.applications & set(branch.track_applications)
                )
            if delta.kind is Kind.GENERATION:
                gen = delta.value
                assert isinstance(gen, Generation)
                return bool(self.applications & set(gen.changes))
            return delta.application in self.applications
        return True


def batch_bytes(batch: Batch) -> int:
    return sum(d.bytes for d in batch.deltas)


class FeedSubscription:
    """A bounded stream of deltas for one admin watcher. Sending never blocks the
    writer: a subscriber whose queue holds ``buffer`` batches, or would pass
    ``max_bytes`` (estimated) bytes, is closed with FeedOverflow (after it has read
    what the queue holds) and can resume from the last revision it saw, while the
    ring still holds it. An empty queue takes any one batch, however large, so a
    reader that keeps up is never cut off."""

    def __init__(self, cache: ModelCache, flt: FeedFilter, buffer: int, max_bytes: int) -> None:
        if buffer < 1:
            raise ValueError(f"a feed buffer holds at least one batch, not {buffer}")
        if max_bytes < 1:
            raise ValueError(f"a feed's byte budget must be positive, not {max_bytes}")
        self._cache = cache
        self.filter = flt
        self.buffer = buffer
        self.max_bytes = max_bytes
        # Each queued batch travels with its size, so taking it gives the bytes back.
        send, receive = anyio.create_memory_object_stream[tuple[Batch, int]](buffer)
        self._send: MemoryObjectSendStream[tuple[Batch, int]] = send
        self._receive: MemoryObjectReceiveStream[tuple[Batch, int]] = receive
        self.queued_bytes = 0
        self.overflowed = False
        self.overflowed_bytes = False
        # Why the cache ended this feed (raised once its queue is drained), if it did.
        self._ended: GenconfError | None = None

    def _publish(self, batch: Batch, size: int) -> None:
        if self.overflowed or self._ended is not None:
            return
        deltas = tuple(d for d in batch.deltas if self.filter.matches(d))
        if not deltas:
            return
        if len(deltas) != len(batch.deltas):
            batch = Batch(batch.revision, deltas)
            size = batch_bytes(batch)
        if self.queued_bytes and self.queued_bytes + size > self.max_bytes:
            self.overflowed_bytes = True
            self._overflow()
            return
        try:
            self._send.send_nowait((batch, size))
        except anyio.WouldBlock:
            self._overflow()
            return
        except anyio.BrokenResourceError:
            return
        self.queued_bytes += size

    def _overflow(self) -> None:
        self.overflowed = True
        self._cache.stats.feed_overflows += 1
        self._send.close()
        self._cache._feeds.discard(self)

    def _end(self, reason: GenconfError) -> None:
        """End the feed with ``reason``, raised to its reader after what is queued."""
        self._ended = reason
        self._send.close()
        self._cache._feeds.discard(self)

    async def next(self) -> Batch:
        try:
            batch, size = await self._receive.receive()
        except anyio.EndOfStream:
            if self._ended is not None:
                raise self._ended from None
            if self.overflowed:
                raise FeedOverflow(
                    self.buffer, self.max_bytes if self.overflowed_bytes else None
                ) from None
            raise
        self.queued_bytes -= size
        return batch

    def close(self) -> None:
        self._cache._feeds.discard(self)
        self._send.close()
        self._receive.close()

    def __enter__(self) -> FeedSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class CacheStats:
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
        self.applications: dict[str, Application] = {}
        self.units: dict[str, Unit] = {}
        self.branches: dict[str, Branch] = {}
        self.last_generation = 0
        self.revision = 0
        self.synced = False
        self._units_by_app: dict[str, set[str]] = {}
        self._units_by_branch: dict[str, set[str]] = {}
        self._groups: dict[tuple[str, str | None], EffectiveConfig] = {}
        # public_keys() per existing application, dropped with its groups (_invalidate).
        self._public_keys: dict[str, frozenset[str]] = {}
        # Per unit, its watches: nearly always one, so a list (a set per unit would
        # cost three times the memory of the list, with ten thousand agents).
        self._watches: dict[str, list[ConfigWatch]] = {}
        self._watch_count = 0
        self._feeds: set[FeedSubscription] = set()
        # Each batch with its estimated bytes (counted once, when it is remembered).
        self._ring: deque[tuple[Batch, int]] = deque()
        self._ring_deltas = 0
        self._ring_size = ring_size
        self._ring_bytes = 0
        self._ring_max_bytes = ring_bytes
        self._feed_buffer = feed_buffer
        self._feed_bytes = feed_bytes
        self._resync_feed_bytes = resync_feed_bytes
        # The oldest revision from which deltas_since can replay without a gap.
        self.oldest_revision = 0
        self._waiters = RevisionWaiters()
        self._expiry = DeadlinePacer(self._waiters)
        self._synced_event = anyio.Event()
        self.stats = CacheStats()

    # -- reads ---------------------------------------------------------------

    def config(self, unit: str) -> UnitConfig:
        """The unit's effective config; O(1) when memoized."""
        record = self.units.get(unit)
        if record is None:
            raise NotFound(f"unit {unit!r} not found")
        effective = self._group(record.application, record.branch)
        if effective is None:
            raise NotFound(f"unit {unit!r} has no application (it is being removed)")
        return UnitConfig(unit, effective)

    def public_keys(self, application: str) -> frozenset[str] | None:
        """The keys of ``application`` observers may see (None if unknown): history
        may hold keys the schema has since dropped, which stay hidden.

        Redaction asks for every application entry of every observer message, so
        the set is memoized per application until its schema can have changed."""
        public = self._public_keys.get(application)
        if public is not None:
            return public
        app = self.applications.get(application)
        if app is None:
            return None
        public = frozenset(key for key, spec in app.schema.items() if not spec.secret)
        self._public_keys[application] = public
        return public

    def units_of(self, application: str) -> list[Unit]:
        names = self._units_by_app.get(application, set())
        return sorted((self.units[n] for n in names), key=lambda u: u.number)

    def tracking(self, branch: str) -> list[Unit]:
        names = self._units_by_branch.get(branch, set())
        return sorted((self.units[n] for n in names), key=lambda u: (u.application, u.number))

    def statistics(self) -> CacheStats:
        self.stats.revision = self.revision
        self.stats.watchers = self._watch_count
        self.stats.feeds = len(self._feeds)
        self.stats.ring_size = self._ring_deltas
        self.stats.ring_bytes = self._ring_bytes
        return self.stats

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
        """Every batch after ``revision``; OutOfRange when that is older than the ring."""
        if revision < self.oldest_revision:
            raise OutOfRange(
                f"revision {revision} is older than the oldest retained revision "
                f"{self.oldest_revision}; take a new Snapshot and watch from its revision"
            )
        return [b for b, _ in self._ring if b.revision > revision]

    # -- subscriptions -------------------------------------------------------

    def watch(self, unit: str) -> ConfigWatch:
        """Subscribe to a unit's effective config changes (hash changes only)."""
        if unit not in self.units:
            raise NotFound(f"unit {unit!r} not found")
        w = ConfigWatch(self, unit)
        self._watches.setdefault(unit, []).append(w)
        self._watch_count += 1
        return w

    def _unwatch(self, w: ConfigWatch) -> None:
        watches = self._watches.get(w.unit)
        if watches is not None and w in watches:
            watches.remove(w)
            self._watch_count -= 1
            if not watches:
                del self._watches[w.unit]

    def subscribe(
        self,
        *,
        kinds: Iterable[Kind] = (),
        applications: Iterable[str] = (),
        since: int | None = None,
        buffer: int | None = None,
        max_bytes: int | None = None,
    ) -> tuple[list[Batch], FeedSubscription]:
        """Replay from ``since`` (OutOfRange if too old) and subscribe to what follows,
        with no gap and no duplicate between the two. ``buffer`` and ``max_bytes``
        bound the batches and bytes held for a slow reader (None: the cache's
        ``feed_buffer`` and ``feed_bytes``)."""
        flt = FeedFilter(frozenset(kinds), frozenset(applications))
        replay: list[Batch] = []
        if since is not None:
            for batch in self.deltas_since(since):
                deltas = tuple(d for d in batch.deltas if flt.matches(d))
                if deltas:
                    replay.append(Batch(batch.revision, deltas))
        sub = FeedSubscription(
            self,
            flt,
            self._feed_buffer if buffer is None else buffer,
            self._feed_bytes if max_bytes is None else max_bytes,
        )
        self._feeds.add(sub)
        return replay, sub

    # -- the single writer ---------------------------------------------------

    def load(
        self,
        applications: Iterable[Application],
        units: Iterable[Unit],
        branches: Iterable[Branch],
        last_generation: int,
        revision: int,
    ) -> None:
        """Initial state at ``revision`` (no watchers can exist yet: nothing is notified)."""
        self.applications = {a.name: a for a in applications}
        self.units = {u.name: u for u in units}
        self.branches = {b.name: b for b in branches}
        self.last_generation = last_generation
        self._units_by_app = {}
        self._units_by_branch = {}
        for u in self.units.values():
            self._index_unit(u, add=True)
        self._groups.clear()
        self._public_keys.clear()
        self.oldest_revision = max(self.revision, revision)
        self._mark_synced()
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
    ) -> Batch:
        """The deltas that turn the cache into this snapshot (after history was lost)."""
        deltas: list[Delta] = []
        for kind, current, fresh in (
            (Kind.APPLICATION, self.applications, {a.name: a for a in applications}),
            (Kind.UNIT, self.units, {u.name: u for u in units}),
            (Kind.BRANCH, self.branches, {b.name: b for b in branches}),
        ):
            for key in sorted(set(current) | set(fresh)):
                if current.get(key) != fresh.get(key):
                    deltas.append(_measured(kind, key, revision, fresh.get(key)))
        for gen in sorted(generations, key=lambda g: g.id):
            if gen.id > self.last_generation:
                deltas.append(_measured(Kind.GENERATION, str(gen.id), revision, gen))
        return Batch(revision, tuple(deltas))

    def apply(self, batch: Batch) -> None:
        """Apply one transaction's deltas atomically, then notify exactly the units
        whose effective config hash changed."""
        applied = self._apply_state(batch)
        if applied:
            kept = Batch(batch.revision, tuple(applied))
            size = batch_bytes(kept)
            self._remember(kept, size)
            for feed in list(self._feeds):
                feed._publish(kept, size)
        self.advance(batch.revision)

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
        self.stats.resyncs += 1
        size = batch_bytes(batch)
        if size <= self._resync_feed_bytes:
            self.apply(batch)
            return
        self._apply_state(batch)
        self._ring.clear()
        self._ring_deltas = self._ring_bytes = 0
        self.oldest_revision = max(self.oldest_revision, batch.revision)
        reason = OutOfRange(
            f"this server reloaded its model at revision {batch.revision} "
            f"(its change stream could not go on) and the differences, ~{size:,} bytes, "
            f"are more than a feed batch holds ({self._resync_feed_bytes:,}); "
            "take a new Snapshot and watch from its revision"
        )
        for feed in list(self._feeds):
            feed._end(reason)
            self.stats.feeds_ended_by_resync += 1
        self.advance(batch.revision)

    def _apply_state(self, batch: Batch) -> list[Delta]:
        """The state change and the watchers' notifications of `apply`; returns the
        deltas as the ring and the feeds keep them (`retained`)."""
        # The hash each possibly-affected unit had before the batch, captured just
        # before the first delta that can change it (None: the unit is new).
        before: dict[str, str | None] = {}
        removed_units: list[str] = []
        applied: list[Delta] = []
        for delta in batch.deltas:
            previous = self._apply_one(delta, before, removed_units)
            applied.append(retained(delta, previous))
        for unit, old_hash in before.items():
            record = self.units.get(unit)
            if record is None:
                continue
            new = self._group(record.application, record.branch, batch.revision)
            if new is not None and new.hash != old_hash:
                for w in self._watches.get(unit, ()):
                    w._offer(new)
                    self.stats.notifications += 1
        for unit in removed_units:
            gone = self._watches.pop(unit, ())
            self._watch_count -= len(gone)
            for w in gone:
                w._close(WatchClosed(f"unit {unit!r} was removed", removed=True))
        self.stats.batches_applied += 1
        self.stats.deltas_applied += len(batch.deltas)
        return applied

    def advance(self, revision: int) -> None:
        """Everything up to ``revision`` is applied (also called when the stream is idle)."""
        if revision > self.revision:
            self.revision = revision
        self._waiters.release(self.revision)

    def close_all(self, reason: str) -> None:
        """End every watch (server shutdown)."""
        watches, self._watches, self._watch_count = self._watches, {}, 0
        for unit_watches in watches.values():
            for w in unit_watches:
                w._close(WatchClosed(reason))
        for feed in list(self._feeds):
            feed.close()

    # -- internals -------------------------------------------------------------

    def _mark_synced(self) -> None:
        self.synced = True
        self._synced_event.set()

    def _group(
        self, application: str, branch: str | None, revision: int | None = None
    ) -> EffectiveConfig | None:
        key = (application, branch)
        effective = self._groups.get(key)
        if effective is not None:
            return effective
        app = self.applications.get(application)
        if app is None:
            return None
        changes = None
        if branch is not None and (b := self.branches.get(branch)) is not None:
            changes = b.changes.get(application)
        config = model.effective_config(app.schema, app.settings, changes)
        effective = EffectiveConfig(
            application,
            branch,
            config,
            model.config_hash(config),
            app.version,
            self.revision if revision is None else revision,
        )
        self._groups[key] = effective
        self.stats.groups_recomputed += 1
        return effective

    def _capture(self, units: Iterable[str], before: dict[str, str | None]) -> None:
        hashes: dict[tuple[str, str | None], str | None] = {}
        for unit in units:
            if unit in before:
                continue
            record = self.units.get(unit)
            if record is None:
                before[unit] = None
                continue
            key = (record.application, record.branch)
            if key not in hashes:
                effective = self._group(*key)
                hashes[key] = effective.hash if effective else None
            before[unit] = hashes[key]

    def _invalidate(self, *, application: str | None = None, branch: str | None = None) -> None:
        if application is not None:
            self._public_keys.pop(application, None)
            stale = [k for k in self._groups if k[0] == application]
        else:
            stale = [k for k in self._groups if k[1] == branch]
        for key in stale:
            del self._groups[key]

    def _apply_one(
        self, delta: Delta, before: dict[str, str | None], removed_units: list[str]
    ) -> Record | None:
        """Mutate the state for one delta; return the object it replaces."""
        previous: Record | None
        if delta.kind is Kind.APPLICATION:
            previous = self.applications.get(delta.key)
            new_app = delta.value if isinstance(delta.value, Application) else None
            if not _same_config_inputs(previous, new_app):
                self._capture(self._units_by_app.get(delta.key, ()), before)
                self._invalidate(application=delta.key)
            if new_app is None:
                self.applications.pop(delta.key, None)
            else:
                self.applications[delta.key] = new_app
        elif delta.kind is Kind.UNIT:
            previous = self.units.get(delta.key)
            old_unit = previous if isinstance(previous, Unit) else None
            new_unit = delta.value if isinstance(delta.value, Unit) else None
            if old_unit is None or new_unit is None or old_unit.branch != new_unit.branch:
                self._capture((delta.key,), before)
            if old_unit is not None:
                self._index_unit(old_unit, add=False)
            if new_unit is None:
                self.units.pop(delta.key, None)
                if old_unit is not None:
                    removed_units.append(delta.key)
            else:
                self.units[delta.key] = new_unit
                self._index_unit(new_unit, add=True)
        elif delta.kind is Kind.BRANCH:
            previous = self.branches.get(delta.key)
            old_changes = previous.changes if isinstance(previous, Branch) else {}
            new_branch = delta.value if isinstance(delta.value, Branch) else None
            if old_changes != (new_branch.changes if new_branch else {}):
                self._capture(self._units_by_branch.get(delta.key, ()), before)
                self._invalidate(branch=delta.key)
            if new_branch is None:
                self.branches.pop(delta.key, None)
            else:
                self.branches[delta.key] = new_branch
        else:
            previous = None
            if isinstance(delta.value, Generation):
                self.last_generation = max(self.last_generation, delta.value.id)
        return previous

    def _index_unit(self, unit: Unit, *, add: bool) -> None:
        pairs = ((self._units_by_app, unit.application), (self._units_by_branch, unit.branch))
        for index, key in pairs:
            if key is None:
                continue
            if add:
                index.setdefault(key, set()).add(unit.name)
            elif (names := index.get(key)) is not None:
                names.discard(unit.name)
                if not names:
                    del index[key]

    def _remember(self, batch: Batch, size: int) -> None:
        """Keep ``batch`` for resume; drop the oldest past ``ring_size`` deltas (the
        newest batch stays, however many it holds) or past ``ring_bytes`` (even the
        newest: one batch larger than the whole budget is not kept)."""
        self._ring.append((batch, size))
        self._ring_deltas += len(batch.deltas)
        self._ring_bytes += size
        while self._ring and (
            (self._ring_deltas > self._ring_size and len(self._ring) > 1)
            or self._ring_bytes > self._ring_max_bytes
        ):
            dropped, dropped_size = self._ring.popleft()
            self._ring_deltas -= len(dropped.deltas)
            self._ring_bytes -= dropped_size
            self.oldest_revision = dropped.revision


def _measured(kind: Kind, key: str, revision: int, value: Record | None) -> Delta:
    """A delta of a reload, its size estimated once (no change event measured it)."""
    return Delta(kind, key, revision, value, None, DELTA_OVERHEAD + estimate_bytes(value))


def retained(delta: Delta, previous: Record | None) -> Delta:
    """What the ring and the admin feeds keep of an applied delta.

    The feed sends only the new value, so an update keeps no previous state (that
    would double what the ring holds, megabytes per write to a large application).
    A removal keeps a slim stand-in of what it removed: feed filters need to know
    which applications it concerned, not its settings or changes."""
    if delta.value is not None or previous is None:
        return delta
    slim: Record = previous
    if isinstance(previous, Application):
        slim = dataclasses.replace(previous, schema={}, settings={})
    elif isinstance(previous, Branch):
        slim = dataclasses.replace(previous, changes={app: {} for app in previous.changes})
    return delta.with_previous(slim)


def _same_config_inputs(a: Record | None, b: Application | None) -> bool:
    """Whether two application states give every unit the same effective config."""
    if not isinstance(a, Application) or b is None:
        return False
    if a.version != b.version or a.settings != b.settings:
        return False
    # Parsed schemas are shared per distinct stored schema (records.parsed_schema).
    return a.schema is b.schema or a.schema == b.schema
