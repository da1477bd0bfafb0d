"""Conversions between genconf's records and the `genconf.v1` messages.

Config values travel as `google.protobuf.Value` (numbers are doubles there), so
every `Config` also carries the canonical JSON, whose types are exact. A double
is an exact integer only within ±`schema.MAX_EXACT_INT`: integral numbers in that
range come back as ints; larger ones stay floats, which the model refuses
anywhere but in a `float` option (a rounded integer must not pass for a value).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from genconf.api.rollout_convert import rollout_to_proto
from genconf.domain import diff, schema, values
from genconf.domain.config import effective_config
from genconf.domain.deltas import Delta
from genconf.domain.records import Application, AppliedReport, Branch, Generation, Unit
from genconf.domain.rollouts import Rollout
from genconf.domain.values import ABSENT
from genconf.errors import ConflictedKey, MismatchedKey
from genconf.readside.cache import ModelCache
from genconf.readside.core import EffectiveConfig, UnitConfig
from genconf.v1 import admin_pb2, types_pb2
from genconf.wire import health_value, to_struct, to_timestamp, to_value


def expected_version(request: Any) -> int | None:
    """A write request's optional ``expected_version`` (None: not given)."""
    return request.expected_version if request.HasField("expected_version") else None


def option_to_proto(spec: schema.OptionSpec) -> types_pb2.OptionSchema:
    out = types_pb2.OptionSchema(
        type=spec.type.value, description=spec.description, secret=spec.secret
    )
    if spec.default is not ABSENT:
        out.default.CopyFrom(to_value(spec.default))
    return out


def application_to_proto(
    app: Application, units: list[str], effective: Mapping[str, Any] | None = None
) -> types_pb2.Application:
    """``effective``: the application's effective config where the caller holds it
    already (the cache's memoized one), else computed here."""
    if effective is None:
        effective = effective_config(app.schema, app.settings)
    return types_pb2.Application(
        name=app.name,
        charm=app.charm,
        schema={k: option_to_proto(s) for k, s in app.schema.items()},
        settings=to_struct(app.settings),
        effective=to_struct(effective),
        version=app.version,
        units=units,
        uid=app.uid,
    )


def applications_to_proto(
    cache: ModelCache, effective: Callable[[Application], Mapping[str, Any]] | None = None
) -> list[types_pb2.Application]:
    """Every application of ``cache`` in name order, with its units (``effective``:
    where each one's effective config comes from, see `application_to_proto`)."""
    return [
        application_to_proto(
            app,
            [u.name for u in cache.units_of(app.name)],
            None if effective is None else effective(app),
        )
        for _, app in sorted(cache.applications.items())
    ]


def applied_to_proto(report: AppliedReport | None) -> types_pb2.AppliedReport | None:
    if report is None:
        return None
    return types_pb2.AppliedReport(
        hash=report.hash,
        ok=report.ok,
        message=report.message,
        at=to_timestamp(report.at),
        health=health_value(report.health),
        health_message=report.health_message,
        health_since=to_timestamp(report.health_since),
    )


def unit_to_proto(unit: Unit) -> types_pb2.Unit:
    return types_pb2.Unit(
        name=unit.name,
        application=unit.application,
        branch=unit.branch or "",
        applied=applied_to_proto(unit.applied),
        uid=unit.uid,
        application_uid=unit.application_uid,
        labels=dict(unit.labels),
    )


def branch_to_proto(branch: Branch, units: list[str]) -> types_pb2.Branch:
    changes = []
    for app in sorted(branch.changes):
        entries = []
        for key, change in sorted(branch.changes[app].items()):
            entry = types_pb2.BranchChange(
                key=key, op=change.op.value, has_from=change.from_ is not ABSENT
            )
            if change.value is not ABSENT:
                entry.value.CopyFrom(to_value(change.value))
            if change.from_ is not ABSENT:
                getattr(entry, "from").CopyFrom(to_value(change.from_))
            entries.append(entry)
        changes.append(types_pb2.ApplicationChanges(application=app, changes=entries))
    return types_pb2.Branch(
        name=branch.name,
        created_by=branch.created_by,
        on_behalf_of=branch.on_behalf_of,
        authenticated=branch.authenticated,
        created_at=to_timestamp(branch.created_at),
        track_applications=list(branch.track_applications),
        changes=changes,
        units=units,
        cohorts=[
            types_pb2.Cohort(application=app, percent=cohort.percent, selector=str(cohort.selector))
            for app, cohort in sorted(branch.cohorts.items())
        ],
        expires_at=to_timestamp(branch.expires_at),
    )


def branches_to_proto(cache: ModelCache) -> list[types_pb2.Branch]:
    """Every branch of ``cache`` in name order, with the units tracking it."""
    return [
        branch_to_proto(branch, [u.name for u in cache.tracking(branch.name)])
        for _, branch in sorted(cache.branches.items())
    ]


def generation_to_proto(gen: Generation) -> types_pb2.Generation:
    changes = []
    for app in sorted(gen.changes):
        entries = []
        for key, ft in sorted(gen.changes[app].items()):
            entry = types_pb2.KeyChange(key=key, has_from="from" in ft, has_to="to" in ft)
            if "from" in ft:
                getattr(entry, "from").CopyFrom(to_value(ft["from"]))
            if "to" in ft:
                entry.to.CopyFrom(to_value(ft["to"]))
            entries.append(entry)
        changes.append(
            types_pb2.ApplicationKeyChanges(
                application=app, changes=entries, secret_keys=gen.secret_keys.get(app, ())
            )
        )
    return types_pb2.Generation(
        id=gen.id,
        kind=gen.kind,
        branch=gen.branch or "",
        changes=changes,
        created_by=gen.created_by,
        on_behalf_of=gen.on_behalf_of,
        authenticated=gen.authenticated,
        created_at=to_timestamp(gen.created_at),
        reason=gen.reason,
        versions=dict(gen.versions),
        application_uids=dict(gen.application_uids),
    )


def config_to_proto(unit: str, effective: EffectiveConfig) -> types_pb2.Config:
    """The unit's Config message; the unit-independent part is encoded once per
    distinct config and shared by every subscriber of the group."""
    shared = effective.encoded.get("config")
    if shared is None:
        config_json = values.canonical_json(effective.config).decode()
        shared = types_pb2.Config(
            application=effective.application,
            branch=effective.branch or "",
            config=to_struct(json.loads(config_json)),
            config_json=config_json,
            hash=effective.hash,
            app_version=effective.app_version,
            revision=effective.revision,
        )
        effective.encoded["config"] = shared
    out = types_pb2.Config()
    out.CopyFrom(shared)
    out.unit = unit
    return out


def delta_to_proto(delta: Delta) -> admin_pb2.Delta:
    out = admin_pb2.Delta(kind=delta.kind.value, key=delta.key, removed=delta.removed)
    value = delta.value
    if isinstance(value, Application):
        out.application.CopyFrom(application_to_proto(value, []))
    elif isinstance(value, Unit):
        out.unit.CopyFrom(unit_to_proto(value))
    elif isinstance(value, Branch):
        out.branch.CopyFrom(branch_to_proto(value, []))
    elif isinstance(value, Generation):
        out.generation.CopyFrom(generation_to_proto(value))
    elif isinstance(value, Rollout):
        out.rollout.CopyFrom(rollout_to_proto(value))
    return out


def conflict_to_proto(k: ConflictedKey) -> types_pb2.ConflictDetail:
    return types_pb2.ConflictDetail(
        application=k.application,
        key=k.key,
        current=values.show_value(k.current),
        proposed=values.show_value(k.proposed),
        **{"from": values.show_value(k.expected)},
    )


def mismatch_to_proto(k: MismatchedKey) -> types_pb2.KeyMismatch:
    return types_pb2.KeyMismatch(
        application=k.application,
        key=k.key,
        expected=values.show_value(k.expected),
        actual=values.show_value(k.actual),
        branch=k.branch,
    )


def _diff_entry(kind: str, entry: diff.DiffEntry) -> types_pb2.DiffEntry:
    out = types_pb2.DiffEntry(
        path=entry.path,
        kind=kind,
        has_old=entry.old is not ABSENT,
        has_new=entry.new is not ABSENT,
        text_diff=entry.text_diff,
    )
    if entry.old is not ABSENT:
        out.old.CopyFrom(to_value(entry.old))
    if entry.new is not ABSENT:
        out.new.CopyFrom(to_value(entry.new))
    return out


def diff_to_proto(d: diff.Diff) -> list[types_pb2.DiffEntry]:
    """Entries grouped added, removed, changed; each group in path order."""
    groups = (("added", d.added), ("removed", d.removed), ("changed", d.changed))
    return [_diff_entry(kind, e) for kind, group in groups for e in group]


def version_to_proto(doc: Mapping[str, Any]) -> types_pb2.Version:
    return types_pb2.Version(
        application=doc["application"],
        version=int(doc["version"]),
        settings=to_struct(doc.get("settings", {})),
        timestamp=to_timestamp(doc.get("timestamp")),
        reason=doc.get("reason", ""),
        created_by=doc.get("created_by", ""),
        on_behalf_of=doc.get("on_behalf_of", ""),
        authenticated=bool(doc.get("authenticated", False)),
        metadata=to_struct(doc.get("metadata", {})),
        previous_version=int(doc.get("previous_version") or 0),
        generation=int(doc.get("generation") or 0),
        tags=list(doc.get("tags", [])),
        secret_keys=list(doc.get("secret_keys", [])),
    )


def unit_applied_to_proto(unit: Unit, config: UnitConfig) -> types_pb2.UnitApplied:
    """Whether ``unit`` reported its current effective config as applied and ok."""
    report = unit.applied
    out = types_pb2.UnitApplied(
        unit=unit.name,
        hash=config.hash,
        applied=report is not None and report.ok and report.hash == config.hash,
    )
    if report is not None:
        out.report.CopyFrom(applied_to_proto(report))
    return out
