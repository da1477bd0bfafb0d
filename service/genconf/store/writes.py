"""The write side: every change to the model is one MongoDB transaction here.

Documents (one database per model; every document has a ``revision`` counter that
each write increments, so a stale event can be told from a newer one):

    applications  {_id: name, uid, charm, schema: {key: {type, default?, description, secret?}},
                   settings: {key: value}  (master: only what operators set),
                   version, next_unit, revision, created_at, updated_at}
    units         {_id: "app/N", uid, application, application_uid, number,
                   branch: name|None, applied, revision}
    branches      {_id: name, created_by, on_behalf_of, authenticated, created_at,
                   track_applications: [app],
                   changes: {app: {key: {op, value?, from?}}}, revision}     (active only)
    versions      {_id: "app@N", application, version, settings, timestamp, reason,
                   created_by, on_behalf_of, authenticated, metadata, previous_version,
                   generation, tags, revision}
    generations   {_id: id, kind, branch, changes: {app: {key: {from?, to?}}},
                   created_by, on_behalf_of, authenticated, created_at, reason,
                   versions: {app: N}, revision}
    tokens        (the security issue)
    fences        {_id: "application:NAME" | "branch:NAME", n}   (never watched)
    counters      {_id: "generations", seq}                     (never watched)

Serializable by fencing: MongoDB's snapshot transactions only see a conflict
when two of them write the same document, so a transaction that decides on a
document it does not change (a branch exists, an application is tracked as a
whole, a key has this type) races every transaction that changes it (write
skew). Every transaction therefore writes the fence of each application and
branch it reads or changes (`Store._fence`, done by `_app` and `_branch`), and
every change to which units an application has, or which units track a branch,
is made under that application's or branch's fence. Any two transactions that
share an application or a branch then conflict, and MongoDB retries one of
them: the invariants in `genconf.store.invariants` hold after any interleaving.
Fences live in their own small documents, so a fence costs no change event and
no image of a large application. Unrelated applications share no document: the
generation id comes from `counters` outside the transaction (ids are unique and
increasing; a write that fails after taking one leaves a gap).

A missing ``value``/``from``/``to`` field means "absent" (unset). Writes never
touch the cache: the multiwatcher sees them on the change stream. Every write
returns the cluster time of its commit as one integer (``seconds << 32 | inc``),
which a reader passes as ``min_revision`` to read its own write.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from bson import Binary, Timestamp
from pymongo import ASCENDING, AsyncMongoClient, IndexModel, ReturnDocument
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

from genconf.domain import limits, model
from genconf.domain.model import ABSENT, Change, Op
from genconf.errors import (
    AlreadyExists,
    Conflict,
    FailedPrecondition,
    GenconfError,
    InvalidArgument,
    NotApplied,
    NotFound,
    Unavailable,
    VersionMismatch,
)

APPLICATIONS: Final = "applications"
UNITS: Final = "units"
BRANCHES: Final = "branches"
VERSIONS: Final = "versions"
GENERATIONS: Final = "generations"
TOKENS: Final = "tokens"
# Write-side bookkeeping that the change stream never follows: `fences` (see
# `Store._fence`) and `counters` (the generation sequence).
FENCES: Final = "fences"
COUNTERS: Final = "counters"
# Server keys shared by every replica (`Store.observer_key`); not model state either.
KEYS: Final = "keys"
OBSERVER_KEY: Final = "observer"  # its document in KEYS
BOOKKEEPING: Final = (FENCES, COUNTERS, KEYS)  # not model state: no read ever looks at them
COLLECTIONS: Final = (
    APPLICATIONS,
    UNITS,
    BRANCHES,
    VERSIONS,
    GENERATIONS,
    TOKENS,
    FENCES,
    COUNTERS,
    KEYS,
)

IMAGES: Final = {"enabled": True}
# Every index genconf relies on, per collection; `ensure_schema` creates what is missing.
INDEXES: Final[dict[str, tuple[IndexModel, ...]]] = {
    UNITS: (
        IndexModel([("application", ASCENDING), ("number", ASCENDING)], unique=True),
        IndexModel([("branch", ASCENDING)]),
    ),
    VERSIONS: (
        IndexModel([("application", ASCENDING), ("version", ASCENDING)], unique=True),
        # Labels are unique per application; unlabelled versions stay out of it.
        IndexModel(
            [("application", ASCENDING), ("tags", ASCENDING)],
            unique=True,
            partialFilterExpression={"tags": {"$type": "string"}},
            name="unique_labels",
        ),
    ),
}
# transactionLifetimeLimitSeconds worth a warning at start-up (the wait after a crash).
LIFETIME_WARNING: Final = 10
MAX_UNITS_PER_CALL: Final = 1000
# BSONObjectTooLarge and friends: a document over 16 MB.
DOCUMENT_TOO_LARGE: Final = frozenset({10334, 17419, 17420})
TOO_LARGE: Final = (
    "the write would make a document larger than MongoDB allows (16 MB); "
    "store less in one application or branch"
)
# NotWritablePrimary, InterruptedDueToReplStateChange, PrimarySteppedDown, ShutdownInProgress.
UNAVAILABLE_CODES: Final = frozenset({10107, 11602, 189, 91, 13435})

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
T = TypeVar("T")


def revision_of(ts: Timestamp) -> int:
    """A cluster time as one ordered integer, the same on every replica."""
    return (ts.time << 32) | ts.inc


def timestamp_of(revision: int) -> Timestamp:
    return Timestamp(revision >> 32, revision & 0xFFFFFFFF)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class WriteResult:
    """What a write did: its revision, and the versions/generation it produced."""

    revision: int
    generation: int | None = None
    versions: Mapping[str, int] = field(default_factory=dict)
    units: Sequence[str] = ()


@dataclass(frozen=True)
class LabelResult:
    """A semantic label now on ``version``, and the revision of the write that put it there."""

    application: str
    version: int
    label: str
    revision: int


def _check_retention(retain_versions: int | None) -> None:
    if retain_versions is not None and retain_versions < 1:
        raise InvalidArgument(f"retain_versions must be at least 1, not {retain_versions}")


def version_id(application: str, version: int) -> str:
    return f"{application}@{version}"


def schema_of(app_doc: Mapping[str, Any]) -> dict[str, model.OptionSpec]:
    return model.parse_schema(app_doc.get("schema", {}))


def secret_keys(app_doc: Mapping[str, Any]) -> list[str]:
    """The keys secret under the application's schema now: kept with each version and
    generation, so history stays redacted even if a later schema makes them public."""
    return sorted(key for key, spec in app_doc.get("schema", {}).items() if spec.get("secret"))


def changes_of(doc: Mapping[str, Any]) -> dict[str, Change]:
    return {key: Change.from_doc(c) for key, c in doc.items()}


def _from_to(before: Any, after: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if before is not ABSENT:
        entry["from"] = before
    if after is not ABSENT:
        entry["to"] = after
    return entry


def parse_bounded_schema(raw: Mapping[str, Any]) -> dict[str, model.OptionSpec]:
    parsed = model.parse_schema(raw)
    for key, spec in parsed.items():
        limits.check_text(
            f"the description of option {key!r}", spec.description, limits.MAX_DESCRIPTION_CHARS
        )
    return parsed


def check_application_size(doc: Mapping[str, Any]) -> None:
    limits.check_document(
        f"application {doc['_id']!r} (schema and master settings)",
        doc,
        limits.MAX_APPLICATION_BYTES,
        "Store fewer or smaller values in one application.",
    )


def check_branch_size(doc: Mapping[str, Any]) -> None:
    limits.check_document(
        f"branch {doc['_id']!r} (its staged changes)",
        doc,
        limits.MAX_BRANCH_BYTES,
        "Stage fewer or smaller changes on one branch, or commit it first.",
    )


def check_free_text(*, reason: str = "", created_by: str = "", on_behalf_of: str = "") -> None:
    limits.check_text("reason", reason, limits.MAX_REASON_CHARS)
    limits.check_text("created_by", created_by, limits.MAX_NAME_CHARS)
    # What the client sent as created_by, when the server records the token instead.
    limits.check_text("created_by (kept as on_behalf_of)", on_behalf_of, limits.MAX_NAME_CHARS)


def new_uid() -> str:
    """An application's or unit's identity for its lifetime: a name removed and
    created again gets a new one, so credentials bound to the old one stop working."""
    return uuid.uuid4().hex


class Store:
    """MongoDB writes and the few direct queries the write side needs.

    Each public write runs in one transaction (snapshot read concern, majority
    write concern), validates first and raises a `GenconfError` before writing
    anything, so a rejected request leaves the database unchanged.
    """

    def __init__(
        self,
        client: AsyncMongoClient[dict[str, Any]],
        database: str = "genconf",
        *,
        clock: Clock = utcnow,
        retain_versions: int | None = None,
    ) -> None:
        _check_retention(retain_versions)
        self.client = client
        self.db: AsyncDatabase[dict[str, Any]] = client[database]
        self.clock = clock
        # None: keep every version. N: keep the newest N per application, and
        # every labelled one.
        self.retain_versions = retain_versions
        self._counter_seeded = False

    @classmethod
    def connect(cls, uri: str, database: str = "genconf", **kwargs: Any) -> Store:
        _check_retention(kwargs.get("retain_versions"))  # before a client exists to leak
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            uri, tz_aware=True, serverSelectionTimeoutMS=10_000
        )
        return cls(client, database, **kwargs)

    async def aclose(self) -> None:
        await self.client.close()

    # -- setup -------------------------------------------------------------

    async def ensure_schema(self) -> None:
        """Create the collections and indexes that are missing; idempotent.

        It reads before it writes: ``collMod`` and building an index wait for the
        collection's exclusive lock, that is for every transaction open on it, and
        a process killed mid-write leaves its transactions open until MongoDB's
        ``transactionLifetimeLimitSeconds``. Listing waits for nothing, so a start
        with nothing to change is not held up by the dead. Replicas starting
        together may both create the same thing (the second is a no-op).
        """
        try:
            cursor = await self.db.list_collections(filter={"name": {"$in": list(COLLECTIONS)}})
            options = {c["name"]: c.get("options", {}) async for c in cursor}
            for name in COLLECTIONS:
                # The change stream reads images of what it follows, not of bookkeeping.
                wanted = {} if name in BOOKKEEPING else {"changeStreamPreAndPostImages": IMAGES}
                if name not in options:
                    try:
                        await self.db.create_collection(name, **wanted)
                    except OperationFailure as exc:
                        if exc.code != 48:  # NamespaceExists: another replica won the race
                            raise
                elif wanted and options[name].get("changeStreamPreAndPostImages") != IMAGES:
                    await self.db.command("collMod", name, **wanted)
            for name, models in INDEXES.items():
                cursor = await self.db[name].list_indexes()
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
                    await self.db[name].create_indexes(missing)
            await self._warn_long_transaction_lifetime()
        except ConnectionFailure as exc:
            raise Unavailable(f"MongoDB is unreachable: {exc}") from exc

    async def _warn_long_transaction_lifetime(self) -> None:
        """After a crash mid-write, writes to what it was writing wait for MongoDB to
        abort the dead transaction: say so when that wait is long."""
        try:
            got = await self.client.admin.command(
                "getParameter", 1, transactionLifetimeLimitSeconds=1
            )
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

    # -- transaction plumbing ---------------------------------------------

    async def _transact(self, body: Callable[[AsyncClientSession], Awaitable[T]]) -> tuple[T, int]:
        """Run ``body`` in a transaction; return its result and the commit's revision."""
        try:
            async with self.client.start_session() as session:
                result = await session.with_transaction(
                    body,
                    read_concern=ReadConcern("snapshot"),
                    write_concern=WriteConcern("majority"),
                )
                op_time = session.operation_time
        except GenconfError:
            raise
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
        if op_time is None:  # pragma: no cover - servers always return operationTime
            raise Unavailable("MongoDB did not report the commit's cluster time")
        return result, revision_of(op_time)

    async def _fence(self, s: AsyncClientSession, kind: str, name: str) -> None:
        """Write the fence of an application or branch this transaction depends on, so
        that MongoDB sees every concurrent transaction that depends on it too."""
        await self.db[FENCES].update_one(
            {"_id": f"{kind}:{name}"}, {"$inc": {"n": 1}}, upsert=True, session=s
        )

    async def _drop_fence(self, s: AsyncClientSession, kind: str, name: str) -> None:
        """Remove the fence with what it guards, so fences of names long gone do not
        pile up. Safe: a concurrent transaction that fenced the name wrote the same
        document, so the two conflict; a later one finds the entity gone."""
        await self.db[FENCES].delete_one({"_id": f"{kind}:{name}"}, session=s)

    async def _app(self, s: AsyncClientSession, name: str) -> dict[str, Any]:
        model.validate_app_name(name)
        await self._fence(s, "application", name)
        doc = await self.db[APPLICATIONS].find_one({"_id": name}, session=s)
        if doc is None:
            raise NotFound(f"application {name!r} not found")
        return doc

    async def _branch(self, s: AsyncClientSession, name: str) -> dict[str, Any]:
        model.validate_branch_name(name)
        await self._fence(s, "branch", name)
        doc = await self.db[BRANCHES].find_one({"_id": name}, session=s)
        if doc is None:
            raise NotFound(f"branch {name!r} not found (it may have been committed or aborted)")
        return doc

    async def _unit(self, s: AsyncClientSession, name: str) -> dict[str, Any]:
        model.parse_unit_name(name)
        doc = await self.db[UNITS].find_one({"_id": name}, session=s)
        if doc is None:
            raise NotFound(f"unit {name!r} not found")
        return doc

    async def _next_generation(self) -> int:
        """The next generation id, taken outside the transaction: one atomic increment
        that never conflicts, where a max+1 read inside every transaction made all
        writers, of any application, collide on the same new id."""
        counters = self.db[COUNTERS]
        if not self._counter_seeded:
            # A database written before the counter existed: start above its newest.
            last = await self.db[GENERATIONS].find_one({}, {"_id": 1}, sort=[("_id", -1)])
            await counters.update_one(
                {"_id": GENERATIONS},
                {"$max": {"seq": int(last["_id"]) if last else 0}},
                upsert=True,
            )
            self._counter_seeded = True
        doc = await counters.find_one_and_update(
            {"_id": GENERATIONS},
            {"$inc": {"seq": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return int(doc["seq"])

    async def _write_versions(
        self,
        s: AsyncClientSession,
        kind: str,
        new_settings: Mapping[str, dict[str, Any]],
        old_settings: Mapping[str, Mapping[str, Any]],
        apps: Mapping[str, Mapping[str, Any]],
        *,
        branch: str | None,
        reason: str,
        created_by: str,
        on_behalf_of: str = "",
        authenticated: bool = False,
        metadata: Mapping[str, Any],
    ) -> tuple[int, dict[str, int]]:
        """Update master, add one version per application and one generation record.

        Every size is checked before anything is written or a generation id taken.
        """
        now = self.clock()
        versions: dict[str, int] = {}
        changes: dict[str, dict[str, Any]] = {}
        for name, settings in new_settings.items():
            app = apps[name]
            check_application_size({**app, "settings": settings})
            versions[name] = int(app["version"]) + 1
            old = old_settings[name]
            changes[name] = {
                key: _from_to(old.get(key, ABSENT), settings.get(key, ABSENT))
                for key in sorted(set(old) | set(settings))
                if not model.values_equal(old.get(key, ABSENT), settings.get(key, ABSENT))
            }
        record = {
            "kind": kind,
            "branch": branch,
            "changes": changes,
            "secret_keys": {name: secret_keys(apps[name]) for name in new_settings},
            "created_by": created_by,
            "on_behalf_of": on_behalf_of,
            "authenticated": authenticated,
            "created_at": now,
            "reason": reason,
            "versions": versions,
            "revision": 1,
        }
        limits.check_document(
            f"the {kind} generation (every changed key's old and new value)",
            record,
            limits.MAX_GENERATION_BYTES,
            "Change fewer applications or keys at once.",
        )
        generation = await self._next_generation()
        for name, settings in new_settings.items():
            app = apps[name]
            version = versions[name]
            # No version check needed in the filter: the transaction read `app`, so a
            # concurrent writer makes one of the two retry (write conflict).
            await self.db[APPLICATIONS].update_one(
                {"_id": name},
                {
                    "$set": {"settings": settings, "version": version, "updated_at": now},
                    "$inc": {"revision": 1},
                },
                session=s,
            )
            await self.db[VERSIONS].insert_one(
                {
                    "_id": version_id(name, version),
                    "application": name,
                    "version": version,
                    "settings": settings,
                    "timestamp": now,
                    "reason": reason,
                    "created_by": created_by,
                    "on_behalf_of": on_behalf_of,
                    "authenticated": authenticated,
                    "metadata": dict(metadata),
                    "previous_version": int(app["version"]),
                    "generation": generation,
                    "tags": [],
                    "secret_keys": record["secret_keys"][name],
                    "revision": 1,
                },
                session=s,
            )
            if self.retain_versions is not None:
                await self.db[VERSIONS].delete_many(
                    {
                        "application": name,
                        "version": {"$lte": version - self.retain_versions},
                        "tags": {"$size": 0},
                    },
                    session=s,
                )
        await self.db[GENERATIONS].insert_one({"_id": generation, **record}, session=s)
        return generation, versions

    # -- applications ------------------------------------------------------

    async def create_application(
        self,
        name: str,
        *,
        charm: str = "",
        schema: Mapping[str, Any] | None = None,
        units: int = 0,
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
    ) -> WriteResult:
        model.validate_app_name(name)
        parsed = parse_bounded_schema(schema or {})
        self._check_count(units)
        check_free_text(created_by=created_by, on_behalf_of=on_behalf_of)
        charm = limits.check_text("charm", charm or name, limits.MAX_NAME_CHARS)
        now = self.clock()
        app_doc = {
            "_id": name,
            "uid": new_uid(),
            "charm": charm,
            "schema": model.schema_to_doc(parsed),
            "settings": {},
            "version": 1,
            "next_unit": units,
            "revision": 1,
            "created_at": now,
            "updated_at": now,
        }
        check_application_size(app_doc)

        async def body(s: AsyncClientSession) -> list[str]:
            await self._fence(s, "application", name)
            if await self.db[APPLICATIONS].find_one({"_id": name}, {"_id": 1}, session=s):
                raise AlreadyExists(f"application {name!r} already exists")
            await self.db[APPLICATIONS].insert_one(dict(app_doc), session=s)
            await self.db[VERSIONS].insert_one(
                {
                    "_id": version_id(name, 1),
                    "application": name,
                    "version": 1,
                    "settings": {},
                    "timestamp": now,
                    "reason": "created",
                    "created_by": created_by,
                    "on_behalf_of": on_behalf_of,
                    "authenticated": authenticated,
                    "metadata": {},
                    "previous_version": 0,
                    "generation": None,
                    "tags": [],
                    "secret_keys": secret_keys(app_doc),
                    "revision": 1,
                },
                session=s,
            )
            names = [model.unit_name(name, n) for n in range(units)]
            if names:
                await self.db[UNITS].insert_many(
                    [self._unit_doc(app_doc, n, None) for n in range(units)], session=s
                )
            return names

        created, revision = await self._transact(body)
        return WriteResult(revision, versions={name: 1}, units=created)

    async def update_application(
        self,
        name: str,
        *,
        charm: str | None = None,
        schema: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Change the charm or the schema; master and branches must still fit the schema."""
        parsed = parse_bounded_schema(schema) if schema is not None else None
        if charm is not None and not charm:
            raise InvalidArgument("charm must not be empty")
        if charm is not None:
            limits.check_text("charm", charm, limits.MAX_NAME_CHARS)

        async def body(s: AsyncClientSession) -> None:
            app = await self._app(s, name)
            update: dict[str, Any] = {"updated_at": self.clock()}
            if charm is not None:
                update["charm"] = charm
            if parsed is not None:
                # Values in use must fit the new schema; those that do are stored
                # in its types (an int option turned float holds 2.0, not 2), so
                # later conflict checks compare like with like.
                problems = []
                settings = {}
                for key, value in app["settings"].items():
                    try:
                        settings[key] = model.coerce_value(
                            key, model.require_key(parsed, key), value
                        )
                    except InvalidArgument as exc:
                        problems.append(f"master: {exc.message}")
                branch_updates: dict[str, dict[str, Any]] = {}
                async for branch in self.db[BRANCHES].find(
                    {f"changes.{name}": {"$exists": True}}, session=s
                ):
                    changes = {}
                    for key, change in branch["changes"][name].items():
                        try:
                            spec = model.require_key(parsed, key)
                            changes[key] = dict(change)
                            if "value" in change:
                                changes[key]["value"] = model.coerce_value(
                                    key, spec, change["value"]
                                )
                        except InvalidArgument as exc:
                            problems.append(f"branch {branch['_id']!r}: {exc.message}")
                            continue
                        if "from" in change:
                            with contextlib.suppress(InvalidArgument):
                                changes[key]["from"] = model.coerce_value(key, spec, change["from"])
                    branch_updates[branch["_id"]] = changes
                if problems:
                    raise FailedPrecondition(
                        f"the new schema of {name!r} does not fit values in use: "
                        + "; ".join(problems)
                        + ". Unset or change those values first"
                    )
                update["settings"] = settings
                for branch_name, changes in branch_updates.items():
                    await self._fence(s, "branch", branch_name)
                    await self.db[BRANCHES].update_one(
                        {"_id": branch_name},
                        {"$set": {f"changes.{name}": changes}, "$inc": {"revision": 1}},
                        session=s,
                    )
                update["schema"] = model.schema_to_doc(parsed)
            check_application_size({**app, **update})
            await self.db[APPLICATIONS].update_one(
                {"_id": name}, {"$set": update, "$inc": {"revision": 1}}, session=s
            )

        _, revision = await self._transact(body)
        return WriteResult(revision)

    async def remove_application(self, name: str) -> WriteResult:
        """Remove an application, its units and versions, and its part of every branch."""

        async def body(s: AsyncClientSession) -> None:
            await self._app(s, name)
            flt = {"$or": [{f"changes.{name}": {"$exists": True}}, {"track_applications": name}]}
            touched = await self.db[BRANCHES].distinct("_id", flt, session=s)
            tracked = await self.db[UNITS].distinct(
                "branch", {"application": name, "branch": {"$ne": None}}, session=s
            )
            for branch in sorted(set(touched) | set(tracked)):
                await self._fence(s, "branch", branch)
            await self.db[UNITS].delete_many({"application": name}, session=s)
            await self.db[VERSIONS].delete_many({"application": name}, session=s)
            await self.db[BRANCHES].update_many(
                flt,
                {
                    "$unset": {f"changes.{name}": ""},
                    "$pull": {"track_applications": name},
                    "$inc": {"revision": 1},
                },
                session=s,
            )
            await self.db[APPLICATIONS].delete_one({"_id": name}, session=s)
            await self._drop_fence(s, "application", name)

        _, revision = await self._transact(body)
        return WriteResult(revision)

    # -- units -------------------------------------------------------------

    @staticmethod
    def _check_count(count: int) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidArgument(f"unit count must be a whole number >= 0, not {count!r}")
        if count > MAX_UNITS_PER_CALL:
            raise InvalidArgument(f"{count} units in one call; the limit is {MAX_UNITS_PER_CALL}")

    @staticmethod
    def _unit_doc(app: Mapping[str, Any], number: int, branch: str | None) -> dict[str, Any]:
        """A new unit of ``app`` (its document): a new incarnation, with its own uid."""
        return {
            "_id": model.unit_name(app["_id"], number),
            "uid": new_uid(),
            "application": app["_id"],
            "application_uid": app.get("uid", ""),
            "number": number,
            "branch": branch,
            "applied": None,
            "revision": 1,
        }

    async def add_units(
        self, application: str, *, count: int = 0, names: Sequence[str] = ()
    ) -> WriteResult:
        """Add ``count`` units (numbering continues) or the named ones; never reuse a number.

        A unit of an application that a branch tracks as a whole tracks that branch.
        """
        self._check_count(count)
        numbers: list[int] = []
        for unit in names:
            app, number = model.parse_unit_name(unit)
            if app != application:
                raise InvalidArgument(f"unit {unit!r} does not belong to {application!r}")
            numbers.append(number)
        if len(set(numbers)) != len(numbers):
            raise InvalidArgument("the same unit name is given twice")
        if count and numbers:
            raise InvalidArgument("give either a count or unit names, not both")
        if not count and not numbers:
            raise InvalidArgument("give a unit count >= 1 or at least one unit name")
        self._check_count(len(numbers))

        async def body(s: AsyncClientSession) -> list[str]:
            app = await self._app(s, application)
            next_unit = int(app["next_unit"])
            if numbers:
                taken = [n for n in numbers if n < next_unit]
                if taken:
                    raise AlreadyExists(
                        f"unit number(s) {taken} of {application!r} are in use or were used "
                        f"before; numbers are never reused: the next free one is {next_unit}"
                    )
                chosen = sorted(numbers)
            else:
                chosen = list(range(next_unit, next_unit + count))
            model.check_unit_numbers(application, chosen[-1:])  # sorted: the highest
            tracker = await self.db[BRANCHES].find_one(
                {"track_applications": application}, {"_id": 1}, session=s
            )
            branch = tracker["_id"] if tracker else None
            if branch is not None:
                # The new units track it: a concurrent abort or commit must conflict.
                await self._fence(s, "branch", branch)
            await self.db[UNITS].insert_many(
                [self._unit_doc(app, n, branch) for n in chosen], session=s
            )
            await self.db[APPLICATIONS].update_one(
                {"_id": application},
                {"$set": {"next_unit": max(chosen) + 1}, "$inc": {"revision": 1}},
                session=s,
            )
            return [model.unit_name(application, n) for n in chosen]

        added, revision = await self._transact(body)
        return WriteResult(revision, units=added)

    async def remove_unit(self, name: str) -> WriteResult:
        async def body(s: AsyncClientSession) -> None:
            unit = await self._unit(s, name)
            await self._fence(s, "application", unit["application"])
            if unit["branch"] is not None:
                await self._fence(s, "branch", unit["branch"])
            await self.db[UNITS].delete_one({"_id": name}, session=s)

        _, revision = await self._transact(body)
        return WriteResult(revision, units=[name])

    # -- master config -----------------------------------------------------

    async def set_config(
        self,
        application: str,
        *,
        set: Mapping[str, Any] | None = None,
        unset: Iterable[str] = (),
        expected_version: int | None = None,
        reason: str = "",
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Change master: a new immutable version and a ``set`` generation.

        A write that changes nothing writes nothing and returns the current version.
        """
        to_set = dict(set or {})
        to_unset = list(unset)
        if not to_set and not to_unset:
            raise InvalidArgument("nothing to change: give keys to set or unset")
        both = sorted(k for k in to_unset if k in to_set)
        if both:
            raise InvalidArgument(f"key(s) {both} are both set and unset in one write")
        meta = self._check_metadata(metadata)
        check_free_text(reason=reason, created_by=created_by, on_behalf_of=on_behalf_of)

        async def body(s: AsyncClientSession) -> tuple[int | None, dict[str, int]]:
            app = await self._app(s, application)
            self._check_expected(app, expected_version)
            schema = schema_of(app)
            values = model.validate_settings(schema, to_set, unset=to_unset)
            old = dict(app["settings"])
            new = {**old, **values}
            for key in to_unset:
                new.pop(key, None)
            if model.diff(old, new).empty:
                return None, {application: int(app["version"])}
            return await self._write_versions(
                s,
                "set",
                {application: new},
                {application: old},
                {application: app},
                branch=None,
                reason=reason,
                created_by=created_by,
                on_behalf_of=on_behalf_of,
                authenticated=authenticated,
                metadata=meta,
            )

        (generation, versions), revision = await self._transact(body)
        return WriteResult(revision, generation=generation, versions=versions)

    @staticmethod
    def _check_expected(app: Mapping[str, Any], expected: int | None) -> None:
        if expected is not None and int(app["version"]) != expected:
            raise VersionMismatch(f"application {app['_id']!r}", expected, int(app["version"]))

    @staticmethod
    def _check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        meta = dict(metadata or {})
        model.coerce_value("metadata", model.OptionSpec(model.ValueType.OBJECT), meta)
        return meta

    # -- branches ----------------------------------------------------------

    async def add_branch(
        self,
        name: str,
        *,
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
    ) -> WriteResult:
        model.validate_branch_name(name)
        check_free_text(created_by=created_by, on_behalf_of=on_behalf_of)
        now = self.clock()

        async def body(s: AsyncClientSession) -> None:
            await self._fence(s, "branch", name)
            if await self.db[BRANCHES].find_one({"_id": name}, {"_id": 1}, session=s):
                raise AlreadyExists(f"branch {name!r} already exists")
            await self.db[BRANCHES].insert_one(
                {
                    "_id": name,
                    "created_by": created_by,
                    "on_behalf_of": on_behalf_of,
                    "authenticated": authenticated,
                    "created_at": now,
                    "track_applications": [],
                    "changes": {},
                    "revision": 1,
                },
                session=s,
            )

        _, revision = await self._transact(body)
        return WriteResult(revision)

    async def track(
        self,
        branch: str,
        *,
        units: Sequence[str] = (),
        applications: Sequence[str] = (),
        count: int = 0,
        application: str | None = None,
    ) -> WriteResult:
        """Make units track ``branch``: named units, whole applications (future units too),
        or ``count`` units of ``application`` (the lowest-numbered free ones, so that
        repeating the call is stable)."""
        for unit in units:
            model.parse_unit_name(unit)
        for app in applications:
            model.validate_app_name(app)
        self._check_count(count)
        if count and application is None:
            raise InvalidArgument("count needs the application to pick units from")
        if not (units or applications or count):
            raise InvalidArgument("give units, applications, or a count of units to track")

        async def body(s: AsyncClientSession) -> list[str]:
            await self._branch(s, branch)
            chosen: list[str] = []
            busy: list[str] = []
            for name in units:
                unit = await self._unit(s, name)
                if unit["branch"] not in (None, branch):
                    busy.append(f"{name} tracks {unit['branch']!r}")
                chosen.append(name)
            for app in applications:
                await self._app(s, app)
                other = await self.db[BRANCHES].find_one(
                    {"track_applications": app, "_id": {"$ne": branch}}, {"_id": 1}, session=s
                )
                if other:
                    busy.append(f"application {app} is tracked by branch {other['_id']!r}")
                async for unit in self.db[UNITS].find({"application": app}, session=s):
                    if unit["branch"] not in (None, branch):
                        busy.append(f"{unit['_id']} tracks {unit['branch']!r}")
                    chosen.append(unit["_id"])
            if count:
                assert application is not None
                await self._app(s, application)
                have = await self.db[UNITS].count_documents(
                    {"application": application, "branch": branch}, session=s
                )
                # limit(0) would mean "no limit" to MongoDB: skip the query instead.
                free = (
                    await self.db[UNITS]
                    .find({"application": application, "branch": None}, session=s)
                    .sort("number", ASCENDING)
                    .limit(count - have)
                    .to_list()
                    if count > have
                    else []
                )
                if have + len(free) < count:
                    raise FailedPrecondition(
                        f"{application!r} has {have + len(free)} unit(s) free to track "
                        f"{branch!r}, fewer than {count}; add units or untrack others first"
                    )
                chosen.extend(u["_id"] for u in free)
            if busy:
                raise FailedPrecondition(
                    "a unit tracks at most one branch: "
                    + "; ".join(busy)
                    + ". Untrack them from their branch first"
                )
            if applications:
                await self.db[BRANCHES].update_one(
                    {"_id": branch},
                    {
                        "$addToSet": {"track_applications": {"$each": list(applications)}},
                        "$inc": {"revision": 1},
                    },
                    session=s,
                )
            fresh = sorted(set(chosen))
            await self.db[UNITS].update_many(
                {"_id": {"$in": fresh}, "branch": None},
                {"$set": {"branch": branch}, "$inc": {"revision": 1}},
                session=s,
            )
            return fresh

        tracked, revision = await self._transact(body)
        return WriteResult(revision, units=tracked)

    async def untrack(
        self, branch: str, *, units: Sequence[str] = (), applications: Sequence[str] = ()
    ) -> WriteResult:
        """Units (or whole applications) stop tracking ``branch`` and see master again."""
        for unit in units:
            model.parse_unit_name(unit)
        if not (units or applications):
            raise InvalidArgument("give units or applications to untrack")

        async def body(s: AsyncClientSession) -> list[str]:
            doc = await self._branch(s, branch)
            names = []
            for name in units:
                unit = await self._unit(s, name)
                if unit["branch"] != branch:
                    raise FailedPrecondition(
                        f"unit {name!r} does not track branch {branch!r}"
                        + (f" (it tracks {unit['branch']!r})" if unit["branch"] else "")
                    )
                app = unit["application"]
                if app in doc["track_applications"] and app not in applications:
                    # Every unit of a wholly tracked application tracks the branch.
                    raise FailedPrecondition(
                        f"branch {branch!r} tracks application {app!r} as a whole, so "
                        f"{name!r} cannot leave it alone; untrack the application {app!r}"
                    )
                names.append(name)
            for app in applications:
                await self._app(s, app)
                if app not in doc["track_applications"]:
                    raise FailedPrecondition(
                        f"branch {branch!r} does not track application {app!r} as a whole"
                    )
                async for unit in self.db[UNITS].find(
                    {"application": app, "branch": branch}, {"_id": 1}, session=s
                ):
                    names.append(unit["_id"])
            if applications:
                await self.db[BRANCHES].update_one(
                    {"_id": branch},
                    {
                        "$pull": {"track_applications": {"$in": list(applications)}},
                        "$inc": {"revision": 1},
                    },
                    session=s,
                )
            await self.db[UNITS].update_many(
                {"_id": {"$in": names}},
                {"$set": {"branch": None}, "$inc": {"revision": 1}},
                session=s,
            )
            return sorted(set(names))

        untracked, revision = await self._transact(body)
        return WriteResult(revision, units=untracked)

    async def set_branch_config(
        self,
        branch: str,
        application: str,
        *,
        set: Mapping[str, Any] | None = None,
        unset: Iterable[str] = (),
    ) -> WriteResult:
        """Stage changes on a branch; the first touch of a key records master's value."""
        to_set = dict(set or {})
        to_unset = list(unset)
        if not to_set and not to_unset:
            raise InvalidArgument("nothing to change: give keys to set or unset")
        both = sorted(k for k in to_unset if k in to_set)
        if both:
            raise InvalidArgument(f"key(s) {both} are both set and unset in one write")

        async def body(s: AsyncClientSession) -> None:
            doc = await self._branch(s, branch)
            app = await self._app(s, application)
            schema = schema_of(app)
            values = model.validate_settings(schema, to_set, unset=to_unset)
            master = app["settings"]
            current = changes_of(doc["changes"].get(application, {}))
            for key, value in values.items():
                current[key] = model.touch(current.get(key), master.get(key, ABSENT), Op.SET, value)
            for key in to_unset:
                current[key] = model.touch(current.get(key), master.get(key, ABSENT), Op.UNSET)
            staged = {k: c.to_doc() for k, c in current.items()}
            check_branch_size({**doc, "changes": {**doc["changes"], application: staged}})
            await self.db[BRANCHES].update_one(
                {"_id": branch},
                {"$set": {f"changes.{application}": staged}, "$inc": {"revision": 1}},
                session=s,
            )

        _, revision = await self._transact(body)
        return WriteResult(revision)

    async def commit_branch(
        self,
        branch: str,
        *,
        force: bool = False,
        require_applied: bool = False,
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
        reason: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Apply a branch to master for everyone, atomically, or raise `Conflict`.

        One transaction: conflict check per key (``force`` = last write wins), master
        updated, one new version per touched application, one generation record, the
        tracking units released, the branch removed. ``require_applied`` first
        checks that every tracking unit reported the branch's config applied and ok.
        """
        meta = self._check_metadata(metadata)
        check_free_text(reason=reason, created_by=created_by, on_behalf_of=on_behalf_of)

        async def body(s: AsyncClientSession) -> tuple[int, dict[str, int], list[str]]:
            doc = await self._branch(s, branch)
            if require_applied:
                await self._check_applied(s, doc)
            apps: dict[str, dict[str, Any]] = {}
            old: dict[str, dict[str, Any]] = {}
            new: dict[str, dict[str, Any]] = {}
            conflicts = []
            for app_name in sorted(doc["changes"]):
                changes = changes_of(doc["changes"][app_name])
                if not changes:
                    continue
                app = await self._app(s, app_name)
                apps[app_name] = app
                old[app_name] = dict(app["settings"])
                conflicts.extend(model.find_conflicts(app_name, old[app_name], changes))
                new[app_name] = model.apply_changes(old[app_name], changes)
            if conflicts and not force:
                raise Conflict(f"branch {branch!r}", conflicts)
            generation, versions = await self._write_versions(
                s,
                "commit",
                new,
                old,
                apps,
                branch=branch,
                reason=reason or f"commit branch {branch}",
                created_by=created_by,
                on_behalf_of=on_behalf_of,
                authenticated=authenticated,
                metadata=meta,
            )
            released = await self._release_units(s, branch)
            await self.db[BRANCHES].delete_one({"_id": branch}, session=s)
            await self._drop_fence(s, "branch", branch)
            return generation, versions, released

        (generation, versions, released), revision = await self._transact(body)
        return WriteResult(revision, generation=generation, versions=versions, units=released)

    async def _check_applied(self, s: AsyncClientSession, branch: Mapping[str, Any]) -> None:
        """Raise `NotApplied` naming each tracking unit whose report is not the branch's hash."""
        hashes: dict[str, str] = {}
        behind = []
        async for unit in self.db[UNITS].find({"branch": branch["_id"]}, session=s):
            app_name = unit["application"]
            if app_name not in hashes:
                app = await self._app(s, app_name)
                hashes[app_name] = model.config_hash(effective_from_docs(app, branch))
            report = unit.get("applied") or {}
            if report.get("hash") != hashes[app_name] or not report.get("ok"):
                behind.append(unit["_id"])
        if behind:
            raise NotApplied(branch["_id"], sorted(behind))

    async def _release_units(self, s: AsyncClientSession, branch: str) -> list[str]:
        names = [
            u["_id"] async for u in self.db[UNITS].find({"branch": branch}, {"_id": 1}, session=s)
        ]
        if names:
            await self.db[UNITS].update_many(
                {"branch": branch},
                {"$set": {"branch": None}, "$inc": {"revision": 1}},
                session=s,
            )
        return sorted(names)

    async def abort_branch(self, branch: str, *, force: bool = False) -> WriteResult:
        """Drop a branch; refused while units track it unless forced (they fall back to master)."""

        async def body(s: AsyncClientSession) -> list[str]:
            await self._branch(s, branch)
            if not force:
                tracking = [
                    u["_id"]
                    async for u in self.db[UNITS].find({"branch": branch}, {"_id": 1}, session=s)
                ]
                if tracking:
                    shown = ", ".join(sorted(tracking)[:20])
                    more = f" and {len(tracking) - 20} more" if len(tracking) > 20 else ""
                    raise FailedPrecondition(
                        f"branch {branch!r} is tracked by {len(tracking)} unit(s): {shown}{more}; "
                        "untrack them, or abort with force to move them back to master"
                    )
            released = await self._release_units(s, branch)
            await self.db[BRANCHES].delete_one({"_id": branch}, session=s)
            await self._drop_fence(s, "branch", branch)
            return released

        released, revision = await self._transact(body)
        return WriteResult(revision, units=released)

    # -- history: rollback, revert, labels ----------------------------------

    async def _version(
        self, s: AsyncClientSession, app: Mapping[str, Any], n: int
    ) -> dict[str, Any]:
        """Version ``n`` of ``app`` (0: the current one)."""
        n = n or int(app["version"])
        doc = await self.db[VERSIONS].find_one({"_id": version_id(app["_id"], n)}, session=s)
        if doc is None:
            pruned = " (or it was pruned by --retain-versions)" if self.retain_versions else ""
            raise NotFound(
                f"application {app['_id']!r} has no version {n}{pruned}; "
                f"its versions run 1..{app['version']}"
            )
        return doc

    @staticmethod
    def _fit_schema(
        app: Mapping[str, Any], settings: Mapping[str, Any], what: str
    ) -> dict[str, Any]:
        """Settings re-validated against the current schema (it may have changed since)."""
        try:
            return model.validate_settings(schema_of(app), settings)
        except InvalidArgument as exc:
            raise FailedPrecondition(
                f"{what} does not fit application {app['_id']!r}'s current schema: {exc.message}"
            ) from exc

    async def rollback(
        self,
        application: str,
        to_version: int,
        *,
        expected_version: int | None = None,
        reason: str = "",
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
    ) -> WriteResult:
        """A new version whose settings are version ``to_version``'s (``rollback`` generation).

        It is written even when master already holds those settings: a rollback is
        an operator's decision worth recording.
        """
        if to_version < 1:
            raise InvalidArgument(
                f"to_version must be a version number (1 or more), not {to_version}"
            )
        check_free_text(reason=reason, created_by=created_by, on_behalf_of=on_behalf_of)

        async def body(s: AsyncClientSession) -> tuple[int, dict[str, int]]:
            app = await self._app(s, application)
            self._check_expected(app, expected_version)
            target = await self._version(s, app, to_version)
            settings = self._fit_schema(app, target["settings"], f"version {to_version}")
            return await self._write_versions(
                s,
                "rollback",
                {application: settings},
                {application: dict(app["settings"])},
                {application: app},
                branch=None,
                reason=reason or f"rollback to version {to_version}",
                created_by=created_by,
                on_behalf_of=on_behalf_of,
                authenticated=authenticated,
                metadata={"rollback_from": int(app["version"]), "rollback_to": to_version},
            )

        (generation, versions), revision = await self._transact(body)
        return WriteResult(revision, generation=generation, versions=versions)

    async def revert_generation(
        self,
        generation: int,
        *,
        force: bool = False,
        reason: str = "",
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
    ) -> WriteResult:
        """Apply the inverse of one generation as a new ``revert`` generation.

        Checked per key like a commit: a key changed since (master no longer holds
        what the generation wrote) is a conflict unless ``force``. Applications
        where the inverse changes nothing get no new version.
        """
        check_free_text(reason=reason, created_by=created_by, on_behalf_of=on_behalf_of)

        async def body(s: AsyncClientSession) -> tuple[int, dict[str, int]]:
            gen = await self.db[GENERATIONS].find_one({"_id": generation}, session=s)
            if gen is None:
                raise NotFound(f"generation {generation} not found")
            apps: dict[str, dict[str, Any]] = {}
            old: dict[str, dict[str, Any]] = {}
            new: dict[str, dict[str, Any]] = {}
            conflicts = []
            for app_name in sorted(gen["changes"]):
                inverse = model.inverse_changes(gen["changes"][app_name])
                if not inverse:
                    continue
                await self._fence(s, "application", app_name)
                app = await self.db[APPLICATIONS].find_one({"_id": app_name}, session=s)
                if app is None:
                    raise FailedPrecondition(
                        f"generation {generation} changed application {app_name!r}, "
                        "which has been removed since; it cannot be reverted"
                    )
                before = dict(app["settings"])
                conflicts.extend(model.find_conflicts(app_name, before, inverse))
                after = model.apply_changes(before, inverse)
                if model.diff(before, after).empty:
                    continue
                apps[app_name], old[app_name] = app, before
                new[app_name] = self._fit_schema(
                    app, after, f"the revert of generation {generation}"
                )
            if conflicts and not force:
                raise Conflict(f"the revert of generation {generation}", conflicts)
            if not new:
                raise FailedPrecondition(
                    f"nothing to revert: master already holds the values from before "
                    f"generation {generation}"
                )
            return await self._write_versions(
                s,
                "revert",
                new,
                old,
                apps,
                branch=None,
                reason=reason or f"revert generation {generation}",
                created_by=created_by,
                on_behalf_of=on_behalf_of,
                authenticated=authenticated,
                metadata={"revert_of": generation},
            )

        (gen_id, versions), revision = await self._transact(body)
        return WriteResult(revision, generation=gen_id, versions=versions)

    async def tag_version(self, application: str, version: int, label: str) -> LabelResult:
        """Put a semantic label on a version; labels are unique per application."""
        normalized = str(model.SemVer.parse(label))

        async def body(s: AsyncClientSession) -> int:
            app = await self._app(s, application)
            return await self._put_label(s, app, version, normalized)

        tagged, revision = await self._transact(body)
        return LabelResult(application, tagged, normalized, revision)

    async def bump_version(self, application: str, part: str, *, version: int = 0) -> LabelResult:
        """Label a version (default: the current) one ``part`` above the highest label."""
        try:
            bump = model.Bump(part)
        except ValueError:
            raise InvalidArgument(
                f"bump part must be major, minor or patch, not {part!r}"
            ) from None

        async def body(s: AsyncClientSession) -> tuple[int, str]:
            app = await self._app(s, application)
            labels = [
                tag
                async for doc in self.db[VERSIONS].find(
                    {"application": application, "tags.0": {"$exists": True}},
                    {"tags": 1},
                    session=s,
                )
                for tag in doc["tags"]
            ]
            label = str(model.next_label(labels, bump))
            return await self._put_label(s, app, version, label), label

        (tagged, label), revision = await self._transact(body)
        return LabelResult(application, tagged, label, revision)

    async def _put_label(
        self, s: AsyncClientSession, app: Mapping[str, Any], version: int, label: str
    ) -> int:
        doc = await self._version(s, app, version)
        holder = await self.db[VERSIONS].find_one(
            {"application": app["_id"], "tags": label}, {"version": 1}, session=s
        )
        if holder is not None and holder["version"] != doc["version"]:
            raise AlreadyExists(
                f"label {label} is already on version {holder['version']} of "
                f"application {app['_id']!r}; labels are unique per application"
            )
        if holder is None:
            await self.db[VERSIONS].update_one(
                {"_id": doc["_id"]},
                {"$push": {"tags": label}, "$inc": {"revision": 1}},
                session=s,
            )
        return int(doc["version"])

    # -- tokens --------------------------------------------------------------

    async def create_token(self, doc: Mapping[str, Any]) -> WriteResult:
        """Store a minted token (`security.auth.mint`): its salted hash, never its secret."""

        async def body(s: AsyncClientSession) -> None:
            await self.db[TOKENS].insert_one(dict(doc), session=s)

        _, revision = await self._transact(body)
        return WriteResult(revision)

    async def revoke_token(self, token_id: str) -> WriteResult:
        """Mark a token revoked (kept for the record); revoking twice is harmless."""
        now = self.clock()

        async def body(s: AsyncClientSession) -> None:
            doc = await self.db[TOKENS].find_one({"_id": token_id}, {"revoked_at": 1}, session=s)
            if doc is None:
                raise NotFound(f"token {token_id!r} not found (see `genconf token list`)")
            if doc.get("revoked_at") is None:
                await self.db[TOKENS].update_one(
                    {"_id": token_id},
                    {"$set": {"revoked_at": now}, "$inc": {"revision": 1}},
                    session=s,
                )

        _, revision = await self._transact(body)
        return WriteResult(revision)

    # -- direct reads (recomputation checks) and agent reports --------------

    async def load(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Every application, unit and branch document, by collection then _id."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        try:
            for coll in (APPLICATIONS, UNITS, BRANCHES):
                out[coll] = {d["_id"]: d async for d in self.db[coll].find({})}
        except ConnectionFailure as exc:
            raise Unavailable(f"MongoDB is unreachable: {exc}") from exc
        return out

    async def unit_uid(self, name: str) -> str | None:
        """A unit's uid straight from MongoDB (None: no such unit; "" before uids)."""
        try:
            doc = await self.db[UNITS].find_one({"_id": name}, {"uid": 1})
        except ConnectionFailure as exc:
            raise Unavailable(f"MongoDB is unreachable: {exc}") from exc
        return None if doc is None else str(doc.get("uid", ""))

    async def set_applied(
        self,
        unit: str,
        *,
        hash: str,
        ok: bool,
        message: str = "",
    ) -> WriteResult:
        """Record an agent's latest applied report on its unit."""
        report = {"hash": hash, "ok": ok, "message": message[:4096], "at": self.clock()}

        async def body(s: AsyncClientSession) -> None:
            await self._unit(s, unit)
            await self.db[UNITS].update_one(
                {"_id": unit}, {"$set": {"applied": report}, "$inc": {"revision": 1}}, session=s
            )

        _, revision = await self._transact(body)
        return WriteResult(revision, units=[unit])

    async def observer_key(self) -> bytes:
        """The server secret that keys the config hashes observers see (see
        `genconf.security.redact`): made once, by whichever replica asks first, and then
        the same on every replica and across restarts, so an observer's hashes agree
        wherever it reads them. Written with majority so a failover cannot lose it."""
        keys = self.db.get_collection(KEYS, write_concern=WriteConcern("majority"))
        try:
            doc = await keys.find_one({"_id": OBSERVER_KEY})
            if doc is None:
                try:
                    await keys.insert_one(
                        {
                            "_id": OBSERVER_KEY,
                            "key": Binary(secrets.token_bytes(32)),
                            "created_at": self.clock(),
                        }
                    )
                except DuplicateKeyError:
                    pass  # another replica made it first: everyone uses that one
                doc = await keys.find_one({"_id": OBSERVER_KEY})
        except ConnectionFailure as exc:
            raise Unavailable(f"MongoDB is unreachable: {exc}") from exc
        if doc is None or len(bytes(doc["key"])) < 32:
            raise GenconfError(f"the {KEYS} collection holds no usable {OBSERVER_KEY!r} key")
        return bytes(doc["key"])


def effective_from_docs(app: Mapping[str, Any], branch: Mapping[str, Any] | None) -> dict[str, Any]:
    """A unit's effective config straight from documents (for recomputation checks)."""
    changes = changes_of(branch["changes"].get(app["_id"], {})) if branch else None
    return model.effective_config(schema_of(app), app["settings"], changes)


def effective_by_unit(
    apps: Mapping[str, Mapping[str, Any]],
    branches: Mapping[str, Mapping[str, Any]],
    units: Iterable[Mapping[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Each unit document's effective config, from its application and branch documents
    (by ``_id``): what the cache and every agent must agree with."""
    return {
        unit["_id"]: effective_from_docs(
            apps[unit["application"]], branches.get(unit.get("branch") or "")
        )
        for unit in units
    }
