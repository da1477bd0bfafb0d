"""A call's message stream as an HTTP response: server-sent events, or lines.

A `Pump` runs the stream (the gated call of `genconf.http.calls`) in a task of its
own, at most one message ahead of the HTTP client: a client that reads slowly
holds the stream back, so the servicer's own limits apply as over gRPC (an admin
feed whose reader falls ``--feed-buffer`` batches behind ends RESOURCE_EXHAUSTED;
a unit watch keeps only the newest config). The status is chosen after the
stream's first step (the gate, the request's checks, the first replayed message):
a refusal then is an ordinary error response (401, 403, 404, ...); after it, the
response is under way and an error ends it with an event saying why.

Server-sent events (``text/event-stream``), each written as soon as it exists:

    id: <revision>          the revision to resume from (Last-Event-ID)
    event: <kind>           application | unit | branch | generation | config | bookmark
    data: <json>

    : keep-alive            a comment, after HEARTBEAT seconds without an event

    event: too-old          the revision asked for is older than the server keeps:
    data: {code, message, details}      take a new snapshot (at the start: status 410)

    event: closed           the stream ended for another reason (its error body):
    data: {code, message, details}      resume from the last id
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from genconf.http import errors
from genconf.http.api import Json
from genconf.http.calls import CallContext

MEDIA_TYPE: Final = "text/event-stream"
HEARTBEAT: Final = 15.0  # seconds without an event before a keep-alive comment
KEEP_ALIVE: Final = b": keep-alive\n\n"
TOO_OLD: Final = "too-old"
CLOSED: Final = "closed"
# No cache or proxy may hold events back (nginx buffers unless told not to).
STREAM_HEADERS: Final = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class _End:
    """The stream ended without an error."""


END: Final = _End()


def event(data: bytes, *, kind: str | None = None, id: int | None = None) -> bytes:
    """One event; ``data`` is one line of JSON (JSON never holds a raw line break)."""
    head = b""
    if id is not None:
        head += b"id: %d\n" % id
    if kind is not None:
        head += b"event: " + kind.encode() + b"\n"
    return head + b"data: " + data + b"\n\n"


def error_event(exc: BaseException) -> bytes:
    """The event that ends a stream with ``exc``: ``too-old`` or ``closed``."""
    errors.log_unexpected(exc)
    status, body = errors.body_of(exc)
    return event(errors.encode(body), kind=TOO_OLD if status == errors.TOO_OLD else CLOSED)


class Pump:
    """A stream's messages, encoded, produced by a task of their own one ahead of the
    reader (see the module docstring). The gate's stream bookkeeping (revocation,
    limits) lives in that task, which `chunks` cancels when the response ends."""

    def __init__(
        self, items: AsyncIterator[Any], encode: Callable[[Any], bytes], context: CallContext
    ) -> None:
        self._items = items
        self._encode = encode
        self._context = context
        self._queue: asyncio.Queue[bytes | BaseException | _End] = asyncio.Queue(maxsize=1)
        self._first: bytes | BaseException | _End | None = None
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        try:
            async with contextlib.aclosing(self._items) as items:  # type: ignore[type-var]
                async for item in items:
                    await self._queue.put(self._encode(item))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the call's end (Aborted), or a bug: the reader says which
            await self._queue.put(exc)
            return
        await self._queue.put(END)

    async def start(self) -> BaseException | None:
        """Run the stream's first step: the error it ended with (nothing was sent),
        or None when it is under way (a message came, or it waits for one)."""
        self._task = asyncio.get_running_loop().create_task(self._run())
        # One turn of the event loop: the task runs until it first waits (the gate,
        # the request's checks, the first message if one is there). No timing: what
        # did not happen in that turn is waiting on something.
        await asyncio.sleep(0)
        if not self._queue.empty():
            self._first = self._queue.get_nowait()
            if isinstance(self._first, BaseException):
                await self.stop()
                return self._first
        return None

    async def stop(self, *, cancelled: bool = False) -> None:
        """End the stream (again: nothing happens) and its call."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._context.finish(cancelled=cancelled)

    async def chunks(
        self, *, heartbeat: float | None = None, on_error: Callable[[BaseException], bytes]
    ) -> AsyncIterator[bytes]:
        """The response body: each message as it comes (``heartbeat``: a keep-alive
        comment after that many seconds of nothing), ``on_error``'s bytes to end."""
        finished = False
        try:
            item = self._first
            self._first = None
            while True:
                if item is None:
                    try:
                        async with asyncio.timeout(heartbeat):
                            item = await self._queue.get()
                    except TimeoutError:
                        yield KEEP_ALIVE
                        continue
                if isinstance(item, _End):
                    finished = True
                    return
                if isinstance(item, BaseException):
                    finished = True
                    yield on_error(item)
                    return
                yield item
                item = None
        finally:
            await self.stop(cancelled=not finished)


class Pumped(StreamingResponse):
    """A streamed response that ends its pump however the response ends (the client
    gone before the body started included)."""

    def __init__(self, pump: Pump, body: AsyncIterator[bytes], media_type: str, **kw: Any) -> None:
        super().__init__(body, media_type=media_type, **kw)
        self.pump = pump

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.pump.stop(cancelled=True)


async def events(
    items: AsyncIterator[Any], encode: Callable[[Any], bytes], context: CallContext
) -> Response:
    """Server-sent events of a stream whose messages ``encode`` makes into events."""
    pump = Pump(items, encode, context)
    refused = await pump.start()
    if refused is not None:
        errors.log_unexpected(refused)
        status, body = errors.body_of(refused)
        if status == errors.TOO_OLD:
            # The stream's one event says why, and the status stops a browser's
            # EventSource from reconnecting to the same revision forever.
            return Response(error_event(refused), status_code=status, media_type=MEDIA_TYPE)
        return Json(body, status_code=status, headers=errors.headers_for(status))
    return Pumped(
        pump,
        pump.chunks(heartbeat=HEARTBEAT, on_error=error_event),
        MEDIA_TYPE,
        headers=STREAM_HEADERS,
    )


async def lines(
    items: AsyncIterator[Any], encode: Callable[[Any], bytes], context: CallContext, media: str
) -> Response:
    """A stream as a plain streamed body (an export: one JSON record per line). An
    error after the start cuts it short: the format's end record tells it whole."""
    pump = Pump(items, encode, context)
    refused = await pump.start()
    if refused is not None:
        errors.log_unexpected(refused)
        status, body = errors.body_of(refused)
        return Json(body, status_code=status, headers=errors.headers_for(status))

    def cut(exc: BaseException) -> bytes:
        errors.log_unexpected(exc)
        return b""

    return Pumped(pump, pump.chunks(on_error=cut), media)
