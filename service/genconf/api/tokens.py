"""TokenService: mint, list and revoke bearer tokens (admin only, see `genconf.security.auth`)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Final

import grpc

from genconf import wire
from genconf.api.errors import unary, write
from genconf.api.guard import current_principal
from genconf.api.reads import CacheServicer, await_revision, read, wait_limit
from genconf.domain import names
from genconf.domain.results import WriteResult
from genconf.errors import InvalidArgument, NotFound, Unavailable
from genconf.readside.cache import ModelCache
from genconf.security import auth
from genconf.security.tokenbook import TokenBook
from genconf.store.store import Store
from genconf.v1 import tokens_pb2 as pb
from genconf.v1 import tokens_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

log = logging.getLogger("genconf.tokens")

MAX_LIFETIME: Final = dt.timedelta(days=3650)
# How long a token write waits for this server's token book to show it.
BOOK_WAIT: Final = 5.0


def token_info(record: auth.TokenRecord) -> pb.TokenInfo:
    return pb.TokenInfo(
        id=record.id,
        role=record.role.value,
        unit=record.unit or "",
        created_by=record.created_by,
        created_at=wire.to_timestamp(record.created_at),
        expires_at=wire.to_timestamp(record.expires_at),
        revoked=record.revoked,
        description=record.description,
        name=record.name,
        unit_uid=record.unit_uid,
    )


class TokenServicer(CacheServicer, tokens_pb2_grpc.TokenServiceServicer):
    def __init__(self, store: Store, cache: ModelCache, tokens: TokenBook) -> None:
        super().__init__(store, cache)
        self.tokens = tokens

    async def _unit_uid(self, unit: str) -> str:
        """The uid of the unit an agent token is minted for, read from MongoDB: the
        cache may not have the unit yet (created a moment ago, maybe elsewhere), or
        may still hold an incarnation that has just been replaced."""
        uid = await self.store.unit_uid(unit)
        if uid is None:
            raise NotFound(
                f"unit {unit!r} not found: an agent token is bound to a unit that exists "
                "(add the unit first)"
            )
        return uid

    @unary
    async def CreateToken(
        self, request: pb.CreateTokenRequest, context: Context
    ) -> pb.CreateTokenResponse:
        if request.expires_in_seconds < 0:
            raise InvalidArgument("expires_in_seconds must not be negative (0: never expires)")
        # Compared as a number first: a huge int64 overflows timedelta.
        if request.expires_in_seconds > MAX_LIFETIME.total_seconds():
            raise InvalidArgument(
                f"expires_in_seconds may be at most {int(MAX_LIFETIME.total_seconds())} "
                "(10 years); use 0 for no expiry"
            )
        lifetime = dt.timedelta(seconds=request.expires_in_seconds)
        role = auth.parse_role(request.role)
        auth.check_token_name(request.name)
        unit_uid = ""
        if role is auth.Role.AGENT and request.unit:
            names.parse_unit_name(request.unit)
            unit_uid = await self._unit_uid(request.unit)
        now = self.store.clock()
        caller = current_principal.get()
        minted = auth.mint(
            role,
            unit=request.unit or None,
            expires_at=now + lifetime if request.expires_in_seconds else None,
            created_by=caller.token_id if caller else "",
            description=request.description,
            now=now,
            name=request.name,
            unit_uid=unit_uid,
        )
        result = await self.store.create_token(minted.doc)
        token_id = minted.doc["_id"]
        await self._book_shows(
            lambda: self.tokens.get(token_id) is not None, result.revision, context
        )
        return pb.CreateTokenResponse(
            token=minted.plaintext,
            info=token_info(auth.TokenRecord.from_doc(minted.doc)),
            revision=result.revision,
        )

    @unary
    @read()
    def ListTokens(self, request: pb.ListTokensRequest, context: Context) -> pb.ListTokensResponse:
        records = sorted(
            self.tokens.records.values(),
            key=lambda r: (r.created_at.timestamp() if r.created_at else 0.0, r.id),
        )
        return pb.ListTokensResponse(
            tokens=[token_info(r) for r in records], revision=self.cache.revision
        )

    @write
    async def RevokeToken(self, request: pb.RevokeTokenRequest, context: Context) -> WriteResult:
        if not auth.TOKEN_ID_RE.match(request.id):
            raise InvalidArgument(
                f"{request.id!r} is not a token id (16 hex digits, see `genconf token list`)"
            )
        result = await self.store.revoke_token(request.id)

        def refused() -> bool:
            # Revoked, not merely unknown: a book that has not seen the token yet
            # would accept it once the creation arrives, until the revocation does.
            record = self.tokens.get(request.id)
            return record is not None and record.revoked

        await self._book_shows(refused, result.revision, context)
        return result

    async def _book_shows(self, check: Callable[[], bool], revision: int, context: Context) -> None:
        """Wait (bounded) until this server's token book reflects the write just made.

        The book follows the change stream; without the wait a token could fail
        right after CreateToken, or work right after RevokeToken, on this very
        server. The multiwatcher applies token events to the book before it
        advances the cache past their revision, so once the cache has the write's
        ``revision`` the book holds it. The write itself is done either way, so a
        timeout is only logged."""
        if check():
            return
        limit = wait_limit(context, BOOK_WAIT)
        try:
            await await_revision(self.cache, revision, context, limit)
        except Unavailable:
            log.warning("the token book did not show a token write within %.1f s", limit)
