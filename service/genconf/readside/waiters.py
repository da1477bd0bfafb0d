"""Reads parked until the model cache reaches a revision (read-your-writes).

Thousands of reads may park at once, on one revision or on many, and most of
them may give up together when their deadlines pass. So parking, giving up,
expiring and releasing each cost O(log n) amortised (`RevisionWaiters`): one
heap by revision and one by deadline, in which a waiter that leaves by another
way is only marked (O(1)); its entry is dropped when it reaches the top, or
with every other dead entry in one rebuild once the dead outnumber the living
(one O(n) pass per n/2 departures). Taking each one out of a heap at once costs
O(n) per waiter instead: 8,000 reads giving up together once froze the event
loop for 14.6 s.

O(log n) is not enough on its own: each expiry also costs the server its
answer (~0.1 ms of the loop's time, and as much of gRPC's), so 8,000 reads with
one deadline, each on its own timer, all end in one turn of the event loop and
stall every other caller for a second. `DeadlinePacer` sends them away from one
timer instead, a few per turn and at a pace gRPC keeps up with, starting early
enough that the last is answered before its deadline: were it still parked
then, gRPC would cancel all those left at once, the same stall again.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

# Below this many dead entries a rebuild is not worth its pass over the heap.
DEFAULT_COMPACT_AT: Final = 64
# Expired waiters woken per turn of the event loop: each turn then does roughly
# this many answers' work (a few ms), and I/O of other calls gets in between.
DEFAULT_PER_TURN: Final = 32
# Expired waiters are answered at most one per this many seconds: at that pace
# gRPC keeps up with the answers, so other calls do not queue up behind them.
DEFAULT_PACE: Final = 0.000_5
# A crowd's run starts this many times the time it takes (at the pace) before the
# earliest deadline.
LEAD_FACTOR: Final = 2.0
# The timer is moved earlier only for a gain above this (each parking moves it).
REARM_SLACK: Final = 0.005

_PARKED: Final = 0
_RELEASED: Final = 1
_EXPIRED: Final = 2
_ABANDONED: Final = 3


class Waiter:
    """One parked read: its revision, its deadline, and how to wake it."""

    __slots__ = ("_state", "_wake", "deadline", "revision")

    def __init__(self, revision: int, wake: Callable[[], object], deadline: float | None) -> None:
        self.revision = revision
        self.deadline = deadline
        self._wake: Callable[[], object] | None = wake
        self._state = _PARKED

    @property
    def parked(self) -> bool:
        return self._state == _PARKED

    @property
    def released(self) -> bool:
        """Woken because its revision arrived (not expired, not abandoned)."""
        return self._state == _RELEASED

    @property
    def expired(self) -> bool:
        return self._state == _EXPIRED


@dataclass(frozen=True, slots=True)
class WaiterStats:
    live: int  # parked now
    timed: int  # of those, how many have a deadline
    held: int  # heap entries, the parked and the departed not yet dropped (both heaps)
    released: int  # woken because their revision arrived (ever)
    expired: int  # woken because their deadline came first (ever)
    abandoned: int  # left on their own: a cancelled call or an outer timeout (ever)
    compactions: int  # rebuilds that dropped every dead entry of a heap at once


class RevisionWaiters:
    """Waiters released in revision order (then arrival order), or expired in
    deadline order. Synchronous: the caller wakes, the waiter's callback runs."""

    __slots__ = (
        "_by_deadline",
        "_by_revision",
        "_compact_at",
        "_dead_deadline",
        "_dead_revision",
        "_live",
        "_seq",
        "_timed",
        "abandoned",
        "compactions",
        "expired",
        "released",
    )

    def __init__(self, *, compact_at: int = DEFAULT_COMPACT_AT) -> None:
        # (key, arrival, waiter): ties go by arrival, so waiters are never compared.
        self._by_revision: list[tuple[int, int, Waiter]] = []
        self._by_deadline: list[tuple[float, int, Waiter]] = []
        self._seq = itertools.count()
        self._live = 0
        self._timed = 0
        self._dead_revision = 0
        self._dead_deadline = 0
        self._compact_at = compact_at
        self.released = 0
        self.expired = 0
        self.abandoned = 0
        self.compactions = 0

    def __len__(self) -> int:
        """How many waiters are parked (the departed are not counted)."""
        return self._live

    @property
    def timed(self) -> int:
        """How many parked waiters have a deadline."""
        return self._timed

    def add(
        self, revision: int, wake: Callable[[], object], deadline: float | None = None
    ) -> Waiter:
        """Park a waiter until ``release`` reaches ``revision`` or ``expire`` reaches
        ``deadline`` (None: only release or `abandon` end it): O(log n)."""
        waiter = Waiter(revision, wake, deadline)
        seq = next(self._seq)
        heapq.heappush(self._by_revision, (revision, seq, waiter))
        self._live += 1
        if deadline is not None:
            heapq.heappush(self._by_deadline, (deadline, seq, waiter))
            self._timed += 1
        return waiter

    def abandon(self, waiter: Waiter) -> bool:
        """The waiter leaves on its own (its call was cancelled): O(1) amortised.
        Whether it was still parked; a no-op once it was woken or left already."""
        if waiter._state != _PARKED:
            return False
        self._depart(waiter, _ABANDONED)
        self.abandoned += 1
        self._dead_revision += 1
        self._maybe_compact()
        return True

    def release(self, revision: int) -> int:
        """Wake every waiter for ``revision`` or earlier, in revision order: O(log n)
        per entry popped. How many were woken."""
        heap = self._by_revision
        woken = 0
        while heap and heap[0][0] <= revision:
            waiter = heapq.heappop(heap)[2]
            if waiter._state != _PARKED:
                self._dead_revision -= 1
                continue
            wake = self._depart(waiter, _RELEASED)
            woken += 1
            wake()
        self.released += woken
        self._maybe_compact()
        return woken

    def expire(self, now: float, limit: int | None = None) -> int:
        """Wake waiters whose deadline is ``now`` or earlier, in deadline order, at
        most ``limit`` of them: O(log n) per entry popped. How many were woken."""
        heap = self._by_deadline
        woken = 0
        while heap and heap[0][0] <= now and (limit is None or woken < limit):
            waiter = heapq.heappop(heap)[2]
            if waiter._state != _PARKED:
                self._dead_deadline -= 1
                continue
            # Its entry in the other heap stays behind (dead), as for abandon.
            wake = self._depart(waiter, _EXPIRED, popped=True)
            self._dead_revision += 1
            woken += 1
            wake()
        self.expired += woken
        self._maybe_compact()
        return woken

    def next_deadline(self) -> float | None:
        """The earliest deadline of a parked waiter (None: none has one)."""
        heap = self._by_deadline
        while heap and heap[0][2]._state != _PARKED:
            heapq.heappop(heap)
            self._dead_deadline -= 1
        return heap[0][0] if heap else None

    def statistics(self) -> WaiterStats:
        return WaiterStats(
            self._live,
            self._timed,
            len(self._by_revision) + len(self._by_deadline),
            self.released,
            self.expired,
            self.abandoned,
            self.compactions,
        )

    def _depart(self, waiter: Waiter, state: int, *, popped: bool = False) -> Callable[[], object]:
        """Mark a parked waiter gone; its deadline entry, unless ``popped``, is dead now."""
        wake = waiter._wake
        assert wake is not None
        waiter._state = state
        waiter._wake = None
        self._live -= 1
        if waiter.deadline is not None:
            self._timed -= 1
            if not popped:
                self._dead_deadline += 1
        return wake

    def _maybe_compact(self) -> None:
        if self._dead_revision > self._compact_at and self._dead_revision > self._live:
            self._by_revision = [e for e in self._by_revision if e[2]._state == _PARKED]
            heapq.heapify(self._by_revision)
            self._dead_revision = 0
            self.compactions += 1
        if self._dead_deadline > self._compact_at and self._dead_deadline > self._timed:
            self._by_deadline = [e for e in self._by_deadline if e[2]._state == _PARKED]
            heapq.heapify(self._by_deadline)
            self._dead_deadline = 0
            self.compactions += 1


class DeadlinePacer:
    """Expires the waiters of a `RevisionWaiters` from one event-loop timer (no
    task, no timer per waiter), at most ``per_turn`` per turn of the loop and one
    per ``pace`` seconds.

    At that pace a crowd of n parked waiters takes n * ``pace`` to send away,
    so a run starts `LEAD_FACTOR` times that before the earliest
    deadline, and covers every deadline up to as long after it: the crowd is
    answered with time to spare, even when the turns come late."""

    def __init__(
        self,
        waiters: RevisionWaiters,
        *,
        per_turn: int = DEFAULT_PER_TURN,
        pace: float = DEFAULT_PACE,
    ) -> None:
        if per_turn < 1:
            raise ValueError(f"per_turn must be at least 1, not {per_turn}")
        if not pace > 0:
            raise ValueError(f"pace must be positive, not {pace}")
        self.waiters = waiters
        self.per_turn = per_turn
        self.pace = pace
        self.turns = 0  # timer callbacks run (ever): how thinly expiry was spread
        self.runs = 0  # crowds (or single waiters) sent away (ever)
        # During a run: every deadline up to here is sent away (it does not shrink
        # as the crowd does, or the run would pace itself back to the deadline).
        self._horizon: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._at = math.inf  # when the timer runs

    def lead(self) -> float:
        """How long before its deadline a waiter may be sent away now."""
        return LEAD_FACTOR * self.waiters.timed * self.pace

    def arm(self) -> None:
        """Make sure the timer runs by the time the earliest deadline is due (call
        after parking a waiter with a deadline)."""
        if self._horizon is not None:
            return  # a run is on: it takes what falls within its horizon, then re-arms
        nearest = self.waiters.next_deadline()
        if nearest is None:
            return
        due = nearest - self.lead()
        if self._handle is not None:
            if self._at <= due + REARM_SLACK:
                return
            self._handle.cancel()
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._schedule(due)

    def _schedule(self, at: float) -> None:
        assert self._loop is not None
        self._at = at
        self._handle = self._loop.call_at(at, self._turn)

    def _turn(self) -> None:
        assert self._loop is not None
        self._handle, self._at = None, math.inf
        self.turns += 1
        now = self._loop.time()
        nearest = self.waiters.next_deadline()
        if self._horizon is None:
            if nearest is None:
                return
            if nearest > now + self.lead() + REARM_SLACK:  # the waiters it came for left
                self._schedule(nearest - self.lead())
                return
            # As far past the earliest deadline as the run starts before it: a crowd
            # whose deadlines spread a little (they arrived over a while) is one run.
            self._horizon = now + 2 * self.lead()
            self.runs += 1
        woken = self.waiters.expire(self._horizon, self.per_turn)
        nearest = self.waiters.next_deadline()
        if nearest is not None and nearest <= self._horizon:
            self._schedule(now + max(woken, 1) * self.pace)
            return
        self._horizon = None
        if nearest is not None:
            self._schedule(nearest - self.lead())
