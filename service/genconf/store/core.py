"""The store's core: the database it owns, its transactions, and what every write shares.

The per-concern writes (`genconf.store.applications`, `.master`, `.branches`,
`.history_writes`, `.tokens`, `.reports`) are mixins over `StoreCore`; the
`Store` (`genconf.store.store`) is their union. Writes never touch the cache: the
multiwatcher sees them on the change stream.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from genconf.domain import names
from genconf.domain.authorship import Authorship
from genconf.errors import AlreadyExists, NotFound
from genconf.store import limits, mongo
from genconf.store.checks import check_application_size, check_retention
from genconf.store.documents import (
    APPLICATIONS,
    BRANCHES,
    GENERATIONS,
    UNITS,
    VERSIONS,
    secret_keys,
    settings_changes,
    version_doc,
)

Clock = Callable[[], dt.datetime]
T = TypeVar("T")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class LabelResult:
    """A semantic label now on ``version``, and the revision of the write that put it there."""

    application: str
    version: int
    label: str
    revision: int


class StoreCore:
    """The database, the clock, retention, and the transaction plumbing the writes share."""

    def __init__(
        self,
        client: AsyncMongoClient[dict[str, Any]],
        database: str = "genconf",
        *,
        clock: Clock = utcnow,
        retain_versions: int | None = None,
    ) -> None:
        check_retention(retain_versions)
        self.client = client
        self.db: AsyncDatabase[dict[str, Any]] = client[database]
        self.clock = clock
        # None: keep every version. N: keep the newest N per application, and
        # every labelled one.
        self.retain_versions = retain_versions
        self._generations = mongo.GenerationCounter(self.db)

    @classmethod
    def connect(cls, uri: str, database: str = "genconf", **kwargs: Any) -> Self:
        check_retention(kwargs.get("retain_versions"))  # before a client exists to leak
        return cls(mongo.connect(uri), database, **kwargs)

    async def aclose(self) -> None:
        await self.client.close()

    async def ensure_schema(self) -> None:
        """Create the collections and indexes that are missing (`mongo.ensure_schema`)."""
        await mongo.ensure_schema(self.db)

    # -- transaction plumbing ---------------------------------------------

    async def _transact(self, body: Callable[[AsyncClientSession], Awaitable[T]]) -> tuple[T, int]:
        """Run ``body`` in a transaction; return its result and the commit's revision."""
        return await mongo.transact(self.client, body)

    async def _fence(self, s: AsyncClientSession, kind: str, name: str) -> None:
        await mongo.fence(self.db, s, kind, name)

    async def _drop_fence(self, s: AsyncClientSession, kind: str, name: str) -> None:
        await mongo.drop_fence(self.db, s, kind, name)

    async def _fenced(
        self, s: AsyncClientSession, kind: str, collection: str, name: str, missing: str
    ) -> dict[str, Any]:
        """The document of an application or branch, read under its fence."""
        await self._fence(s, kind, name)
        doc = await self.db[collection].find_one({"_id": name}, session=s)
        if doc is None:
            raise NotFound(missing)
        return doc

    async def _insert_new(
        self, s: AsyncClientSession, kind: str, collection: str, doc: Mapping[str, Any]
    ) -> None:
        """Insert the document of a new application or branch, under its fence."""
        name = doc["_id"]
        await self._fence(s, kind, name)
        if await self.db[collection].find_one({"_id": name}, {"_id": 1}, session=s):
            raise AlreadyExists(f"{kind} {name!r} already exists")
        await self.db[collection].insert_one(dict(doc), session=s)

    async def _app(self, s: AsyncClientSession, name: str) -> dict[str, Any]:
        names.validate_app_name(name)
        return await self._fenced(
            s, "application", APPLICATIONS, name, f"application {name!r} not found"
        )

    async def _branch(self, s: AsyncClientSession, name: str) -> dict[str, Any]:
        names.validate_branch_name(name)
        return await self._fenced(
            s,
            "branch",
            BRANCHES,
            name,
            f"branch {name!r} not found (it may have been committed or aborted)",
        )

    async def _unit(self, s: AsyncClientSession, name: str) -> dict[str, Any]:
        names.parse_unit_name(name)
        doc = await self.db[UNITS].find_one({"_id": name}, session=s)
        if doc is None:
            raise NotFound(f"unit {name!r} not found")
        return doc

    # -- versions: every change to master -----------------------------------

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
        author: Authorship,
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
            changes[name] = settings_changes(old_settings[name], settings)
        record = {
            "kind": kind,
            "branch": branch,
            "changes": changes,
            "secret_keys": {name: secret_keys(apps[name]) for name in new_settings},
            **author.fields(),
            "created_at": now,
            "reason": reason,
            "versions": versions,
            "application_uids": {name: apps[name].get("uid", "") for name in new_settings},
            "revision": 1,
        }
        limits.check_document(
            f"the {kind} generation (every changed key's old and new value)",
            record,
            limits.MAX_GENERATION_BYTES,
            "Change fewer applications or keys at once.",
        )
        generation = await self._generations.next()
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
                version_doc(
                    name,
                    version,
                    settings,
                    previous_version=int(app["version"]),
                    generation=generation,
                    secret=record["secret_keys"][name],
                    timestamp=now,
                    reason=reason,
                    author=author,
                    metadata=metadata,
                ),
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
