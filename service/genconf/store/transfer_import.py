"""Import: records of `genconf.domain.transfer` into this model, checked in full
before anything is written, then written in a few transactions.

1. Stage. Each record is validated on its own as it arrives (the domain's models,
   then the store's size and text limits) and put, as the document it will become,
   into a staging collection of its own (``transfer_import_<time>_<hex>``, never
   watched, dropped when the import ends however it ends; one a crash left behind
   is dropped by the next import a day later). So an endless or huge stream never
   sits in memory: the importer holds one record, a batch of staged documents,
   and per application its name, uid and numbers.
2. Check, over the staging collection: the stream was whole (header first, end
   record last, its counts met), no record twice, every reference inside the
   import (a unit's application and branch, a version's application and
   generation, a branch's applications, the target's own rules: wholly tracked
   applications, labels growing with versions, branch values fitting the schema),
   then every collision with what the target holds: application, unit, version
   and branch names, and generation ids unless they are renumbered. Any problem
   refuses the import, naming every one, with nothing written.
3. Write. The generation counter is raised above every imported id first, so the
   next write takes a fresh one. Applications linked by a generation or a branch
   (directly or through others) are written together, in one transaction each
   group, with their units, versions, generations and branches; generations and
   branches that touch no imported application go in a last transaction. A
   group whose history (versions and generations) is too large for one
   transaction (`MAX_HISTORY_DOCS`, `MAX_HISTORY_CHARS`) has it written first, in
   batches: versions are invisible until their application exists, generations
   are immutable records (those of removed applications stay too); if the
   group's transaction then fails, that history is deleted again. Each committed
   transaction is reported as it commits; a failure names what was committed
   before it (nothing of the failing group is).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

import anyio
from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure, PyMongoError

from genconf.domain import schema as schemas
from genconf.domain import transfer as fmt
from genconf.domain.authorship import Authorship
from genconf.domain.transfer import Kind
from genconf.errors import (
    AlreadyExists,
    FailedPrecondition,
    GenconfError,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from genconf.store import limits
from genconf.store.checks import (
    check_application_size,
    check_branch_size,
    check_free_text,
    check_metadata,
    parse_bounded_schema,
)
from genconf.store.core import StoreCore
from genconf.store.documents import (
    APPLICATIONS,
    BRANCHES,
    COUNTERS,
    GENERATIONS,
    UNITS,
    VERSIONS,
    version_id,
)
from genconf.store.mongo import mongo_errors

STAGING_PREFIX: Final = "transfer_import_"
STALE_STAGING_SECONDS: Final = 86_400
BATCH_DOCS = 500  # staged or written per round trip
BATCH_CHARS: Final = 8 * 1024 * 1024  # of record text staged per round trip
# A group's history (versions and generations) larger than this is written ahead of
# its transaction, in batches: one transaction must stay within MongoDB's
# transactionLifetimeLimitSeconds and its storage engine cache. Tests lower them.
MAX_HISTORY_DOCS = 5000
MAX_HISTORY_CHARS = 8 * 1024 * 1024
SHOWN: Final = 100  # names of one kind a collision message lists
SHOWN_PROBLEMS: Final = 20
TARGET: Final = {
    Kind.APPLICATION: APPLICATIONS,
    Kind.UNIT: UNITS,
    Kind.VERSION: VERSIONS,
    Kind.BRANCH: BRANCHES,
    Kind.GENERATION: GENERATIONS,
}
Doc = dict[str, Any]


@dataclass(frozen=True)
class ImportStep:
    """What one committed transaction wrote (``done``: the whole import, in total)."""

    applications: tuple[str, ...] = ()
    branches: tuple[str, ...] = ()
    units: int = 0
    versions: int = 0
    generations: tuple[tuple[int, int], ...] = ()  # their ids, as runs (first, last)
    revision: int = 0
    done: bool = False
    records: int = 0
    renumbered: tuple[int, int] | None = None  # done: the new ids, first and last

    def describe(self) -> str:
        parts = []
        if self.applications:
            parts.append("applications " + ", ".join(self.applications))
        if self.branches:
            parts.append("branches " + ", ".join(self.branches))
        parts.append(f"{self.units} unit(s), {self.versions} version(s)")
        if self.generations:
            parts.append("generations " + ", ".join(_run(*r) for r in self.generations))
        return "; ".join(p for p in parts if p)

    @property
    def generation_count(self) -> int:
        return sum(last - first + 1 for first, last in self.generations)


def _run(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def ranges(ids: Iterable[int]) -> str:
    """``1-4, 7, 9-10``: ids as runs."""
    runs = Runs()
    for n in sorted(ids):
        runs.add(n)
    return ", ".join(_run(*r) for r in runs.runs)


def _shown(items: list[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


class Problems:
    """Problems found by the checks, raised together (the first `SHOWN_PROBLEMS`)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        self.items.append(text)

    def raise_any(self, what: str) -> None:
        if not self.items:
            return
        shown = self.items[:SHOWN_PROBLEMS]
        more = len(self.items) - len(shown)
        raise InvalidArgument(
            f"{what}: " + "; ".join(shown) + (f"; and {more} more" if more else "")
        )


def _at(number: int, record: fmt.AnyRecord) -> str:
    return f"record {number} ({fmt.describe(record.model_dump(by_alias=True))})"


def staged_doc(number: int, record: fmt.BodyRecord) -> Doc:
    """The staging document of a validated record: where it will be written, what
    the checks look it up by, and the target document itself (``doc``). The store's
    own limits (sizes, text) are checked here, naming the record."""
    try:
        return _staged(number, record)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{_at(number, record)}: {exc.message}") from None


def _staged(number: int, r: fmt.BodyRecord) -> Doc:
    base: Doc = {"_id": number, "kind": fmt.kind_of(r).value}
    if isinstance(r, fmt.ApplicationRecord):
        limits.check_text("charm", r.charm, limits.MAX_NAME_CHARS)
        parse_bounded_schema(r.schema_)
        doc = {
            "_id": r.name,
            "uid": r.uid,
            "charm": r.charm,
            "schema": r.schema_,
            "settings": r.settings,
            "version": r.version,
            "next_unit": r.next_unit,
            "revision": 1,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
        }
        check_application_size(doc)
        return {**base, "name": r.name, "app": r.name, "uid": r.uid, "num": r.version,
                "next": r.next_unit, "doc": doc}  # fmt: skip
    if isinstance(r, fmt.UnitRecord):
        doc = {
            "_id": r.name,
            "uid": r.uid,
            "application": r.application,
            "application_uid": r.application_uid,
            "number": r.number,
            "branch": r.branch,
            "applied": None,
            "revision": 1,
        }
        if r.labels:
            doc["labels"] = dict(r.labels)
        return {**base, "name": r.name, "app": r.application, "num": r.number,
                "branch": r.branch, "doc": doc}  # fmt: skip
    if isinstance(r, fmt.VersionRecord):
        author = Authorship(r.created_by, r.on_behalf_of, r.authenticated)
        check_free_text(author, r.reason)
        check_metadata(r.metadata)
        limits.check_document(
            "the version's settings", {"settings": r.settings}, limits.MAX_APPLICATION_BYTES, ""
        )
        doc = {
            "_id": version_id(r.application, r.version),
            "application": r.application,
            "version": r.version,
            "settings": r.settings,
            "timestamp": r.timestamp,
            "reason": r.reason,
            **author.fields(),
            "metadata": r.metadata,
            "previous_version": r.previous_version,
            "generation": r.generation,
            "tags": r.labels,
            "secret_keys": r.secret_keys,
            "revision": 1,
        }
        return {**base, "name": doc["_id"], "app": r.application, "num": r.version,
                "gen": r.generation, "labels": r.labels, "doc": doc}  # fmt: skip
    if isinstance(r, fmt.BranchRecord):
        author = Authorship(r.created_by, r.on_behalf_of, r.authenticated)
        check_free_text(author)
        doc = {
            "_id": r.name,
            **author.fields(),
            "created_at": r.created_at,
            "track_applications": r.track_applications,
            "changes": r.changes,
            "revision": 1,
        }
        if r.cohorts:
            doc["cohorts"] = {app: dict(spec) for app, spec in r.cohorts.items()}
        if r.expires_at is not None:
            doc["expires_at"] = r.expires_at
        check_branch_size(doc)
        apps = sorted(set(r.changes) | set(r.track_applications) | set(r.cohorts))
        return {**base, "name": r.name, "apps": apps, "doc": doc}
    author = Authorship(r.created_by, r.on_behalf_of, r.authenticated)
    check_free_text(author, r.reason)
    doc = {
        "_id": r.id,
        "kind": r.kind,
        "branch": r.branch,
        "changes": r.changes,
        "secret_keys": r.secret_keys,
        **author.fields(),
        "created_at": r.created_at,
        "reason": r.reason,
        "versions": r.versions,
        "application_uids": r.application_uids,
        "revision": 1,
    }
    limits.check_document(
        "the generation", doc, limits.MAX_GENERATION_BYTES, "It cannot have been exported."
    )
    return {**base, "name": r.id, "gid": r.id, "apps": r.applications, "doc": doc}


@dataclass
class AppInfo:
    """What the checks keep of each imported application (never its schema or settings)."""

    record: int
    uid: str
    version: int
    next_unit: int
    current_seen: bool = False


@dataclass
class Plan:
    """The transactions to write: groups of linked applications, then the rest."""

    groups: list[list[str]]
    branches: dict[int, list[str]] = field(default_factory=dict)  # group index -> names
    loose_branches: list[str] = field(default_factory=list)  # touch no application


@dataclass(frozen=True)
class Part:
    """One transaction of the write: linked applications (none: the last part, of
    what touches no imported application), their branches, and the generations
    ``generations`` selects in the staging collection. ``ahead``: their history is
    too large for one transaction and is written before it, in batches."""

    apps: list[str]
    branches: list[str]
    generations: dict[str, Any]
    ahead: bool = False


class Staging:
    """The import's staging collection and the queries the checks make of it."""

    def __init__(self, coll: AsyncCollection[Doc]) -> None:
        self.coll = coll

    async def create(self) -> None:
        await self.coll.create_index([("kind", ASCENDING), ("app", ASCENDING), ("num", ASCENDING)])
        await self.coll.create_index([("kind", ASCENDING), ("name", ASCENDING)])
        await self.coll.create_index([("gid", ASCENDING)], sparse=True)

    def find(self, flt: Mapping[str, Any], projection: Any = None) -> Any:
        return self.coll.find(dict(flt), projection)

    async def docs(self, flt: Mapping[str, Any], sort: str = "_id") -> AsyncIterator[Doc]:
        """The target documents staged under ``flt``, in ``sort`` order."""
        async for staged in self.coll.find(dict(flt), {"doc": 1}).sort(sort, ASCENDING):
            yield staged["doc"]

    async def found_in(self, kind: Kind, target: str) -> list[Doc]:
        """Staged records of ``kind`` whose target document's ``_id`` is taken in
        ``target`` (a collection of the same database): their collisions."""
        cursor = await self.coll.aggregate(
            [
                {"$match": {"kind": kind.value}},
                {
                    "$lookup": {
                        "from": target,
                        "localField": "doc._id",
                        "foreignField": "_id",
                        "pipeline": [{"$project": {"_id": 1}}],
                        "as": "hit",
                    }
                },
                {"$match": {"hit": {"$ne": []}}},
                {"$project": {"name": 1, "app": 1}},
                {"$sort": {"_id": 1}},
            ]
        )
        return [d async for d in cursor]


class Importer:
    """One import's stages, over its staging collection; writes through ``store``."""

    def __init__(self, store: StoreCore, staging: Staging) -> None:
        self.store = store
        self.staging = staging
        # Generation ids are renumbered: each staged generation's document holds its
        # new id (``doc._id``) beside the old one (``gid``).
        self.renumbered: tuple[int, int] | None = None

    async def run(self, records: AsyncIterable[str], renumber: bool) -> AsyncIterator[ImportStep]:
        """Stage, check, write: one step per committed transaction, then the totals."""
        try:
            count = await self._stage(records)
            apps = await self._check_records()
            await self._check_collisions(renumber)
        except GenconfError as exc:
            raise _said(exc, f"{exc.message}; nothing was written") from exc
        plan = await self._plan(apps)
        await self._take_generation_ids(renumber)
        total = ImportStep(done=True, records=count, renumbered=self.renumbered)
        runs = Runs()
        async for step in self._write(plan):
            runs.extend(step.generations)
            total = replace(
                total,
                applications=total.applications + step.applications,
                branches=total.branches + step.branches,
                units=total.units + step.units,
                versions=total.versions + step.versions,
                revision=step.revision,
            )
            yield step
        yield replace(total, generations=runs.frozen())

    # -- 1. stage -----------------------------------------------------------------

    async def _stage(self, records: AsyncIterable[str]) -> int:
        """Validate and stage every record; the number of records read."""
        number = 0
        end: tuple[int, fmt.EndRecord] | None = None
        counts = dict.fromkeys(fmt.COUNTED, 0)
        batch: list[Doc] = []
        chars = 0
        async for text in records:
            number += 1
            if end is not None:
                raise InvalidArgument(f"record {number} follows the end record (record {end[0]})")
            record = fmt.parse_record(number, text)
            kind = fmt.kind_of(record)
            if number == 1 and kind is not Kind.HEADER:
                raise InvalidArgument(
                    f"record 1 is {fmt.describe(record.model_dump(by_alias=True))}, not the "
                    f'header: an export starts with {{"record": "{fmt.HEADER}", "format": '
                    f"{fmt.FORMAT}, ...}}"
                )
            if kind is Kind.HEADER:
                if number != 1:
                    raise InvalidArgument(f"record {number} is a second header")
                continue
            if isinstance(record, fmt.EndRecord):
                end = (number, record)
                continue
            counts[kind] += 1
            batch.append({**staged_doc(number, record), "size": len(text)})  # type: ignore[arg-type]
            chars += len(text)
            if len(batch) >= BATCH_DOCS or chars >= BATCH_CHARS:
                await self.staging.coll.insert_many(batch)
                batch, chars = [], 0
        if batch:
            await self.staging.coll.insert_many(batch)
        if number == 0:
            raise InvalidArgument("the import holds no record at all")
        if end is None:
            raise InvalidArgument(
                f"the import ended after record {number} without the end record: the "
                "export is truncated (or not a whole export)"
            )
        wrong = [
            f"{getattr(end[1], fmt.COUNTED[k])} {fmt.COUNTED[k]}, but {n} came"
            for k, n in counts.items()
            if getattr(end[1], fmt.COUNTED[k]) != n
        ]
        if wrong:
            raise InvalidArgument(
                f"record {end[0]} (end) counts " + "; ".join(wrong)
                + ": records are missing or extra"
            )  # fmt: skip
        return number

    # -- 2. check -----------------------------------------------------------------

    async def _check_records(self) -> dict[str, AppInfo]:
        """Every reference inside the import; the imported applications."""
        problems = Problems()
        await self._check_duplicates(problems)
        problems.raise_any("the import names the same thing twice")
        apps: dict[str, AppInfo] = {}
        async for a in self.staging.find({"kind": Kind.APPLICATION.value}, {"doc": 0}):
            apps[a["name"]] = AppInfo(a["_id"], a["uid"], a["num"], a["next"])
        branches = {
            b["name"]: b["_id"]
            async for b in self.staging.find({"kind": Kind.BRANCH.value}, {"name": 1})
        }
        await self._check_units(apps, branches, problems)
        await self._check_versions(apps, problems)
        await self._check_branches(apps, problems)
        problems.raise_any("the import does not hold together")
        return apps

    async def _check_duplicates(self, problems: Problems) -> None:
        cursor = await self.staging.coll.aggregate(
            [
                {
                    "$group": {
                        "_id": {"kind": "$kind", "name": "$name"},
                        "records": {"$push": "$_id"},
                        "n": {"$sum": 1},
                    }
                },
                {"$match": {"n": {"$gt": 1}}},
                {"$sort": {"records.0": 1}},
                {"$limit": SHOWN_PROBLEMS + 1},
            ],
            allowDiskUse=True,
        )
        async for dup in cursor:
            what = f"{dup['_id']['kind']} {dup['_id']['name']!r}"
            shown = ", ".join(map(str, dup["records"][:10]))
            problems.add(f"{what} is in records {shown}")

    async def _check_units(
        self,
        apps: Mapping[str, AppInfo],
        branches: Mapping[str, int],
        problems: Problems,
    ) -> None:
        async for u in self.staging.find({"kind": Kind.UNIT.value}).sort("_id", ASCENDING):
            at = f"record {u['_id']} (unit {u['name']!r})"
            app = apps.get(u["app"])
            if app is None:
                problems.add(f"{at}: its application {u['app']!r} is not in the import")
                continue
            if u["doc"]["application_uid"] != app.uid:
                problems.add(
                    f"{at}: its application_uid is not the uid of application {u['app']!r} "
                    f"(record {app.record})"
                )
            if u["num"] >= app.next_unit:
                problems.add(
                    f"{at}: its number is not below next_unit {app.next_unit} of "
                    f"{u['app']!r} (record {app.record})"
                )
            if u["branch"] is not None and u["branch"] not in branches:
                problems.add(f"{at}: it tracks branch {u['branch']!r}, not in the import")

    async def _check_versions(self, apps: dict[str, AppInfo], problems: Problems) -> None:
        labelled: list[tuple[int, list[str]]] = []
        current: str | None = None

        def labels_done() -> None:
            if current is not None and current in apps:
                try:
                    fmt.check_labels_grow(current, labelled)
                except InvalidArgument as exc:
                    problems.add(exc.message)

        cursor = self.staging.find({"kind": Kind.VERSION.value}, {"doc": 0})
        async for v in cursor.sort([("kind", 1), ("app", 1), ("num", 1)]):
            if v["app"] != current:
                labels_done()
                current, labelled = v["app"], []
            at = f"record {v['_id']} (version {v['name']})"
            app = apps.get(v["app"])
            if app is None:
                problems.add(f"{at}: its application {v['app']!r} is not in the import")
                continue
            if v["num"] > app.version:
                problems.add(
                    f"{at}: application {v['app']!r} (record {app.record}) is only at "
                    f"version {app.version}"
                )
            app.current_seen = app.current_seen or v["num"] == app.version
            if v["labels"]:
                labelled.append((v["num"], v["labels"]))
        labels_done()
        for name, app in sorted(apps.items()):
            if not app.current_seen:
                problems.add(
                    f"record {app.record} (application {name!r}): its current version "
                    f"{app.version} is not in the import"
                )
        cursor = await self.staging.coll.aggregate(
            [
                {"$match": {"kind": Kind.VERSION.value, "gen": {"$ne": None}}},
                {
                    "$lookup": {
                        "from": self.staging.coll.name,
                        "localField": "gen",
                        "foreignField": "gid",
                        "as": "g",
                    }
                },
                {"$match": {"g": {"$size": 0}}},
                {"$sort": {"_id": 1}},
                {"$limit": SHOWN_PROBLEMS + 1},
            ]
        )
        async for v in cursor:
            problems.add(
                f"record {v['_id']} (version {v['name']}): its generation {v['gen']} is not "
                "in the import"
            )

    async def _check_branches(self, apps: Mapping[str, AppInfo], problems: Problems) -> None:
        whole: dict[str, str] = {}  # application -> the branch tracking it as a whole
        async for b in self.staging.find({"kind": Kind.BRANCH.value}).sort("_id", ASCENDING):
            at = f"record {b['_id']} (branch {b['name']!r})"
            doc = b["doc"]
            for app in doc["track_applications"]:
                if app not in apps:
                    problems.add(f"{at}: it tracks application {app!r}, not in the import")
                    continue
                if app in whole:
                    problems.add(
                        f"{at}: application {app!r} is tracked as a whole by branch "
                        f"{whole[app]!r} too"
                    )
                whole[app] = b["name"]
                stray = await self.staging.find(
                    {"kind": Kind.UNIT.value, "app": app, "branch": {"$ne": b["name"]}},
                    {"name": 1},
                ).to_list(5)
                if stray:
                    problems.add(
                        f"{at}: it tracks application {app!r} as a whole, but unit(s) "
                        + ", ".join(u["name"] for u in stray)
                        + " do not track it"
                    )
            for app, changes in doc["changes"].items():
                if app not in apps:
                    problems.add(
                        f"{at}: it holds changes for application {app!r}, not in the import"
                    )
                    continue
                staged_app = await self.staging.coll.find_one(
                    {"kind": Kind.APPLICATION.value, "name": app}, {"doc.schema": 1}
                )
                assert staged_app is not None
                parsed = schemas.parse_schema(staged_app["doc"]["schema"])
                for key, change in changes.items():
                    try:
                        spec = schemas.require_key(parsed, key)
                        if "value" in change:
                            schemas.coerce_value(key, spec, change["value"])
                    except InvalidArgument as exc:
                        problems.add(f"{at}: changes of {app!r}: {exc.message}")

    async def _check_collisions(self, renumber: bool) -> None:
        """AlreadyExists naming everything of the import this model holds already
        (versions of an application that exists are implied, not listed)."""
        found: list[str] = []
        apps = [d["name"] for d in await self.staging.found_in(Kind.APPLICATION, APPLICATIONS)]
        for kind, what in (
            (Kind.APPLICATION, "applications"),
            (Kind.UNIT, "units"),
            (Kind.VERSION, "versions"),
            (Kind.BRANCH, "branches"),
        ):
            hits = [
                d["name"]
                for d in await self.staging.found_in(kind, TARGET[kind])
                if kind is not Kind.VERSION or d["app"] not in apps
            ]
            if hits:
                found.append(f"{what} {_shown(hits)}")
        if not renumber:
            ids = [d["name"] for d in await self.staging.found_in(Kind.GENERATION, GENERATIONS)]
            if ids:
                found.append(
                    f"generation ids {ranges(ids)} (import with renumber_generations, "
                    "genconf import --renumber-generations, to give the imported "
                    "generations new ids above this model's)"
                )
        if found:
            raise AlreadyExists(
                "the import collides with what this model holds already: " + "; ".join(found)
            )

    # -- 3. write -----------------------------------------------------------------

    async def _plan(self, apps: Mapping[str, AppInfo]) -> Plan:
        """Group the applications a generation or a branch links (union-find)."""
        parent = {name: name for name in apps}

        def root(name: str) -> str:
            while parent[name] != name:
                parent[name] = parent[parent[name]]
                name = parent[name]
            return name

        def link(names: Iterable[str]) -> str | None:
            inside = sorted(n for n in names if n in parent)
            for other in inside[1:]:
                parent[root(other)] = root(inside[0])
            return inside[0] if inside else None

        async for g in self.staging.find({"kind": Kind.GENERATION.value}, {"apps": 1}):
            link(g["apps"])
        anchor: dict[str, str | None] = {}  # branch -> an application of its group
        async for b in self.staging.find({"kind": Kind.BRANCH.value}, {"name": 1, "apps": 1}):
            anchor[b["name"]] = link(b["apps"])
        tracking = await self.staging.coll.aggregate(
            [
                {"$match": {"kind": Kind.UNIT.value, "branch": {"$ne": None}}},
                {"$group": {"_id": "$branch", "apps": {"$addToSet": "$app"}}},
            ]
        )
        async for t in tracking:
            first = link([*t["apps"], *([anchor[t["_id"]]] if anchor[t["_id"]] else [])])
            anchor[t["_id"]] = first
        by_root: dict[str, list[str]] = {}
        for name in sorted(parent):
            by_root.setdefault(root(name), []).append(name)
        groups = sorted(by_root.values())
        index = {name: i for i, group in enumerate(groups) for name in group}
        plan = Plan(groups)
        for branch, app in sorted(anchor.items()):
            if app is None:
                plan.loose_branches.append(branch)
            else:
                plan.branches.setdefault(index[app], []).append(branch)
        return plan

    async def _take_generation_ids(self, renumber: bool) -> None:
        """Raise the generation counter above every imported id; or, renumbering,
        take a block of fresh ids above every id this model has and give them to
        the imported generations in the order of their old ids (in staging: each
        one's ``doc._id`` becomes its new id, ``gid`` stays the old one)."""
        counters = self.store.db[COUNTERS]
        generations = {"kind": Kind.GENERATION.value}
        count = await self.staging.coll.count_documents(generations)
        if not count:
            return
        if not renumber:
            top = await self.staging.coll.find_one(generations, {"gid": 1}, sort=[("gid", -1)])
            assert top is not None
            await counters.update_one(
                {"_id": GENERATIONS}, {"$max": {"seq": top["gid"]}}, upsert=True
            )
            return
        last = await self.store.db[GENERATIONS].find_one({}, {"_id": 1}, sort=[("_id", -1)])
        await counters.update_one(
            {"_id": GENERATIONS}, {"$max": {"seq": int(last["_id"]) if last else 0}}, upsert=True
        )
        doc = await counters.find_one_and_update(
            {"_id": GENERATIONS},
            {"$inc": {"seq": count}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        first = int(doc["seq"]) - count + 1
        updates: list[UpdateOne] = []
        cursor = self.staging.find(generations, {"_id": 1}).sort("gid", ASCENDING)
        async for n, staged in _enumerate(cursor, first):
            updates.append(UpdateOne({"_id": staged["_id"]}, {"$set": {"doc._id": n}}))
            if len(updates) >= BATCH_DOCS:
                await self.staging.coll.bulk_write(updates)
                updates = []
        if updates:
            await self.staging.coll.bulk_write(updates)
        self.renumbered = (first, first + count - 1)

    async def _parts(self, plan: Plan) -> list[Part]:
        """The transactions to write, in order: each group of linked applications,
        then what touches no imported application (if anything)."""
        imported = [a for group in plan.groups for a in group]
        parts = [
            Part(
                group,
                plan.branches.get(i, []),
                {"kind": Kind.GENERATION.value, "apps": {"$in": group}},
            )
            for i, group in enumerate(plan.groups)
        ]
        loose = {"kind": Kind.GENERATION.value, "apps": {"$nin": imported}}
        if plan.loose_branches or await self.staging.coll.find_one(loose, {"_id": 1}):
            parts.append(Part([], plan.loose_branches, loose))
        out = []
        for part in parts:
            docs, size = 0, 0
            for flt in ({"kind": Kind.VERSION.value, "app": {"$in": part.apps}}, part.generations):
                cursor = await self.staging.coll.aggregate(
                    [
                        {"$match": flt},
                        {"$group": {"_id": None, "n": {"$sum": 1}, "size": {"$sum": "$size"}}},
                    ]
                )
                async for total in cursor:
                    docs, size = docs + total["n"], size + total["size"]
            ahead = docs > MAX_HISTORY_DOCS or size > MAX_HISTORY_CHARS
            out.append(replace(part, ahead=ahead))
        return out

    async def _write(self, plan: Plan) -> AsyncIterator[ImportStep]:
        parts = await self._parts(plan)
        done: list[ImportStep] = []
        for n, part in enumerate(parts, 1):
            try:
                with mongo_errors():
                    step = await self._write_part(part)
            except GenconfError as exc:
                raise _stopped(exc, n, len(parts), part, done) from exc
            except OperationFailure as exc:  # what MongoDB refuses that genconf does not expect
                refused = Unavailable(f"MongoDB refused the write: {exc}")
                raise _stopped(refused, n, len(parts), part, done) from exc
            done.append(step)
            yield step

    async def _write_part(self, part: Part) -> ImportStep:
        """One transaction of ``part``; its history first, in batches, when it is too
        large for one (removed again if the transaction fails)."""
        if not part.ahead:
            return await self._transaction(part, history=True)
        try:
            versions, ids = await self._history(None, part)
            step = await self._transaction(part, history=False)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                left = await self._remove_history(part)
            if left and isinstance(exc, GenconfError):
                raise _said(
                    exc,
                    f"{exc.message} (and the history written ahead of its transaction could "
                    f"not be removed: {left}; delete those documents: they belong to no "
                    "application)",
                ) from exc
            raise
        return replace(step, versions=versions, generations=ids.frozen())

    async def _transaction(self, part: Part, *, history: bool) -> ImportStep:
        """The applications of ``part`` with their units, its branches and (``history``)
        its versions and generations, in one transaction."""

        async def body(s: AsyncClientSession) -> ImportStep:
            units = 0
            for app in part.apps:
                doc = await self.staging.coll.find_one(
                    {"kind": Kind.APPLICATION.value, "name": app}
                )
                assert doc is not None
                await self.store._insert_new(s, "application", APPLICATIONS, doc["doc"])
                flt = {"kind": Kind.UNIT.value, "app": app}
                units += await self._copy(s, UNITS, self.staging.docs(flt, "num"))
            for branch in part.branches:
                doc = await self.staging.coll.find_one({"kind": Kind.BRANCH.value, "name": branch})
                assert doc is not None
                await self.store._insert_new(s, "branch", BRANCHES, doc["doc"])
            versions, ids = await self._history(s, part) if history else (0, Runs())
            return ImportStep(tuple(part.apps), tuple(part.branches), units, versions, ids.frozen())

        step, revision = await self.store._transact(body)
        return replace(step, revision=revision)

    async def _history(self, s: AsyncClientSession | None, part: Part) -> tuple[int, Runs]:
        """Insert the versions and generations of ``part`` (in the transaction ``s``,
        or None: in batches of their own); how many versions, which generation ids."""
        versions = 0
        for app in part.apps:
            flt = {"kind": Kind.VERSION.value, "app": app}
            versions += await self._copy(s, VERSIONS, self.staging.docs(flt, "num"))
        ids = Runs()
        await self._copy(s, GENERATIONS, self.staging.docs(part.generations, "gid"), ids)
        return versions, ids

    async def _remove_history(self, part: Part) -> str:
        """Delete what `_history` wrote ahead of a transaction that failed; what could
        not be deleted ("": nothing is left)."""
        try:
            for collection, flt in (
                (VERSIONS, {"kind": Kind.VERSION.value, "app": {"$in": part.apps}}),
                (GENERATIONS, part.generations),
            ):
                batch: list[Any] = []
                async for doc in self.staging.docs(flt):
                    batch.append(doc["_id"])
                    if len(batch) >= BATCH_DOCS:
                        await self.store.db[collection].delete_many({"_id": {"$in": batch}})
                        batch = []
                if batch:
                    await self.store.db[collection].delete_many({"_id": {"$in": batch}})
        except PyMongoError:  # MongoDB went away: say what may be left
            apps = ", ".join(part.apps) or "none"
            return f"versions of applications {apps}, and their generations"
        return ""

    async def _copy(
        self,
        s: AsyncClientSession | None,
        collection: str,
        docs: AsyncIterator[Doc],
        ids: Runs | None = None,
    ) -> int:
        """Insert ``docs`` into ``collection`` in batches (a version's generation
        ids renumbered as the staged generations are); how many."""
        count = 0
        batch: list[Doc] = []
        async for doc in docs:
            if ids is not None:
                ids.add(doc["_id"])
            batch.append(doc)
            if len(batch) >= BATCH_DOCS:
                await self._insert(s, collection, batch)
                count, batch = count + len(batch), []
        if batch:
            await self._insert(s, collection, batch)
            count += len(batch)
        return count

    async def _insert(
        self, s: AsyncClientSession | None, collection: str, batch: list[Doc]
    ) -> None:
        if self.renumbered and collection == VERSIONS:
            batch = await self._renumbered_versions(batch)
        await self.store.db[collection].insert_many(batch, session=s)

    async def _renumbered_versions(self, batch: list[Doc]) -> list[Doc]:
        """Versions with their ``generation`` and ``metadata.revert_of`` renumbered,
        looked up in staging for this batch only."""
        old = {d["generation"] for d in batch if d["generation"] is not None}
        old |= {r for d in batch if _is_id(r := d["metadata"].get("revert_of"))}
        new = {
            g["gid"]: g["doc"]["_id"]
            async for g in self.staging.find(
                {"kind": Kind.GENERATION.value, "gid": {"$in": sorted(old)}},
                {"gid": 1, "doc._id": 1},
            )
        }
        return [_renumbered(d, new) for d in batch]


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _renumbered(version: Doc, new: Mapping[int, int]) -> Doc:
    """A version whose generation and ``revert_of`` name generations by their new ids."""
    doc = {**version, "generation": new.get(version["generation"], version["generation"])}
    revert_of = doc["metadata"].get("revert_of")
    if _is_id(revert_of) and revert_of in new:
        doc["metadata"] = {**doc["metadata"], "revert_of": new[revert_of]}
    return doc


async def _enumerate(items: AsyncIterator[Any], start: int) -> AsyncIterator[tuple[int, Any]]:
    n = start
    async for item in items:
        yield n, item
        n += 1


class Runs:
    """Ids as runs of consecutive ids, added in increasing order (generations are
    written by id): a long import's ids take a few pairs, not one int each."""

    def __init__(self) -> None:
        self.runs: list[tuple[int, int]] = []

    def add(self, n: int) -> None:
        if self.runs and n == self.runs[-1][1] + 1:
            self.runs[-1] = (self.runs[-1][0], n)
        else:
            self.runs.append((n, n))

    def extend(self, runs: Iterable[tuple[int, int]]) -> None:
        for first, last in runs:
            if self.runs and first == self.runs[-1][1] + 1:
                self.runs[-1] = (self.runs[-1][0], last)
            else:
                self.runs.append((first, last))

    def frozen(self) -> tuple[tuple[int, int], ...]:
        return tuple(self.runs)


SIMPLE: Final = (AlreadyExists, NotFound, Unavailable, InvalidArgument, FailedPrecondition)


def _stopped(
    exc: GenconfError, n: int, total: int, part: Part, done: list[ImportStep]
) -> GenconfError:
    """``exc`` (of its status) saying what the import wrote before it stopped."""
    failing = ImportStep(tuple(part.apps), tuple(part.branches)).describe().split("; ")[0]
    written = (
        "; ".join(f"transaction {i} ({s.describe()})" for i, s in enumerate(done, 1))
        if done
        else "nothing"
    )
    message = (
        f"{exc.message}. The import stopped at transaction {n} of {total} ({failing}), "
        f"which wrote nothing; committed before it: {written}"
    )
    return _said(exc, message)


def _said(exc: GenconfError, message: str) -> GenconfError:
    """An error of ``exc``'s status saying ``message``."""
    cls = next((c for c in type(exc).__mro__ if c in SIMPLE), Unavailable)
    return cls(message)


class TransferImport(StoreCore):
    """Import: stage, check, then write in a few transactions (the module docstring)."""

    async def import_model(
        self, records: AsyncIterable[str], *, renumber_generations: bool = False
    ) -> AsyncIterator[ImportStep]:
        """Import the records of one export (JSON texts, header first): one
        `ImportStep` per committed transaction, then the totals (``done``)."""
        with mongo_errors():
            await drop_stale_staging(self.db)
            name = f"{STAGING_PREFIX}{int(time.time())}_{secrets.token_hex(6)}"
            staging = Staging(self.db[name])
            try:
                await staging.create()
                steps = Importer(self, staging).run(records, renumber_generations)
                async with contextlib.aclosing(steps) as stream:
                    async for step in stream:
                        yield step
            finally:
                # MongoDB gone: the collection stays until an import a day later.
                with contextlib.suppress(PyMongoError):
                    await self.db.drop_collection(name)


async def drop_stale_staging(db: Any) -> None:
    """Staging collections a crashed import left behind, a day on."""
    cutoff = time.time() - STALE_STAGING_SECONDS
    for name in await db.list_collection_names(filter={"name": {"$regex": f"^{STAGING_PREFIX}"}}):
        stamp = name.removeprefix(STAGING_PREFIX).split("_", 1)[0]
        if stamp.isdigit() and int(stamp) < cutoff:
            await db.drop_collection(name)
