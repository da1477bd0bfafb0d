"""Writes of history: roll master back to a version, revert a generation, label versions.

History reads (lists, diffs, a key's history) live in `genconf.store.history`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from genconf.domain import config, diff, semver
from genconf.domain.authorship import Authorship
from genconf.domain.results import WriteResult
from genconf.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidArgument, NotFound
from genconf.store.checks import check_expected, check_free_text, fit_schema
from genconf.store.core import LabelResult, StoreCore
from genconf.store.documents import APPLICATIONS, GENERATIONS, VERSIONS


class HistoryWrites(StoreCore):
    """Rollback, revert and labels: history written as new versions and generations."""

    async def rollback(
        self,
        application: str,
        to_version: int,
        *,
        expected_version: int | None = None,
        reason: str = "",
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
    ) -> WriteResult:
        """A new version whose settings are version ``to_version``'s (``rollback`` generation).

        It is written even when master already holds those settings: a rollback is
        an operator's decision worth recording.
        """
        if to_version < 1:
            raise InvalidArgument(
                f"to_version must be a version number (1 or more), not {to_version}"
            )
        author = Authorship(created_by, on_behalf_of, authenticated)
        check_free_text(author, reason)

        async def body(s: AsyncClientSession) -> tuple[int, dict[str, int]]:
            app = await self._app(s, application)
            check_expected(app, expected_version)
            target = await self._version(s, app, to_version)
            settings = fit_schema(app, target["settings"], f"version {to_version}")
            return await self._write_versions(
                s,
                "rollback",
                {application: settings},
                {application: dict(app["settings"])},
                {application: app},
                branch=None,
                reason=reason or f"rollback to version {to_version}",
                author=author,
                metadata={"rollback_from": int(app["version"]), "rollback_to": to_version},
            )

        (generation, versions), revision = await self._transact(body)
        return WriteResult(revision, generation=generation, versions=versions)

    async def revert_generation(
        self,
        generation: int,
        *,
        force: bool = False,
        reason: str = "",
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
    ) -> WriteResult:
        """Apply the inverse of one generation as a new ``revert`` generation.

        Checked per key like a commit: a key changed since (master no longer holds
        what the generation wrote) is a conflict unless ``force``. Applications
        where the inverse changes nothing get no new version.
        """
        author = Authorship(created_by, on_behalf_of, authenticated)
        check_free_text(author, reason)

        async def body(s: AsyncClientSession) -> tuple[int, dict[str, int]]:
            gen = await self.db[GENERATIONS].find_one({"_id": generation}, session=s)
            if gen is None:
                raise NotFound(f"generation {generation} not found")
            apps: dict[str, dict[str, Any]] = {}
            old: dict[str, dict[str, Any]] = {}
            new: dict[str, dict[str, Any]] = {}
            conflicts = []
            for app_name in sorted(gen["changes"]):
                inverse = config.inverse_changes(gen["changes"][app_name])
                if not inverse:
                    continue
                await self._fence(s, "application", app_name)
                app = await self.db[APPLICATIONS].find_one({"_id": app_name}, session=s)
                if app is None:
                    raise FailedPrecondition(
                        f"generation {generation} changed application {app_name!r}, "
                        "which has been removed since; it cannot be reverted"
                    )
                before = dict(app["settings"])
                conflicts.extend(config.find_conflicts(app_name, before, inverse))
                after = config.apply_changes(before, inverse)
                if diff.diff(before, after).empty:
                    continue
                apps[app_name], old[app_name] = app, before
                new[app_name] = fit_schema(app, after, f"the revert of generation {generation}")
            if conflicts and not force:
                raise Conflict(f"the revert of generation {generation}", conflicts)
            if not new:
                raise FailedPrecondition(
                    f"nothing to revert: master already holds the values from before "
                    f"generation {generation}"
                )
            return await self._write_versions(
                s,
                "revert",
                new,
                old,
                apps,
                branch=None,
                reason=reason or f"revert generation {generation}",
                author=author,
                metadata={"revert_of": generation},
            )

        (gen_id, versions), revision = await self._transact(body)
        return WriteResult(revision, generation=gen_id, versions=versions)

    async def tag_version(self, application: str, label: str, *, version: int) -> LabelResult:
        """Put a semantic label on a version; labels are unique per application."""
        normalized = str(semver.SemVer.parse(label))

        async def body(s: AsyncClientSession) -> int:
            app = await self._app(s, application)
            return await self._put_label(s, app, version, normalized)

        tagged, revision = await self._transact(body)
        return LabelResult(application, tagged, normalized, revision)

    async def bump_version(self, application: str, part: str, *, version: int = 0) -> LabelResult:
        """Label a version (default: the current) one ``part`` above the highest label."""
        try:
            bump = semver.Bump(part)
        except ValueError:
            raise InvalidArgument(
                f"bump part must be major, minor or patch, not {part!r}"
            ) from None

        async def body(s: AsyncClientSession) -> tuple[int, str]:
            app = await self._app(s, application)
            labels = [
                tag
                async for doc in self.db[VERSIONS].find(
                    {"application": application, "tags.0": {"$exists": True}},
                    {"tags": 1},
                    session=s,
                )
                for tag in doc["tags"]
            ]
            label = str(semver.next_label(labels, bump))
            return await self._put_label(s, app, version, label), label

        (tagged, label), revision = await self._transact(body)
        return LabelResult(application, tagged, label, revision)

    async def _put_label(
        self, s: AsyncClientSession, app: Mapping[str, Any], version: int, label: str
    ) -> int:
        doc = await self._version(s, app, version)
        holder = await self.db[VERSIONS].find_one(
            {"application": app["_id"], "tags": label}, {"version": 1}, session=s
        )
        if holder is not None and holder["version"] != doc["version"]:
            raise AlreadyExists(
                f"label {label} is already on version {holder['version']} of "
                f"application {app['_id']!r}; labels are unique per application"
            )
        if holder is None:
            await self.db[VERSIONS].update_one(
                {"_id": doc["_id"]},
                {"$push": {"tags": label}, "$inc": {"revision": 1}},
                session=s,
            )
        return int(doc["version"])
