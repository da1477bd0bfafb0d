"""Writes of history: roll master back to a version, revert a generation, label versions.

History reads (lists, diffs, a key's history) live in `genconf.store.history`; a
version named by number or label is found by the same `history.find_version`
here, inside the write's transaction.

Labels grow with versions (`semver.check_order`). Whether a label may go on a
version depends on the labels of *other* versions, which the write does not
change; so every label write reads the application under its fence
(`StoreCore._app`), which every other label write writes too: two concurrent
label writes conflict and one retries on what the other wrote, never both
deciding on the same stale view (write skew).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pymongo.asynchronous.client_session import AsyncClientSession

from genconf.domain import config, diff, names, semver
from genconf.domain.authorship import Authorship
from genconf.domain.results import WriteResult
from genconf.errors import AlreadyExists, Conflict, FailedPrecondition, InvalidArgument, NotFound
from genconf.store.checks import check_expected, check_free_text, check_metadata, fit_schema
from genconf.store.core import LabelResult, StoreCore
from genconf.store.documents import APPLICATIONS, GENERATIONS, VERSIONS
from genconf.store.history import (
    VersionRef,
    find_version,
    labelled_versions,
    version_ref,
)

# Metadata keys a rollback records itself: the version it replaced and the one it restored.
ROLLBACK_KEYS: Final = ("rollback_from", "rollback_to")


class HistoryWrites(StoreCore):
    """Rollback, revert and labels: history written as new versions and generations."""

    async def rollback(
        self,
        application: str,
        to_version: int = 0,
        *,
        to_label: str = "",
        expected_version: int | None = None,
        reason: str = "",
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """A new version whose settings are those of the version numbered
        ``to_version`` or labelled ``to_label`` (a ``rollback`` generation).

        It is written even when master already holds those settings: a rollback is
        an operator's decision worth recording. Its metadata is the caller's plus
        ``rollback_from`` (the version it replaced) and ``rollback_to`` (the one it
        restored, by number); a caller's key of either name is refused rather than
        silently overwritten.
        """
        if not to_label and to_version < 1:
            raise InvalidArgument(
                f"to_version must be a version number (1 or more), not {to_version} "
                "(or name it by to_label)"
            )
        ref = version_ref(to_version, to_label, fields=("to_version", "to_label"))
        meta = check_metadata(metadata)
        taken = [key for key in ROLLBACK_KEYS if key in meta]
        if taken:
            raise InvalidArgument(
                f"metadata key(s) {', '.join(taken)} are recorded by the rollback itself "
                "(the version it replaces and the one it restores); leave them out"
            )
        author = Authorship(created_by, on_behalf_of, authenticated)
        check_free_text(author, reason)

        async def body(s: AsyncClientSession) -> tuple[int, dict[str, int]]:
            app = await self._app(s, application)
            check_expected(app, expected_version)
            target = await self._find(s, app, ref)
            number = int(target["version"])
            named = f"version {number}" if isinstance(ref, int) else f"version {number} ({ref})"
            settings = fit_schema(app, target["settings"], named)
            return await self._write_versions(
                s,
                "rollback",
                {application: settings},
                {application: dict(app["settings"])},
                {application: app},
                branch=None,
                reason=reason or f"rollback to {named}",
                author=author,
                metadata={**meta, "rollback_from": int(app["version"]), "rollback_to": number},
            )

        (generation, versions), revision = await self._transact(body)
        return WriteResult(revision, generation=generation, versions=versions)

    async def revert_generation(
        self,
        generation: int = 0,
        *,
        application: str = "",
        version: int = 0,
        label: str = "",
        force: bool = False,
        reason: str = "",
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
    ) -> WriteResult:
        """Apply the inverse of one generation as a new ``revert`` generation.

        The generation is named by its id, or (id 0) as the one that wrote
        ``application``'s version numbered ``version`` (0: its current one) or
        labelled ``label``. Checked per key like a commit: a key changed since
        (master no longer holds what the generation wrote) is a conflict unless
        ``force``. Applications where the inverse changes nothing get no new version.
        """
        ref = _revert_target(generation, application, version, label)
        author = Authorship(created_by, on_behalf_of, authenticated)
        check_free_text(author, reason)

        async def body(s: AsyncClientSession) -> tuple[int, dict[str, int]]:
            reverted = await self._generation_of(s, application, ref)
            gen = await self.db[GENERATIONS].find_one({"_id": reverted}, session=s)
            if gen is None:
                raise NotFound(f"generation {reverted} not found")
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
                        f"generation {reverted} changed application {app_name!r}, "
                        "which has been removed since; it cannot be reverted"
                    )
                written_uid = gen.get("application_uids", {}).get(app_name, "")
                if written_uid and written_uid != app.get("uid", ""):
                    raise FailedPrecondition(
                        f"generation {reverted} changed an earlier application named "
                        f"{app_name!r} (uid {written_uid[:12]}), removed since; today's "
                        f"{app_name!r} is another application (uid {app.get('uid', '')[:12]}) "
                        "with a history of its own, so the generation cannot be reverted onto it"
                    )
                before = dict(app["settings"])
                conflicts.extend(config.find_conflicts(app_name, before, inverse))
                after = config.apply_changes(before, inverse)
                if diff.diff(before, after).empty:
                    continue
                apps[app_name], old[app_name] = app, before
                new[app_name] = fit_schema(app, after, f"the revert of generation {reverted}")
            if conflicts and not force:
                raise Conflict(f"the revert of generation {reverted}", conflicts)
            if not new:
                raise FailedPrecondition(
                    f"nothing to revert: master already holds the values from before "
                    f"generation {reverted}"
                )
            return await self._write_versions(
                s,
                "revert",
                new,
                old,
                apps,
                branch=None,
                reason=reason or f"revert generation {reverted}",
                author=author,
                metadata={"revert_of": reverted},
            )

        (gen_id, versions), revision = await self._transact(body)
        return WriteResult(revision, generation=gen_id, versions=versions)

    async def tag_version(
        self, application: str, label: str, *, version: int = 0, version_label: str = ""
    ) -> LabelResult:
        """Put a semantic label on a version (by number, 0: the current one, or by a
        label it has); labels are unique per application and grow with versions."""
        normalized = semver.SemVer.parse(label)
        ref = version_ref(version, version_label, fields=("version", "version_label"))

        async def body(s: AsyncClientSession) -> int:
            app = await self._app(s, application)  # the fence: see the module docstring
            doc = await self._find(s, app, ref)
            return await self._put_label(s, app, doc, normalized)

        tagged, revision = await self._transact(body)
        return LabelResult(application, tagged, str(normalized), revision)

    async def bump_version(
        self, application: str, part: str, *, version: int = 0, version_label: str = ""
    ) -> LabelResult:
        """Label a version (by number, 0: the current one, or by a label it has) one
        ``part`` above the highest label at or below it (the first label: 1.0.0).

        The label is then held to the same rules as a tag: bumping an old version
        cannot make labels go backwards.
        """
        try:
            bump = semver.Bump(part)
        except ValueError:
            raise InvalidArgument(
                f"bump part must be major, minor or patch, not {part!r}"
            ) from None
        ref = version_ref(version, version_label, fields=("version", "version_label"))

        async def body(s: AsyncClientSession) -> tuple[int, str]:
            app = await self._app(s, application)  # the fence: see the module docstring
            doc = await self._find(s, app, ref)
            at = int(doc["version"])
            labels = await labelled_versions(self.db, application, s)
            label = semver.next_label((lbl for n, lbl in labels if n <= at), bump)
            return await self._put_label(s, app, doc, label, labels), str(label)

        (tagged, label), revision = await self._transact(body)
        return LabelResult(application, tagged, label, revision)

    async def _find(
        self, s: AsyncClientSession, app: Mapping[str, Any], ref: VersionRef
    ) -> dict[str, Any]:
        return await find_version(self.db, app, ref, s)

    async def _generation_of(self, s: AsyncClientSession, application: str, ref: VersionRef) -> int:
        """The generation a revert names: its id, or the one that wrote a version."""
        if not application:
            assert isinstance(ref, int)
            return ref
        app = await self._app(s, application)
        doc = await self._find(s, app, ref)
        generation = doc.get("generation")
        if not generation:
            raise FailedPrecondition(
                f"version {doc['version']} of application {application} was written when "
                "the application was created, not by a generation; there is nothing to revert"
            )
        return int(generation)

    async def _put_label(
        self,
        s: AsyncClientSession,
        app: Mapping[str, Any],
        doc: Mapping[str, Any],
        label: semver.SemVer,
        labels: list[tuple[int, str]] | None = None,
    ) -> int:
        """Put ``label`` on version document ``doc``: unique per application, and in
        order with every other version's labels. ``labels``: the application's
        labels when the caller read them already (in this transaction)."""
        text, number = str(label), int(doc["version"])
        if labels is None:
            labels = await labelled_versions(self.db, app["_id"], s)
        holder = next((n for n, lbl in labels if lbl == text), None)
        if holder is not None and holder != number:
            raise AlreadyExists(
                f"label {text} is already on version {holder} of "
                f"application {app['_id']!r}; labels are unique per application"
            )
        if holder is None:
            semver.check_order(label, number, [(n, lbl) for n, lbl in labels if n != number])
            await self.db[VERSIONS].update_one(
                {"_id": doc["_id"]},
                {"$push": {"tags": text}, "$inc": {"revision": 1}},
                session=s,
            )
        return number


def _revert_target(generation: int, application: str, version: int, label: str) -> VersionRef:
    """What a revert names, checked before anything is read: a generation id, or an
    application's version (`version_ref`; 0: its current one)."""
    if generation < 0:
        raise InvalidArgument(f"generation must be an id (1 or more), not {generation}")
    if generation and (application or version or label):
        raise InvalidArgument(
            f"give generation {generation} or a version of application {application!r}, "
            "not both: each names a generation"
        )
    if generation:
        return generation
    if not application:
        if version or label:
            raise InvalidArgument("a version or label names a generation only with its application")
        raise InvalidArgument(
            "name the generation to revert: its id, or an application and its version or label"
        )
    names.validate_app_name(application)
    return version_ref(version, label)
