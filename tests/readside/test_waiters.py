"""The revision waiters container and its deadline pacer (`genconf.readside.waiters`).

Costs are shown by structure, not by the clock: heap entries held, rebuilds
done, and comparisons made (revisions that count how often heapq compares them).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from collections.abc import Callable

import anyio
import pytest

from genconf.readside.cache import ModelCache
from genconf.readside.waiters import DeadlinePacer, RevisionWaiters


class Counted(int):
    """A revision that counts the comparisons made with it."""

    compared = 0

    def __eq__(self, other: object) -> bool:
        Counted.compared += 1
        return int(self) == int(other)  # type: ignore[call-overload]

    def __lt__(self, other: int) -> bool:
        Counted.compared += 1
        return int(self) < int(other)

    __hash__ = int.__hash__


def woke_into(log: list[str], label: str) -> Callable[[], None]:
    return lambda: log.append(label)


def test_release_wakes_in_revision_order_then_arrival_order() -> None:
    waiters = RevisionWaiters()
    log: list[str] = []
    for label, revision in (("30", 30), ("10a", 10), ("20", 20), ("10b", 10)):
        waiters.add(revision, woke_into(log, label))
    assert len(waiters) == 4
    assert waiters.release(9) == 0 and log == []
    assert waiters.release(20) == 3
    assert log == ["10a", "10b", "20"]
    assert waiters.release(20) == 0  # nothing woken twice
    assert waiters.release(31) == 1 and log[-1] == "30"
    assert len(waiters) == 0
    stats = waiters.statistics()
    assert (stats.live, stats.held, stats.released) == (0, 0, 4)


def test_abandoned_waiters_are_never_woken_and_leave_once() -> None:
    waiters = RevisionWaiters()
    log: list[str] = []
    gone = waiters.add(10, woke_into(log, "gone"))
    kept = waiters.add(10, woke_into(log, "kept"))
    assert waiters.abandon(gone) and not waiters.abandon(gone)
    assert len(waiters) == 1
    assert waiters.release(10) == 1 and log == ["kept"]
    assert kept.released and not kept.parked
    assert not waiters.abandon(kept)  # already woken: nothing to do
    stats = waiters.statistics()
    assert (stats.live, stats.held, stats.released, stats.abandoned) == (0, 0, 1, 1)


def test_expire_goes_by_deadline_at_most_limit_at_a_time() -> None:
    waiters = RevisionWaiters()
    log: list[str] = []
    late = waiters.add(5, woke_into(log, "late"), deadline=3.0)
    early = waiters.add(50, woke_into(log, "early"), deadline=1.0)
    middle = waiters.add(50, woke_into(log, "middle"), deadline=2.0)
    untimed = waiters.add(50, woke_into(log, "untimed"))
    assert waiters.timed == 3 and waiters.next_deadline() == 1.0
    assert waiters.expire(0.5) == 0
    assert waiters.expire(2.5, limit=1) == 1 and log == ["early"]
    assert waiters.expire(2.5) == 1 and log == ["early", "middle"]
    assert early.expired and not early.released
    # A release takes only those still parked; the released one's deadline passes quietly.
    assert waiters.release(5) == 1 and late.released
    assert waiters.next_deadline() is None and waiters.expire(math.inf) == 0
    assert waiters.release(50) == 1 and log[-1] == "untimed"
    assert untimed.released and middle.expired
    stats = waiters.statistics()
    assert (stats.live, stats.timed, stats.released, stats.expired) == (0, 0, 2, 2)
    assert stats.held == 0


def test_giving_up_is_lazy_and_compacts_once_the_dead_outnumber_the_living() -> None:
    n = 1000
    waiters = RevisionWaiters(compact_at=16)
    parked = [waiters.add(10 + i, lambda: None) for i in range(n)]
    random.Random(7).shuffle(parked)
    # Fewer than half give up: no entry is touched, let alone the heap scanned.
    for w in parked[:499]:
        waiters.abandon(w)
    stats = waiters.statistics()
    assert (stats.live, stats.held, stats.compactions) == (501, n, 0)
    # The dead now outnumber the living: one rebuild drops them all.
    for w in parked[499:501]:
        waiters.abandon(w)
    stats = waiters.statistics()
    assert stats.compactions == 1 and stats.held == stats.live == n - 501
    # The living are still released, and only they.
    woken = waiters.release(10 + n)
    assert woken == n - 501 and len(waiters) == 0 and waiters.statistics().held == 0


@pytest.mark.parametrize("n", [512, 4096])
def test_costs_are_logarithmic_per_waiter_not_linear(n: int) -> None:
    """Comparisons, counted: parking is O(log n) each; giving up is O(1) amortised
    (the old list.remove + heapify was O(n) each: n²/2 for n waiters); releasing
    is O(log n) each."""
    log_n = math.log2(n)
    waiters = RevisionWaiters()
    Counted.compared = 0
    parked = [waiters.add(Counted(random.Random(i).randrange(n)), lambda: None) for i in range(n)]
    assert Counted.compared <= 2 * n * log_n

    random.Random(n).shuffle(parked)
    half = parked[: n // 2]
    Counted.compared = 0
    for w in half:
        waiters.abandon(w)
    assert Counted.compared == 0  # marked, not searched for
    Counted.compared = 0
    for w in parked[n // 2 :]:
        waiters.abandon(w)
    # Rebuilds only (each heapify is linear), however many give up: well below n²/2.
    assert Counted.compared <= 8 * n
    assert waiters.statistics().held < n

    waiters = RevisionWaiters()
    for i in range(n):
        waiters.add(Counted(random.Random(i).randrange(n)), lambda: None)
    Counted.compared = 0
    assert waiters.release(n) == n
    assert Counted.compared <= 4 * n * log_n


async def test_pacer_expires_a_crowd_a_few_per_turn_before_its_deadline() -> None:
    loop = asyncio.get_running_loop()
    waiters = RevisionWaiters()
    pacer = DeadlinePacer(waiters, per_turn=8, pace=0.002)
    crowd = 100
    deadline = loop.time() + 0.3
    woke: list[tuple[int, float]] = []  # (turn, loop time)
    done = asyncio.Event()

    def wake() -> None:
        woke.append((pacer.turns, loop.time()))
        if len(woke) == crowd:
            done.set()

    for _ in range(crowd):
        waiters.add(10, wake, deadline)
        pacer.arm()
    released = waiters.add(5, lambda: None, deadline)  # its revision comes first
    pacer.arm()
    assert waiters.release(5) == 1 and released.released
    loner = waiters.add(10, lambda: None, loop.time() + 60)  # far from the crowd's deadline
    pacer.arm()
    await asyncio.wait_for(done.wait(), 5)
    per_turn = Counter(turn for turn, _ in woke)
    assert max(per_turn.values()) <= 8  # never a crowd in one turn
    assert len(per_turn) >= crowd // 8
    assert all(at <= deadline for _, at in woke), "a waiter outlived its deadline"
    assert waiters.statistics().expired == crowd and pacer.runs == 1
    assert loner.parked and len(waiters) == 1  # not swept away with the crowd
    assert waiters.release(10) == 1 and loner.released


async def test_cache_wait_for_a_deadline_says_whether_the_revision_came() -> None:
    cache = ModelCache()
    cache.advance(100)
    loop = asyncio.get_running_loop()
    assert await cache.wait_for(100, loop.time())  # already there
    assert not await cache.wait_for(200, loop.time() + 0.01)  # the deadline first
    waiting = asyncio.create_task(cache.wait_for(300, loop.time() + 30))
    await anyio.wait_all_tasks_blocked()
    assert len(cache._waiters) == 1
    cache.advance(300)
    assert await waiting
    stuck = asyncio.create_task(cache.wait_for(400, loop.time() + 30))
    await anyio.wait_all_tasks_blocked()
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    assert len(cache._waiters) == 0
