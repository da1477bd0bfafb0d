"""MongoDB plumbing: connect, create the schema, run one transaction, fence, count
generations, and the one place where PyMongo's errors become genconf's (`mongo_errors`).

Serializable by fencing: MongoDB's snapshot transactions only see a conflict
when two of them write the same document, so a transaction that decides on a
document it does not change (a branch exists, an application is tracked as a
whole, a key has this type) races every transaction that changes it (write
skew). Every transaction therefore writes the fence of each application and
branch it reads or changes (`fence`, done by `StoreCore._app` and
`StoreCore._branch`), and every change to which units an application has, or
which units track a branch, is made under that application's or branch's fence.
Any two transactions that share an application or a branch then conflict, and
MongoDB retries one of them: the invariants in `genconf.store.invariants` hold
after any interleaving. Fences live in their own small documents, so a fence
costs no change event and no image of a large application. Unrelated
applications share no document: the generation id comes from `counters` outside
the transaction (ids are unique and increasing; a write that fails after taking
one leaves a gap).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final, TypeVar

from pymongo import AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    ConnectionFailure,
    DocumentTooLarge,
    DuplicateKeyError,
    ExecutionTimeout,
    OperationFailure,
    WTimeoutError,
)
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from genconf.errors import AlreadyExists, InvalidArgument, Unavailable
from genconf.store.documents import (
    BOOKKEEPING,
    COLLECTIONS,
    COUNTERS,
    FENCES,
    GENERATIONS,
    IMAGES,
    INDEXES,
    revision_of,
)

# transactionLifetimeLimitSeconds worth a warning at start-up (the wait after a crash).
LIFETIME_WARNING: Final = 10
# BSONObjectTooLarge and friends: a document over 16 MB.
DOCUMENT_TOO_LARGE: Final = frozenset({10334, 17419, 17420})
TOO_LARGE: Final = (
    "the write would make a document larger than MongoDB allows (16 MB); "
    "store less in one application or branch"
)
# NotWritablePrimary, InterruptedDueToReplStateChange, PrimarySteppedDown, ShutdownInProgress.
UNAVAILABLE_CODES: Final = frozenset({10107, 11602, 189, 91, 13435})

log = logging.getLogger(__name__)

T = TypeVar("T")
Database = AsyncDatabase[dict[str, Any]]


@contextlib.contextmanager
def mongo_errors() -> Iterator[None]:
    """Raise the genconf error a PyMongo error inside stands for (``raise X from exc``).

    The one translation: a server error genconf does not expect passes through
    as it is, a bug reported as such.
    """
    try:
        yield
    except DuplicateKeyError as exc:
        raise AlreadyExists(f"already exists: {exc.details or exc}") from exc
    except DocumentTooLarge as exc:  # the driver's own check, before sending
        raise InvalidArgument(f"{TOO_LARGE}: {exc}") from exc
    except OperationFailure as exc:
        if exc.code in DOCUMENT_TOO_LARGE:
            raise InvalidArgument(f"{TOO_LARGE}: {exc}") from exc
        if exc.has_error_label("RetryableWriteError") or exc.code in UNAVAILABLE_CODES:
            raise Unavailable(f"MongoDB cannot take writes now: {exc}") from exc
        raise  # a server error we do not expect: a bug, reported as such
    except (ConnectionFailure, ExecutionTimeout, WTimeoutError) as exc:
        raise Unavailable(f"MongoDB is unreachable: {exc}") from exc


def connect(uri: str) -> AsyncMongoClient[dict[str, Any]]:
    return AsyncMongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=10_000)


async def ensure_schema(db: Database) -> None:
    """Create the collections and indexes that are missing; idempotent.

    It reads before it writes: ``collMod`` and building an index wait for the
    collection's exclusive lock, that is for every transaction open on it, and
    a process killed mid-write leaves its transactions open until MongoDB's
    ``transactionLifetimeLimitSeconds``. Listing waits for nothing, so a start
    with nothing to change is not held up by the dead. Replicas starting
    together may both create the same thing (the second is a no-op).
    """
    with mongo_errors():
        cursor = await db.list_collections(filter={"name": {"$in": list(COLLECTIONS)}})
        options = {c["name"]: c.get("options", {}) async for c in cursor}
        for name in COLLECTIONS:
            # The change stream reads images of what it follows, not of bookkeeping.
            wanted = {} if name in BOOKKEEPING else {"changeStreamPreAndPostImages": IMAGES}
            if name not in options:
                try:
                    await db.create_collection(name, check_exists=False, **wanted)
                except OperationFailure as exc:
                    if exc.code != 48:  # NamespaceExists: another replica won the race
                        raise
            elif wanted and options[name].get("changeStreamPreAndPostImages") != IMAGES:
                await db.command("collMod", name, **wanted)
        for name, models in INDEXES.items():
            cursor = await db[name].list_indexes()
            present = {ix["name"]: ix async for ix in cursor}
            # A same-named index that differs is created anyway: MongoDB then
            # refuses with IndexOptionsConflict rather than genconf running on it.
            missing = [
                index
                for index in models
                if (found := present.get(index.document["name"])) is None
                or list(found["key"].items()) != list(index.document["key"].items())
                or any(found.get(k) != v for k, v in index.document.items() if k != "key")
            ]
            if missing:
                await db[name].create_indexes(missing)
        await _warn_long_transaction_lifetime(db.client)


async def _warn_long_transaction_lifetime(client: AsyncMongoClient[dict[str, Any]]) -> None:
    """After a crash mid-write, writes to what it was writing wait for MongoDB to
    abort the dead transaction: say so when that wait is long."""
    try:
        got = await client.admin.command("getParameter", 1, transactionLifetimeLimitSeconds=1)
    except OperationFailure:  # not permitted (Unauthorized), or a hosted service
        return
    lifetime = got.get("transactionLifetimeLimitSeconds")
    if isinstance(lifetime, int) and lifetime > LIFETIME_WARNING:
        log.warning(
            "MongoDB aborts abandoned transactions only after %d s "
            "(transactionLifetimeLimitSeconds): after a genconf process is killed "
            "mid-write, writes to what it was writing wait that long (up to half "
            "as long again). genconf's transactions take milliseconds; set it to 5 "
            "on every member, e.g. mongod --setParameter "
            "transactionLifetimeLimitSeconds=5",
            lifetime,
        )


async def transact(
    client: AsyncMongoClient[dict[str, Any]],
    body: Callable[[AsyncClientSession], Awaitable[T]],
) -> tuple[T, int]:
    """Run ``body`` in one transaction (snapshot reads, majority writes; the driver
    retries it on a write conflict); return its result and the commit's revision."""
    with mongo_errors():
        async with client.start_session() as session:
            result = await session.with_transaction(
                body,
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern("majority"),
            )
            op_time = session.operation_time
    if op_time is None:  # pragma: no cover - servers always return operationTime
        raise Unavailable("MongoDB did not report the commit's cluster time")
    return result, revision_of(op_time)


async def fence(db: Database, s: AsyncClientSession, kind: str, name: str) -> None:
    """Write the fence of an application or branch this transaction depends on, so
    that MongoDB sees every concurrent transaction that depends on it too."""
    await db[FENCES].update_one(
        {"_id": f"{kind}:{name}"}, {"$inc": {"n": 1}}, upsert=True, session=s
    )


async def drop_fence(db: Database, s: AsyncClientSession, kind: str, name: str) -> None:
    """Remove the fence with what it guards, so fences of names long gone do not
    pile up. Safe: a concurrent transaction that fenced the name wrote the same
    document, so the two conflict; a later one finds the entity gone."""
    await db[FENCES].delete_one({"_id": f"{kind}:{name}"}, session=s)


class GenerationCounter:
    """Generation ids, taken outside the transaction: one atomic increment that
    never conflicts, where a max+1 read inside every transaction made all writers,
    of any application, collide on the same new id."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._seeded = False

    async def next(self) -> int:
        counters = self.db[COUNTERS]
        if not self._seeded:
            # A database written before the counter existed: start above its newest.
            last = await self.db[GENERATIONS].find_one({}, {"_id": 1}, sort=[("_id", -1)])
            await counters.update_one(
                {"_id": GENERATIONS},
                {"$max": {"seq": int(last["_id"]) if last else 0}},
                upsert=True,
            )
            self._seeded = True
        doc = await counters.find_one_and_update(
            {"_id": GENERATIONS},
            {"$inc": {"seq": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return int(doc["seq"])
