"""Opening server streams in the stream-limit tests: did the server admit one, and
again while a cancelled stream's slot is still held (no client-side event tells
when the server has let it go)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import grpc
from google.protobuf.message import Message

OK = grpc.StatusCode.OK
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
WAIT = 30.0  # a generous bound on events, not a sleep


async def first_reply(call: Any, request: Message | None = None) -> tuple[grpc.StatusCode, str]:
    """OK once the stream's first message arrives (the server has admitted it);
    ``request`` is written first on a bidirectional stream (reflection)."""
    try:
        if request is not None:
            await call.write(request)
        reply = await call.read()
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    assert reply is not grpc.aio.EOF
    return OK, ""


async def until_admitted(
    open_call: Callable[[], Any],
    opened: list[Any],
    *,
    request: Message | None = None,
    limit: float = WAIT,
) -> tuple[Any, grpc.StatusCode, str]:
    """Open a stream with ``open_call`` (kept in ``opened`` for the caller to cancel),
    again while it is refused RESOURCE_EXHAUSTED: the server frees a cancelled
    stream's slot once its handler has unwound (`running_server`'s own health watch,
    too, holds one for a moment after). The last stream and how its first reply went."""
    with anyio.fail_after(limit):
        while True:
            call = open_call()
            opened.append(call)
            code, details = await first_reply(call, request)
            if code != EXHAUSTED:
                return call, code, details
            await anyio.sleep(0.02)
