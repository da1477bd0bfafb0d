"""The people's lines of the admin feed (`genconf watch`, `-o table`): what each
batch of deltas changed, said once, with a time.

A delta carries an entity's new state only (an application's settings, not what
they were before), so `WatchLines` keeps the last state it saw of each entity and
draws the difference: ``web: port 8080 -> 9090``. Seeded from a snapshot it also
knows what is new (``web: units web/3 added``); following a replay instead, an
entity's first delta has nothing to compare with, so its line shows the state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from genconf import shapes
from genconf.cli.output import Style, show
from genconf.shapes import Data
from genconf.v1 import admin_pb2

Entity = tuple[str, str]  # (kind, key): whose line it is, for "not the same line twice"

ABSENT: Final = "absent"  # a key with no value (master does not hold it, no default)
VALUE_WIDTH: Final = 40  # a longer value is cut with …, so a line stays one line
HASH_WIDTH: Final = 12
NO_BRANCH: Final[Data] = {"changes": {}, "track_applications": []}  # what a new one adds to


# -- words -------------------------------------------------------------------------


def value_text(value: Any, width: int | None = VALUE_WIDTH) -> str:
    """A config value on one line: newlines shown as ⏎, cut with … past ``width``
    (None: never, as when piped)."""
    if value is None:
        return ABSENT
    text = show(value).replace("\n", "⏎")
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def clock(when: dt.datetime, now: dt.datetime) -> str:
    """Local ``HH:MM:SS`` when ``when`` is today (as of ``now``), with the date
    otherwise (a replay of older changes)."""
    local = when.astimezone()
    if local.date() == now.astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M:%S")


def parse_time(iso: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")) if iso else None


def filters_text(kinds: Sequence[str], applications: Sequence[str]) -> str:
    parts = []
    if kinds:
        parts.append("kinds: " + ", ".join(kinds))
    if applications:
        parts.append("applications: " + ", ".join(applications))
    return "".join(f"; {p}" for p in parts)


def header(
    since: int, *, replay: bool, kinds: Sequence[str] = (), applications: Sequence[str] = ()
) -> str:
    """The first line: where the watch follows from, and what it leaves out."""
    if replay:
        text = f"replaying changes after revision {since}, then following"
    else:
        text = f"following every change from now (revision {since})"
    return text + filters_text(kinds, applications)


def away_reason(message: str) -> str:
    """The gist of a transport error: ``failed to connect to all addresses; ...:
    Connection refused`` is ``connection refused``."""
    gist = message.rsplit(": ", 1)[-1].split(";", 1)[0].strip()
    return (gist[:1].lower() + gist[1:]) or "no answer"


def away(message: str) -> str:
    return f"server away ({away_reason(message)}); reconnecting…"


def waiting(status: str) -> str:
    """The server answers but does not serve yet (its cache is syncing)."""
    return f"the server is {status}; waiting"


def behind(since: int) -> str:
    """A replica that has not seen a revision we already printed."""
    return f"the server has not caught up with revision {since} yet; waiting"


def back(since: int | None) -> str:
    return f"back at revision {since}" if since is not None else "back"


def fell_behind(since: int | None) -> str:
    after = f" after revision {since}" if since is not None else ""
    return f"fell behind the feed (reading too slowly); resuming{after}"


def lost(since: int | None, now: int | None) -> str:
    """The server no longer holds what followed ``since``: a watch without --since
    says so and follows from ``now`` (None: the feed's own "now")."""
    at = f" (revision {now})" if now is not None else ""
    return (
        f"the server restarted and lost the changes after revision {since} "
        f"(or they outran its --ring-size); following from now{at}"
    )


def stopped(since: int) -> str:
    return f"stopped after revision {since}; `genconf watch --since {since}` resumes here"


# -- lines ---------------------------------------------------------------------------


class WatchLines:
    """Turns batches of `shapes.delta_view` dicts into lines that say what changed.

    Keeps the last state seen of each application, unit and branch (None once
    removed). ``seeded`` (from a snapshot): an entity never seen did not exist, so
    its first delta is its creation."""

    def __init__(self, style: Style | None = None, width: int | None = VALUE_WIDTH) -> None:
        self.style = style or Style()
        self.width = width  # values cut past it (None: never)
        self._state: dict[Entity, Data | None] = {}
        self._last: dict[Entity, str] = {}
        self.seeded = False

    def forget(self) -> None:
        """Drop everything known (the feed restarts from a point we did not see)."""
        self._state.clear()
        self._last.clear()
        self.seeded = False

    def seed(self, snapshot: admin_pb2.SnapshotResponse) -> None:
        """Start from the model as ``snapshot`` holds it: later deltas diff against it."""
        self.forget()
        for app in snapshot.applications:
            self._state["application", app.name] = shapes.application_view(app)
        for unit in snapshot.units:
            self._state["unit", unit.name] = shapes.unit_view(unit)
        for branch in snapshot.branches:
            self._state["branch", branch.name] = shapes.branch_view(branch)
        self.seeded = True

    def batch(self, views: Sequence[Data], received: dt.datetime) -> list[str]:
        """The lines of one batch (one transaction), each with the batch's time: the
        time a delta carries (a generation's, a unit's new report's) or ``received``."""
        when = self._time(views) or received
        stamp = self.style.dim(clock(when, received))
        return [f"{stamp}  {text}" for text in self.texts(views)]

    def texts(self, views: Sequence[Data]) -> list[str]:
        """The lines of one batch without their time; updates the state seen."""
        batch = _Batch(self, views)
        for view in views:
            batch.add(view)
            entity = (view["kind"], view["key"])
            self._state[entity] = None if view["removed"] else view["value"]
        out = []
        for entity, text in batch.lines():
            if self._last.get(entity) == text:
                continue  # the same line for the same entity again: nothing to tell
            self._last[entity] = text
            out.append(text)
        return out

    def prior(self, kind: str, key: str) -> tuple[Data | None, bool]:
        """The last state seen of an entity, and whether it is known not to exist."""
        entity = (kind, key)
        if entity in self._state:
            value = self._state[entity]
            return value, value is None
        return None, self.seeded

    def _time(self, views: Sequence[Data]) -> dt.datetime | None:
        for v in views:
            if v["kind"] == "generation" and v["value"]:
                return parse_time(v["value"]["created_at"])
        for v in views:
            if v["kind"] == "unit" and v["value"] and v["value"]["applied"]:
                before, _ = self.prior("unit", v["key"])
                if before is None or _report(before) != _report(v["value"]):
                    return parse_time(v["value"]["applied"]["at"])
        return None


def _report(unit: Data) -> tuple[Any, ...] | None:
    applied = unit["applied"]
    return None if applied is None else (applied["hash"], applied["ok"], applied["message"])


class _Batch:
    """The lines of one batch in the order of its deltas; units added, removed,
    joining or leaving a branch are gathered into one line each."""

    def __init__(self, lines: WatchLines, views: Sequence[Data]) -> None:
        self.w = lines
        self.s = lines.style
        self.v: Callable[[Any], str] = lambda value: value_text(value, lines.width)
        self._items: list[tuple[Entity, str | None]] = []  # None: a group's place
        self._groups: dict[Entity, list[str]] = {}
        gens = [v["value"] for v in views if v["kind"] == "generation" and v["value"]]
        self.committed = {g["branch"] for g in gens if g["kind"] == "commit" and g["branch"]}
        self.aborted = {
            v["key"]
            for v in views
            if v["kind"] == "branch" and v["removed"] and v["key"] not in self.committed
        }
        self.applications = {v["key"] for v in views if v["kind"] == "application"}
        # Applications a branch starts or stops tracking in this batch: its own line
        # says so, which covers their units joining or leaving it.
        self.apps_moved: dict[str, set[str]] = {}
        for v in views:
            if v["kind"] == "branch":
                before, _ = lines.prior("branch", v["key"])
                was = set(before["track_applications"]) if before else set()
                now = set(v["value"]["track_applications"]) if v["value"] else set()
                self.apps_moved[v["key"]] = was ^ now

    def text(self, entity: Entity, text: str | None) -> None:
        if text:
            self._items.append((entity, text))

    def group(self, group: Entity, member: str) -> None:
        if group not in self._groups:
            self._groups[group] = []
            self._items.append((group, None))
        self._groups[group].append(member)

    def lines(self) -> Iterable[tuple[Entity, str]]:
        for entity, text in self._items:
            if text is not None:
                yield entity, text
                continue
            what, name = entity
            members = self._groups[entity]
            if what in ("tracked by", "no longer tracked by"):
                moved = self.apps_moved.get(name, set())
                members = [m for m in members if m.rsplit("/", 1)[0] not in moved]
                if not members:
                    continue
            names = ", ".join(self.s.cyan(n) for n in members)
            if what == "units added":
                yield entity, f"{self.s.cyan(name)}: units {names} {self.s.green('added')}"
            elif what == "units removed":
                yield entity, f"{self.s.cyan(name)}: units {names} {self.s.red('removed')}"
            elif what == "tracked by":
                yield entity, f"branch {self.s.cyan(name)}: tracked by {names}"
            elif name not in self.committed and name not in self.aborted:
                yield entity, f"branch {self.s.cyan(name)}: no longer tracked by {names}"

    def add(self, v: Data) -> None:
        {
            "application": self.application,
            "unit": self.unit,
            "branch": self.branch,
            "generation": self.generation,
            "rollout": self.rollout,
        }.get(v["kind"], self.other)(v)

    def rollout(self, v: Data) -> None:
        """``rollout canary: running, step 2/4 (10%), waiting: why``: its state as the
        driver or an operator left it, with the latest transition's reason."""
        entity = ("rollout", v["key"])
        r = v["value"]
        if v["removed"] or not r:
            self.text(entity, f"rollout {self.s.cyan(v['key'])} {self.s.red('removed')}")
            return
        steps = r["steps"]
        at = f"step {r['step']}/{len(steps)} ({steps[r['step'] - 1]})" if steps else ""
        state = r["state"] if r["state"] != "running" else f"running, {at}, {r['phase']}"
        if r["state"] == "paused" and at:
            state = f"paused at {at}"
        why = r["transitions"][-1]["why"] if r["transitions"] else ""
        self.text(entity, f"rollout {self.s.cyan(v['key'])}: {state}" + (f": {why}" if why else ""))

    def other(self, v: Data) -> None:
        state = self.s.red("removed") if v["removed"] else "changed"
        self.text((v["kind"], v["key"]), f"{v['kind']} {self.s.cyan(v['key'])} {state}")

    # -- applications --------------------------------------------------------------

    def application(self, v: Data) -> None:
        name, entity = v["key"], ("application", v["key"])
        head = self.s.cyan(name)
        before, gone = self.w.prior("application", name)
        if v["removed"]:
            self.text(entity, f"{head}: application {self.s.red('removed')}")
            return
        app = v["value"]
        settings = " ".join(f"{k}={self.v(value)}" for k, value in sorted(app["settings"].items()))
        if gone:
            what = f"(charm {app['charm']}, version {app['version']})"
            created = f"{head}: application {self.s.green('created')} {what}"
            self.text(entity, f"{created}: {settings}" if settings else created)
        elif before is None:
            # First seen in a replay: its state, as there is nothing to compare with.
            state = f"version {app['version']} (charm {app['charm']})"
            self.text(entity, f"{head}: at {state}: {settings or 'charm defaults'}")
        else:
            parts = _application_changes(before, app, self.v)
            if parts:
                self.text(entity, f"{head}: {', '.join(parts)}")

    # -- units ---------------------------------------------------------------------

    def unit(self, v: Data) -> None:
        name, entity = v["key"], ("unit", v["key"])
        before, gone = self.w.prior("unit", name)
        if v["removed"]:
            app = before["application"] if before else name.rsplit("/", 1)[0]
            self.group(("units removed", app), name)
            return
        unit = v["value"]
        if gone:
            self.group(("units added", unit["application"]), name)
            if unit["branch"]:
                self.group(("tracked by", unit["branch"]), name)
            return
        if before is None:
            on = f"on branch {unit['branch']}" if unit["branch"] else "on master"
            self.text(entity, f"{self.s.cyan(name)}: {on}, {self._report(unit)}")
            return
        if unit["branch"] != before["branch"]:
            if unit["branch"]:
                self.group(("tracked by", unit["branch"]), name)
            else:
                self.group(("no longer tracked by", before["branch"]), name)
        if _report(unit) != _report(before):
            self.text(entity, f"{self.s.cyan(name)}: {self._report(unit)}")

    def _report(self, unit: Data) -> str:
        applied = unit["applied"]
        if applied is None:
            return "not reported"
        short = (applied["hash"] or "-")[:HASH_WIDTH]
        message = applied["message"]
        if applied["ok"]:
            return f"applied {short} {self.s.green('ok')}" + (f" ({message})" if message else "")
        return f"{self.s.red('failed')} to apply {short}" + (f": {message}" if message else "")

    # -- branches ------------------------------------------------------------------

    def branch(self, v: Data) -> None:
        name, entity = v["key"], ("branch", v["key"])
        head = f"branch {self.s.cyan(name)}"
        before, gone = self.w.prior("branch", name)
        if v["removed"]:
            if name in self.aborted:
                self.text(entity, f"{head} {self.s.red('aborted')}")
            return  # committed: the generation's line says so
        branch = v["value"]
        if gone:
            by = f" by {branch['created_by']}" if branch["created_by"] else ""
            parts = _branch_changes(NO_BRANCH, branch, self.v)
            self.text(
                entity, f"{head} {self.s.green('added')}{by}" + "".join(f", {p}" for p in parts)
            )
        elif before is None:
            parts = _branch_changes(NO_BRANCH, branch, self.v)
            self.text(entity, f"{head}: {', '.join(parts) or 'nothing staged'}")
        else:
            parts = _branch_changes(before, branch, self.v)
            if parts:
                self.text(entity, f"{head}: {', '.join(parts)}")

    # -- generations ---------------------------------------------------------------

    def generation(self, v: Data) -> None:
        entity = ("generation", v["key"])
        if v["removed"]:
            self.text(entity, f"generation {v['key']} {self.s.red('removed')}")
            return
        g = v["value"]
        by = f" by {g['created_by']}" if g["created_by"] else ""
        if g["kind"] == "commit" and g["branch"]:
            head = f"branch {self.s.cyan(g['branch'])} committed as generation {g['id']}{by}"
        else:
            head = f"generation {g['id']} ({g['kind']}){by}"
        parts = []
        for app in sorted(set(g["versions"]) | set(g["changes"])):
            text = f"{self.s.cyan(app)} v{g['versions'][app]}" if app in g["versions"] else app
            keys = g["changes"].get(app, {})
            if keys and app not in self.applications:
                # No application line in this batch (say --kind generation): the
                # generation's own record of the keys says what changed.
                changed = ", ".join(
                    f"{k} {self.v(c['from'])} -> {self.v(c['to'])}" for k, c in sorted(keys.items())
                )
                text += f" ({changed})"
            parts.append(text)
        reason = g["reason"]
        if reason and reason != f"commit branch {g['branch']}":
            parts.append(f'reason "{reason}"')
        self.text(entity, f"{head}: {', '.join(parts)}" if parts else head)


def _application_changes(before: Data, after: Data, v: Callable[[Any], str]) -> list[str]:
    """What changed in an application, key by key in its effective config: ``port
    8080 -> 9090``; nothing when only what a delta does not show changed (its units)."""
    parts = []
    if before["charm"] != after["charm"]:
        parts.append(f"charm {before['charm']} -> {after['charm']}")
    old_schema, new_schema = before["schema"], after["schema"]
    added = sorted(set(new_schema) - set(old_schema))
    dropped = sorted(set(old_schema) - set(new_schema))
    if added:
        parts.append("options added: " + " ".join(added))
    if dropped:
        parts.append("options removed: " + " ".join(dropped))
    if not added and not dropped and old_schema != new_schema:
        parts.append("schema changed")
    old, new = before["effective"], after["effective"]
    was_set, is_set = before["settings"], after["settings"]
    for key in sorted(set(old) | set(new) | set(was_set) | set(is_set)):
        a, b = old.get(key), new.get(key)
        same = (type(a), show(a)) == (type(b), show(b))
        if same and (key in was_set) == (key in is_set):
            continue
        # "default" marks the side the charm's default gives, where it matters: a
        # key unset (``9090 -> default 8080``) or set to its default value.
        a_text = f"default {v(a)}" if same and key not in was_set else v(a)
        unset = key in was_set and key not in is_set and b is not None
        b_text = f"default {v(b)}" if unset else v(b)
        parts.append(f"{key} {a_text} -> {b_text}")
    if before["version"] != after["version"]:
        if not parts:
            parts.append("same values")
        parts[-1] += f" (version {after['version']})"
    return parts


def _staged_text(change: Data, v: Callable[[Any], str]) -> str:
    return v(change["value"]) if change["op"] == "set" else "default"


def _branch_changes(before: Data, after: Data, v: Callable[[Any], str]) -> list[str]:
    """What a branch now stages or tracks differently: ``web motd absent -> hi`` (from
    the value it staged before, else master's value when the key was first staged)."""
    parts = []
    old, new = before["changes"], after["changes"]
    for app in sorted(set(old) | set(new)):
        was, now = old.get(app, {}), new.get(app, {})
        for key in sorted(set(was) | set(now)):
            a, b = was.get(key), now.get(key)
            if a == b:
                continue
            if b is None:
                parts.append(f"{app} {key} no longer staged")
            else:
                origin = _staged_text(a, v) if a is not None else v(b["from"])
                parts.append(f"{app} {key} {origin} -> {_staged_text(b, v)}")
    was_apps, now_apps = set(before["track_applications"]), set(after["track_applications"])
    if now_apps - was_apps:
        parts.append("tracked by " + ", ".join(f"{a}/*" for a in sorted(now_apps - was_apps)))
    if was_apps - now_apps:
        gone = ", ".join(f"{a}/*" for a in sorted(was_apps - now_apps))
        parts.append("no longer tracked by " + gone)
    return parts
