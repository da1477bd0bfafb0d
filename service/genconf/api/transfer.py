"""TransferService: export and import of a model through the store.

Both RPCs stream: an export is as long as the model's history, and an import is
read record by record into the store's staging collection (see
`genconf.store.transfer_import`), so neither sits in memory here. A record larger
than one message comes in parts (``continued``), joined here up to
`genconf.domain.transfer.MAX_RECORD_CHARS`; gRPC bounds each message by the
server's --max-request-bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Final

import anyio
import grpc

from genconf.api.decoding import BadRequest, forgiving_decoder
from genconf.api.errors import streaming
from genconf.domain import transfer as fmt
from genconf.errors import GenconfError, InvalidArgument
from genconf.store.store import Store
from genconf.store.transfer import ImportStep
from genconf.v1 import transfer_pb2 as pb
from genconf.v1 import transfer_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
IMPORT: Final = "/genconf.v1.TransferService/Import"
# How long a refused import reads on, for the client to stop sending.
DRAIN_SECONDS: Final = 30.0


def progress(step: ImportStep) -> pb.ImportProgress:
    first, last = step.renumbered or (0, 0)
    return pb.ImportProgress(
        applications=step.applications,
        branches=step.branches,
        units=step.units,
        versions=step.versions,
        generations=step.generation_count,
        revision=step.revision,
        done=step.done,
        records=step.records,
        renumbered_first=first,
        renumbered_last=last,
    )


async def _first(requests: AsyncIterator[Any]) -> tuple[pb.ImportOptions, Any]:
    """The options (the first message, if it holds them) and the first record's
    message (None: the stream ended first)."""
    async for message in requests:
        _check(message)
        if message.WhichOneof("item") == "options":
            return message.options, None
        return pb.ImportOptions(), message
    return pb.ImportOptions(), None


def _check(message: Any) -> None:
    if isinstance(message, BadRequest):
        raise InvalidArgument(message.reason)


async def records(first: Any, requests: AsyncIterator[Any]) -> AsyncIterator[str]:
    """Each record's JSON text, its parts joined (at most `fmt.MAX_RECORD_CHARS`)."""
    number = 1
    parts: list[str] = []
    size = 0

    async def messages() -> AsyncIterator[Any]:
        if first is not None:
            yield first
        async for message in requests:
            yield message

    async for message in messages():
        _check(message)
        item = message.WhichOneof("item")
        if item != "record":
            raise InvalidArgument(
                f"message of record {number}: "
                + ("options come first or not at all" if item else "it holds no record")
            )
        size += len(message.record.json)
        if size > fmt.MAX_RECORD_CHARS:
            raise InvalidArgument(
                f"record {number} is more than {fmt.MAX_RECORD_CHARS:,} characters of JSON "
                "(no valid record is that large)"
            )
        parts.append(message.record.json)
        if not message.record.continued:
            yield "".join(parts)
            number, parts, size = number + 1, [], 0
    if parts:
        raise InvalidArgument(
            f"the import ended inside record {number} (its last part says more follows): "
            "the stream is truncated"
        )


class TransferServicer(transfer_pb2_grpc.TransferServiceServicer):
    def __init__(self, store: Store) -> None:
        self.store = store

    @streaming
    async def Export(
        self, request: pb.ExportRequest, context: Context
    ) -> AsyncIterator[pb.ExportRecord]:
        exported = self.store.export_model(list(request.applications))
        async with contextlib.aclosing(exported) as stream:
            async for kind, text in stream:
                yield pb.ExportRecord(kind=kind.value, json=text)

    @streaming
    async def Import(
        self, requests: AsyncIterator[pb.ImportRequest], context: Context
    ) -> AsyncIterator[pb.ImportProgress]:
        yield pb.ImportProgress(ready=True)
        try:
            options, first = await _first(requests)
            steps = self.store.import_model(
                records(first, requests), renumber_generations=options.renumber_generations
            )
            async with contextlib.aclosing(steps) as stream:
                async for step in stream:
                    yield progress(step)
        except GenconfError as exc:
            # Say so, and let the client stop and half-close before the status ends
            # the call: a message it sent after that would turn the status INTERNAL.
            yield pb.ImportProgress(refused=exc.message)
            with anyio.move_on_after(DRAIN_SECONDS):
                async for _ in requests:
                    pass
            raise


def add_transfer_service(store: Store, server: grpc.aio.Server) -> None:
    """Register the service; import's messages are decoded forgivingly (an
    undecodable one is INVALID_ARGUMENT, as any other RPC's request)."""
    servicer = TransferServicer(store)
    handlers = {
        "Export": grpc.unary_stream_rpc_method_handler(
            servicer.Export,
            request_deserializer=pb.ExportRequest.FromString,
            response_serializer=pb.ExportRecord.SerializeToString,
        ),
        "Import": grpc.stream_stream_rpc_method_handler(
            servicer.Import,
            request_deserializer=forgiving_decoder(pb.ImportRequest.FromString, IMPORT),
            response_serializer=pb.ImportProgress.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("genconf.v1.TransferService", handlers),)
    )
