"""Writes of applications and their units: create, update, remove; add and remove units."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from genconf.domain.authorship import Authorship
from genconf.domain.labels import relabelled
from genconf.domain.names import (
    check_unit_numbers,
    parse_unit_name,
    unit_name,
    validate_app_name,
    validate_charm_name,
)
from genconf.domain.results import WriteResult
from genconf.domain.schema import (
    OPEN_SCHEMA,
    coerce_value,
    require_key,
    schema_to_doc,
    validate_settings,
)
from genconf.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from genconf.store import cohorts
from genconf.store.checks import (
    check_application_size,
    check_count,
    check_free_text,
    check_metadata,
    parse_bounded_schema,
)
from genconf.store.core import StoreCore
from genconf.store.documents import (
    APPLICATIONS,
    BRANCHES,
    UNITS,
    VERSIONS,
    new_uid,
    secret_keys,
    unit_doc,
    version_doc,
)


class ApplicationWrites(StoreCore):
    """Applications and units."""

    # -- applications ------------------------------------------------------

    async def create_application(
        self,
        name: str,
        *,
        charm: str = "",
        schema: Mapping[str, Any] | None = None,
        open: bool = False,
        settings: Mapping[str, Any] | None = None,
        units: int = 0,
        reason: str = "",
        metadata: Mapping[str, Any] | None = None,
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
    ) -> WriteResult:
        """A new application whose version 1 holds ``settings``, ``reason`` and
        ``metadata``. ``open``: keys the schema does not declare are allowed (the
        schema's wildcard entry, of type ``any`` unless the schema gives one)."""
        validate_app_name(name)
        raw_schema = dict(schema or {})
        if open:
            raw_schema = {**OPEN_SCHEMA, **raw_schema}
        parsed = parse_bounded_schema(raw_schema)
        initial = validate_settings(parsed, dict(settings or {}))
        meta = check_metadata(metadata)
        check_count(units)
        author = Authorship(created_by, on_behalf_of, authenticated)
        check_free_text(author, reason)
        charm = validate_charm_name(charm or name)
        now = self.clock()
        app_doc = {
            "_id": name,
            "uid": new_uid(),
            "charm": charm,
            "schema": schema_to_doc(parsed),
            "settings": initial,
            "version": 1,
            "next_unit": units,
            "revision": 1,
            "created_at": now,
            "updated_at": now,
        }
        check_application_size(app_doc)
        first = version_doc(
            name,
            1,
            initial,
            previous_version=0,
            generation=None,
            secret=secret_keys(app_doc),
            timestamp=now,
            reason=reason or "created",
            author=author,
            metadata=meta,
        )

        async def body(s: AsyncClientSession) -> list[str]:
            await self._insert_new(s, "application", APPLICATIONS, app_doc)
            await self.db[VERSIONS].insert_one(dict(first), session=s)
            names = [unit_name(name, n) for n in range(units)]
            if names:
                await self.db[UNITS].insert_many(
                    [unit_doc(app_doc, n, None) for n in range(units)], session=s
                )
            return names

        created, revision = await self._transact(body)
        return WriteResult(revision, versions={name: 1}, units=created)

    async def update_application(
        self,
        name: str,
        *,
        charm: str | None = None,
        schema: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Change the charm or the schema; master and branches must still fit the schema."""
        parsed = parse_bounded_schema(schema) if schema is not None else None
        if charm is not None and not charm:
            raise InvalidArgument("charm must not be empty")
        if charm is not None:
            validate_charm_name(charm)

        async def body(s: AsyncClientSession) -> None:
            app = await self._app(s, name)
            update: dict[str, Any] = {"updated_at": self.clock()}
            if charm is not None:
                update["charm"] = charm
            if parsed is not None:
                # Values in use must fit the new schema; those that do are stored
                # in its types (an int option turned float holds 2.0, not 2), so
                # later conflict checks compare like with like.
                problems = []
                settings = {}
                for key, value in app["settings"].items():
                    try:
                        settings[key] = coerce_value(key, require_key(parsed, key), value)
                    except InvalidArgument as exc:
                        problems.append(f"master: {exc.message}")
                branch_updates: dict[str, dict[str, Any]] = {}
                async for branch in self.db[BRANCHES].find(
                    {f"changes.{name}": {"$exists": True}}, session=s
                ):
                    changes = {}
                    for key, change in branch["changes"][name].items():
                        try:
                            spec = require_key(parsed, key)
                            changes[key] = dict(change)
                            if "value" in change:
                                changes[key]["value"] = coerce_value(key, spec, change["value"])
                        except InvalidArgument as exc:
                            problems.append(f"branch {branch['_id']!r}: {exc.message}")
                            continue
                        if "from" in change:
                            with contextlib.suppress(InvalidArgument):
                                changes[key]["from"] = coerce_value(key, spec, change["from"])
                    branch_updates[branch["_id"]] = changes
                if problems:
                    raise FailedPrecondition(
                        f"the new schema of {name!r} does not fit values in use: "
                        + "; ".join(problems)
                        + ". Unset or change those values first"
                    )
                update["settings"] = settings
                for branch_name, changes in branch_updates.items():
                    await self._fence(s, "branch", branch_name)
                    await self.db[BRANCHES].update_one(
                        {"_id": branch_name},
                        {"$set": {f"changes.{name}": changes}, "$inc": {"revision": 1}},
                        session=s,
                    )
                update["schema"] = schema_to_doc(parsed)
            check_application_size({**app, **update})
            await self.db[APPLICATIONS].update_one(
                {"_id": name}, {"$set": update, "$inc": {"revision": 1}}, session=s
            )

        _, revision = await self._transact(body)
        return WriteResult(revision)

    async def remove_application(self, name: str, *, force: bool = False) -> WriteResult:
        """Remove an application, its units and versions, and its part of every branch.

        With units it takes ``force``: they go too (read under the application's
        fence, which adding a unit takes, so a unit added meanwhile is counted)."""

        async def body(s: AsyncClientSession) -> None:
            await self._app(s, name)
            if not force:
                units = await self.db[UNITS].distinct("_id", {"application": name}, session=s)
                if units:
                    shown = ", ".join(sorted(units, key=lambda u: int(u.rsplit("/", 1)[1]))[:5])
                    more = f" and {len(units) - 5} more" if len(units) > 5 else ""
                    raise FailedPrecondition(
                        f"application {name!r} has {len(units)} unit(s) ({shown}{more}); "
                        "removing it removes them too and their agents' tokens stop "
                        "working: pass force to remove it with its units"
                    )
            flt = {"$or": [{f"changes.{name}": {"$exists": True}}, {"track_applications": name}]}
            touched = await self.db[BRANCHES].distinct("_id", flt, session=s)
            tracked = await self.db[UNITS].distinct(
                "branch", {"application": name, "branch": {"$ne": None}}, session=s
            )
            for branch in sorted(set(touched) | set(tracked)):
                await self._fence(s, "branch", branch)
            await self.db[UNITS].delete_many({"application": name}, session=s)
            await self.db[VERSIONS].delete_many({"application": name}, session=s)
            await cohorts.forget_application(self.db, s, name)
            await self.db[BRANCHES].update_many(
                flt,
                {
                    "$unset": {f"changes.{name}": ""},
                    "$pull": {"track_applications": name},
                    "$inc": {"revision": 1},
                },
                session=s,
            )
            await self.db[APPLICATIONS].delete_one({"_id": name}, session=s)
            await self._drop_fence(s, "application", name)

        _, revision = await self._transact(body)
        return WriteResult(revision)

    # -- units -------------------------------------------------------------

    async def add_units(
        self,
        application: str,
        *,
        count: int = 0,
        names: Sequence[str] = (),
        labels: Mapping[str, str] | None = None,
    ) -> WriteResult:
        """Add ``count`` units (numbering continues) or the named ones; never reuse a number.

        A unit of an application that a branch tracks as a whole tracks that branch;
        else a unit in a cohort a branch tracks of the application (read with its
        ``labels``) tracks that branch (`genconf.store.cohorts.place_new_units`).
        """
        unit_labels = relabelled({}, labels, ()) if labels else {}
        check_count(count)
        numbers: list[int] = []
        for unit in names:
            app, number = parse_unit_name(unit)
            if app != application:
                raise InvalidArgument(f"unit {unit!r} does not belong to {application!r}")
            numbers.append(number)
        if len(set(numbers)) != len(numbers):
            raise InvalidArgument("the same unit name is given twice")
        if count and numbers:
            raise InvalidArgument("give either a count or unit names, not both")
        if not count and not numbers:
            raise InvalidArgument("give a unit count >= 1 or at least one unit name")
        check_count(len(numbers))

        async def body(s: AsyncClientSession) -> list[str]:
            app = await self._app(s, application)
            next_unit = int(app["next_unit"])
            if numbers:
                taken = [n for n in numbers if n < next_unit]
                if taken:
                    raise AlreadyExists(
                        f"unit number(s) {taken} of {application!r} are in use or were used "
                        f"before; numbers are never reused: the next free one is {next_unit}"
                    )
                chosen = sorted(numbers)
            else:
                chosen = list(range(next_unit, next_unit + count))
            check_unit_numbers(application, chosen[-1:])  # sorted: the highest
            tracker = await self.db[BRANCHES].find_one(
                {"track_applications": application}, {"_id": 1}, session=s
            )
            branch = tracker["_id"] if tracker else None
            if branch is not None:
                # The new units track it: a concurrent abort or commit must conflict.
                await self._fence(s, "branch", branch)
            docs = [unit_doc(app, n, branch) for n in chosen]
            if unit_labels:  # stored only when there are some, as `label_unit` does
                for doc in docs:
                    doc["labels"] = dict(unit_labels)
            await cohorts.place_new_units(self.db, s, docs)
            await self.db[UNITS].insert_many(docs, session=s)
            await self.db[APPLICATIONS].update_one(
                {"_id": application},
                {"$set": {"next_unit": max(chosen) + 1}, "$inc": {"revision": 1}},
                session=s,
            )
            return [unit_name(application, n) for n in chosen]

        added, revision = await self._transact(body)
        return WriteResult(revision, units=added)

    async def remove_unit(self, name: str) -> WriteResult:
        async def body(s: AsyncClientSession) -> None:
            unit = await self._unit(s, name)
            await self._fence(s, "application", unit["application"])
            if unit["branch"] is not None:
                await self._fence(s, "branch", unit["branch"])
            await self.db[UNITS].delete_one({"_id": name}, session=s)

        _, revision = await self._transact(body)
        return WriteResult(revision, units=[name])
