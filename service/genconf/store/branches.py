"""Writes of branches: add, track and untrack units, stage changes, commit and abort;
and their hygiene: rebase on master, drop a staged key, expire."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession

from genconf.domain import config
from genconf.domain.authorship import Authorship
from genconf.domain.cohorts import Cohort
from genconf.domain.config import Change, Op
from genconf.domain.names import parse_unit_name, validate_app_name, validate_branch_name
from genconf.domain.results import WriteResult
from genconf.domain.schema import validate_settings
from genconf.domain.values import ABSENT, config_hash, show_value
from genconf.errors import (
    Conflict,
    ConflictedKey,
    FailedPrecondition,
    InvalidArgument,
    NotApplied,
    NotFound,
)
from genconf.store import cohorts
from genconf.store.checks import (
    check_branch_size,
    check_count,
    check_expectations,
    check_free_text,
    check_metadata,
    patched_value,
    set_and_unset,
)
from genconf.store.core import StoreCore
from genconf.store.documents import (
    BRANCHES,
    UNITS,
    changes_of,
    effective_from_docs,
    schema_of,
)
from genconf.store.mongo import mongo_errors

log = logging.getLogger("genconf.store.branches")

# The longest a branch may be given to live (as a token: `genconf.api.tokens`).
MAX_BRANCH_LIFETIME: Final = dt.timedelta(days=3650)
SHOWN_KEYS: Final = 20  # staged keys named in one message


def expiry_after(now: dt.datetime, seconds: int) -> dt.datetime | None:
    """When a branch added at ``now`` to live ``seconds`` expires (0: never)."""
    if seconds < 0:
        raise InvalidArgument("expires_in_seconds must not be negative (0: never expires)")
    if seconds > MAX_BRANCH_LIFETIME.total_seconds():
        raise InvalidArgument(
            f"expires_in_seconds may be at most {int(MAX_BRANCH_LIFETIME.total_seconds())} "
            f"({MAX_BRANCH_LIFETIME.days} days), not {seconds}"
        )
    return now + dt.timedelta(seconds=seconds) if seconds else None


class BranchWrites(StoreCore):
    """Branches: staged changes and the units that track them."""

    async def add_branch(
        self,
        name: str,
        *,
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
        expires_at: dt.datetime | None = None,
    ) -> WriteResult:
        """``expires_at``: when `expire_branches` aborts it (forced; None: never)."""
        validate_branch_name(name)
        author = Authorship(created_by, on_behalf_of, authenticated)
        check_free_text(author)
        now = self.clock()
        doc = {
            "_id": name,
            **author.fields(),
            "created_at": now,
            "track_applications": [],
            "changes": {},
            "revision": 1,
        }
        if expires_at is not None:
            doc["expires_at"] = _checked_expiry(expires_at, now)

        async def body(s: AsyncClientSession) -> None:
            await self._insert_new(s, "branch", BRANCHES, doc)

        _, revision = await self._transact(body)
        return WriteResult(revision)

    async def track_branch(
        self,
        branch: str,
        *,
        units: Sequence[str] = (),
        applications: Sequence[str] = (),
        count: int = 0,
        application: str | None = None,
        percent: float = 0,
        selector: str = "",
        guard: Callable[[AsyncClientSession], Awaitable[None]] | None = None,
    ) -> WriteResult:
        """Make units track ``branch``: named units, whole applications (future units too),
        ``count`` units of ``application`` (the lowest-numbered free ones, so that
        repeating the call is stable), or a stable cohort of ``application``: about
        ``percent`` % of the units ``selector`` matches (`genconf.domain.cohorts`).

        A cohort is remembered on the branch, so units added later join by the same
        rule; tracking it again with a larger percent adds units and keeps the old
        ones. A unit of the cohort that tracks another branch stays there and is
        named in the result's ``skipped``.
        """
        for unit in units:
            parse_unit_name(unit)
        for app in applications:
            validate_app_name(app)
        check_count(count)
        if count and application is None:
            raise InvalidArgument("count needs the application to pick units from")
        cohort = None
        if percent or selector:
            if application is None:
                raise InvalidArgument(
                    "a percent or selector needs the application to pick units from"
                )
            if count:
                raise InvalidArgument(
                    "give a count or a percent of the application's units, not both"
                )
            if application in applications:
                raise InvalidArgument(
                    f"application {application!r} is named both as a whole and for a cohort: "
                    "a whole application already holds every cohort of it"
                )
            cohort = Cohort.of(percent, selector)
        if not (units or applications or count or cohort):
            raise InvalidArgument(
                "give units, applications, a count or a percent of units to track"
            )

        async def body(s: AsyncClientSession) -> tuple[list[str], dict[str, str]]:
            if guard is not None:  # a rollout driver's lease check, first in the transaction
                await guard(s)
            doc = await self._branch(s, branch)
            chosen: list[str] = []
            busy: list[str] = []
            for name in units:
                unit = await self._unit(s, name)
                if unit["branch"] not in (None, branch):
                    busy.append(f"{name} tracks {unit['branch']!r}")
                chosen.append(name)
            for app in applications:
                await self._app(s, app)
                other = await self.db[BRANCHES].find_one(
                    {"track_applications": app, "_id": {"$ne": branch}}, {"_id": 1}, session=s
                )
                if other:
                    busy.append(f"application {app} is tracked by branch {other['_id']!r}")
                async for unit in self.db[UNITS].find({"application": app}, session=s):
                    if unit["branch"] not in (None, branch):
                        busy.append(f"{unit['_id']} tracks {unit['branch']!r}")
                    chosen.append(unit["_id"])
            if count:
                assert application is not None
                await self._app(s, application)
                have = await self.db[UNITS].count_documents(
                    {"application": application, "branch": branch}, session=s
                )
                # limit(0) would mean "no limit" to MongoDB: skip the query instead.
                free = (
                    await self.db[UNITS]
                    .find({"application": application, "branch": None}, session=s)
                    .sort("number", ASCENDING)
                    .limit(count - have)
                    .to_list()
                    if count > have
                    else []
                )
                if have + len(free) < count:
                    raise FailedPrecondition(
                        f"{application!r} has {have + len(free)} unit(s) free to track "
                        f"{branch!r}, fewer than {count}; add units or untrack others first"
                    )
                chosen.extend(u["_id"] for u in free)
            if busy:
                raise FailedPrecondition(
                    "a unit tracks at most one branch: "
                    + "; ".join(busy)
                    + ". Untrack them from their branch first"
                )
            skipped: dict[str, str] = {}
            if cohort is not None:
                assert application is not None
                chosen.extend(await self._track_cohort(s, doc, application, cohort, skipped))
            if applications:
                # A whole application holds every cohort of it: the cohort goes.
                track = {
                    "$addToSet": {"track_applications": {"$each": list(applications)}},
                    **cohorts.dropping(doc, applications),
                }
                await self._update_branch(s, branch, track)
            fresh = sorted(set(chosen))
            await self.db[UNITS].update_many(
                {"_id": {"$in": fresh}, "branch": None},
                {"$set": {"branch": branch}, "$inc": {"revision": 1}},
                session=s,
            )
            return fresh, skipped

        (tracked, skipped), revision = await self._transact(body)
        return WriteResult(revision, units=tracked, skipped=skipped)

    async def _track_cohort(
        self,
        s: AsyncClientSession,
        branch: Mapping[str, Any],
        application: str,
        cohort: Cohort,
        skipped: dict[str, str],
    ) -> list[str]:
        """The units of ``cohort`` free to track the branch, recording the cohort on it;
        units of the cohort that track another branch go to ``skipped``.

        The units are read under the application's fence, which adding units takes
        too: a unit added concurrently is either seen here or placed by the cohort.
        """
        name = branch["_id"]
        await self._app(s, application)
        if application in branch["track_applications"]:
            raise FailedPrecondition(
                f"branch {name!r} tracks application {application!r} as a whole (every "
                "unit, also later ones): a cohort of it would add nothing"
            )
        old = cohorts.cohorts_of(branch).get(application)
        if old is not None and not cohort.covers(old):
            if old.selector != cohort.selector:
                change = (
                    f"a cohort with selector {str(cohort.selector) or '(none)'!r} instead of "
                    f"{str(old.selector) or '(none)'!r}"
                )
            else:
                change = f"{cohort.percent:g}%, less than {old.percent:g}%"
            raise FailedPrecondition(
                f"branch {name!r} tracks {old} of {application!r}; {change} would take "
                f"units off the branch. Untrack the application {application!r} from "
                f"{name!r} first (its units go back to master), then track the new cohort"
            )
        whole = await self.db[BRANCHES].find_one(
            {"track_applications": application}, {"_id": 1}, session=s
        )
        if whole is not None:
            raise FailedPrecondition(
                f"application {application!r} is tracked as a whole by branch "
                f"{whole['_id']!r}: none of its units is free for a cohort of {name!r}. "
                "Untrack it from that branch first"
            )
        fresh = []
        async for unit in self.db[UNITS].find(
            {"application": application}, {"branch": 1, "labels": 1}, session=s
        ):
            if not cohort.contains(name, unit["_id"], unit.get("labels") or {}):
                continue
            if unit["branch"] is None:
                fresh.append(unit["_id"])
            elif unit["branch"] != name:
                skipped[unit["_id"]] = f"tracks {unit['branch']!r}"
        await self._update_branch(s, name, {"$set": {f"cohorts.{application}": cohort.to_doc()}})
        return fresh

    async def untrack_branch(
        self,
        branch: str,
        *,
        units: Sequence[str] = (),
        applications: Sequence[str] = (),
        guard: Callable[[AsyncClientSession], Awaitable[None]] | None = None,
    ) -> WriteResult:
        """Units (or whole applications) stop tracking ``branch`` and see master again.

        An application the branch tracks a cohort of leaves it the same way: its units
        go back to master and the cohort is forgotten (later units no longer join)."""
        for unit in units:
            parse_unit_name(unit)
        if not (units or applications):
            raise InvalidArgument("give units or applications to untrack")

        async def body(s: AsyncClientSession) -> list[str]:
            if guard is not None:  # a rollout driver's lease check, first in the transaction
                await guard(s)
            doc = await self._branch(s, branch)
            names = []
            for name in units:
                unit = await self._unit(s, name)
                if unit["branch"] != branch:
                    raise FailedPrecondition(
                        f"unit {name!r} does not track branch {branch!r}"
                        + (f" (it tracks {unit['branch']!r})" if unit["branch"] else "")
                    )
                app = unit["application"]
                if app in doc["track_applications"] and app not in applications:
                    # Every unit of a wholly tracked application tracks the branch.
                    raise FailedPrecondition(
                        f"branch {branch!r} tracks application {app!r} as a whole, so "
                        f"{name!r} cannot leave it alone; untrack the application {app!r}"
                    )
                names.append(name)
            held = cohorts.cohorts_of(doc)
            for app in applications:
                await self._app(s, app)
                if app not in doc["track_applications"] and app not in held:
                    raise FailedPrecondition(
                        f"branch {branch!r} does not track application {app!r} as a whole "
                        "or a cohort of it"
                    )
                async for unit in self.db[UNITS].find(
                    {"application": app, "branch": branch}, {"_id": 1}, session=s
                ):
                    names.append(unit["_id"])
            if applications:
                untrack = {
                    "$pull": {"track_applications": {"$in": list(applications)}},
                    **cohorts.dropping(doc, applications),
                }
                await self._update_branch(s, branch, untrack)
            await self.db[UNITS].update_many(
                {"_id": {"$in": names}},
                {"$set": {"branch": None}, "$inc": {"revision": 1}},
                session=s,
            )
            return sorted(set(names))

        untracked, revision = await self._transact(body)
        return WriteResult(revision, units=untracked)

    async def set_branch_config(
        self,
        branch: str,
        application: str,
        set: Mapping[str, Any] | None = None,  # the client's order: set is positional
        *,
        unset: Iterable[str] = (),
        expect: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Stage changes on a branch; the first touch of a key records master's value.

        ``expect``: each key's value in the branch's view of the application must be
        as given (`ExpectationFailed` otherwise, nothing written). The view depends on
        master too: reading the application under its fence makes a concurrent master
        write conflict with this one.
        """
        to_set, to_unset = set_and_unset(set, unset)

        async def body(s: AsyncClientSession) -> None:
            doc = await self._branch(s, branch)
            app = await self._app(s, application)
            values = validate_settings(schema_of(app), to_set, unset=to_unset)
            current = changes_of(doc["changes"].get(application, {}))
            check_expectations(app, expect, current, branch)
            await self._stage(s, doc, app, current, values, to_unset)

        _, revision = await self._transact(body)
        return WriteResult(revision)

    async def patch_branch_config(
        self, branch: str, application: str, key: str, unified_diff: str
    ) -> WriteResult:
        """Apply a unified diff to the branch's view of ``key`` (one transaction)."""

        async def body(s: AsyncClientSession) -> None:
            doc = await self._branch(s, branch)
            app = await self._app(s, application)
            schema = schema_of(app)
            current = changes_of(doc["changes"].get(application, {}))
            view = config.effective_config(schema, app["settings"], current)
            value = patched_value(schema, key, view, unified_diff)
            values = validate_settings(schema, {key: value})
            await self._stage(s, doc, app, current, values, [])

        _, revision = await self._transact(body)
        return WriteResult(revision)

    async def _stage(
        self,
        s: AsyncClientSession,
        doc: Mapping[str, Any],
        app: Mapping[str, Any],
        current: dict[str, config.Change],
        values: Mapping[str, Any],
        to_unset: Iterable[str],
    ) -> None:
        """Write ``values`` and ``to_unset`` as the branch's changes to ``app``."""
        application = app["_id"]
        master = app["settings"]
        for key, value in values.items():
            current[key] = config.touch(current.get(key), master.get(key, ABSENT), Op.SET, value)
        for key in to_unset:
            current[key] = config.touch(current.get(key), master.get(key, ABSENT), Op.UNSET)
        staged = {k: c.to_doc() for k, c in current.items()}
        check_branch_size({**doc, "changes": {**doc["changes"], application: staged}})
        await self.db[BRANCHES].update_one(
            {"_id": doc["_id"]},
            {"$set": {f"changes.{application}": staged}, "$inc": {"revision": 1}},
            session=s,
        )

    async def commit_branch(
        self,
        branch: str,
        *,
        force: bool = False,
        require_applied: bool = False,
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
        reason: str = "",
        metadata: Mapping[str, Any] | None = None,
        guard: Callable[[AsyncClientSession], Awaitable[None]] | None = None,
    ) -> WriteResult:
        """Apply a branch to master for everyone, atomically, or raise `Conflict`.

        One transaction: conflict check per key (``force`` = last write wins), master
        updated, one new version per touched application, one generation record, the
        tracking units released, the branch removed. ``require_applied`` first
        checks that every tracking unit reported the branch's config applied and ok.
        """
        meta = check_metadata(metadata)
        author = Authorship(created_by, on_behalf_of, authenticated)
        check_free_text(author, reason)

        async def body(s: AsyncClientSession) -> tuple[int, dict[str, int], list[str]]:
            if guard is not None:  # a rollout driver's lease check, first in the transaction
                await guard(s)
            doc = await self._branch(s, branch)
            if require_applied:
                await self._check_applied(s, doc)
            apps: dict[str, dict[str, Any]] = {}
            old: dict[str, dict[str, Any]] = {}
            new: dict[str, dict[str, Any]] = {}
            conflicts = []
            for app_name in sorted(doc["changes"]):
                changes = changes_of(doc["changes"][app_name])
                if not changes:
                    continue
                app = await self._app(s, app_name)
                apps[app_name] = app
                old[app_name] = dict(app["settings"])
                conflicts.extend(config.find_conflicts(app_name, old[app_name], changes))
                new[app_name] = config.apply_changes(old[app_name], changes)
            if conflicts and not force:
                raise commit_conflict(branch, conflicts)
            if not new:
                raise FailedPrecondition(
                    f"branch {branch!r} has no changes: nothing to commit. Stage some "
                    f"(genconf config set APP KEY=VALUE --branch {branch}) or abort it"
                )
            generation, versions = await self._write_versions(
                s,
                "commit",
                new,
                old,
                apps,
                branch=branch,
                reason=reason or f"commit branch {branch}",
                author=author,
                metadata=meta,
            )
            return generation, versions, await self._close(s, branch)

        (generation, versions, released), revision = await self._transact(body)
        return WriteResult(revision, generation=generation, versions=versions, units=released)

    async def _check_applied(self, s: AsyncClientSession, branch: Mapping[str, Any]) -> None:
        """Raise `NotApplied` naming each tracking unit whose report is not the branch's hash."""
        hashes: dict[str, str] = {}
        behind = []
        async for unit in self.db[UNITS].find({"branch": branch["_id"]}, session=s):
            app_name = unit["application"]
            if app_name not in hashes:
                app = await self._app(s, app_name)
                hashes[app_name] = config_hash(effective_from_docs(app, branch))
            report = unit.get("applied") or {}
            if report.get("hash") != hashes[app_name] or not report.get("ok"):
                behind.append(unit["_id"])
        if behind:
            raise NotApplied(branch["_id"], sorted(behind))

    async def abort_branch(self, branch: str, *, force: bool = False) -> WriteResult:
        """Drop a branch; refused while units track it unless forced (they fall back to master)."""

        async def body(s: AsyncClientSession) -> list[str]:
            await self._branch(s, branch)
            if not force:
                tracking = await self._tracking(s, branch)
                if tracking:
                    shown = ", ".join(sorted(tracking)[:20])
                    more = f" and {len(tracking) - 20} more" if len(tracking) > 20 else ""
                    raise FailedPrecondition(
                        f"branch {branch!r} is tracked by {len(tracking)} unit(s): {shown}{more}; "
                        "untrack them, or abort with force to move them back to master"
                    )
            return await self._close(s, branch)

        released, revision = await self._transact(body)
        return WriteResult(revision, units=released)

    async def _close(self, s: AsyncClientSession, branch: str) -> list[str]:
        """Remove a committed or aborted branch; its units see master again (their names)."""
        released = await self._release_units(s, branch)
        await self.db[BRANCHES].delete_one({"_id": branch}, session=s)
        await self._drop_fence(s, "branch", branch)
        return released

    async def _release_units(self, s: AsyncClientSession, branch: str) -> list[str]:
        """Every unit tracking ``branch`` goes back to master; their names, sorted."""
        names = await self._tracking(s, branch)
        if names:
            await self.db[UNITS].update_many(
                {"branch": branch},
                {"$set": {"branch": None}, "$inc": {"revision": 1}},
                session=s,
            )
        return sorted(names)

    async def _tracking(self, s: AsyncClientSession, branch: str) -> list[str]:
        """The names of the units that track ``branch``."""
        return [
            u["_id"] async for u in self.db[UNITS].find({"branch": branch}, {"_id": 1}, session=s)
        ]

    async def _update_branch(
        self, s: AsyncClientSession, branch: str, update: dict[str, Any]
    ) -> None:
        """Apply ``update`` to the branch document, counting the write."""
        await self.db[BRANCHES].update_one(
            {"_id": branch}, {**update, "$inc": {"revision": 1}}, session=s
        )

    # -- hygiene: rebase, drop, expire ------------------------------------------

    async def rebase_branch(
        self, name: str, *, keys: Sequence[str] = (), applications: Sequence[str] = ()
    ) -> WriteResult:
        """Take master's current values as the ``from`` of staged keys (every one, or
        ``keys``, of every staged application or of ``applications``); each keeps its
        target, so a commit that conflicted on them goes through without force.

        A key whose target already equals master's value stays staged (it commits as
        no change). Each application is read under its fence, like the branch, so a
        concurrent master write and the rebase conflict: one of them retries.
        """
        validate_branch_name(name)
        for app in applications:
            validate_app_name(app)

        async def body(s: AsyncClientSession) -> None:
            doc = await self._branch(s, name)
            chosen = _rebase_selection(name, doc, keys, applications)
            update = {}
            for app_name, changes in chosen.items():
                master = (await self._app(s, app_name))["settings"]
                rebased = dict(changes)
                for key, change in changes.items():
                    if not keys or key in keys:
                        rebased[key] = Change(change.op, change.value, master.get(key, ABSENT))
                update[f"changes.{app_name}"] = {k: c.to_doc() for k, c in rebased.items()}
            await self._update_branch(s, name, {"$set": update})

        _, revision = await self._transact(body)
        return WriteResult(revision)

    async def drop_branch_key(self, name: str, application: str, key: str) -> WriteResult:
        """Remove one staged key of ``application`` from the branch: the units tracking
        it see master's value for the key again."""
        validate_branch_name(name)
        validate_app_name(application)
        if not key:
            raise InvalidArgument("give the key to drop from the branch")

        async def body(s: AsyncClientSession) -> None:
            doc = await self._branch(s, name)
            staged = doc["changes"].get(application) or {}
            if key not in staged:
                raise NotFound(
                    f"branch {name!r} stages no key {key!r} for application {application!r}; "
                    f"it stages {_staged_text(doc)}"
                )
            rest = {k: c for k, c in staged.items() if k != key}
            field = f"changes.{application}"
            await self._update_branch(
                s, name, {"$set": {field: rest}} if rest else {"$unset": {field: ""}}
            )

        _, revision = await self._transact(body)
        return WriteResult(revision)

    async def expire_branches(
        self,
        now: dt.datetime,
        *,
        guard: Callable[[AsyncClientSession], Awaitable[None]] | None = None,
    ) -> list[str]:
        """Abort, forced, every branch whose ``expires_at`` is at or before ``now`` (its
        units go back to master); the names of those this call aborted.

        One transaction per branch, which reads it under its fence and checks its
        expiry again: a branch committed, aborted or given another expiry meanwhile
        is left alone, so callers on several replicas at once abort each branch once
        (the others find it gone). Each expiry is logged at INFO with its time.
        """
        if now.tzinfo is None:
            raise InvalidArgument("expire_branches needs a time with its time zone")
        with mongo_errors():
            due = [
                d["_id"]
                async for d in self.db[BRANCHES]
                .find({"expires_at": {"$lte": now}}, {"_id": 1})
                .sort("_id", ASCENDING)
            ]
        expired = []
        for name in due:

            async def body(
                s: AsyncClientSession, name: str = name
            ) -> tuple[dt.datetime, list[str]] | None:
                if guard is not None:  # a rollout driver's lease check, first in the transaction
                    await guard(s)
                doc = await self._branch(s, name)
                expires_at = doc.get("expires_at")
                if expires_at is None or expires_at > now:
                    return None  # its expiry changed meanwhile
                return expires_at, await self._close(s, name)

            try:
                done, _ = await self._transact(body)
            except NotFound:
                continue  # committed, aborted or expired by another caller meanwhile
            if done is None:
                continue
            expires_at, released = done
            more = ", ..." if len(released) > SHOWN_KEYS else ""
            log.info(
                "branch %r expired at %s: aborted, %d unit(s) back on master: %s",
                name,
                expires_at.isoformat(),
                len(released),
                (", ".join(released[:SHOWN_KEYS]) + more) or "none",
            )
            expired.append(name)
        return expired


def _checked_expiry(expires_at: dt.datetime, now: dt.datetime) -> dt.datetime:
    """``expires_at`` if a branch added at ``now`` may expire then."""
    if expires_at.tzinfo is None:
        raise InvalidArgument("a branch's expiry must carry its time zone")
    if expires_at <= now:
        raise InvalidArgument(
            f"the branch would expire at {expires_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} "
            "UTC, which is not in the future: give a later time, or none (it never expires)"
        )
    if expires_at - now > MAX_BRANCH_LIFETIME:
        raise InvalidArgument(
            f"a branch may live at most {MAX_BRANCH_LIFETIME.days} days, not until "
            f"{expires_at:%Y-%m-%d}"
        )
    return expires_at


def _staged_text(doc: Mapping[str, Any]) -> str:
    """``web.port, web.motd`` (at most `SHOWN_KEYS`), or ``nothing``: what a branch stages."""
    changes = doc["changes"]
    staged = [f"{app}.{key}" for app in sorted(changes) for key in sorted(changes[app])]
    if not staged:
        return "nothing"
    more = f" and {len(staged) - SHOWN_KEYS} more" if len(staged) > SHOWN_KEYS else ""
    return ", ".join(staged[:SHOWN_KEYS]) + more


def _rebase_selection(
    name: str, doc: Mapping[str, Any], keys: Sequence[str], applications: Sequence[str]
) -> dict[str, dict[str, Change]]:
    """The staged changes a rebase takes, per application that stages one of ``keys``
    (every key when none is given): `FailedPrecondition` when the branch stages
    nothing, `NotFound` naming what it stages when an application or key is not."""
    staged = {app: changes_of(c) for app, c in sorted(doc["changes"].items()) if c}
    if not staged:
        raise FailedPrecondition(
            f"branch {name!r} stages no change: nothing to rebase. Stage some first "
            f"(genconf config set APP KEY=VALUE --branch {name})"
        )
    missing = sorted({app for app in applications if app not in staged})
    if missing:
        raise NotFound(
            f"branch {name!r} stages nothing for application(s) {', '.join(missing)}; "
            f"it stages {_staged_text(doc)}"
        )
    scope = {app: staged[app] for app in (sorted(set(applications)) or staged)}
    unknown = sorted({k for k in keys if not any(k in changes for changes in scope.values())})
    if unknown:
        where = f" for {', '.join(scope)}" if applications else ""
        raise NotFound(
            f"branch {name!r} stages no key {', '.join(map(repr, unknown))}{where}; "
            f"it stages {_staged_text(doc)}"
        )
    return {
        app: changes
        for app, changes in scope.items()
        if not keys or any(k in changes for k in keys)
    }


def commit_conflict(branch: str, keys: list[ConflictedKey]) -> Conflict:
    """The `Conflict` of a commit, naming the ways out: rebase the branch on master,
    drop a key from it, or force the commit."""
    conflict = Conflict(f"branch {branch!r}", keys)
    parts = [
        f"{k.application}.{k.key} (from {show_value(k.expected)}, master now "
        f"{show_value(k.current)}, branch {branch!r} wants {show_value(k.proposed)})"
        for k in keys
    ]
    first = keys[0]
    conflict.message = (
        f"branch {branch!r} conflicts with master on {len(keys)} key(s): "
        + "; ".join(parts)
        + f". Run `genconf branch rebase {branch}` to take master's current values as the "
        "branch's starting point (it keeps its targets), "
        f"`genconf branch drop {branch} {first.application} {first.key}` to drop a key, "
        "or pass force to overwrite (last write wins)"
    )
    conflict.args = (conflict.message,)
    return conflict
