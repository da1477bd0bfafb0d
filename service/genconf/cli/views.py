"""The stable machine-readable shape of every object `genconf` prints.

`-o json` and `-o yaml` print exactly these dicts, so scripts may rely on them:
every key is always present (``null`` where a value is absent: config values are
never null, so ``null`` is unambiguous), config values keep their exact JSON
types, timestamps are ISO 8601 in UTC. The ``render_*`` functions are the
people's view of the same data (`-o table`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import timestamp_pb2

from genconf.cli.output import Output, Renderer, show
from genconf.client import Config, WriteResult
from genconf.v1 import admin_pb2, types_pb2
from genconf.v1 import controller_pb2 as cpb
from genconf.v1 import history_pb2 as hpb
from genconf.v1 import tokens_pb2 as tpb
from genconf.wire import from_struct, from_value

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
    }


def unit_view(unit: types_pb2.Unit) -> Data:
    return {
        "name": unit.name,
        "application": unit.application,
        "branch": unit.branch or None,
        "applied": applied_view(unit),
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
        "track_applications": list(branch.track_applications),
        "units": list(branch.units),
        "changes": branch_changes_view(branch),
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
    return {
        "application": d.application,
        "from_version": d.from_version,
        "to_version": d.to_version,
        "entries": [diff_entry_view(e, schema) for e in d.entries],
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
    return {
        "revision": revision,
        "kind": delta.kind,
        "key": delta.key,
        "removed": delta.removed,
        "value": value,
    }


# -- people's views -----------------------------------------------------------


def author_text(d: Data) -> str:
    """Who wrote a version, generation or branch, as the record vouches for it: a
    token the server verified (and the name its client gave), or a name nobody did."""
    by = d["created_by"]
    if not d["authenticated"]:
        return f"{by} (unauthenticated)" if by else "-"
    if d["on_behalf_of"]:
        return f"{by}, on behalf of {d['on_behalf_of']}"
    return by or "-"


def short_hash(h: str | None) -> str:
    return h[:12] if h else "-"


def applied_text(out: Output, applied: Data | None) -> str:
    if applied is None:
        return out.style.dim("not reported")
    state = out.style.green("ok") if applied["ok"] else out.style.red("failed")
    return f"{short_hash(applied['hash'])} {state}"


def render_applications(apps: list[Data]) -> Renderer:
    def render(out: Output) -> list[str]:
        rows = [(a["name"], a["charm"], str(a["version"]), str(len(a["units"]))) for a in apps]
        return out.table(("NAME", "CHARM", "VERSION", "UNITS"), rows, empty="no applications")

    return render


def render_application(app: Data) -> Renderer:
    def render(out: Output) -> list[str]:
        lines = out.fields(
            [
                ("application", out.style.cyan(app["name"])),
                ("charm", app["charm"]),
                ("version", str(app["version"])),
                ("units", ", ".join(app["units"]) or "-"),
            ]
        )
        rows = []
        for key, option in app["schema"].items():
            value = app["effective"].get(key)
            set_here = key in app["settings"]
            rows.append(
                (
                    key,
                    option["type"],
                    show(option["default"]),
                    out.style.yellow(show(value)) if set_here else show(value),
                    option["description"],
                )
            )
        lines.append("")
        lines += out.table(
            ("KEY", "TYPE", "DEFAULT", "VALUE", "DESCRIPTION"), rows, empty="no schema"
        )
        return lines

    return render


def render_units(units: list[Data]) -> Renderer:
    def render(out: Output) -> list[str]:
        rows = []
        for u in units:
            applied = u["applied"]
            message = applied["message"] if applied else ""
            rows.append((u["name"], u["branch"] or "-", applied_text(out, applied), message or ""))
        return out.table(("UNIT", "BRANCH", "APPLIED", "MESSAGE"), rows, empty="no units")

    return render


def render_config(rows: Iterable[tuple[str, Any, str]], header: list[tuple[str, str]]) -> Renderer:
    """Key, value and where the value comes from (default, master, branch NAME)."""
    items = list(rows)

    def render(out: Output) -> list[str]:
        lines = out.fields(header)
        table_rows = []
        for key, value, source in items:
            colour = out.style.dim if source == "default" else out.style.yellow
            table_rows.append((key, show(value), colour(source)))
        lines.append("")
        lines += out.table(("KEY", "VALUE", "SOURCE"), table_rows, empty="no config")
        return lines

    return render


def render_branches(branches: list[Data]) -> Renderer:
    def render(out: Output) -> list[str]:
        rows = []
        for b in branches:
            changed = sum(len(keys) for keys in b["changes"].values())
            tracking = ", ".join([*(f"{a}/*" for a in b["track_applications"]), *b["units"]])
            rows.append((b["name"], author_text(b), tracking or "-", str(changed)))
        return out.table(
            ("BRANCH", "CREATED BY", "TRACKED BY", "CHANGES"), rows, empty="no active branches"
        )

    return render


def render_branch(branch: Data) -> Renderer:
    def render(out: Output) -> list[str]:
        lines = out.fields(
            [
                ("branch", out.style.cyan(branch["name"])),
                ("created", f"{branch['created_at'] or '-'} by {author_text(branch)}"),
                ("applications", ", ".join(branch["track_applications"]) or "-"),
                ("units", ", ".join(branch["units"]) or "-"),
            ]
        )
        rows = []
        for app, keys in branch["changes"].items():
            for key, change in keys.items():
                value = show(change["value"]) if change["op"] == "set" else "(charm default)"
                origin = "absent" if change["from"] is None else show(change["from"])
                rows.append((app, key, change["op"], value, origin))
        lines.append("")
        lines += out.table(("APPLICATION", "KEY", "OP", "VALUE", "FROM"), rows, empty="no changes")
        return lines

    return render


def entry_lines(out: Output, e: Data) -> list[str]:
    """One `diff_entry_view` as ``+ added``, ``- removed``, ``~ changed`` lines."""
    signs = {"added": ("+", out.style.green), "removed": ("-", out.style.red)}
    sign, colour = signs.get(e["kind"], ("~", out.style.yellow))
    if e["kind"] == "changed":
        text = f"{e['path']}: {show(e['old'])} -> {show(e['new'])}"
    elif e["kind"] == "added":
        text = f"{e['path']}: {show(e['new'])}"
    else:
        text = f"{e['path']}: {show(e['old'])}"
    return [colour(f"  {sign} {text}"), *("      " + t for t in e["text_diff"].splitlines())]


def render_diff(d: Data) -> Renderer:
    def render(out: Output) -> list[str]:
        lines: list[str] = []
        for app in d["applications"]:
            lines.append(out.style.bold(f"{app['application']}:"))
            for e in app["entries"]:
                lines += entry_lines(out, e)
            for c in app["conflicts"]:
                lines.append(
                    out.style.red(
                        f"  ! conflict on {c['key']}: branch started from {c['from']}, "
                        f"master is now {c['current']}"
                    )
                )
            if not app["entries"] and not app["conflicts"]:
                lines.append(out.style.dim("  no difference from master"))
        if not d["applications"]:
            lines.append(out.style.dim(f"branch {d['branch']} changes nothing"))
        return lines

    return render


def delta_line(out: Output, d: Data) -> str:
    """One readable line per delta of the admin feed."""
    value = d["value"]
    head = f"{out.style.dim(str(d['revision']))}  {d['kind']:<11} {out.style.cyan(d['key'])}"
    if d["removed"]:
        return f"{head}  {out.style.red('removed')}"
    detail = ""
    if d["kind"] == "application" and value:
        settings = " ".join(f"{k}={show(v)}" for k, v in sorted(value["settings"].items()))
        detail = f"v{value['version']} charm={value['charm']} {settings}".rstrip()
    elif d["kind"] == "unit" and value:
        detail = f"branch={value['branch'] or '-'} applied={applied_text(out, value['applied'])}"
    elif d["kind"] == "branch" and value:
        changed = sum(len(k) for k in value["changes"].values())
        tracking = ",".join([*(f"{a}/*" for a in value["track_applications"])]) or "-"
        detail = f"changes={changed} apps={tracking}"
    elif d["kind"] == "generation" and value:
        versions = " ".join(f"{a}=v{v}" for a, v in sorted(value["versions"].items()))
        by = f" by {value['created_by']}" if value["created_by"] else ""
        detail = f"#{value['id']} {value['kind']}{by} {versions}".rstrip()
    return f"{head}  {detail}".rstrip()


def render_text(text: str) -> Renderer:
    """A one-line result (writes: what changed)."""
    return lambda out: [text]


def _settings_text(settings: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={show(v)}" for k, v in sorted(settings.items()))


def render_versions(versions: list[Data]) -> Renderer:
    def render(out: Output) -> list[str]:
        rows = [
            (
                str(v["version"]),
                v["timestamp"] or "-",
                author_text(v),
                ", ".join(v["tags"]) or "-",
                v["reason"] or "-",
                _settings_text(v["settings"]) or out.style.dim("(defaults)"),
            )
            for v in versions
        ]
        return out.table(
            ("VERSION", "TIME", "BY", "TAGS", "REASON", "SETTINGS"), rows, empty="no versions"
        )

    return render


def render_version(v: Data) -> Renderer:
    def render(out: Output) -> list[str]:
        previous = v["previous_version"]
        lines = out.fields(
            [
                ("application", out.style.cyan(v["application"])),
                ("version", str(v["version"])),
                ("created", f"{v['timestamp'] or '-'} by {author_text(v)}"),
                ("reason", v["reason"] or "-"),
                ("tags", ", ".join(v["tags"]) or "-"),
                ("previous", "-" if previous is None else str(previous)),
                ("generation", "-" if v["generation"] is None else str(v["generation"])),
            ]
        )
        rows = [(key, show(value)) for key, value in sorted(v["settings"].items())]
        lines.append("")
        lines += out.table(("KEY", "VALUE"), rows, empty="no settings: charm defaults")
        return lines

    return render


def render_version_diff(d: Data) -> Renderer:
    def render(out: Output) -> list[str]:
        head = f"{d['application']}: version {d['from_version']} -> {d['to_version']}"
        lines = [out.style.bold(head)]
        for e in d["entries"]:
            lines += entry_lines(out, e)
        if not d["entries"]:
            lines.append(out.style.dim("  same effective config"))
        return lines

    return render


def render_latest(latest: Data) -> Renderer:
    def render(out: Output) -> list[str]:
        label = latest["label"]
        return out.fields(
            [
                ("application", out.style.cyan(latest["application"])),
                ("version", str(latest["version"])),
                ("label", f"{label} (version {latest['label_version']})" if label else "-"),
            ]
        )

    return render


def render_key_history(entries: list[Data]) -> Renderer:
    def render(out: Output) -> list[str]:
        rows = [
            (
                str(e["version"]),
                out.style.dim("(no value)") if e["value"] is None else show(e["value"]),
                out.style.dim("default") if e["is_default"] else out.style.yellow("set"),
                e["timestamp"] or "-",
                e["created_by"] or "-",
                e["reason"] or "-",
            )
            for e in entries
        ]
        return out.table(
            ("VERSION", "VALUE", "SOURCE", "TIME", "BY", "REASON"), rows, empty="no history"
        )

    return render


def _versions_text(versions: Mapping[str, int]) -> str:
    return " ".join(f"{app}=v{v}" for app, v in sorted(versions.items()))


def render_generations(generations: list[Data]) -> Renderer:
    def render(out: Output) -> list[str]:
        rows = [
            (
                str(g["id"]),
                g["kind"],
                g["branch"] or "-",
                g["created_at"] or "-",
                author_text(g),
                _versions_text(g["versions"]) or "-",
                g["reason"] or "-",
            )
            for g in generations
        ]
        return out.table(
            ("ID", "KIND", "BRANCH", "TIME", "BY", "VERSIONS", "REASON"),
            rows,
            empty="no generations",
        )

    return render


def render_generation(g: Data) -> Renderer:
    def render(out: Output) -> list[str]:
        lines = out.fields(
            [
                ("generation", out.style.cyan(str(g["id"]))),
                ("kind", g["kind"]),
                ("branch", g["branch"] or "-"),
                ("created", f"{g['created_at'] or '-'} by {author_text(g)}"),
                ("reason", g["reason"] or "-"),
                ("versions", _versions_text(g["versions"]) or "-"),
            ]
        )
        rows = [
            (app, key, show(c["from"]), show(c["to"]))
            for app, keys in g["changes"].items()
            for key, c in keys.items()
        ]
        lines.append("")
        lines += out.table(("APPLICATION", "KEY", "FROM", "TO"), rows, empty="no key changes")
        return lines

    return render


def _token_state(out: Output, t: Data) -> str:
    return out.style.red("revoked") if t["revoked"] else out.style.green("active")


def render_tokens(tokens: list[Data]) -> Renderer:
    def render(out: Output) -> list[str]:
        rows = [
            (
                t["id"],
                t["name"] or "-",
                t["role"],
                t["unit"] or "-",
                _token_state(out, t),
                t["created_at"] or "-",
                t["expires_at"] or "never",
                t["description"] or "-",
            )
            for t in tokens
        ]
        return out.table(
            ("ID", "NAME", "ROLE", "UNIT", "STATE", "CREATED", "EXPIRES", "DESCRIPTION"),
            rows,
            empty="no tokens",
        )

    return render


def render_created_token(t: Data) -> Renderer:
    def render(out: Output) -> list[str]:
        lines = out.fields(
            [
                ("token", t["token"]),
                ("id", t["id"]),
                ("name", t["name"] or "-"),
                ("role", t["role"]),
                ("unit", t["unit"] or "-"),
                ("expires", t["expires_at"] or "never"),
            ]
        )
        return [*lines, out.style.yellow("This is the only time the token is shown.")]

    return render
