"""History reads: versions and generations, straight from MongoDB.

Versions and generations are immutable (only a version's labels grow), so they
need no cache: a read from the primary sees every acknowledged write, and the
model cache stays bounded by the live model instead of growing with history.
Writes to history (rollback, revert, labels) live in `genconf.store.history_writes`.

A request names a version by number (0: the current one) or by a semantic label
it carries (``1.4.0``, ``v1.4.0``), never both: `version_ref` checks how it is
named and `find_version` finds it, for the reads here and inside the writes'
transactions alike, so every call says the same thing when it is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
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


# -- naming a version ------------------------------------------------------------------

VersionRef = int | semver.SemVer
"""A version as a request names it: its number (0: the current one) or a label."""


def version_ref(
    number: int, label: str, *, fields: tuple[str, str] = ("version", "label")
) -> VersionRef:
    """How a request names a version, checked before anything is read: a number or
    a well-formed label, not both. ``fields`` name the two request fields."""
    number_field, label_field = fields
    if label and number:
        raise InvalidArgument(
            f"{number_field} {number} and {label_field} {label!r} both name a version; "
            "give one of them"
        )
    if label:
        return semver.SemVer.parse(label)
    if number < 0:
        raise InvalidArgument(
            f"{number_field} must be a version number (1 or more; 0: the current one), not {number}"
        )
    return number


async def find_version(
    db: AsyncDatabase[dict[str, Any]],
    app: Mapping[str, Any],
    ref: VersionRef,
    session: AsyncClientSession | None = None,
) -> dict[str, Any]:
    """The version ``ref`` names (`version_ref`) of application document ``app``;
    `NotFound` naming it and what the application does have."""
    name = app["_id"]
    if isinstance(ref, int):
        ref = ref or int(app["version"])
        query: dict[str, Any] = {"_id": version_id(name, ref)}
    else:
        query = {"application": name, "tags": str(ref)}
    with mongo_errors():
        doc = await db[VERSIONS].find_one(query, session=session)
        if doc is not None:
            return doc
        hint = await _missing_hint(db, app, ref, session)
    raise NotFound(f"version {ref} not found for application {name} ({hint})")


async def _missing_hint(
    db: AsyncDatabase[dict[str, Any]],
    app: Mapping[str, Any],
    ref: VersionRef,
    session: AsyncClientSession | None,
) -> str:
    """What the application has instead of the version asked for."""
    name, current = app["_id"], int(app["version"])
    if isinstance(ref, int):
        runs = f"its versions run 1..{current}"
        if ref <= current:  # it was written, so --retain-versions pruned it
            return f"{runs}; version {ref} was pruned: the server keeps the newest and the labelled"
        return runs
    labels = await labelled_versions(db, name, session)
    top = semver.highest(label for _, label in labels)
    if top is None:
        return "it has no labels yet"
    where = next(n for n, label in labels if label == str(top))
    return f"its highest label is {top}, on version {where}"


async def labelled_versions(
    db: AsyncDatabase[dict[str, Any]], application: str, session: AsyncClientSession | None = None
) -> list[tuple[int, str]]:
    """Every (version, label) pair of ``application``, oldest version first."""
    cursor = db[VERSIONS].find(
        {"application": application, "tags.0": {"$exists": True}},
        {"version": 1, "tags": 1},
        sort=[("version", ASCENDING)],
        session=session,
    )
    return [(int(doc["version"]), tag) async for doc in cursor for tag in doc["tags"]]


def top_label(doc: Mapping[str, Any]) -> str:
    """The highest label on one version document ("" when it has none)."""
    top = semver.highest(doc.get("tags", ()))
    return "" if top is None else str(top)


@dataclass(frozen=True)
class VersionDiff:
    """One version's effective config against another's, and how a person reads it."""

    application: str
    from_version: int
    to_version: int
    from_label: str  # the highest label on each side ("" when none)
    to_label: str
    entries: diff.Diff
    secret_keys: list[str]  # secret when either version was written (observers: redacted)

    @property
    def summary(self) -> str:
        """``web 1.0.0 -> 1.1.0: 2 changed, 1 added, 0 removed``; a side without a
        label is named ``version N``."""
        before = self.from_label or f"version {self.from_version}"
        after = self.to_label or f"version {self.to_version}"
        d = self.entries
        return (
            f"{self.application} {before} -> {after}: {len(d.changed)} changed, "
            f"{len(d.added)} added, {len(d.removed)} removed"
        )


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

    async def get_version(
        self, application: str, version: int = 0, *, label: str = ""
    ) -> dict[str, Any]:
        """The version numbered ``version`` (0: the current one) or labelled ``label``."""
        ref = version_ref(version, label)
        return await self.resolve(await self.application(application), ref)

    async def resolve(self, app: Mapping[str, Any], ref: VersionRef) -> dict[str, Any]:
        """The version document ``ref`` names (`find_version`)."""
        return await find_version(self.db, app, ref)

    async def latest(self, application: str) -> Latest:
        app = await self.application(application)
        with mongo_errors():
            labelled = await labelled_versions(self.db, application)
        top = semver.highest(label for _, label in labelled)
        if top is None:
            return Latest(int(app["version"]), "", 0)
        return Latest(
            int(app["version"]), str(top), next(n for n, lbl in labelled if lbl == str(top))
        )

    async def diff_versions(
        self,
        application: str,
        from_version: int = 0,
        to_version: int = 0,
        *,
        from_label: str = "",
        to_label: str = "",
    ) -> VersionDiff:
        """Effective config of one version against another's (``to``: by default the
        current one), under the current schema; and the keys secret when either was
        written (redacted for observers)."""
        if not from_label and from_version < 1:
            raise InvalidArgument(
                f"from_version must be 1 or more, not {from_version} (or name it by from_label)"
            )
        start = version_ref(from_version, from_label, fields=("from_version", "from_label"))
        end = version_ref(to_version, to_label, fields=("to_version", "to_label"))
        app = await self.application(application)
        schema = schema_of(app)
        before = await self.resolve(app, start)
        after = await self.resolve(app, end)
        return VersionDiff(
            application,
            int(before["version"]),
            int(after["version"]),
            top_label(before),
            top_label(after),
            diff.diff(
                config.effective_config(schema, before["settings"]),
                config.effective_config(schema, after["settings"]),
            ),
            sorted({*before.get("secret_keys", ()), *after.get("secret_keys", ())}),
        )

    async def key_history(
        self,
        application: str,
        key: str,
        *,
        limit: int = 0,
        before_version: int = 0,
        before_label: str = "",
    ) -> tuple[list[KeyHistoryEntry], bool]:
        """Each version where ``key``'s effective value changed, newest first (only
        those older than ``before_version``, or the version labelled ``before_label``,
        when one is given).

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
        bound_ref = version_ref(
            before_version, before_label, fields=("before_version", "before_label")
        )
        app = await self.application(application)
        spec = require_key(schema_of(app), key)
        bound = before_version
        if isinstance(bound_ref, semver.SemVer):
            bound = int((await self.resolve(app, bound_ref))["version"])
        projection = {f"settings.{key}": 1, **{f: 1 for f in _VERSION_FIELDS}}
        found: list[KeyHistoryEntry] = []
        # The oldest version read so far of the newest stretch not yet closed.
        opening: KeyHistoryEntry | None = None
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
