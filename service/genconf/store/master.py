"""Writes of master config: each change is a new immutable version and a ``set`` generation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from genconf.domain import diff
from genconf.domain.authorship import Authorship
from genconf.domain.results import WriteResult
from genconf.domain.schema import validate_settings
from genconf.store.checks import check_expected, check_free_text, check_metadata, set_and_unset
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
        expected_version: int | None = None,
        reason: str = "",
        created_by: str = "",
        on_behalf_of: str = "",
        authenticated: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> WriteResult:
        """Change master: a new immutable version and a ``set`` generation.

        A write that changes nothing writes nothing and returns the current version.
        """
        to_set, to_unset = set_and_unset(set, unset)
        meta = check_metadata(metadata)
        author = Authorship(created_by, on_behalf_of, authenticated)
        check_free_text(author, reason)

        async def body(s: AsyncClientSession) -> tuple[int | None, dict[str, int]]:
            app = await self._app(s, application)
            check_expected(app, expected_version)
            schema = schema_of(app)
            values = validate_settings(schema, to_set, unset=to_unset)
            old = dict(app["settings"])
            new = {**old, **values}
            for key in to_unset:
                new.pop(key, None)
            if diff.diff(old, new).empty:
                return None, {application: int(app["version"])}
            return await self._write_versions(
                s,
                "set",
                {application: new},
                {application: old},
                {application: app},
                branch=None,
                reason=reason,
                author=author,
                metadata=meta,
            )

        (generation, versions), revision = await self._transact(body)
        return WriteResult(revision, generation=generation, versions=versions)
