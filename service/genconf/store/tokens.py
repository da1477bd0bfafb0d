"""Writes of tokens: store a minted token, revoke one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from genconf.domain.results import WriteResult
from genconf.errors import NotFound
from genconf.store.core import StoreCore
from genconf.store.documents import TOKENS


class TokenWrites(StoreCore):
    """Token documents (minted and checked in `genconf.security`)."""

    async def create_token(self, doc: Mapping[str, Any]) -> WriteResult:
        """Store a minted token (`security.auth.mint`): its salted hash, never its secret."""

        async def body(s: AsyncClientSession) -> None:
            await self.db[TOKENS].insert_one(dict(doc), session=s)

        _, revision = await self._transact(body)
        return WriteResult(revision)

    async def revoke_token(self, token_id: str) -> WriteResult:
        """Mark a token revoked (kept for the record); revoking twice is harmless."""
        now = self.clock()

        async def body(s: AsyncClientSession) -> None:
            doc = await self.db[TOKENS].find_one({"_id": token_id}, {"revoked_at": 1}, session=s)
            if doc is None:
                raise NotFound(f"token {token_id!r} not found (see `genconf token list`)")
            if doc.get("revoked_at") is None:
                await self.db[TOKENS].update_one(
                    {"_id": token_id},
                    {"$set": {"revoked_at": now}, "$inc": {"revision": 1}},
                    session=s,
                )

        _, revision = await self._transact(body)
        return WriteResult(revision)
