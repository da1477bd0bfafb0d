"""Writes of master config: each change is a new immutable version and a ``set`` generation."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from genconf.domain import config, diff
from genconf.domain.authorship import Authorship
from genconf.domain.results import WriteResult
from genconf.domain.schema import check_write_keys, validate_settings
from genconf.errors import InvalidArgument
from genconf.store.checks import (
    check_expectations,
    check_expected,
    check_free_text,
    check_metadata,
    patched_value,
    set_and_unset,
)
from genconf.store.core import StoreCore
from genconf.store.documents import schema_of


class MasterWrites(StoreCore):
    """Master config."""

    async def set_config(
        self,
        application: str,
        set: Mapping[str, Any] | None = None,  # the client's order: set is positional
        *,
        unset: Iterable[str] = (),
        replace: bool = False,
        expect: Mapping[str, Any] | None = None,
        expected_version: int | None = None,
        reason: str = "",
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Change master: a new immutable version and a ``set`` generation.

        ``replace``: ``set`` is the whole config, every other key goes back to its
        default (or away). ``expect``: each key's effective value must be as given
        (ABSENT: no value), else `ExpectationFailed` and nothing is written. A write
        that changes nothing writes nothing and returns the current version.
        """
        if replace:
            if list(unset):
                raise InvalidArgument(
                    "a replace names the whole config in set; it takes no unset "
                    "(leave a key out to unset it)"
                )
            to_set, to_unset = dict(set or {}), []
            check_write_keys(len(to_set))
        else:
            to_set, to_unset = set_and_unset(set, unset)

        def change(app: Mapping[str, Any]) -> dict[str, Any]:
            values = validate_settings(schema_of(app), to_set, unset=to_unset)
            check_expectations(app, expect)
            new = dict(values) if replace else {**app["settings"], **values}
            for key in to_unset:
                new.pop(key, None)
            return new

        return await self._change_master(
            application,
            change,
            expected_version=expected_version,
            reason=reason,
            author=Authorship(created_by, on_behalf_of, authenticated),
            metadata=metadata,
        )

    async def patch_config(
        self,
        application: str,
        key: str,
        unified_diff: str,
        *,
        expected_version: int | None = None,
        reason: str = "",
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Apply a unified diff to master's (effective) text value of ``key``, read and
        written in one transaction: a diff that does not apply writes nothing."""

        def change(app: Mapping[str, Any]) -> dict[str, Any]:
            schema = schema_of(app)
            current = config.effective_config(schema, app["settings"])
            value = patched_value(schema, key, current, unified_diff)
            return {**app["settings"], **validate_settings(schema, {key: value})}

        return await self._change_master(
            application,
            change,
            expected_version=expected_version,
            reason=reason,
            author=Authorship(created_by, on_behalf_of, authenticated),
            metadata=metadata,
        )

    async def _change_master(
        self,
        application: str,
        change: Callable[[Mapping[str, Any]], dict[str, Any]],
        *,
        expected_version: int | None,
        reason: str,
        author: Authorship,
        metadata: Mapping[str, Any] | None,
    ) -> WriteResult:
        """One transaction: read the application under its fence, check the expected
        version, let ``change`` compute master's new settings (or refuse), write them
        as a version unless they equal the old ones."""
        meta = check_metadata(metadata)
        check_free_text(author, reason)

        async def body(s: AsyncClientSession) -> tuple[int | None, dict[str, int]]:
            app = await self._app(s, application)
            check_expected(app, expected_version)
            new = change(app)
            return await self._write_master(
                s, app, dict(app["settings"]), new, reason, author, meta
            )

        (generation, versions), revision = await self._transact(body)
        return WriteResult(revision, generation=generation, versions=versions)

    async def _write_master(
        self,
        s: AsyncClientSession,
        app: Mapping[str, Any],
        old: dict[str, Any],
        new: dict[str, Any],
        reason: str,
        author: Authorship,
        metadata: Mapping[str, Any],
    ) -> tuple[int | None, dict[str, int]]:
        name = app["_id"]
        if diff.diff(old, new).empty:
            return None, {name: int(app["version"])}
        return await self._write_versions(
            s,
            "set",
            {name: new},
            {name: old},
            {name: app},
            branch=None,
            reason=reason,
            author=author,
            metadata=metadata,
        )
