"""The stable machine-readable shape of every object `genconf` prints and the
JSON API returns.

`-o json`, `-o yaml` and the HTTP API give exactly these dicts, so scripts may rely on them:
every key is always present (``null`` where a value is absent: config values are
never null, so ``null`` is unambiguous), config values keep their exact JSON
types, timestamps are ISO 8601 in UTC. `genconf.cli.render` draws the people's
view of the same data (`-o table`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from google.protobuf import timestamp_pb2

from genconf.client.results import Config
from genconf.domain.results import WriteResult
from genconf.v1 import admin_pb2, types_pb2
from genconf.v1 import controller_pb2 as cpb
from genconf.v1 import history_pb2 as hpb
from genconf.v1 import rollout_pb2 as rpb
from genconf.v1 import tokens_pb2 as tpb
from genconf.wire import from_struct, from_value, health_name

Data = dict[str, Any]
Schema = Mapping[str, types_pb2.OptionSchema]
NO_SCHEMA: Schema = {}


def timestamp(ts: timestamp_pb2.Timestamp, present: bool = True) -> str | None:
    if not present:
        return None
    return ts.ToDatetime(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


def _value(msg: Any, name: str, present: bool | None = None) -> Any:
    """A `google.protobuf.Value` field as plain data; None when absent."""
    has = msg.HasField(name) if present is None else present
    return from_value(getattr(msg, name)) if has else None


def typed_value(option: types_pb2.OptionSchema | None, value: Any) -> Any:
    """One value as its option types it: a Struct carries numbers as doubles, which
    `from_value` turns back into ints when integral, so an integral float option
    (2.0) would otherwise print as an int."""
    if option is not None and option.type == "float" and type(value) is int:
        return float(value)
    return value


def typed(schema: Schema, values: Mapping[str, Any]) -> Data:
    """Values as the schema types them (see `typed_value`)."""
    return {key: typed_value(schema.get(key), value) for key, value in values.items()}


def write_view(w: WriteResult) -> Data:
    return {
        "revision": w.revision,
        "generation": w.generation or None,
        "versions": dict(w.versions),
        "units": list(w.units),
    }


def track_view(w: WriteResult) -> Data:
    """A TrackBranch write: the units it moved onto the branch, and those of a cohort
    it left on another branch (unit -> why)."""
    return {**write_view(w), "skipped": dict(sorted(w.skipped.items()))}


def option_view(option: types_pb2.OptionSchema) -> Data:
    return {
        "type": option.type,
        "default": typed_value(option, _value(option, "default")),
        "description": option.description,
        "secret": option.secret,
    }


def application_view(app: types_pb2.Application) -> Data:
    return {
        "name": app.name,
        "charm": app.charm,
        "version": app.version,
        "units": list(app.units),
        "schema": {k: option_view(app.schema[k]) for k in sorted(app.schema)},
        "settings": typed(app.schema, from_struct(app.settings)),
        "effective": typed(app.schema, from_struct(app.effective)),
    }


def applied_view(unit: types_pb2.Unit) -> Data | None:
    if not unit.HasField("applied"):
        return None
    report = unit.applied
    return {
        "hash": report.hash,
        "ok": report.ok,
        "message": report.message,
        "at": timestamp(report.at, report.HasField("at")),
        "health": health_name(report.health),
        "health_message": report.health_message,
        "health_since": timestamp(report.health_since, report.HasField("health_since")),
    }


def unit_view(unit: types_pb2.Unit) -> Data:
    return {
        "name": unit.name,
        "application": unit.application,
        "branch": unit.branch or None,
        "applied": applied_view(unit),
        "labels": dict(sorted(unit.labels.items())),
    }


def branch_changes_view(branch: types_pb2.Branch) -> dict[str, Data]:
    return {
        group.application: {
            c.key: {
                "op": c.op,
                "value": _value(c, "value", c.op == "set"),
                "from": _value(c, "from", c.has_from),
            }
            for c in group.changes
        }
        for group in branch.changes
    }


def branch_view(branch: types_pb2.Branch) -> Data:
    return {
        "name": branch.name,
        "created_by": branch.created_by,
        "on_behalf_of": branch.on_behalf_of or None,
        "authenticated": branch.authenticated,
        "created_at": timestamp(branch.created_at, branch.HasField("created_at")),
        "expires_at": timestamp(branch.expires_at, branch.HasField("expires_at")),
        "track_applications": list(branch.track_applications),
        "units": list(branch.units),
        "changes": branch_changes_view(branch),
        "cohorts": {
            c.application: {"percent": c.percent, "selector": c.selector or None}
            for c in branch.cohorts
        },
    }


def diff_entry_view(e: types_pb2.DiffEntry, schema: Schema = NO_SCHEMA) -> Data:
    """One difference; a top-level key's values typed by ``schema`` (a path inside
    an object value names no option, so it stays as the server sent it)."""
    option = schema.get(e.path)
    return {
        "path": e.path,
        "kind": e.kind,
        "old": typed_value(option, _value(e, "old", e.has_old)),
        "new": typed_value(option, _value(e, "new", e.has_new)),
        "text_diff": e.text_diff,
    }


def diff_view(reply: cpb.DiffBranchResponse) -> Data:
    return {
        "branch": reply.branch,
        "revision": reply.revision,
        "applications": [
            {
                "application": app.application,
                "entries": [diff_entry_view(e) for e in app.entries],
                "conflicts": [conflict_view(c) for c in app.conflicts],
            }
            for app in reply.applications
        ],
    }


def conflict_view(c: types_pb2.ConflictDetail) -> Data:
    """Values as the server shows them (JSON text, or "absent")."""
    return {
        "application": c.application,
        "key": c.key,
        "from": getattr(c, "from"),
        "current": c.current,
        "proposed": c.proposed,
    }


def config_view(config: Config) -> Data:
    return {
        "unit": config.unit,
        "application": config.application,
        "branch": config.branch or None,
        "config": dict(config.config),
        "hash": config.hash,
        "app_version": config.app_version,
        "revision": config.revision,
    }


def app_config_view(app: types_pb2.Application) -> Data:
    return {
        "application": app.name,
        "version": app.version,
        "settings": typed(app.schema, from_struct(app.settings)),
        "effective": typed(app.schema, from_struct(app.effective)),
    }


def _key_change_view(c: types_pb2.KeyChange, option: types_pb2.OptionSchema | None) -> Data:
    return {
        "from": typed_value(option, _value(c, "from", c.has_from)),
        "to": typed_value(option, _value(c, "to", c.has_to)),
    }


def generation_view(gen: types_pb2.Generation, schemas: Mapping[str, Schema] | None = None) -> Data:
    """``schemas`` (application -> schema) types the values; an application removed
    since keeps the server's numbers (integral ones as ints)."""
    schemas = schemas or {}
    return {
        "id": gen.id,
        "kind": gen.kind,
        "branch": gen.branch or None,
        "changes": {
            group.application: {
                c.key: _key_change_view(c, schemas.get(group.application, NO_SCHEMA).get(c.key))
                for c in group.changes
            }
            for group in gen.changes
        },
        "created_by": gen.created_by,
        "on_behalf_of": gen.on_behalf_of or None,
        "authenticated": gen.authenticated,
        "created_at": timestamp(gen.created_at, gen.HasField("created_at")),
        "reason": gen.reason,
        "versions": dict(gen.versions),
        "application_uids": dict(gen.application_uids),
    }


def version_view(v: types_pb2.Version, schema: Schema) -> Data:
    """``schema``: the application's current one (a version carries none), which is
    also the schema the server diffs versions under."""
    return {
        "application": v.application,
        "version": v.version,
        "settings": typed(schema, from_struct(v.settings)),
        "metadata": from_struct(v.metadata),
        "timestamp": timestamp(v.timestamp, v.HasField("timestamp")),
        "reason": v.reason,
        "created_by": v.created_by,
        "on_behalf_of": v.on_behalf_of or None,
        "authenticated": v.authenticated,
        "previous_version": v.previous_version or None,
        "generation": v.generation or None,
        "tags": list(v.tags),
    }


def version_diff_view(d: hpb.DiffVersionsResponse, schema: Schema) -> Data:
    """Labels are each side's highest (null when it has none); ``summary`` is the
    server's one line, e.g. ``web 1.0.0 -> 1.1.0: 2 changed, 1 added, 0 removed``."""
    return {
        "application": d.application,
        "from_version": d.from_version,
        "to_version": d.to_version,
        "from_label": d.from_label or None,
        "to_label": d.to_label or None,
        "added": d.added,
        "removed": d.removed,
        "changed": d.changed,
        "summary": d.summary,
        "entries": [diff_entry_view(e, schema) for e in d.entries],
    }


def key_diff_view(d: hpb.DiffVersionsResponse, key: str, diff: str) -> Data:
    """``version diff --key``: one text value's unified diff ("" when it is the same)."""
    return {
        "application": d.application,
        "key": key,
        "from_version": d.from_version,
        "to_version": d.to_version,
        "from_label": d.from_label or None,
        "to_label": d.to_label or None,
        "diff": diff,
    }


def label_view(label: hpb.LabelResponse) -> Data:
    return {
        "application": label.application,
        "version": label.version,
        "label": label.label,
        "revision": label.revision,
    }


def latest_view(latest: hpb.LatestVersionResponse) -> Data:
    return {
        "application": latest.application,
        "version": latest.version,
        "label": latest.label or None,
        "label_version": latest.label_version or None,
    }


def key_history_view(h: hpb.KeyHistoryResponse, schema: Schema) -> list[Data]:
    """Newest first; ``value`` is null where the key had no value (unset, no default)."""
    option = schema.get(h.key)
    return [
        {
            "version": e.version,
            "value": typed_value(option, _value(e, "value", e.has_value)),
            "is_default": e.is_default,
            "created_by": e.created_by,
            "timestamp": timestamp(e.timestamp, e.HasField("timestamp")),
            "reason": e.reason,
            "generation": e.generation or None,
        }
        for e in h.entries
    ]


def token_view(info: tpb.TokenInfo) -> Data:
    """Never the secret: the server keeps only its hash."""
    return {
        "id": info.id,
        "name": info.name or None,
        "role": info.role,
        "unit": info.unit or None,
        "unit_uid": info.unit_uid or None,
        "created_by": info.created_by,
        "created_at": timestamp(info.created_at, info.HasField("created_at")),
        "expires_at": timestamp(info.expires_at, info.HasField("expires_at")),
        "revoked": info.revoked,
        "description": info.description,
    }


def created_token_view(created: tpb.CreateTokenResponse) -> Data:
    """The one place a token's secret is ever printed."""
    return {"token": created.token, **token_view(created.info)}


def size_text(size: rpb.RolloutSize) -> str:
    """A rollout step or failure budget as people write it: ``1`` or ``10%``."""
    if size.WhichOneof("size") == "percent":
        return f"{size.percent:g}%"
    return str(size.units)


def transition_view(t: rpb.RolloutTransition) -> Data:
    return {
        "at": timestamp(t.at, t.HasField("at")),
        "by": t.by,
        "from": getattr(t, "from") or None,
        "to": t.to,
        "step": t.step + 1,
        "why": t.why,
        "epoch": t.epoch or None,
        "tracked": t.tracked,
    }


# What a rollout's view holds from the server's cache of the moment (not on the feed).
ROLLOUT_NOW = ("tracking", "behind", "candidates", "step_size")


def rollout_view(r: rpb.Rollout) -> Data:
    """A rollout; ``step`` counts from 1 (``step 2/4``), here and in transitions."""
    return {
        "branch": r.branch,
        "application": r.application,
        "steps": [size_text(s) for s in r.steps],
        "bake_seconds": r.bake_seconds,
        "max_failed": size_text(r.max_failed),
        "on_failure": r.on_failure,
        "commit": r.commit,
        "selector": r.selector or None,
        "state": r.state,
        "step": r.step + 1,
        "phase": r.phase,
        "bake_until": timestamp(r.bake_until, r.HasField("bake_until")),
        "reason": r.reason or None,
        "failed": list(r.failed),
        "skipped": dict(sorted(r.skipped.items())),
        "created_by": r.created_by,
        "on_behalf_of": r.on_behalf_of,
        "authenticated": r.authenticated,
        "created_at": timestamp(r.created_at, r.HasField("created_at")),
        "updated_at": timestamp(r.updated_at, r.HasField("updated_at")),
        "note": r.note or None,
        "tracking": list(r.tracking),
        "behind": list(r.behind),
        "candidates": r.candidates,
        "step_size": r.step_size,
        "transitions": [transition_view(t) for t in r.transitions],
    }


def delta_view(revision: int, delta: admin_pb2.Delta) -> Data:
    value: Data | None = None
    kind = delta.WhichOneof("value")
    # Deltas carry applications and branches without their units (units have
    # deltas of their own), so those views leave "units" out rather than say [].
    if kind == "application":
        value = application_view(delta.application)
        del value["units"]
    elif kind == "unit":
        value = unit_view(delta.unit)
    elif kind == "branch":
        value = branch_view(delta.branch)
        del value["units"]
    elif kind == "generation":
        value = generation_view(delta.generation)
    elif kind == "rollout":
        value = rollout_view(delta.rollout)
        for field in ROLLOUT_NOW:
            del value[field]
    return {
        "revision": revision,
        "kind": delta.kind,
        "key": delta.key,
        "removed": delta.removed,
        "value": value,
    }


def unit_status_view(u: cpb.UnitStatus) -> Data:
    """One unit of `status_view`: its state and its agent's latest report, flat (every
    report field null when it never reported)."""
    report = u.report if u.HasField("report") else None
    return {
        "name": u.unit,
        "branch": u.branch or None,
        "state": u.state,
        "reported_at": None if report is None else timestamp(report.at, report.HasField("at")),
        "hash": None if report is None else report.hash,
        "ok": None if report is None else report.ok,
        "message": None if report is None else report.message,
        "health": None if report is None else health_name(report.health),
        "health_message": None if report is None else report.health_message,
        "health_since": None
        if report is None
        else timestamp(report.health_since, report.HasField("health_since")),
    }


def status_view(reply: cpb.StatusResponse) -> Data:
    """`genconf status -o json`: per application its version and label (null: none),
    ``counts`` of its units per state (current, behind, failed, unreported: what a
    script checks), the branches in flight for it, and each unit's state."""
    return {
        "revision": reply.revision,
        "applications": [
            {
                "name": a.application,
                "version": a.version,
                "label": a.label or None,
                "counts": {
                    "current": a.current,
                    "behind": a.behind,
                    "failed": a.failed,
                    "unreported": a.unreported,
                },
                "branches": [
                    {"name": b.branch, "units": b.units, "keys": b.keys} for b in a.branches
                ],
                "units": [unit_status_view(u) for u in a.units],
            }
            for a in reply.applications
        ],
    }
