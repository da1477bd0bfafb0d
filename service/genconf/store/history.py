"""History reads: versions and generations, straight from MongoDB.

Versions and generations are immutable (only a version's labels grow), so they
need no cache: a read from the primary sees every acknowledged write, and the
model cache stays bounded by the live model instead of growing with history.
Writes to history (rollback, revert, labels) live in `genconf.store.history_writes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from genconf.domain import config, diff, names, semver, values
from genconf.domain.schema import OptionSpec, require_key
from genconf.errors import InvalidArgument, NotFound
from genconf.store.documents import APPLICATIONS, GENERATIONS, VERSIONS, schema_of, version_id
from genconf.store.mongo import mongo_errors

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 1000


def page_size(limit: int) -> int:
    """``limit`` as documented: 0 means the default, and at most MAX_LIMIT."""
    if limit < 0:
        raise InvalidArgument(f"limit must not be negative, not {limit}")
    if limit > MAX_LIMIT:
        raise InvalidArgument(
            f"limit must be at most {MAX_LIMIT}, not {limit}; page back with before"
            " (the last entry of the previous page)"
        )
    return limit or DEFAULT_LIMIT


def between(since: int, before: int) -> dict[str, int]:
    """The query bounds of a page: after ``since`` and, unless 0, before ``before``
    (both exclusive). Pages come newest first, so ``before`` pages back in time."""
    if since < 0 or before < 0:
        raise InvalidArgument(f"since and before must not be negative, not {since} and {before}")
    bounds = {"$gt": since}
    if before:
        bounds["$lt"] = before
    return bounds


@dataclass(frozen=True)
class Page:
    """Documents newest first; ``more`` when the limit cut the list short."""

    items: list[dict[str, Any]]
    more: bool


@dataclass(frozen=True)
class Latest:
    version: int  # the current version
    label: str  # the highest semantic label ("" when none)
    label_version: int  # the version carrying it (0 when none)


@dataclass(frozen=True)
class KeyHistoryEntry:
    value: config.KeyValueAt
    version_doc: Mapping[str, Any]


class History:
    """Read-only queries over ``versions`` and ``generations``."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db

    async def application(self, name: str) -> dict[str, Any]:
        names.validate_app_name(name)
        doc = await self._find_one(APPLICATIONS, {"_id": name})
        if doc is None:
            raise NotFound(f"application {name!r} not found")
        return doc

    async def _find_one(self, collection: str, query: Mapping[str, Any]) -> dict[str, Any] | None:
        with mongo_errors():
            return await self.db[collection].find_one(query)

    async def _find(
        self,
        collection: str,
        query: Mapping[str, Any],
        *,
        sort: list[tuple[str, int]],
        limit: int = 0,
        projection: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        with mongo_errors():
            cursor = self.db[collection].find(query, projection, sort=sort, limit=limit)
            return [doc async for doc in cursor]

    # -- versions ------------------------------------------------------------

    async def list_versions(
        self, application: str, *, limit: int = 0, since_version: int = 0, before_version: int = 0
    ) -> tuple[Page, int]:
        """Versions newer than ``since_version`` (and older than ``before_version``),
        newest first; and the current version."""
        size = page_size(limit)
        bounds = between(since_version, before_version)
        app = await self.application(application)
        docs = await self._find(
            VERSIONS,
            {"application": application, "version": bounds},
            sort=[("version", DESCENDING)],
            limit=size + 1,
        )
        return Page(docs[:size], len(docs) > size), int(app["version"])

    async def get_version(self, application: str, version: int = 0) -> dict[str, Any]:
        """Version ``version`` (0: the current one)."""
        return await self._version_of(await self.application(application), version)

    async def _version_of(self, app: Mapping[str, Any], version: int) -> dict[str, Any]:
        number = version or int(app["version"])
        doc = await self._find_one(VERSIONS, {"_id": version_id(app["_id"], number)})
        if doc is None:
            raise NotFound(
                f"application {app['_id']!r} has no version {number} "
                f"(its versions run up to {app['version']}; older ones may have been pruned)"
            )
        return doc

    async def latest(self, application: str) -> Latest:
        app = await self.application(application)
        labelled = await self._find(
            VERSIONS,
            {"application": application, "tags.0": {"$exists": True}},
            sort=[("version", ASCENDING)],
            projection={"version": 1, "tags": 1},
        )
        best: tuple[semver.SemVer, int] | None = None
        for doc in labelled:
            for tag in doc["tags"]:
                label = semver.SemVer.parse(tag)
                if best is None or best[0] < label:
                    best = (label, int(doc["version"]))
        if best is None:
            return Latest(int(app["version"]), "", 0)
        return Latest(int(app["version"]), str(best[0]), best[1])

    async def diff_versions(
        self, application: str, from_version: int, to_version: int = 0
    ) -> tuple[int, int, diff.Diff, list[str]]:
        """Effective config of one version against another's, under the current schema;
        and the keys secret when either was written (redacted for observers)."""
        if from_version < 1:
            raise InvalidArgument(f"from_version must be 1 or more, not {from_version}")
        app = await self.application(application)
        schema = schema_of(app)
        before = await self._version_of(app, from_version)
        after = await self._version_of(app, to_version)
        return (
            int(before["version"]),
            int(after["version"]),
            diff.diff(
                config.effective_config(schema, before["settings"]),
                config.effective_config(schema, after["settings"]),
            ),
            sorted({*before.get("secret_keys", ()), *after.get("secret_keys", ())}),
        )

    async def key_history(
        self, application: str, key: str, *, limit: int = 0, before_version: int = 0
    ) -> tuple[list[KeyHistoryEntry], bool]:
        """Each version where ``key``'s effective value changed, newest first (only
        those older than ``before_version`` when it is not 0).

        Values are judged under the current schema's default for the key; the
        oldest version kept opens the history.

        A page costs the versions it spans, not the application's whole history:
        versions are read newest first, in growing batches, only until the page is
        full. A version opens an entry when the next older one kept holds another
        value; that older one then opens a later entry of its own (the oldest
        version kept always does), which is how ``more`` is known without reading
        on. So a page reads one version past its oldest entry, and all of an
        unchanged stretch: nothing in a version says whether the key changed there.
        """
        size = page_size(limit)
        # Only checked here: whether a version changed the key depends on the
        # versions before it, never on later ones, so the bound is a plain filter.
        between(0, before_version)
        app = await self.application(application)
        spec = require_key(schema_of(app), key)
        projection = {f"settings.{key}": 1, **{f: 1 for f in _VERSION_FIELDS}}
        found: list[KeyHistoryEntry] = []
        # The oldest version read so far of the newest stretch not yet closed.
        opening: KeyHistoryEntry | None = None
        bound = before_version
        batch = size + 1
        while True:
            query: dict[str, Any] = {"application": application}
            if bound:
                query["version"] = {"$lt": bound}
            docs = await self._find(
                VERSIONS, query, sort=[("version", DESCENDING)], limit=batch, projection=projection
            )
            for doc in docs:
                at = _key_value_at(spec, doc, key)
                if opening is not None and not values.values_equal(opening.value.value, at.value):
                    found.append(opening)
                    if len(found) == size:
                        return found, True  # ``doc`` opens another entry: there is more
                opening = KeyHistoryEntry(at, doc)
            if len(docs) < batch:  # no older version: the oldest kept opens its stretch
                if opening is not None:
                    found.append(opening)
                return found, False
            bound = int(docs[-1]["version"])
            batch = min(batch * 2, _MAX_BATCH)

    # -- generations -----------------------------------------------------------

    async def list_generations(
        self, *, limit: int = 0, since: int = 0, before: int = 0, application: str = ""
    ) -> Page:
        """Generations with an id above ``since`` (and below ``before``), newest first
        (only ``application``'s)."""
        size = page_size(limit)
        query: dict[str, Any] = {"_id": between(since, before)}
        if application:
            names.validate_app_name(application)
            query[f"versions.{application}"] = {"$exists": True}
        docs = await self._find(GENERATIONS, query, sort=[("_id", DESCENDING)], limit=size + 1)
        return Page(docs[:size], len(docs) > size)

    async def get_generation(self, generation: int) -> dict[str, Any]:
        doc = await self._find_one(GENERATIONS, {"_id": generation})
        if doc is None:
            raise NotFound(f"generation {generation} not found")
        return doc


# Versions read per query at most while walking a key's history.
_MAX_BATCH: Final = 1000


def _key_value_at(spec: OptionSpec, doc: Mapping[str, Any], key: str) -> config.KeyValueAt:
    """The key's effective value in one version (as `config.key_history` judges it)."""
    settings = doc.get("settings", {})
    is_default = key not in settings
    return config.KeyValueAt(
        int(doc["version"]), spec.default if is_default else settings[key], is_default
    )


_VERSION_FIELDS: Final = (
    "application",
    "version",
    "timestamp",
    "reason",
    "created_by",
    "generation",
    "secret_keys",
)
