"""The people's view (`-o table`) of each shape in `genconf.shapes`: a
`Renderer` that draws it as fields, tables and lines, in colour on a terminal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from genconf.cli.output import Output, Renderer, show
from genconf.shapes import Data


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


def short_time(iso: str | None, now: dt.datetime | None = None) -> str:
    """A time for a table: ``11:09:24`` today (local time), the date otherwise."""
    if not iso:
        return "-"
    when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    today = (now or dt.datetime.now().astimezone()).date()
    return when.strftime("%H:%M:%S") if when.date() == today else when.strftime("%Y-%m-%d")


def _brief(value: Any, width: int = 24) -> str:
    """A value on one short line: newlines shown as ⏎, cut with …."""
    text = show(value).replace("\n", "⏎")
    return text if len(text) <= width else text[: width - 1] + "…"


def changes_text(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """What a version changed against the one before it: ``~port 80→90 +motd -tls``
    (``before`` None: not in the listing, so only the keys it set)."""
    if before is None:
        return " ".join(f"={k}" for k in sorted(after)) or "-"
    parts = []
    for key in sorted(set(before) | set(after)):
        if key not in before:
            parts.append(f"+{key}={_brief(after[key])}")
        elif key not in after:
            parts.append(f"-{key}")
        elif show(before[key]) != show(after[key]):
            parts.append(f"~{key} {_brief(before[key])}→{_brief(after[key])}")
    return " ".join(parts) or "(no change)"


def render_versions(versions: list[Data]) -> Renderer:
    """Newest first; CHANGES compares each version with the one listed below it (the
    previous one), so a row stays one line however long the values are."""

    def render(out: Output) -> list[str]:
        rows = []
        for i, v in enumerate(versions):
            older = versions[i + 1] if i + 1 < len(versions) else None
            if older is not None and older["version"] == v["previous_version"]:
                before: Mapping[str, Any] | None = older["settings"]
            elif not v["previous_version"]:
                before = {}  # the first version: everything it holds is new
            else:
                before = None
            rows.append(
                (
                    str(v["version"]),
                    short_time(v["timestamp"]),
                    author_text(v),
                    ", ".join(v["tags"]) or "-",
                    v["reason"] or "-",
                    changes_text(before, v["settings"])
                    if v["settings"] or before is None or before
                    else out.style.dim("(defaults)"),
                )
            )
        return out.table(
            ("VERSION", "TIME", "BY", "TAGS", "REASON", "CHANGES"), rows, empty="no versions"
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
                # A rollback's own (the caller's keys, rollback_from and rollback_to).
                *([("metadata", _settings_text(v["metadata"]))] if v["metadata"] else []),
            ]
        )
        rows = [(key, show(value)) for key, value in sorted(v["settings"].items())]
        lines.append("")
        lines += out.table(("KEY", "VALUE"), rows, empty="no settings: charm defaults")
        return lines

    return render


def render_version_diff(d: Data) -> Renderer:
    """The summary first (``web 1.0.0 -> 1.1.0: 2 changed, 1 added, 0 removed``), then
    one line per difference."""

    def render(out: Output) -> list[str]:
        lines = [out.style.bold(d["summary"])]
        for e in d["entries"]:
            lines += entry_lines(out, e)
        if not d["entries"]:
            lines.append(out.style.dim("  same effective config"))
        return lines

    return render


def render_patch(text: str) -> Renderer:
    """A unified diff exactly as it is (nothing when empty), so that it applies as a
    patch: no colour, no line endings changed."""
    return lambda out: [text.removesuffix("\n")] if text else []


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
                short_time(e["timestamp"]),
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
                short_time(g["created_at"]),
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
                short_time(t["created_at"]),
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
