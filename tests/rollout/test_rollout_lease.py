"""The driver lease on a real mongod: acquire, renew, take over after expiry with a
new epoch, and the fence every driver write passes, including the two races a
paused holder meets (its transaction open across a takeover, or begun before one
and writing after it). Clocks are injected: expiry is a clock moved, not a wait."""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio
import pytest
from pymongo.asynchronous.client_session import AsyncClientSession

from genconf.domain.records import Application, Branch, Unit
from genconf.domain.rollouts import Rollout, Step
from genconf.readside.cache import ModelCache
from genconf.rollout import plan
from genconf.rollout.driver import observe
from genconf.rollout.lease import LEASES, Lease, LeaseLost
from genconf.rollout.store import RolloutStore
from genconf.store import mongo
from genconf.store.store import Store

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
SECONDS = 10.0


class Clock:
    """A replica's clock, moved by the test."""

    def __init__(self, at: dt.datetime = T0) -> None:
        self.at = at
        self.calls = 0
        self.read_thrice = anyio.Event()

    def __call__(self) -> dt.datetime:
        self.calls += 1
        if self.calls >= 3:
            self.read_thrice.set()
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


def lease(store: Store, replica: str, clock: Clock) -> Lease:
    return Lease(store.client, store.db, replica, SECONDS, clock=clock)


async def lease_doc(store: Store) -> dict[str, Any]:
    doc = await store.db[LEASES].find_one({"_id": "rollouts"})
    assert doc is not None
    return doc


async def fenced_insert(store: Store, holder: Lease, marker: str) -> None:
    """A driver write in miniature: the fence, then one document."""

    async def body(s: AsyncClientSession) -> None:
        await holder.check(s)
        await store.db["written"].insert_one({"_id": marker}, session=s)

    await mongo.transact(store.client, body)


async def written(store: Store) -> list[str]:
    return [d["_id"] async for d in store.db["written"].find({})]


async def test_acquire_renew_and_a_held_lease_is_left_alone(store: Store) -> None:
    a, b = lease(store, "a", Clock()), lease(store, "b", Clock())
    assert await a.acquire() and a.epoch == 1
    first = await lease_doc(store)
    assert (first["holder"], first["epoch"], first["expires"]) == (
        "a",
        1,
        T0 + dt.timedelta(seconds=10),
    )
    assert not await b.acquire() and b.epoch == 0
    assert await lease_doc(store) == first  # waiting costs no write
    a.clock.advance(4)  # type: ignore[attr-defined]
    assert await a.acquire() and a.epoch == 1  # a renewal keeps the epoch
    renewed = await lease_doc(store)
    assert renewed["expires"] == T0 + dt.timedelta(seconds=14) and renewed["acquired_at"] == T0
    await fenced_insert(store, a, "by-a")
    assert await written(store) == ["by-a"]


async def test_a_takeover_after_expiry_bumps_the_epoch_and_fences_the_old_holder(
    store: Store,
) -> None:
    a_clock, b_clock = Clock(), Clock()
    a, b = lease(store, "a", a_clock), lease(store, "b", b_clock)
    assert await a.acquire()
    b_clock.advance(SECONDS)  # b sees a's lease expire (a was stopped: it renewed nothing)
    assert await b.acquire()
    doc = await lease_doc(store)
    assert (doc["holder"], doc["epoch"], doc["previous"]) == ("b", 2, "a")
    # a wakes up: its clock says its lease is fine, MongoDB says otherwise.
    assert a.held()
    with pytest.raises(LeaseLost) as caught:
        await fenced_insert(store, a, "by-a")
    assert caught.value.message == (
        "replica a no longer holds the rollout lease (epoch 1): replica b holds epoch 2 "
        "now; nothing written"
    )
    assert not a.held() and await written(store) == []
    await fenced_insert(store, b, "by-b")
    assert await written(store) == ["by-b"]
    # a takes it back only once b's lease has expired, as epoch 3.
    assert not await a.acquire()
    a_clock.advance(2 * SECONDS)
    assert await a.acquire() and a.epoch == 3


async def test_a_holder_past_its_own_expiry_writes_nothing(store: Store) -> None:
    clock = Clock()
    a = lease(store, "a", clock)
    assert await a.acquire()
    clock.advance(SECONDS)
    with pytest.raises(LeaseLost) as caught:
        await fenced_insert(store, a, "late")
    assert "it expired at 12:00:10.000000 UTC; nothing written" in caught.value.message
    assert await written(store) == []
    # Having found it lost, a takes it again like any replica would: a new epoch.
    assert await a.acquire() and a.epoch == 2


async def test_a_write_begun_before_a_takeover_conflicts_and_writes_nothing(store: Store) -> None:
    """The holder's transaction took its snapshot (lease: mine, valid) before the
    takeover committed; its fence's write of the lease document conflicts, MongoDB
    retries it, and the retry sees the new holder."""
    a_clock, b_clock = Clock(), Clock()
    a, b = lease(store, "a", a_clock), lease(store, "b", b_clock)
    assert await a.acquire()
    await store.db["written"].insert_one({"_id": "seed"})
    snapshot_taken, takeover_done = anyio.Event(), anyio.Event()
    attempts = 0

    async def body(s: AsyncClientSession) -> None:
        nonlocal attempts
        attempts += 1
        await store.db["written"].find_one({"_id": "seed"}, session=s)  # the snapshot
        if attempts == 1:
            snapshot_taken.set()
            await takeover_done.wait()
        await a.check(s)
        await store.db["written"].insert_one({"_id": "by-a"}, session=s)

    async def take_over() -> None:
        await snapshot_taken.wait()
        b_clock.advance(SECONDS)
        assert await b.acquire()
        takeover_done.set()

    caught: LeaseLost | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(take_over)
        try:
            await mongo.transact(store.client, body)
        except LeaseLost as exc:
            caught = exc
    assert caught is not None and "replica b holds epoch 2 now" in caught.message
    assert attempts == 2  # the conflict, then the retry that saw b
    assert await written(store) == ["seed"]
    assert (await lease_doc(store))["holder"] == "b"


async def test_a_write_open_across_a_takeover_commits_first_and_the_takeover_waits(
    store: Store,
) -> None:
    """The fence ran (lease written) and the holder stalls before committing: the
    other replica's takeover conflicts with the open transaction and is retried
    until it ends; the holder's write, made under a lease nobody else had, stands,
    and its next one is refused."""
    a_clock = Clock()
    b_clock = Clock(T0 + dt.timedelta(seconds=SECONDS))  # a's lease has expired for b
    a, b = lease(store, "a", a_clock), lease(store, "b", b_clock)
    assert await a.acquire()
    fenced, b_retried = anyio.Event(), anyio.Event()
    b_epoch = 0

    async def body(s: AsyncClientSession) -> None:
        await a.check(s)
        await store.db["written"].insert_one({"_id": "by-a"}, session=s)
        fenced.set()
        await b_retried.wait()

    async def take_over() -> None:
        nonlocal b_epoch
        await fenced.wait()
        assert await b.acquire()
        b_epoch = b.epoch

    async def watch_b() -> None:
        # b reads its clock once before its transaction and once per attempt of it:
        # a third read is a retry, forced by a's open transaction.
        await b_clock.read_thrice.wait()
        b_retried.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(take_over)
        tg.start_soon(watch_b)
        await mongo.transact(store.client, body)
    assert await written(store) == ["by-a"]
    assert b_epoch == 2 and (await lease_doc(store))["holder"] == "b"
    with pytest.raises(LeaseLost):
        await fenced_insert(store, a, "by-a-again")


async def test_a_driver_step_without_the_lease_writes_nothing(store: Store) -> None:
    """`RolloutStore.act` of a replica that lost the lease: no unit tracked, the
    rollout's revision and transitions as they were."""
    await store.create_application("web", schema={"k": {"type": "int"}}, units=4)
    await store.add_branch("canary")
    await store.set_branch_config("canary", "web", {"k": 1})
    rollouts = RolloutStore(store)
    await rollouts.ensure_schema()
    await rollouts.start("canary", "web", [Step(units=1), Step(percent=100)])
    cache = ModelCache()
    docs = await store.load()
    doc = await store.db["rollouts"].find_one({"_id": "canary"})
    assert doc is not None
    cache.load(
        [Application.from_doc(d) for d in docs["applications"].values()],
        [Unit.from_doc(d) for d in docs["units"].values()],
        [Branch.from_doc(d) for d in docs["branches"].values()],
        0,
        1,
        rollouts=[Rollout.from_doc(doc)],
    )
    r = cache.rollouts["canary"]
    action = plan.decide(r, observe(cache, r, T0))
    assert action is not None and len(action.track) == 1
    a_clock, b_clock = Clock(), Clock(T0 + dt.timedelta(seconds=SECONDS))
    a, b = lease(store, "a", a_clock), lease(store, "b", b_clock)
    assert await a.acquire() and await b.acquire()
    with pytest.raises(LeaseLost):
        await rollouts.act(a, r, action)
    after = await store.db["rollouts"].find_one({"_id": "canary"})
    assert after == doc
    assert await store.db["units"].count_documents({"branch": "canary"}) == 0
    written_by_b = await rollouts.act(b, r, action)
    assert written_by_b.units == list(action.track)
    after = await store.db["rollouts"].find_one({"_id": "canary"})
    assert after is not None and after["revision"] == doc["revision"] + 1
    assert after["transitions"][-1]["by"] == "replica b" and after["transitions"][-1]["epoch"] == 2
