"""Export: the model, or some of its applications, as the records of
`genconf.domain.transfer`, read at one snapshot and streamed from MongoDB cursors.

Nothing of the model sits in memory at once: each document is read, turned into
its record and handed on. Every read shares one snapshot session, so a write that
commits meanwhile is either wholly in the export or not at all; MongoDB keeps a
snapshot for ``minSnapshotHistoryWindowInSeconds`` (300 s by default), so the
export must be read within that time.

Not exported: tokens and server keys (``tokens``, ``keys``), the write side's
bookkeeping (``fences``, ``counters``), every document's ``revision`` (a count of
its writes) and units' ``applied`` reports (what agents run now: runtime state).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final

from pydantic import ValidationError
from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import OperationFailure

from genconf.domain import names
from genconf.domain import transfer as fmt
from genconf.domain.transfer import Kind
from genconf.errors import FailedPrecondition, NotFound
from genconf.store.core import StoreCore
from genconf.store.documents import APPLICATIONS, BRANCHES, GENERATIONS, UNITS, VERSIONS
from genconf.store.mongo import mongo_errors

SNAPSHOT_TOO_OLD: Final = 239
# Every field genconf writes in each collection; `revision` and `applied` are not
# exported (see the module docstring). A field outside these is one format 1 cannot
# carry: the export refuses it rather than lose it.
KNOWN_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    APPLICATIONS: frozenset(
        {"_id", "uid", "charm", "schema", "settings", "version", "next_unit"}
        | {"revision", "created_at", "updated_at"}
    ),
    UNITS: frozenset(
        {"_id", "uid", "application", "application_uid", "number", "branch"}
        | {"applied", "revision", "labels"}
    ),
    VERSIONS: frozenset(
        {"_id", "application", "version", "settings", "timestamp", "reason", "created_by"}
        | {"on_behalf_of", "authenticated", "metadata", "previous_version", "generation"}
        | {"tags", "secret_keys", "revision"}
    ),
    BRANCHES: frozenset(
        {"_id", "created_by", "on_behalf_of", "authenticated", "created_at"}
        | {"track_applications", "changes", "revision", "cohorts", "expires_at"}
    ),
    GENERATIONS: frozenset(
        {"_id", "kind", "branch", "changes", "secret_keys", "created_by", "on_behalf_of"}
        | {"authenticated", "created_at", "reason", "versions", "application_uids", "revision"}
    ),
}
KIND_OF: Final = {
    APPLICATIONS: Kind.APPLICATION,
    UNITS: Kind.UNIT,
    VERSIONS: Kind.VERSION,
    BRANCHES: Kind.BRANCH,
    GENERATIONS: Kind.GENERATION,
}


def _author(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "created_by": doc.get("created_by", ""),
        "on_behalf_of": doc.get("on_behalf_of", ""),
        "authenticated": bool(doc.get("authenticated", False)),
    }


def _only(mapping: Mapping[str, Any], scope: frozenset[str] | None) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if scope is None or k in scope}


def record_fields(
    collection: str, doc: Mapping[str, Any], scope: frozenset[str] | None = None
) -> dict[str, Any]:
    """A stored document as the fields of its record; ``scope`` (a subset export)
    keeps a branch's and a generation's parts for those applications only."""
    if collection == APPLICATIONS:
        return {
            "name": doc["_id"],
            "uid": doc.get("uid", ""),
            "charm": doc.get("charm", ""),
            "version": doc["version"],
            "next_unit": doc.get("next_unit", 0),
            "created_at": doc.get("created_at"),
            "updated_at": doc.get("updated_at"),
            "schema": doc.get("schema", {}),
            "settings": doc.get("settings", {}),
        }
    if collection == UNITS:
        return {
            "name": doc["_id"],
            "uid": doc.get("uid", ""),
            "application": doc["application"],
            "application_uid": doc.get("application_uid", ""),
            "number": doc["number"],
            "branch": doc.get("branch"),
            "labels": doc.get("labels", {}),
        }
    if collection == VERSIONS:
        return {
            "application": doc["application"],
            "version": doc["version"],
            "previous_version": doc.get("previous_version", 0),
            "generation": doc.get("generation"),
            "timestamp": doc.get("timestamp"),
            "labels": list(doc.get("tags", [])),
            "reason": doc.get("reason", ""),
            **_author(doc),
            "metadata": doc.get("metadata", {}),
            "secret_keys": list(doc.get("secret_keys", [])),
            "settings": doc.get("settings", {}),
        }
    if collection == BRANCHES:
        return {
            "name": doc["_id"],
            "created_at": doc.get("created_at"),
            **_author(doc),
            "track_applications": [
                a for a in doc.get("track_applications", []) if scope is None or a in scope
            ],
            "changes": _only(doc.get("changes", {}), scope),
            "cohorts": _only(doc.get("cohorts", {}), scope),
            "expires_at": doc.get("expires_at"),
        }
    return {
        "id": doc["_id"],
        "kind": doc.get("kind", ""),
        "branch": doc.get("branch"),
        "created_at": doc.get("created_at"),
        **_author(doc),
        "reason": doc.get("reason", ""),
        "versions": _only(doc.get("versions", {}), scope),
        "secret_keys": _only(doc.get("secret_keys", {}), scope),
        "application_uids": _only(doc.get("application_uids", {}), scope),
        "changes": _only(doc.get("changes", {}), scope),
    }


def export_record(
    collection: str, doc: Mapping[str, Any], scope: frozenset[str] | None = None
) -> fmt.AnyRecord:
    """The record of a stored document; FailedPrecondition naming the document and
    field when format 1 cannot carry it exactly (so an export never holds a record
    that import would refuse, nor drops a field)."""
    kind = KIND_OF[collection]
    what = f"{kind} {doc.get('_id')!r}"
    unknown = sorted(set(doc) - KNOWN_FIELDS[collection])
    if unknown:
        raise FailedPrecondition(
            f"cannot export {what}: its field(s) {unknown} have no place in export format "
            f"{fmt.FORMAT}; this genconf writes documents its export format does not know"
        )
    try:
        return fmt.record_from(kind, record_fields(collection, doc, scope))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise FailedPrecondition(
            f"cannot export {what}: field {'.'.join(map(str, first['loc']))!r}: "
            f"{first['msg'].removeprefix('Value error, ')} (export format {fmt.FORMAT} "
            "cannot carry it)"
        ) from None


class TransferExport(StoreCore):
    """Export: reads only, at one snapshot."""

    async def export_model(
        self, applications: Sequence[str] = ()
    ) -> AsyncIterator[tuple[Kind, str]]:
        """Every record of the model (or of ``applications``, restricted as
        docs/export-format.md says), as (kind, canonical JSON), header first."""
        for name in applications:
            names.validate_app_name(name)
        chosen = sorted(set(applications))
        scope = frozenset(chosen) if chosen else None
        header = fmt.Header(
            record=Kind.HEADER.value,
            format=fmt.FORMAT,
            exported_at=self.clock(),
            applications=chosen or None,
        )
        with mongo_errors():
            try:
                async with self.client.start_session(snapshot=True) as s:
                    app_names = await self._export_applications(s, chosen)
                    yield Kind.HEADER, fmt.encode(header)
                    counts = dict.fromkeys(fmt.COUNTED.values(), 0)
                    async for kind, text in self._export_records(s, app_names, scope):
                        counts[fmt.COUNTED[kind]] += 1
                        yield kind, text
                    yield Kind.END, fmt.encode(fmt.EndRecord(record=Kind.END.value, **counts))
            except OperationFailure as exc:
                if exc.code != SNAPSHOT_TOO_OLD:
                    raise
                raise FailedPrecondition(
                    "the export was read for longer than MongoDB keeps its snapshot "
                    "(minSnapshotHistoryWindowInSeconds, 300 s by default): read it faster, "
                    "export fewer applications at once, or raise that setting"
                ) from exc

    async def _export_applications(self, s: AsyncClientSession, chosen: list[str]) -> list[str]:
        """The names of the applications to export, in order; NotFound names any
        chosen one that does not exist."""
        flt: dict[str, Any] = {"_id": {"$in": chosen}} if chosen else {}
        found = [
            d["_id"]
            async for d in self.db[APPLICATIONS].find(flt, {"_id": 1}, session=s).sort("_id", 1)
        ]
        missing = sorted(set(chosen) - set(found))
        if missing:
            raise NotFound(f"application(s) {', '.join(missing)} not found; nothing was exported")
        return found

    async def _export_records(
        self, s: AsyncClientSession, app_names: list[str], scope: frozenset[str] | None
    ) -> AsyncIterator[tuple[Kind, str]]:
        """Applications (each with its units and versions), branches, generations."""
        for name in app_names:
            app = await self.db[APPLICATIONS].find_one({"_id": name}, session=s)
            if app is None:  # pragma: no cover - the snapshot listed it
                continue
            yield Kind.APPLICATION, fmt.encode(export_record(APPLICATIONS, app))
            for collection, order in ((UNITS, "number"), (VERSIONS, "version")):
                cursor = self.db[collection].find({"application": name}, session=s)
                async for doc in cursor.sort(order, ASCENDING):
                    yield KIND_OF[collection], fmt.encode(export_record(collection, doc))
        for collection, flt in (
            (BRANCHES, await self._export_branch_filter(s, scope)),
            (GENERATIONS, self._export_generation_filter(scope)),
        ):
            async for doc in self.db[collection].find(flt, session=s).sort("_id", ASCENDING):
                yield KIND_OF[collection], fmt.encode(export_record(collection, doc, scope))

    async def _export_branch_filter(
        self, s: AsyncClientSession, scope: frozenset[str] | None
    ) -> dict[str, Any]:
        """Every branch, or those with a part for the applications in ``scope``:
        changes for one, tracking one as a whole, or tracked by one's units."""
        if scope is None:
            return {}
        chosen = sorted(scope)
        tracked = await self.db[UNITS].distinct(
            "branch", {"application": {"$in": chosen}, "branch": {"$ne": None}}, session=s
        )
        return {
            "$or": [
                *({f"changes.{a}": {"$exists": True}} for a in chosen),
                {"track_applications": {"$in": chosen}},
                {"_id": {"$in": sorted(tracked)}},
            ]
        }

    @staticmethod
    def _export_generation_filter(scope: frozenset[str] | None) -> dict[str, Any]:
        """Every generation, or those that name an application in ``scope``."""
        if scope is None:
            return {}
        return {
            "$or": [
                {f"{part}.{a}": {"$exists": True}}
                for a in sorted(scope)
                for part in ("changes", "versions", "secret_keys")
            ]
        }
