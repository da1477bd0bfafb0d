"""AdminService: the whole model, and every change as a resumable stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import anyio
import grpc

from genconf.api import convert
from genconf.api.errors import streaming, unary
from genconf.api.rollout_convert import rollout_to_proto
from genconf.defaults import DEFAULT_FEED_BUFFER
from genconf.domain.deltas import Batch, Delta, Kind
from genconf.domain.records import Application
from genconf.errors import (
    FeedOverflow,
    FeedTooSlow,
    InvalidArgument,
    OutOfRange,
    Unavailable,
)
from genconf.readside.cache import ModelCache
from genconf.v1 import admin_pb2, admin_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]

# Where a delta's feed message is memoized (Delta.encoded).
_FEED_KEY: Final = "feed_delta"


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, cache: ModelCache, *, feed_buffer: int = DEFAULT_FEED_BUFFER) -> None:
        self.cache = cache
        # Batches each WatchDeltas stream may have waiting for its client (the
        # per-stream send buffer): a reader that falls further behind is ended.
        self.feed_buffer = feed_buffer

    @unary
    async def Snapshot(
        self, request: admin_pb2.SnapshotRequest, context: Context
    ) -> admin_pb2.SnapshotResponse:
        cache = self.cache  # read with no await: one consistent revision
        return admin_pb2.SnapshotResponse(
            # The cache's memoized effective configs, not computed again for each message.
            applications=convert.applications_to_proto(cache, cache.master_config),
            units=[convert.unit_to_proto(u) for _, u in sorted(cache.units.items())],
            branches=convert.branches_to_proto(cache),
            last_generation=cache.last_generation,
            revision=cache.revision,
            rollouts=[rollout_to_proto(r) for _, r in sorted(cache.rollouts.items())],
        )

    @streaming
    async def WatchDeltas(
        self, request: admin_pb2.WatchDeltasRequest, context: Context
    ) -> AsyncIterator[admin_pb2.DeltaBatch]:
        try:
            kinds = [Kind(k) for k in request.kinds]
        except ValueError:
            raise InvalidArgument(
                f"unknown kind in {list(request.kinds)}; use " + ", ".join(k.value for k in Kind)
            ) from None
        since = request.since_revision if request.HasField("since_revision") else None
        if since is not None and since > self.cache.revision:
            raise OutOfRange(
                f"since_revision {since} is ahead of this server ({self.cache.revision}); "
                "retry shortly or on another replica"
            )
        replay, feed = self.cache.subscribe(
            kinds=kinds,
            applications=list(request.applications),
            since=since,
            buffer=self.feed_buffer,
        )
        last = since or 0
        with feed:
            for batch in replay:
                last = batch.revision
                yield self._encode(batch)
            while True:
                try:
                    batch = await feed.next()
                except FeedOverflow as exc:
                    raise FeedTooSlow(
                        f"{exc} (the client reads too slowly); resume with "
                        f"since_revision={last}, "
                        "the last revision it received (if the server no longer holds it: "
                        "OUT_OF_RANGE, take a new Snapshot)"
                    ) from None
                except (anyio.EndOfStream, anyio.ClosedResourceError) as exc:
                    raise Unavailable("the server is shutting down; resume elsewhere") from exc
                last = batch.revision
                yield self._encode(batch)

    def _encode(self, batch: Batch) -> admin_pb2.DeltaBatch:
        """The batch's message, built once for every feed that sends this batch (feeds
        with the same filter share it; nobody changes it: observers get a copy)."""
        shared = batch.encoded.get(_FEED_KEY)
        if shared is None:
            shared = admin_pb2.DeltaBatch(
                revision=batch.revision, deltas=[self._delta(d) for d in batch.deltas]
            )
            batch.encoded[_FEED_KEY] = shared
        return shared

    def _delta(self, delta: Delta) -> admin_pb2.Delta:
        """The delta's message, built once for every batch that holds it (feeds with
        different filters see different batches of the same deltas)."""
        shared = delta.encoded.get(_FEED_KEY)
        if shared is None:
            value = delta.value
            if isinstance(value, Application):
                shared = admin_pb2.Delta(kind=delta.kind.value, key=delta.key, removed=False)
                shared.application.CopyFrom(
                    convert.application_to_proto(value, [], self.cache.master_config(value))
                )
            else:
                shared = convert.delta_to_proto(delta)
            delta.encoded[_FEED_KEY] = shared
        return shared
