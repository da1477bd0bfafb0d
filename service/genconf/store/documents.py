"""The documents genconf keeps in MongoDB: their collections, shapes and pure helpers.

Documents (one database per model; every document has a ``revision`` counter that
each write increments, so a stale event can be told from a newer one):

    applications  {_id: name, uid, charm, schema: {key: {type, default?, description, secret?}},
                   settings: {key: value}  (master: only what operators set),
                   version, next_unit, revision, created_at, updated_at}
    units         {_id: "app/N", uid, application, application_uid, number,
                   branch: name|None, applied, labels?: {key: value}, revision}
    branches      {_id: name, created_by, on_behalf_of, authenticated, created_at,
                   expires_at?, track_applications: [app], cohorts?: {app: {percent,
                   selector}}, changes: {app: {key: {op, value?, from?}}}, revision}
                                                                      (active only)
    versions      {_id: "app@N", application, version, settings, timestamp, reason,
                   created_by, on_behalf_of, authenticated, metadata, previous_version,
                   generation, tags, revision}
    generations   {_id: id, kind, branch, changes: {app: {key: {from?, to?}}},
                   created_by, on_behalf_of, authenticated, created_at, reason,
                   versions: {app: N}, revision}
    tokens        (the security issue)
    fences        {_id: "application:NAME" | "branch:NAME", n}   (never watched)
    counters      {_id: "generations", seq}                     (never watched)

A missing ``value``/``from``/``to`` field means "absent" (unset). Every write
returns the cluster time of its commit as one integer (``seconds << 32 | inc``),
which a reader passes as ``min_revision`` to read its own write.

Nothing here does I/O: these are names, shapes and functions of documents.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final

from bson import Timestamp
from pymongo import ASCENDING, IndexModel

from genconf.domain import config, names, schema, values
from genconf.domain.authorship import Authorship
from genconf.domain.config import Change
from genconf.domain.values import ABSENT

APPLICATIONS: Final = "applications"
UNITS: Final = "units"
BRANCHES: Final = "branches"
VERSIONS: Final = "versions"
GENERATIONS: Final = "generations"
TOKENS: Final = "tokens"
# Write-side bookkeeping that the change stream never follows: `fences` (see
# `genconf.store.mongo.fence`) and `counters` (the generation sequence).
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


def revision_of(ts: Timestamp) -> int:
    """A cluster time as one ordered integer, the same on every replica."""
    return (ts.time << 32) | ts.inc


def timestamp_of(revision: int) -> Timestamp:
    return Timestamp(revision >> 32, revision & 0xFFFFFFFF)


def version_id(application: str, version: int) -> str:
    return f"{application}@{version}"


def schema_of(app_doc: Mapping[str, Any]) -> dict[str, schema.OptionSpec]:
    return schema.parse_schema(app_doc.get("schema", {}))


def secret_keys(app_doc: Mapping[str, Any]) -> list[str]:
    """The keys secret under the application's schema now: kept with each version and
    generation, so history stays redacted even if a later schema makes them public."""
    return sorted(key for key, spec in app_doc.get("schema", {}).items() if spec.get("secret"))


def changes_of(doc: Mapping[str, Any]) -> dict[str, Change]:
    return {key: Change.from_doc(c) for key, c in doc.items()}


def from_to(before: Any, after: Any) -> dict[str, Any]:
    """A generation's record of one key: what it held and holds (absent: no field)."""
    entry: dict[str, Any] = {}
    if before is not ABSENT:
        entry["from"] = before
    if after is not ABSENT:
        entry["to"] = after
    return entry


def settings_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Every key whose value differs between two settings, as `from_to` records."""
    return {
        key: from_to(old.get(key, ABSENT), new.get(key, ABSENT))
        for key in sorted(set(old) | set(new))
        if not values.values_equal(old.get(key, ABSENT), new.get(key, ABSENT))
    }


def new_uid() -> str:
    """An application's or unit's identity for its lifetime: a name removed and
    created again gets a new one, so credentials bound to the old one stop working."""
    return uuid.uuid4().hex


def unit_doc(app: Mapping[str, Any], number: int, branch: str | None) -> dict[str, Any]:
    """A new unit of ``app`` (its document): a new incarnation, with its own uid."""
    return {
        "_id": names.unit_name(app["_id"], number),
        "uid": new_uid(),
        "application": app["_id"],
        "application_uid": app.get("uid", ""),
        "number": number,
        "branch": branch,
        "applied": None,
        "revision": 1,
    }


def version_doc(
    application: str,
    version: int,
    settings: Mapping[str, Any],
    *,
    previous_version: int,
    generation: int | None,
    secret: list[str],
    timestamp: dt.datetime,
    reason: str,
    author: Authorship,
    metadata: Mapping[str, Any],
) -> dict[str, Any]:
    """Version ``version`` of ``application``, holding ``settings``: the one place a
    version document is built (``generation`` None: the application's first version)."""
    return {
        "_id": version_id(application, version),
        "application": application,
        "version": version,
        "settings": settings,
        "timestamp": timestamp,
        "reason": reason,
        **author.fields(),
        "metadata": dict(metadata),
        "previous_version": previous_version,
        "generation": generation,
        "tags": [],
        "secret_keys": secret,
        "revision": 1,
    }


def effective_from_docs(app: Mapping[str, Any], branch: Mapping[str, Any] | None) -> dict[str, Any]:
    """A unit's effective config straight from documents (for recomputation checks)."""
    changes = changes_of(branch["changes"].get(app["_id"], {})) if branch else None
    return config.effective_config(schema_of(app), app["settings"], changes)


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
