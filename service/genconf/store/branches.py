"""Writes of branches: add, track and untrack units, stage changes, commit and abort."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession

from genconf.domain import config
from genconf.domain.authorship import Authorship
from genconf.domain.config import Op
from genconf.domain.names import parse_unit_name, validate_app_name, validate_branch_name
from genconf.domain.results import WriteResult
from genconf.domain.schema import validate_settings
from genconf.domain.values import ABSENT, config_hash
from genconf.errors import Conflict, FailedPrecondition, InvalidArgument, NotApplied
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


class BranchWrites(StoreCore):
    """Branches: staged changes and the units that track them."""

    async def add_branch(
        self,
        name: str,
        *,
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
    ) -> WriteResult:
        validate_branch_name(name)
        author = Authorship(created_by, on_behalf_of, authenticated)
        check_free_text(author)
        doc = {
            "_id": name,
            **author.fields(),
            "created_at": self.clock(),
            "track_applications": [],
            "changes": {},
            "revision": 1,
        }

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
    ) -> WriteResult:
        """Make units track ``branch``: named units, whole applications (future units too),
        or ``count`` units of ``application`` (the lowest-numbered free ones, so that
        repeating the call is stable)."""
        for unit in units:
            parse_unit_name(unit)
        for app in applications:
            validate_app_name(app)
        check_count(count)
        if count and application is None:
            raise InvalidArgument("count needs the application to pick units from")
        if not (units or applications or count):
            raise InvalidArgument("give units, applications, or a count of units to track")

        async def body(s: AsyncClientSession) -> list[str]:
            await self._branch(s, branch)
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
            if applications:
                track = {"$addToSet": {"track_applications": {"$each": list(applications)}}}
                await self._update_branch(s, branch, track)
            fresh = sorted(set(chosen))
            await self.db[UNITS].update_many(
                {"_id": {"$in": fresh}, "branch": None},
                {"$set": {"branch": branch}, "$inc": {"revision": 1}},
                session=s,
            )
            return fresh

        tracked, revision = await self._transact(body)
        return WriteResult(revision, units=tracked)

    async def untrack_branch(
        self, branch: str, *, units: Sequence[str] = (), applications: Sequence[str] = ()
    ) -> WriteResult:
        """Units (or whole applications) stop tracking ``branch`` and see master again."""
        for unit in units:
            parse_unit_name(unit)
        if not (units or applications):
            raise InvalidArgument("give units or applications to untrack")

        async def body(s: AsyncClientSession) -> list[str]:
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
            for app in applications:
                await self._app(s, app)
                if app not in doc["track_applications"]:
                    raise FailedPrecondition(
                        f"branch {branch!r} does not track application {app!r} as a whole"
                    )
                async for unit in self.db[UNITS].find(
                    {"application": app, "branch": branch}, {"_id": 1}, session=s
                ):
                    names.append(unit["_id"])
            if applications:
                untrack = {"$pull": {"track_applications": {"$in": list(applications)}}}
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
                raise Conflict(f"branch {branch!r}", conflicts)
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
