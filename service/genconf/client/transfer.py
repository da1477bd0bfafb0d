"""The client's calls of TransferService: export and import a model.

Records travel as their canonical JSON text (docs/export-format.md): `export_model`
yields them in order, header first, and `import_model` sends them, each record
larger than `PART_CHARS` in parts, so no message nears the server's request limit.
Neither holds more than one record: both stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import grpc

from genconf.client.status import client_error, from_rpc_error
from genconf.v1 import transfer_pb2 as pb
from genconf.v1 import transfer_pb2_grpc

# A record's JSON goes in parts of at most this many characters (at most 1 MiB as
# UTF-8), well under the server's default request limit of 4 MiB.
PART_CHARS: Final = 256 * 1024


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote: each committed transaction, and the totals."""

    steps: list[pb.ImportProgress]
    total: pb.ImportProgress


def parts(text: str) -> Iterable[tuple[str, bool]]:
    """``text`` in parts of at most `PART_CHARS`, each with whether more follow."""
    if len(text) <= PART_CHARS:
        yield text, False
        return
    for start in range(0, len(text), PART_CHARS):
        yield text[start : start + PART_CHARS], start + PART_CHARS < len(text)


async def _texts(records: AsyncIterable[str] | Iterable[str]) -> AsyncIterator[str]:
    if isinstance(records, AsyncIterable):
        async for text in records:
            yield text
    else:
        for text in records:
            yield text


class TransferCalls:
    """Export and import, mixed into `genconf.client.aio.Client`."""

    channel: grpc.aio.Channel
    _transfer_stub: transfer_pb2_grpc.TransferServiceStub | None = None

    @property
    def _transfer(self) -> transfer_pb2_grpc.TransferServiceStub:
        if self._transfer_stub is None:
            self._transfer_stub = transfer_pb2_grpc.TransferServiceStub(self.channel)
        return self._transfer_stub

    async def export_model(self, applications: Sequence[str] = ()) -> AsyncIterator[str]:
        """Every record of the model (or of ``applications`` only) as canonical JSON,
        header first, end record last. Admin only: an export holds every secret."""
        call = self._transfer.Export(pb.ExportRequest(applications=list(applications)))
        try:
            async for record in call:
                yield record.json
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    async def import_model(
        self,
        records: AsyncIterable[str] | Iterable[str],
        *,
        renumber_generations: bool = False,
        on_progress: Callable[[pb.ImportProgress], None] | None = None,
    ) -> ImportResult:
        """Send the records of an export (JSON texts, in order); return what was
        written once the server has committed all of it. ``on_progress`` sees each
        transaction as it commits. A refused import raises `ClientError` and wrote
        nothing, or (a failure half-way) says in its message what it wrote; an
        error reading ``records`` ends the call and is raised as it is."""
        call = self._transfer.Import()
        stop = asyncio.Event()
        failed: list[BaseException] = []

        async def send() -> None:
            """The options, the records in parts, then half-close; once the server
            refuses (``stop``), no more records."""
            try:
                options = pb.ImportOptions(renumber_generations=renumber_generations)
                await call.write(pb.ImportRequest(options=options))
                async for text in _texts(records):
                    for part, more in parts(text):
                        if stop.is_set():
                            break
                        await call.write(
                            pb.ImportRequest(record=pb.ExportRecord(json=part, continued=more))
                        )
                    if stop.is_set():
                        break
                await call.done_writing()
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                return  # the call ended: reading it says how
            except Exception as exc:  # the records could not be read: end the call
                failed.append(exc)
                call.cancel()

        writer: asyncio.Task[None] | None = None
        steps: list[pb.ImportProgress] = []
        total: pb.ImportProgress | None = None
        try:
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    break
                if message.ready and writer is None:
                    writer = asyncio.create_task(send())
                elif message.refused:
                    stop.set()
                elif message.done:
                    total = message  # the call ends (OK) next
                else:
                    steps.append(message)
                    if on_progress is not None:
                        on_progress(message)
        except (grpc.aio.AioRpcError, asyncio.CancelledError) as exc:
            if failed:  # the writer cancelled the call: the records could not be read
                raise failed[0] from None
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()
            if writer is not None:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
        if failed:
            raise failed[0]
        if total is not None:
            return ImportResult(steps, total)
        # The reply stream ended without the totals: the server went away meanwhile.
        raise client_error(
            grpc.StatusCode.UNAVAILABLE,
            "the server ended the import without reporting its totals; check what it "
            "wrote with an export before importing again",
        )
