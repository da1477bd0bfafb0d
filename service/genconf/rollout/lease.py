"""The driver lease: which replica may drive rollouts now, and the fence every one
of its writes passes.

One document in the ``leases`` collection (never followed by the change stream:
renewals would flood the admin feed), ``_id`` the lease's name:

    {_id: "rollouts", holder: REPLICA, epoch: N, expires: TIME, acquired_at,
     renewed_at, writes: N}

- **Acquire** when the document is absent, expired, or this replica's own at its
  epoch: one transaction reads it, checks, and writes ``holder`` = me,
  ``expires`` = my clock + lease seconds and, when it changes hands (a takeover),
  ``epoch`` + 1. Two replicas acquiring at once write the same document: MongoDB
  makes one of them retry, and the retry sees the other's lease.
- **Renew** is an acquire by the holder (same epoch), every lease/3 seconds.
- **Fence** (`Lease.check`): the first step of every driver write. In the write's
  own transaction it reads the document and refuses (`LeaseLost`) unless holder,
  epoch and expiry are still mine, and it writes the document too (``writes`` + 1).
  Snapshot isolation only catches write-write conflicts: without that write, a
  takeover committed after the transaction's snapshot would go unnoticed. With
  it, either the takeover commits first (this write then conflicts, is retried,
  and the retry sees the new holder) or this write commits first (it was made
  under a lease nobody else had yet). So a holder that was paused (SIGSTOP, a
  long GC, a partition) and wakes up after losing the lease writes nothing.

Expiry is judged by each replica's own clock: replicas' clocks must agree to well
within the lease time (NTP does).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from genconf.errors import FailedPrecondition, InvalidArgument
from genconf.store import mongo

LEASES: Final = "leases"
DRIVER_LEASE: Final = "rollouts"  # the one lease: every rollout (and maintenance)

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class LeaseLost(FailedPrecondition):
    """This replica no longer holds the lease: its write was refused, nothing written."""


@dataclass(frozen=True, slots=True)
class Holding:
    """The lease as its document holds it."""

    holder: str
    epoch: int
    expires: dt.datetime

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> Holding | None:
        if doc is None:
            return None
        return cls(str(doc.get("holder", "")), int(doc.get("epoch", 0)), doc["expires"])


def check_lease_seconds(seconds: float) -> float:
    if not (seconds > 0 and seconds <= 3600):
        raise InvalidArgument(
            f"--lease-seconds must be more than 0 and at most 3600, not {seconds}"
        )
    return float(seconds)


class Lease:
    """One replica's side of the lease: whether it holds it, at which epoch."""

    def __init__(
        self,
        client: AsyncMongoClient[dict[str, Any]],
        db: AsyncDatabase[dict[str, Any]],
        replica: str,
        seconds: float,
        *,
        clock: Clock = utcnow,
        name: str = DRIVER_LEASE,
    ) -> None:
        self.client = client
        self.coll = db[LEASES]
        self.replica = replica
        self.seconds = check_lease_seconds(seconds)
        self.clock = clock
        self.name = name
        self.epoch = 0  # the epoch this replica holds (0: none)
        self.expires: dt.datetime | None = None
        self.takeovers = 0  # times this replica took the lease from another (or a lapse)
        self.lost = 0  # times a renewal or a write found the lease gone

    @property
    def ttl(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.seconds)

    def held(self) -> bool:
        """Whether this replica believes it holds the lease (its own clock)."""
        return bool(self.epoch) and self.expires is not None and self.clock() < self.expires

    async def current(self) -> Holding | None:
        """The lease as MongoDB holds it now (outside any transaction)."""
        with mongo.mongo_errors():
            return Holding.from_doc(await self.coll.find_one({"_id": self.name}))

    def _mine(self, holding: Holding | None) -> bool:
        return (
            holding is not None
            and bool(self.epoch)
            and holding.holder == self.replica
            and holding.epoch == self.epoch
        )

    async def acquire(self) -> bool:
        """Take the lease (absent or expired) or renew it (mine): whether this replica
        holds it now. A lease another replica holds unexpired is left alone, with no
        write (a read first: replicas that wait cost MongoDB no transaction)."""
        seen = await self.current()
        if seen is not None and not self._mine(seen) and seen.expires > self.clock():
            self._drop()
            return False

        async def body(s: AsyncClientSession) -> tuple[int, dt.datetime] | None:
            doc = await self.coll.find_one({"_id": self.name}, session=s)
            holding = Holding.from_doc(doc)
            now = self.clock()
            mine = self._mine(holding)
            if holding is not None and not mine and holding.expires > now:
                return None
            epoch = self.epoch if mine else (holding.epoch if holding else 0) + 1
            expires = now + self.ttl
            fields: dict[str, Any] = {
                "holder": self.replica,
                "epoch": epoch,
                "expires": expires,
                "renewed_at": now,
            }
            if not mine:
                fields["acquired_at"] = now
                fields["previous"] = holding.holder if holding else ""
            await self.coll.update_one(
                {"_id": self.name}, {"$set": fields, "$inc": {"writes": 1}}, upsert=True, session=s
            )
            return epoch, expires

        got, _ = await mongo.transact(self.client, body)
        if got is None:
            self._drop()
            return False
        epoch, expires = got
        if epoch != self.epoch:
            self.takeovers += 1
        self.epoch, self.expires = epoch, expires
        return True

    async def check(self, s: AsyncClientSession) -> None:
        """The fence: inside a driver write's transaction, refuse unless the lease is
        still mine (holder, epoch, unexpired), and write it so that a concurrent
        takeover conflicts with this transaction."""
        doc = await self.coll.find_one({"_id": self.name}, session=s)
        holding = Holding.from_doc(doc)
        now = self.clock()
        if not self._mine(holding) or holding is None or holding.expires <= now:
            mine = self.epoch
            self._drop()
            if holding is None:
                now_held = "nobody holds it"
            elif holding.holder == self.replica and holding.epoch == mine:
                now_held = f"it expired at {holding.expires:%H:%M:%S.%f} UTC"
            else:
                now_held = f"replica {holding.holder} holds epoch {holding.epoch} now"
            raise LeaseLost(
                f"replica {self.replica} no longer holds the rollout lease (epoch {mine}): "
                f"{now_held}; nothing written"
            )
        await self.coll.update_one({"_id": self.name}, {"$inc": {"writes": 1}}, session=s)

    async def release(self) -> None:
        """Give the lease up now (a replica shutting down): another takes it at once."""
        if not self.epoch:
            return

        async def body(s: AsyncClientSession) -> None:
            doc = await self.coll.find_one({"_id": self.name}, session=s)
            if self._mine(Holding.from_doc(doc)):
                now = self.clock()
                await self.coll.update_one(
                    {"_id": self.name},
                    {"$set": {"expires": now, "renewed_at": now}, "$inc": {"writes": 1}},
                    session=s,
                )

        try:
            await mongo.transact(self.client, body)
        finally:
            self.epoch, self.expires = 0, None

    def _drop(self) -> None:
        if self.epoch:
            self.lost += 1
        self.epoch, self.expires = 0, None
