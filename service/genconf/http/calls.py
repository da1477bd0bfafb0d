"""HTTP requests as calls of the gRPC services, made in process, through the same gate.

An HTTP route names the RPC it performs (``/genconf.v1.ControllerService/SetConfig``)
and makes that call here, with no network hop: the handler is the one the gRPC
server was given (`MethodTable` keeps each as it is registered, so both protocols
share the servicer objects), wrapped by the server's own interceptors
(`HandlerInterceptor.wrap`, exactly as gRPC wraps it for a call: decoding,
authentication, the rule table, agent binding, stream limits, observer redaction,
metrics), and called with a `CallContext` standing in for gRPC's servicer context.
The request goes through the forgiving decoder too (serialized, then decoded as
gRPC would decode it), so HTTP refuses what gRPC refuses, with the same message.

    calls = Gate(table, interceptors)
    reply = await calls.unary(GET_CONFIG, agent_pb2.GetConfigRequest(unit="web/0"), context)

A refusal leaves the call as an `Aborted` (the status, the message and the typed
`ErrorDetail` the servicer set); `genconf.http.errors` turns it into the JSON body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
from google.protobuf.message import Message

from genconf.api.interceptor import HandlerInterceptor
from genconf.v1 import types_pb2
from genconf.wire import DETAIL_KEY

Metadata = tuple[tuple[str, str | bytes], ...]


class Aborted(Exception):
    """A call ended with a status other than OK: ``code``, the message a person acts
    on, and the typed detail (expected/actual version, conflicts, ...) when one came."""

    def __init__(
        self, code: grpc.StatusCode, message: str, detail: types_pb2.ErrorDetail | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CallDetails:
    """What `grpc.HandlerCallDetails` tells an interceptor about a call."""

    method: str
    invocation_metadata: Metadata


class CallContext:
    """The part of `grpc.aio.ServicerContext` the servicers and the interceptors use,
    for the calls of one HTTP request: the bearer token as ``authorization``
    metadata, the HTTP client as the peer, no deadline; ``abort`` raises `Aborted`."""

    __slots__ = ("_callbacks", "_code", "_details", "_done", "_metadata", "_peer", "_trailing")

    def __init__(self, metadata: Metadata, peer: str) -> None:
        self._metadata = metadata
        self._peer = peer
        self._trailing: Metadata = ()
        self._code: grpc.StatusCode | None = None
        self._details = ""
        self._done = False
        self._callbacks: list[Callable[[Any], None]] = []

    # -- what the handlers read --------------------------------------------------

    def invocation_metadata(self) -> Metadata:
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def time_remaining(self) -> float | None:
        return None  # HTTP calls carry no deadline; the servicers bound their waits

    # -- how they end a call -------------------------------------------------------

    def set_trailing_metadata(self, metadata: Iterable[tuple[str, str | bytes]]) -> None:
        self._trailing = tuple(metadata)

    def trailing_metadata(self) -> Metadata:
        return self._trailing

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: Iterable[tuple[str, str | bytes]] = (),
    ) -> NoReturn:
        if trailing_metadata:
            self.set_trailing_metadata(trailing_metadata)
        self._code, self._details = code, details
        raise Aborted(code, details, self.error_detail())

    def error_detail(self) -> types_pb2.ErrorDetail | None:
        """The typed detail `genconf.api.errors.abort_with` put in the trailing metadata."""
        for key, value in self._trailing:
            if key == DETAIL_KEY and isinstance(value, bytes):
                return types_pb2.ErrorDetail.FromString(value)
        return None

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def set_code(self, code: grpc.StatusCode) -> None:
        self._code = code

    def details(self) -> str:
        return self._details

    def set_details(self, details: str) -> None:
        self._details = details

    # -- streams ---------------------------------------------------------------------

    def done(self) -> bool:
        return self._done

    def cancelled(self) -> bool:
        return self._done and self._code is grpc.StatusCode.CANCELLED

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        self._callbacks.append(callback)

    def finish(self, *, cancelled: bool = False) -> None:
        """The HTTP response is over (``cancelled``: the client went away first)."""
        if self._done:
            return
        self._done = True
        if cancelled and self._code is None:
            self._code = grpc.StatusCode.CANCELLED
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)


class MethodTable:
    """The method handlers of one gRPC server, kept as they are registered.

    It stands in for the server in the generated ``add_*Servicer_to_server``
    functions (and `genconf.api.transfer.add_transfer_service`): each registration
    goes on to the real server and is kept here, so HTTP calls the servicer objects
    gRPC serves, not copies of them."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server
        self._generic: list[grpc.GenericRpcHandler] = []
        self._found: dict[str, grpc.RpcMethodHandler | None] = {}

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._generic.extend(handlers)
        self._found.clear()
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        # The same handlers also come as a generic handler (kept above).
        self._server.add_registered_method_handlers(service, handlers)

    def handler(self, method: str) -> grpc.RpcMethodHandler | None:
        """The handler of ``method`` (``/package.Service/Method``), as registered."""
        if method not in self._found:
            details = CallDetails(method, ())
            found = None
            for generic in self._generic:
                found = generic.service(details)  # type: ignore[arg-type]
                if found is not None:
                    break
            self._found[method] = found
        return self._found[method]


class Gate:
    """Calls of the gRPC methods for HTTP requests: each handler wrapped by the
    server's interceptors for the call, as the gRPC server wraps it."""

    def __init__(self, table: MethodTable, interceptors: Sequence[HandlerInterceptor]) -> None:
        self._table = table
        # gRPC runs the first interceptor outermost: it wraps last.
        self._interceptors = tuple(reversed(interceptors))
        # A wrapped handler depends on the method and the call's metadata alone; calls
        # without metadata (no token) share one per method.
        self._anonymous: dict[str, grpc.RpcMethodHandler] = {}

    def _handler(self, method: str, context: CallContext) -> grpc.RpcMethodHandler:
        metadata = context.invocation_metadata()
        if not metadata and method in self._anonymous:
            return self._anonymous[method]
        handler = self._table.handler(method)
        if handler is None:
            raise Aborted(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not served here")
        details = CallDetails(method, metadata)
        for interceptor in self._interceptors:
            handler = interceptor.wrap(handler, method, details)  # type: ignore[arg-type]
        if not metadata:
            self._anonymous[method] = handler
        return handler

    @staticmethod
    def _decoded(handler: grpc.RpcMethodHandler, request: Message) -> Any:
        """``request`` as the handler receives it from gRPC: through its (forgiving)
        decoder, which refuses what no handler could take."""
        decode = handler.request_deserializer
        return decode(request.SerializeToString()) if decode is not None else request

    async def unary(self, method: str, request: Message, context: CallContext) -> Any:
        """Call a unary method; its reply as the caller may see it."""
        handler = self._handler(method, context)
        assert handler.unary_unary is not None, f"{method} is not unary"
        return await handler.unary_unary(self._decoded(handler, request), context)

    def stream(self, method: str, request: Message, context: CallContext) -> AsyncIterator[Any]:
        """Call a server-streaming method: its messages as the caller may see them.
        Nothing runs (not even the gate) until the first message is asked for."""
        handler = self._handler(method, context)
        assert handler.unary_stream is not None, f"{method} is not server-streaming"
        stream: AsyncIterator[Any] = handler.unary_stream(self._decoded(handler, request), context)
        return stream

    def bidi(
        self, method: str, requests: AsyncIterator[Message], context: CallContext
    ) -> AsyncIterator[Any]:
        """Call a bidirectional method with ``requests``, each decoded as gRPC would."""
        handler = self._handler(method, context)
        assert handler.stream_stream is not None, f"{method} is not bidirectional"

        async def decoded() -> AsyncIterator[Any]:
            async for request in requests:
                yield self._decoded(handler, request)

        stream: AsyncIterator[Any] = handler.stream_stream(decoded(), context)
        return stream
