"""The people's view (`-o table` and `-o wide`) of each shape in `genconf.shapes`: a
`Renderer` that draws it as fields, tables and lines, in colour on a terminal.

`-o wide` draws the same tables with more columns (what the shape carries besides:
times in full, who and why, hashes in full, metadata) and never cuts a cell. Each
table names its free-text columns (``cut=``): only those are cut to fit a
terminal (see `genconf.cli.output`).

One word for one fact, everywhere:

- ``-`` is a cell or field with nothing in it: a key with no value (no default and
  none set), the value a key had on master before a branch set it when master did
  not hold it (`branch show` FROM), a key history entry where the key had no
  value, no branch, no tags, no reason, nobody.
- ``absent`` is the same fact inside a line of text that reads old and new values
  side by side (a conflict: ``branch started from absent, master is now 5``; the
  server's own messages say it so too), where "-" would read as a removal sign.
  Diff lines and a version's CHANGES say an added or removed key by their sign
  (``+ motd: hi``, ``- tls: true``; ``+motd=hi``, ``-tls``) and print nothing for
  the side without a value.
- blank is only the MESSAGE of `unit list`, an agent's own output, when there is
  none (the APPLIED column says whether the agent reported).

Times in table columns are `short_time` (``11:09:24`` today, the date otherwise);
`-o wide` and the fields of one object (`branch show`, `version show`) give the
full ISO 8601 time in UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Final

from genconf.cli.output import Output, Renderer, show
from genconf.shapes import Data

NONE: Final = "-"  # a cell or field with nothing in it
ABSENT_WORD: Final = "absent"  # no value, inside text that reads old -> new
BRIEF_WIDTH: Final = 24  # a value inside a CHANGES cell (-o table)


def author_text(d: Data) -> str:
    """Who wrote a version, generation or branch, as the record vouches for it: a
    token the server verified (and the name its client gave), or a name nobody did."""
    by = d["created_by"]
    if not d["authenticated"]:
        return f"{by} (unauthenticated)" if by else NONE
    if d["on_behalf_of"]:
        return f"{by}, on behalf of {d['on_behalf_of']}"
    return by or NONE


def short_hash(h: str | None) -> str:
    return h[:12] if h else NONE


def applied_text(out: Output, applied: Data | None) -> str:
    if applied is None:
        return out.style.dim("not reported")
    state = out.style.green("ok") if applied["ok"] else out.style.red("failed")
    return f"{short_hash(applied['hash'])} {state}"


def short_time(iso: str | None, now: dt.datetime | None = None) -> str:
    """A time for a table: ``11:09:24`` today (local time), the date otherwise."""
    if not iso:
        return NONE
    when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    today = (now or dt.datetime.now().astimezone()).date()
    return when.strftime("%H:%M:%S") if when.date() == today else when.strftime("%Y-%m-%d")


def time_cell(out: Output, iso: str | None) -> str:
    """A time column: short in a table, the full ISO time in `-o wide`."""
    if out.wide:
        return iso or NONE
    return short_time(iso)


def listed(items: Iterable[str]) -> str:
    """Names in a cell, comma separated; `-` for none."""
    return ", ".join(items) or NONE


def json_type(value: Any) -> str:
    """A value's type in the schema's words (`-o wide` TYPE): tells ``"8080"`` from 8080."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "boolean"
    for kind, name in ((int, "int"), (float, "float"), (str, "string"), (list, "list")):
        if isinstance(value, kind):
            return name
    return "object"


def render_applications(apps: list[Data]) -> Renderer:
    def render(out: Output) -> list[str]:
        headers = ["NAME", "CHARM", "VERSION", "UNITS"]
        if out.wide:
            headers += ["UNIT NAMES", "SETTINGS"]
        rows = []
        for a in apps:
            row = [a["name"], a["charm"], str(a["version"]), str(len(a["units"]))]
            if out.wide:
                row += [listed(a["units"]), _settings_text(a["settings"], None) or NONE]
            rows.append(row)
        return out.table(headers, rows, empty="no applications", cut=())

    return render


def render_application(app: Data) -> Renderer:
    """Every option of the schema, then every key an open application holds that the
    schema does not declare (typed by its ``*`` entry)."""

    def render(out: Output) -> list[str]:
        lines = out.fields(
            [
                ("application", out.style.cyan(app["name"])),
                ("charm", app["charm"]),
                ("version", str(app["version"])),
                ("units", listed(app["units"])),
            ]
        )
        schema = app["schema"]
        undeclared = sorted(set(app["effective"]) - set(schema))
        wildcard = schema.get("*")
        options = [
            *schema.items(),
            *(
                (k, {**(wildcard or {"type": NONE, "secret": False}), "default": None})
                for k in undeclared
            ),
        ]
        headers = ["KEY", "TYPE", "DEFAULT", "VALUE"]
        if out.wide:
            headers += ["SOURCE", "SECRET"]
        headers.append("DESCRIPTION")
        rows = []
        for key, option in options:
            value = app["effective"].get(key)
            set_here = key in app["settings"]
            row = [
                key,
                option["type"],
                show(option["default"]),
                out.style.yellow(show(value)) if set_here else show(value),
            ]
            if out.wide:
                source = "master" if set_here else ("default" if value is not None else NONE)
                row += [source, "yes" if option["secret"] else "no"]
            row.append((option["description"] if key in schema else "") or NONE)
            rows.append(row)
        lines.append("")
        lines += out.table(
            headers, rows, empty="no schema", cut=("DEFAULT", "VALUE", "DESCRIPTION")
        )
        return lines

    return render


def render_units(units: list[Data]) -> Renderer:
    """STATE (current, behind, failed, unreported: `genconf.domain.fleet`) is shown
    when the units carry it (``state``: what the server worked out for each)."""
    with_state = any("state" in u for u in units)

    def render(out: Output) -> list[str]:
        headers = ["UNIT", "BRANCH", *(["STATE"] if with_state else []), "APPLIED"]
        if out.wide:
            headers.append("REPORTED")
        headers.append("MESSAGE")
        rows = []
        for u in units:
            applied = u["applied"]
            if out.wide and applied is not None:
                state = out.style.green("ok") if applied["ok"] else out.style.red("failed")
                applied_cell = f"{applied['hash'] or NONE} {state}"
            else:
                applied_cell = applied_text(out, applied)
            row = [u["name"], u["branch"] or NONE]
            if with_state:
                row.append(state_cell(out, u.get("state")))
            row.append(applied_cell)
            if out.wide:
                row.append(time_cell(out, applied["at"] if applied else None))
            row.append((applied["message"] if applied else "") or "")
            rows.append(row)
        return out.table(headers, rows, empty="no units", cut=("MESSAGE",))

    return render


def render_config(rows: Iterable[tuple[str, Any, str]], header: list[tuple[str, str]]) -> Renderer:
    """Key, value and where the value comes from (default, master, branch NAME); a
    key without a value (None) shows `-`."""
    items = list(rows)

    def render(out: Output) -> list[str]:
        lines = out.fields(header)
        headers = ["KEY", "VALUE", "SOURCE"]
        if out.wide:
            headers.append("TYPE")
        table_rows = []
        for key, value, source in items:
            colour = out.style.dim if source == "default" else out.style.yellow
            row = [key, show(value), colour(source)]
            if out.wide:
                row.append(json_type(value))
            table_rows.append(row)
        lines.append("")
        lines += out.table(headers, table_rows, empty="no config", cut=("VALUE",))
        return lines

    return render


def _tracking(b: Data) -> str:
    return listed([*(f"{a}/*" for a in b["track_applications"]), *b["units"]])


def render_branches(branches: list[Data]) -> Renderer:
    def render(out: Output) -> list[str]:
        headers = ["BRANCH", "CREATED BY"]
        if out.wide:
            headers.append("CREATED")
        headers += ["TRACKED BY", "CHANGES"]
        # A column only when some branch expires: most never do.
        expiring = any(b.get("expires_at") for b in branches)
        if expiring:
            headers.append("EXPIRES")
        if out.wide:
            headers.append("KEYS")
        rows = []
        for b in branches:
            changed = sum(len(keys) for keys in b["changes"].values())
            row = [b["name"], author_text(b)]
            if out.wide:
                row.append(time_cell(out, b["created_at"]))
            row += [_tracking(b), str(changed)]
            if expiring:
                row.append(time_cell(out, b["expires_at"]) if b.get("expires_at") else "never")
            if out.wide:
                keys = [f"{app}.{key}" for app, ks in sorted(b["changes"].items()) for key in ks]
                row.append(" ".join(keys) or NONE)
            rows.append(row)
        return out.table(
            headers, rows, empty="no active branches", cut=("CREATED BY", "TRACKED BY")
        )

    return render


def render_branch(branch: Data) -> Renderer:
    """Its staged changes; FROM is what master held when the branch first changed the
    key (`-`: master did not hold it). Then, when the view carries them (``reports``:
    `shapes.unit_status_view` of each tracking unit), what each tracking unit's agent
    last reported and whether it runs the branch's config (STATE)."""

    def render(out: Output) -> list[str]:
        lines = out.fields(
            [
                ("branch", out.style.cyan(branch["name"])),
                ("created", f"{branch['created_at'] or NONE} by {author_text(branch)}"),
                *(
                    [("expires", f"{branch['expires_at']} (then aborted, units back on master)")]
                    if branch.get("expires_at")
                    else []
                ),
                ("applications", listed(branch["track_applications"])),
                ("units", listed(branch["units"])),
            ]
        )
        headers = ["APPLICATION", "KEY", "OP", "VALUE", "FROM"]
        if out.wide:
            headers.append("SEEN BY")
        rows = []
        for app, keys in branch["changes"].items():
            seen_by = _seen_by(branch, app)
            for key, change in keys.items():
                value = show(change["value"]) if change["op"] == "set" else "(charm default)"
                row = [app, key, change["op"], value, show(change["from"])]
                if out.wide:
                    row.append(seen_by)
                rows.append(row)
        lines.append("")
        lines += out.table(headers, rows, empty="no changes", cut=("VALUE", "FROM"))
        reports = branch.get("reports")
        if reports:
            lines.append("")
            lines += unit_status_table(out, reports, branch=False)
        return lines

    return render


def _seen_by(branch: Data, app: str) -> str:
    """The units of ``app`` that see a branch's changes (``app/*``: all of them)."""
    if app in branch["track_applications"]:
        return f"{app}/*"
    return listed(u for u in branch["units"] if u.partition("/")[0] == app)


def entry_lines(out: Output, e: Data) -> list[str]:
    """One `diff_entry_view` as ``+ added``, ``- removed``, ``~ changed`` lines: the
    sign says which side has no value, so none is printed for it."""
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
    """Conflict values are the server's text: JSON, or ``absent``."""

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


def render_text(text: str) -> Renderer:
    """A one-line result (writes: what changed)."""
    return lambda out: [text]


def _settings_text(settings: Mapping[str, Any], width: int | None = None) -> str:
    return " ".join(f"{k}={_brief(v, width)}" for k, v in sorted(settings.items()))


def _brief(value: Any, width: int | None = BRIEF_WIDTH) -> str:
    """A value on one short line: newlines shown as ⏎, cut with … past ``width``
    (None: never)."""
    text = show(value).replace("\n", "⏎")
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def changes_text(
    before: Mapping[str, Any] | None, after: Mapping[str, Any], width: int | None = BRIEF_WIDTH
) -> str:
    """What a version changed against the one before it: ``~port 80→90 +motd -tls``
    (``before`` None: not in the listing, so only the keys it set); each value cut
    past ``width`` characters (None: in full, for `-o wide`)."""
    if before is None:
        return " ".join(f"={k}" for k in sorted(after)) or NONE
    parts = []
    for key in sorted(set(before) | set(after)):
        if key not in before:
            parts.append(f"+{key}={_brief(after[key], width)}")
        elif key not in after:
            parts.append(f"-{key}")
        elif show(before[key]) != show(after[key]):
            parts.append(f"~{key} {_brief(before[key], width)}→{_brief(after[key], width)}")
    return " ".join(parts) or "(no change)"


def render_versions(versions: list[Data]) -> Renderer:
    """Newest first; CHANGES compares each version with the one listed below it (the
    previous one), so a row stays one line however long the values are (`-o wide`:
    every value in full, plus the previous version, generation and metadata)."""

    def render(out: Output) -> list[str]:
        width = None if out.wide else BRIEF_WIDTH
        headers = ["VERSION", "TIME", "BY", "TAGS", "REASON", "CHANGES"]
        if out.wide:
            headers += ["PREVIOUS", "GENERATION", "METADATA"]
        rows = []
        for i, v in enumerate(versions):
            older = versions[i + 1] if i + 1 < len(versions) else None
            if older is not None and older["version"] == v["previous_version"]:
                before: Mapping[str, Any] | None = older["settings"]
            elif not v["previous_version"]:
                before = {}  # the first version: everything it holds is new
            else:
                before = None
            row = [
                str(v["version"]),
                time_cell(out, v["timestamp"]),
                author_text(v),
                listed(v["tags"]),
                v["reason"] or NONE,
                changes_text(before, v["settings"], width)
                if v["settings"] or before is None or before
                else out.style.dim("(defaults)"),
            ]
            if out.wide:
                row += [
                    _number(v["previous_version"]),
                    _number(v["generation"]),
                    _settings_text(v["metadata"], None) or NONE,
                ]
            rows.append(row)
        return out.table(headers, rows, empty="no versions", cut=("BY", "REASON", "CHANGES"))

    return render


def _number(n: int | None) -> str:
    return NONE if n is None else str(n)


def render_version(v: Data) -> Renderer:
    def render(out: Output) -> list[str]:
        lines = out.fields(
            [
                ("application", out.style.cyan(v["application"])),
                ("version", str(v["version"])),
                ("created", f"{v['timestamp'] or NONE} by {author_text(v)}"),
                ("reason", v["reason"] or NONE),
                ("tags", listed(v["tags"])),
                ("previous", _number(v["previous_version"])),
                ("generation", _number(v["generation"])),
                # A rollback's own (the caller's keys, rollback_from and rollback_to).
                *([("metadata", _settings_text(v["metadata"], None))] if v["metadata"] else []),
            ]
        )
        headers = ["KEY", "VALUE", *(["TYPE"] if out.wide else [])]
        rows = [
            [key, show(value), *([json_type(value)] if out.wide else [])]
            for key, value in sorted(v["settings"].items())
        ]
        lines.append("")
        lines += out.table(headers, rows, empty="no settings: charm defaults", cut=("VALUE",))
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
                ("label", f"{label} (version {latest['label_version']})" if label else NONE),
            ]
        )

    return render


def render_key_history(entries: list[Data]) -> Renderer:
    def render(out: Output) -> list[str]:
        headers = ["VERSION", "VALUE", "SOURCE", "TIME", "BY", "REASON"]
        if out.wide:
            headers.append("GENERATION")
        rows = []
        for e in entries:
            row = [
                str(e["version"]),
                show(e["value"]),
                out.style.dim("default") if e["is_default"] else out.style.yellow("set"),
                time_cell(out, e["timestamp"]),
                e["created_by"] or NONE,
                e["reason"] or NONE,
            ]
            if out.wide:
                row.append(_number(e["generation"]))
            rows.append(row)
        return out.table(headers, rows, empty="no history", cut=("VALUE", "BY", "REASON"))

    return render


def _versions_text(versions: Mapping[str, int]) -> str:
    return " ".join(f"{app}=v{v}" for app, v in sorted(versions.items()))


def _generation_changes(changes: Mapping[str, Mapping[str, Data]]) -> str:
    """``web.port 80→90 web.motd +hi web.tls -`` in full: `-o wide` CHANGES."""
    parts = []
    for app, keys in sorted(changes.items()):
        for key, c in sorted(keys.items()):
            if c["from"] is None:
                parts.append(f"+{app}.{key}={_brief(c['to'], None)}")
            elif c["to"] is None:
                parts.append(f"-{app}.{key}")
            else:
                parts.append(f"~{app}.{key} {_brief(c['from'], None)}→{_brief(c['to'], None)}")
    return " ".join(parts) or NONE


def render_generations(generations: list[Data]) -> Renderer:
    def render(out: Output) -> list[str]:
        headers = ["ID", "KIND", "BRANCH", "TIME", "BY", "VERSIONS", "REASON"]
        if out.wide:
            headers.append("CHANGES")
        rows = []
        for g in generations:
            row = [
                str(g["id"]),
                g["kind"],
                g["branch"] or NONE,
                time_cell(out, g["created_at"]),
                author_text(g),
                _versions_text(g["versions"]) or NONE,
                g["reason"] or NONE,
            ]
            if out.wide:
                row.append(_generation_changes(g["changes"]))
            rows.append(row)
        return out.table(headers, rows, empty="no generations", cut=("BY", "VERSIONS", "REASON"))

    return render


def render_generation(g: Data) -> Renderer:
    def render(out: Output) -> list[str]:
        lines = out.fields(
            [
                ("generation", out.style.cyan(str(g["id"]))),
                ("kind", g["kind"]),
                ("branch", g["branch"] or NONE),
                ("created", f"{g['created_at'] or NONE} by {author_text(g)}"),
                ("reason", g["reason"] or NONE),
                ("versions", _versions_text(g["versions"]) or NONE),
            ]
        )
        headers = ["APPLICATION", "KEY", "FROM", "TO", *(["CHANGE"] if out.wide else [])]
        rows = []
        for app, keys in g["changes"].items():
            for key, c in keys.items():
                row = [app, key, show(c["from"]), show(c["to"])]
                if out.wide:
                    row.append(_change_kind(c))
                rows.append(row)
        lines.append("")
        lines += out.table(headers, rows, empty="no key changes", cut=("FROM", "TO"))
        return lines

    return render


def _change_kind(c: Data) -> str:
    if c["from"] is None:
        return "added"
    return "removed" if c["to"] is None else "changed"


def _token_state(out: Output, t: Data) -> str:
    return out.style.red("revoked") if t["revoked"] else out.style.green("active")


def render_tokens(tokens: list[Data]) -> Renderer:
    def render(out: Output) -> list[str]:
        headers = ["ID", "NAME", "ROLE", "UNIT"]
        if out.wide:
            headers.append("UNIT UID")
        headers.append("STATE")
        if out.wide:
            headers.append("CREATED BY")
        headers += ["CREATED", "EXPIRES", "DESCRIPTION"]
        rows = []
        for t in tokens:
            row = [t["id"], t["name"] or NONE, t["role"], t["unit"] or NONE]
            if out.wide:
                row.append(t["unit_uid"] or NONE)
            row.append(_token_state(out, t))
            if out.wide:
                row.append(t["created_by"] or NONE)
            row += [
                time_cell(out, t["created_at"]),
                time_cell(out, t["expires_at"]) if t["expires_at"] else "never",
                t["description"] or NONE,
            ]
            rows.append(row)
        return out.table(headers, rows, empty="no tokens", cut=("DESCRIPTION",))

    return render


def render_created_token(t: Data) -> Renderer:
    def render(out: Output) -> list[str]:
        lines = out.fields(
            [
                ("token", t["token"]),
                ("id", t["id"]),
                ("name", t["name"] or NONE),
                ("role", t["role"]),
                ("unit", t["unit"] or NONE),
                ("expires", t["expires_at"] or "never"),
            ]
        )
        return [*lines, out.style.yellow("This is the only time the token is shown.")]

    return render


# -- fleet status (`genconf status`, `unit list`'s STATE, `branch show`'s reports) ------


def state_cell(out: Output, state: str | None) -> str:
    """A unit's state (`genconf.domain.fleet`), coloured by what it asks of a person."""
    colours = {
        "current": out.style.green,
        "behind": out.style.yellow,
        "failed": out.style.red,
        "unreported": out.style.dim,
    }
    if not state:
        return NONE
    return colours.get(state, str)(state)


def age_text(iso: str | None, now: dt.datetime | None = None) -> str:
    """How long ago ``iso`` was, in its largest unit: ``12s ago``, ``3m ago``, ``5h
    ago``, ``2d ago`` (`-`: never). A time ahead of ``now`` (clock skew) is ``0s ago``."""
    if not iso:
        return NONE
    when = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    seconds = max(0, int(((now or dt.datetime.now(dt.UTC)) - when).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def report_tail(u: Data) -> str:
    """What a unit's agent last said: its health command's output when unhealthy,
    else its apply command's (blank: nothing)."""
    if u["health"] == "unhealthy" and u["health_message"]:
        return str(u["health_message"])
    return u["message"] or ""


def unit_status_table(
    out: Output, units: list[Data], *, branch: bool = True, now: dt.datetime | None = None
) -> list[str]:
    """Units of `shapes.unit_status_view` with their state and latest report (``branch``:
    with a BRANCH column). REPORTED is an age; `-o wide` gives the time, the hash the
    agent reported, its health and both messages in full."""
    headers = ["UNIT", *(["BRANCH"] if branch else []), "STATE", "REPORTED"]
    if out.wide:
        headers += ["HASH", "HEALTH"]
    headers.append("MESSAGE")
    if out.wide:
        headers.append("HEALTH MESSAGE")
    rows = []
    for u in units:
        row = [u["name"], *([u["branch"] or NONE] if branch else []), state_cell(out, u["state"])]
        if out.wide:
            row += [u["reported_at"] or NONE, u["hash"] or NONE, u["health"] or NONE]
            row += [u["message"] or "", u["health_message"] or ""]
        else:
            row += [age_text(u["reported_at"], now), report_tail(u)]
        rows.append(row)
    return out.table(headers, rows, empty="no units", cut=("MESSAGE", "HEALTH MESSAGE"))
