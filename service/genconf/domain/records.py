"""The model's documents as typed, immutable values.

The multiwatcher builds these from change-stream documents; the cache holds them.
Equality is structural, so a reload can tell which objects really changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from genconf.domain.cohorts import Cohort
from genconf.domain.config import Change
from genconf.domain.schema import OptionSpec, parse_schema

_SCHEMA_MEMO_LIMIT: Final = 4096
# Per application: the last stored schema seen and its parsed form.
_schema_memo: dict[str, tuple[Mapping[str, Any], Mapping[str, OptionSpec]]] = {}


def parsed_schema(application: str, doc: Mapping[str, Any]) -> Mapping[str, OptionSpec]:
    """The parsed schema, validated once per change of an application's schema.

    Every application event carries the schema, but it rarely changes; full
    validation per event was half of the multiwatcher's cost (bench ingest).
    Sharing one parsed object also makes equality checks between app states cheap.
    """
    memo = _schema_memo.get(application)
    if memo is not None and memo[0] == doc:
        return memo[1]
    if len(_schema_memo) >= _SCHEMA_MEMO_LIMIT:
        _schema_memo.clear()
    schema = parse_schema(doc)
    _schema_memo[application] = (doc, schema)
    return schema


@dataclass(frozen=True, slots=True)
class Application:
    name: str
    charm: str
    schema: Mapping[str, OptionSpec]
    settings: Mapping[str, Any]
    version: int
    next_unit: int
    # How many times the stored document was written (its `revision` field): a
    # per-document counter, not the cluster-time revision of a change.
    write_count: int
    # Given at creation: a re-created name is a new application ("" before uids).
    uid: str = ""

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Application:
        return cls(
            name=doc["_id"],
            charm=doc.get("charm", ""),
            schema=parsed_schema(doc["_id"], doc.get("schema", {})),
            settings=dict(doc.get("settings", {})),
            version=int(doc.get("version", 1)),
            next_unit=int(doc.get("next_unit", 0)),
            write_count=int(doc.get("revision", 0)),
            uid=doc.get("uid", ""),
        )


# What an agent's health command says of its unit, as stored ("unknown": no health
# command, or a report from before health was kept).
HEALTH_STATES: Final = ("unknown", "healthy", "unhealthy")


@dataclass(frozen=True, slots=True)
class AppliedReport:
    """An agent's latest report of what it applied, and how healthy the unit is."""

    hash: str
    ok: bool
    message: str
    at: dt.datetime | None
    health: str = "unknown"  # one of HEALTH_STATES
    health_message: str = ""
    # Since when the unit is `health` on config `hash` (None while unknown).
    health_since: dt.datetime | None = None

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> AppliedReport | None:
        if not doc:
            return None
        health = doc.get("health", "unknown")
        return cls(
            doc.get("hash", ""),
            bool(doc.get("ok")),
            doc.get("message", ""),
            doc.get("at"),
            health if health in HEALTH_STATES else "unknown",
            doc.get("health_message", ""),
            doc.get("health_since"),
        )


@dataclass(frozen=True, slots=True)
class Unit:
    name: str
    application: str
    number: int
    branch: str | None
    applied: AppliedReport | None
    # How many times the stored document was written (its `revision` field): a
    # per-document counter, not the cluster-time revision of a change.
    write_count: int
    # This incarnation of the unit (agent tokens are bound to it) and its
    # application's; "" for units created before uids were kept.
    uid: str = ""
    application_uid: str = ""
    # zone=a: what cohorts select on (`genconf.domain.labels`); stored only when set.
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Unit:
        return cls(
            name=doc["_id"],
            application=doc["application"],
            number=int(doc["number"]),
            branch=doc.get("branch"),
            applied=AppliedReport.from_doc(doc.get("applied")),
            write_count=int(doc.get("revision", 0)),
            uid=doc.get("uid", ""),
            application_uid=doc.get("application_uid", ""),
            labels=dict(doc.get("labels") or {}),
        )


@dataclass(frozen=True, slots=True)
class Branch:
    name: str
    created_by: str
    created_at: dt.datetime | None
    track_applications: tuple[str, ...]
    changes: Mapping[str, Mapping[str, Change]]
    # How many times the stored document was written (its `revision` field): a
    # per-document counter, not the cluster-time revision of a change.
    write_count: int
    # The name the client gave when created_by is a verified token (see Version).
    on_behalf_of: str = ""
    authenticated: bool = False
    # Applications it tracks a stable cohort of: their later units join by the rule.
    cohorts: Mapping[str, Cohort] = field(default_factory=dict)
    # When the server aborts it (forced); None: never.
    expires_at: dt.datetime | None = None

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Branch:
        return cls(
            name=doc["_id"],
            created_by=doc.get("created_by", ""),
            created_at=doc.get("created_at"),
            track_applications=tuple(doc.get("track_applications", ())),
            changes={
                app: {key: Change.from_doc(c) for key, c in changes.items()}
                for app, changes in doc.get("changes", {}).items()
            },
            write_count=int(doc.get("revision", 0)),
            on_behalf_of=doc.get("on_behalf_of", ""),
            authenticated=bool(doc.get("authenticated", False)),
            cohorts={
                app: Cohort.from_doc(cohort) for app, cohort in (doc.get("cohorts") or {}).items()
            },
            expires_at=doc.get("expires_at"),
        )


@dataclass(frozen=True, slots=True)
class Generation:
    id: int
    kind: str
    branch: str | None
    changes: Mapping[str, Mapping[str, Mapping[str, Any]]]
    created_by: str
    created_at: dt.datetime | None
    reason: str
    versions: Mapping[str, int] = field(default_factory=dict)
    # Per application, its secret options when written: history is redacted by them.
    secret_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    on_behalf_of: str = ""
    authenticated: bool = False
    # Per application, its uid when written: a name re-created since has another.
    application_uids: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Generation:
        return cls(
            id=int(doc["_id"]),
            kind=doc.get("kind", ""),
            branch=doc.get("branch"),
            changes=doc.get("changes", {}),
            created_by=doc.get("created_by", ""),
            created_at=doc.get("created_at"),
            reason=doc.get("reason", ""),
            versions=dict(doc.get("versions", {})),
            secret_keys={a: tuple(k) for a, k in doc.get("secret_keys", {}).items()},
            on_behalf_of=doc.get("on_behalf_of", ""),
            authenticated=bool(doc.get("authenticated", False)),
            application_uids=dict(doc.get("application_uids", {})),
        )
