"""AgentService: what unit agents call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import grpc

from genconf import model
from genconf.api import convert
from genconf.api.errors import streaming, unary
from genconf.api.reads import await_revision
from genconf.cache import EffectiveConfig, ModelCache, WatchClosed
from genconf.errors import InvalidArgument, NotFound, Unavailable
from genconf.store import Store
from genconf.v1 import agent_pb2, agent_pb2_grpc, types_pb2

Context = grpc.aio.ServicerContext[Any, Any]


class AgentServicer(agent_pb2_grpc.AgentServiceServicer):
    def __init__(self, store: Store, cache: ModelCache, *, bookmark_interval: float) -> None:
        self.store = store
        self.cache = cache
        self.bookmark_interval = bookmark_interval

    @unary
    async def GetConfig(
        self, request: agent_pb2.GetConfigRequest, context: Context
    ) -> types_pb2.Config:
        model.parse_unit_name(request.unit)
        await await_revision(self.cache, request.min_revision, context)
        current = self.cache.config(request.unit)
        return self._config(current.unit, current.effective)

    @streaming
    async def WatchConfig(
        self, request: agent_pb2.WatchConfigRequest, context: Context
    ) -> AsyncIterator[agent_pb2.WatchConfigResponse]:
        unit = request.unit
        model.parse_unit_name(unit)
        await await_revision(self.cache, request.min_revision, context)
        # Registering the watch and reading the current config happen with no
        # await in between, so no change can fall between the two.
        watch = self.cache.watch(unit)
        with watch:
            current = self.cache.config(unit)
            last_hash = current.hash
            if request.known_hash == last_hash:
                yield self._bookmark(last_hash)
            else:
                yield agent_pb2.WatchConfigResponse(config=self._config(unit, current.effective))
            while True:
                effective = None
                try:
                    with anyio.move_on_after(self.bookmark_interval):
                        effective = await watch.next()
                except WatchClosed as closed:
                    if closed.removed:
                        raise NotFound(f"unit {unit!r} was removed") from None
                    raise Unavailable(
                        f"the watch ended ({closed.reason}); reconnect with known_hash"
                    ) from None
                if effective is None:
                    if watch.pending:
                        # A change landed between the timeout and now: send it
                        # first, so a bookmark's hash is the config at its revision.
                        continue
                    yield self._bookmark(last_hash)
                elif effective.hash != last_hash:
                    last_hash = effective.hash
                    yield agent_pb2.WatchConfigResponse(
                        config=self._config(unit, effective, current=not watch.pending)
                    )

    def _config(
        self, unit: str, effective: EffectiveConfig, *, current: bool = True
    ) -> types_pb2.Config:
        """The unit's Config. When it is the unit's config at the cache's revision
        (``current``: nothing newer pending), it carries that revision: a memoized
        group's own revision can be older than the change that moved the unit into
        it, and a client resumes from this revision (a replica behind it could
        otherwise hand back the config from before that change)."""
        out = convert.config_to_proto(unit, effective)
        if current:
            out.revision = max(out.revision, self.cache.revision)
        return out

    def _bookmark(self, hash_: str) -> agent_pb2.WatchConfigResponse:
        return agent_pb2.WatchConfigResponse(
            bookmark=agent_pb2.Bookmark(revision=self.cache.revision, hash=hash_)
        )

    @unary
    async def ReportApplied(
        self, request: agent_pb2.ReportAppliedRequest, context: Context
    ) -> types_pb2.WriteResponse:
        model.parse_unit_name(request.unit)
        if len(request.hash) != 64 or any(c not in "0123456789abcdef" for c in request.hash):
            raise InvalidArgument("hash must be the 64-character sha256 hex of the config")
        result = await self.store.set_applied(
            request.unit, hash=request.hash, ok=request.ok, message=request.message
        )
        return convert.write_to_proto(result)
