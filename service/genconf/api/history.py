"""HistoryService: history reads from `genconf.store.history`, history writes through the store."""

from __future__ import annotations

from typing import Any

import grpc

from genconf import wire
from genconf.api import convert
from genconf.api.errors import replies, unary, write
from genconf.api.guard import author
from genconf.domain.records import Generation
from genconf.domain.results import WriteResult
from genconf.domain.values import ABSENT
from genconf.store.core import LabelResult
from genconf.store.history import History
from genconf.store.store import Store
from genconf.v1 import history_pb2 as pb
from genconf.v1 import history_pb2_grpc, types_pb2

Context = grpc.aio.ServicerContext[Any, Any]


def _label(result: LabelResult) -> pb.LabelResponse:
    return pb.LabelResponse(
        application=result.application,
        version=result.version,
        label=result.label,
        revision=result.revision,
    )


def _generation(doc: dict[str, Any]) -> types_pb2.Generation:
    return convert.generation_to_proto(Generation.from_doc(doc))


class HistoryServicer(history_pb2_grpc.HistoryServiceServicer):
    def __init__(self, store: Store, history: History) -> None:
        self.store = store
        self.history = history

    # -- versions ------------------------------------------------------------

    @unary
    async def ListVersions(
        self, request: pb.ListVersionsRequest, context: Context
    ) -> pb.ListVersionsResponse:
        page, current = await self.history.list_versions(
            request.application,
            limit=request.limit,
            since_version=request.since_version,
            before_version=request.before_version,
        )
        return pb.ListVersionsResponse(
            versions=[convert.version_to_proto(d) for d in page.items],
            more=page.more,
            current_version=current,
        )

    @unary
    async def GetVersion(
        self, request: pb.GetVersionRequest, context: Context
    ) -> types_pb2.Version:
        doc = await self.history.get_version(
            request.application, request.version, label=request.label
        )
        return convert.version_to_proto(doc)

    @unary
    async def LatestVersion(
        self, request: pb.LatestVersionRequest, context: Context
    ) -> pb.LatestVersionResponse:
        latest = await self.history.latest(request.application)
        return pb.LatestVersionResponse(
            application=request.application,
            version=latest.version,
            label=latest.label,
            label_version=latest.label_version,
        )

    @unary
    async def DiffVersions(
        self, request: pb.DiffVersionsRequest, context: Context
    ) -> pb.DiffVersionsResponse:
        d = await self.history.diff_versions(
            request.application,
            request.from_version,
            request.to_version,
            from_label=request.from_label,
            to_label=request.to_label,
        )
        return pb.DiffVersionsResponse(
            application=d.application,
            from_version=d.from_version,
            to_version=d.to_version,
            entries=convert.diff_to_proto(d.entries),
            secret_keys=d.secret_keys,
            from_label=d.from_label,
            to_label=d.to_label,
            added=len(d.entries.added),
            removed=len(d.entries.removed),
            changed=len(d.entries.changed),
            summary=d.summary,
        )

    @write
    async def Rollback(self, request: pb.RollbackRequest, context: Context) -> WriteResult:
        return await self.store.rollback(
            request.application,
            request.to_version,
            to_label=request.to_label,
            expected_version=convert.expected_version(request),
            reason=request.reason,
            metadata=wire.from_struct(request.metadata),
            **author(request.created_by),
        )

    @replies(_label)
    async def TagVersion(self, request: pb.TagVersionRequest, context: Context) -> LabelResult:
        return await self.store.tag_version(
            request.application,
            request.label,
            version=request.version,
            version_label=request.version_label,
        )

    @replies(_label)
    async def BumpVersion(self, request: pb.BumpVersionRequest, context: Context) -> LabelResult:
        return await self.store.bump_version(
            request.application,
            request.part,
            version=request.version,
            version_label=request.version_label,
        )

    @unary
    async def KeyHistory(
        self, request: pb.KeyHistoryRequest, context: Context
    ) -> pb.KeyHistoryResponse:
        entries, more = await self.history.key_history(
            request.application,
            request.key,
            limit=request.limit,
            before_version=request.before_version,
            before_label=request.before_label,
        )
        out = pb.KeyHistoryResponse(application=request.application, key=request.key, more=more)
        for entry in entries:
            doc, at = entry.version_doc, entry.value
            item = pb.KeyHistoryEntry(
                version=at.version,
                has_value=at.value is not ABSENT,
                is_default=at.is_default,
                created_by=doc.get("created_by", ""),
                timestamp=wire.to_timestamp(doc.get("timestamp")),
                reason=doc.get("reason", ""),
                generation=int(doc.get("generation") or 0),
                secret=request.key in doc.get("secret_keys", ()),
            )
            if at.value is not ABSENT:
                item.value.CopyFrom(wire.to_value(at.value))
            out.entries.append(item)
        return out

    # -- generations -----------------------------------------------------------

    @unary
    async def ListGenerations(
        self, request: pb.ListGenerationsRequest, context: Context
    ) -> pb.ListGenerationsResponse:
        page = await self.history.list_generations(
            limit=request.limit,
            since=request.since,
            before=request.before,
            application=request.application,
        )
        return pb.ListGenerationsResponse(
            generations=[_generation(d) for d in page.items], more=page.more
        )

    @unary
    async def GetGeneration(
        self, request: pb.GetGenerationRequest, context: Context
    ) -> types_pb2.Generation:
        return _generation(await self.history.get_generation(request.id))

    @write
    async def RevertGeneration(
        self, request: pb.RevertGenerationRequest, context: Context
    ) -> WriteResult:
        return await self.store.revert_generation(
            request.id,
            application=request.application,
            version=request.version,
            label=request.label,
            force=request.force,
            reason=request.reason,
            **author(request.created_by),
        )
