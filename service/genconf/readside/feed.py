"""The admin feed: a ring of recent batches to resume from, and bounded subscriptions.

A `FeedSubscription` is a thin handle over an anyio memory stream: it talks to
its owner only through `FeedOwner`, never through the owner's fields.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from genconf.domain.deltas import Batch, Delta, Kind
from genconf.domain.records import Branch, Generation
from genconf.errors import FeedOverflow, GenconfError, RevisionTooOld


@dataclass(frozen=True, slots=True)
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

    def view(self, batch: Batch) -> Batch | None:
        """What of ``batch`` this filter passes (``batch`` itself when all of it)."""
        deltas = tuple(d for d in batch.deltas if self.matches(d))
        if not deltas:
            return None
        if len(deltas) == len(batch.deltas):
            return batch
        return Batch(batch.revision, deltas)


def batch_bytes(batch: Batch) -> int:
    deltas = batch.deltas
    if len(deltas) == 1:  # most transactions: no generator to build
        return deltas[0].bytes
    return sum(d.bytes for d in deltas)


class FeedOwner(Protocol):
    """What a subscription may ask of whoever holds it."""

    def release(self, feed: FeedSubscription) -> None:
        """Stop publishing to ``feed``."""

    def note_overflow(self) -> None:
        """A subscriber fell behind and was closed."""


class FeedSubscription:
    """A bounded stream of deltas for one admin watcher. Sending never blocks the
    writer: a subscriber whose queue holds ``buffer`` batches, or would pass
    ``max_bytes`` (estimated) bytes, is closed with FeedOverflow (after it has read
    what the queue holds) and can resume from the last revision it saw, while the
    ring still holds it. An empty queue takes any one batch, however large, so a
    reader that keeps up is never cut off."""

    def __init__(self, owner: FeedOwner, flt: FeedFilter, buffer: int, max_bytes: int) -> None:
        if buffer < 1:
            raise ValueError(f"a feed buffer holds at least one batch, not {buffer}")
        if max_bytes < 1:
            raise ValueError(f"a feed's byte budget must be positive, not {max_bytes}")
        self._owner = owner
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

    def publish(self, batch: Batch, size: int) -> None:
        """The writer's side: queue ``batch`` (already filtered for this feed)."""
        if self.overflowed or self._ended is not None:
            return
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
        self._owner.note_overflow()
        self._send.close()
        self._owner.release(self)

    def end(self, reason: GenconfError) -> None:
        """The writer's side: end the feed with ``reason``, raised to its reader
        after what is queued."""
        self._ended = reason
        self._send.close()
        self._owner.release(self)

    def queued(self) -> int:
        """How many batches wait for the reader."""
        return self._receive.statistics().current_buffer_used

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
        self._owner.release(self)
        self._send.close()
        self._receive.close()

    def __enter__(self) -> FeedSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FeedHub:
    """The ring of recent batches and the live subscriptions (`FeedOwner`)."""

    def __init__(self, *, ring_size: int, ring_bytes: int, feed_buffer: int, feed_bytes: int):
        self._feeds: set[FeedSubscription] = set()
        # Each batch with its estimated bytes (counted once, when it is remembered).
        self._ring: deque[tuple[Batch, int]] = deque()
        self.ring_deltas = 0
        self.ring_bytes = 0
        self._ring_size = ring_size
        self._ring_max_bytes = ring_bytes
        self._feed_buffer = feed_buffer
        self._feed_bytes = feed_bytes
        # The oldest revision from which deltas_since can replay without a gap.
        self.oldest_revision = 0
        self.overflows = 0  # feeds closed because their buffer was full
        self.ended_by_resync = 0

    @property
    def feeds(self) -> int:
        return len(self._feeds)

    def release(self, feed: FeedSubscription) -> None:
        self._feeds.discard(feed)

    def note_overflow(self) -> None:
        self.overflows += 1

    def deltas_since(self, revision: int) -> list[Batch]:
        """Every batch after ``revision``; RevisionTooOld when that is older than the ring."""
        if revision < self.oldest_revision:
            raise RevisionTooOld(
                f"revision {revision} is older than the oldest retained revision "
                f"{self.oldest_revision}; take a new Snapshot and watch from its revision"
            )
        return [b for b, _ in self._ring if b.revision > revision]

    def subscribe(
        self, flt: FeedFilter, since: int | None, buffer: int | None, max_bytes: int | None
    ) -> tuple[list[Batch], FeedSubscription]:
        """See `ModelCache.subscribe`."""
        replay: list[Batch] = []
        if since is not None:
            for batch in self.deltas_since(since):
                view = flt.view(batch)
                if view is not None:
                    replay.append(view)
        sub = FeedSubscription(
            self,
            flt,
            self._feed_buffer if buffer is None else buffer,
            self._feed_bytes if max_bytes is None else max_bytes,
        )
        self._feeds.add(sub)
        return replay, sub

    def publish(self, batch: Batch) -> None:
        """Remember ``batch`` and queue it to every feed whose filter passes some of
        it; subscribers with the same filter share one filtered batch."""
        size = batch_bytes(batch)
        self._remember(batch, size)
        if not self._feeds:
            return
        views: dict[FeedFilter, tuple[Batch, int] | None] = {}
        for feed in list(self._feeds):
            flt = feed.filter
            if flt not in views:
                view = flt.view(batch)
                views[flt] = None if view is None else (view, batch_bytes(view))
            shared = views[flt]
            if shared is not None:
                feed.publish(*shared)

    def restart(self, revision: int, reason: GenconfError) -> None:
        """Forget the ring and end every feed with ``reason``: nothing before
        ``revision`` can be replayed (a reload too large to send as a batch)."""
        self._ring.clear()
        self.ring_deltas = self.ring_bytes = 0
        self.oldest_revision = max(self.oldest_revision, revision)
        for feed in list(self._feeds):
            feed.end(reason)
            self.ended_by_resync += 1

    def close_all(self) -> None:
        for feed in list(self._feeds):
            feed.close()

    def _remember(self, batch: Batch, size: int) -> None:
        """Keep ``batch`` for resume; drop the oldest past ``ring_size`` deltas (the
        newest batch stays, however many it holds) or past ``ring_bytes`` (even the
        newest: one batch larger than the whole budget is not kept)."""
        self._ring.append((batch, size))
        self.ring_deltas += len(batch.deltas)
        self.ring_bytes += size
        while self._ring and (
            (self.ring_deltas > self._ring_size and len(self._ring) > 1)
            or self.ring_bytes > self._ring_max_bytes
        ):
            dropped, dropped_size = self._ring.popleft()
            self.ring_deltas -= len(dropped.deltas)
            self.ring_bytes -= dropped_size
            self.oldest_revision = dropped.revision
