"""The server interceptor every RPC passes: decoding, authentication, authorization,
stream limits, and what the caller may see of the reply.

It wraps each handler once per call (`GuardInterceptor.wrap`):
undecodable requests become INVALID_ARGUMENT (`genconf.api.decoding`); with
authentication on, the token is checked by the `Guard`, the method against
`auth.RULES`, and a stream whose token stops being usable ends UNAUTHENTICATED;
every stream counts against its token, or else its peer, and the server's cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from genconf.api.decoding import BadRequest, forgiving_decoder
from genconf.api.errors import abort_with
from genconf.api.guard import Context, Guard, current_principal
from genconf.errors import GenconfError, InvalidArgument, Unauthenticated
from genconf.security import auth


class HandlerInterceptor(grpc.aio.ServerInterceptor):
    """An interceptor that wraps the handler of each method the server has
    (`wrap`); a call to a method it does not have passes untouched."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        return self.wrap(handler, details.method, details)  # type: ignore[attr-defined]

    def wrap(
        self, handler: grpc.RpcMethodHandler, method: str, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        raise NotImplementedError


class GuardInterceptor(HandlerInterceptor):
    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def wrap(
        self, handler: grpc.RpcMethodHandler, method: str, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler:
        metadata = details.invocation_metadata  # type: ignore[attr-defined]
        access = auth.RULES.get(method)
        if not self.guard.enabled or (access is not None and access.public):
            # No token answers for these streams (Health.Watch, or no auth at all).
            handler = _peer_limited(handler, self.guard)
            if not method.startswith("/genconf."):
                return handler
            return _rewrap(handler, method, self._open_unary, self._open_stream)
        if handler.stream_stream is not None:
            # Reflection: the token is checked (`_wrap_bidi`), then counted per peer.
            handler = _peer_limited(handler, self.guard)
        return _rewrap(
            handler,
            method,
            lambda behavior: self._unary(behavior, method, metadata),
            lambda behavior: self._stream(behavior, method, metadata),
        )

    # -- authentication off: decoding only ----------------------------------------

    @staticmethod
    def _open_unary(behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def call(request: Any, context: Context) -> Any:
            if isinstance(request, BadRequest):
                await abort_with(context, InvalidArgument(request.reason))
            return await behavior(request, context)

        return call

    @staticmethod
    def _open_stream(behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def call(request: Any, context: Context) -> AsyncIterator[Any]:
            if isinstance(request, BadRequest):
                await abort_with(context, InvalidArgument(request.reason))
            async for item in behavior(request, context):
                yield item

        return call

    # -- authentication on ------------------------------------------------------

    def _admit(self, method: str, metadata: Any, request: Any) -> auth.Principal:
        principal = self.guard.authenticate(metadata)
        # The role first: a caller who may not call the method hears so, whatever it sent.
        auth.authorize(principal, method)
        if isinstance(request, BadRequest):
            raise InvalidArgument(request.reason)
        auth.authorize(principal, method, request)
        return principal

    def _unary(
        self, behavior: Callable[..., Any], method: str, metadata: Any
    ) -> Callable[..., Any]:
        async def call(request: Any, context: Context) -> Any:
            try:
                principal = self._admit(method, metadata, request)
            except GenconfError as exc:
                await abort_with(context, exc)
            current_principal.set(principal)
            reply = await behavior(request, _bound(context, self.guard, principal))
            # The agent's unit may have been re-created while the call waited.
            if (stale := self.guard.tokens.principal_problem(principal)) is not None:
                await abort_with(context, Unauthenticated(stale))
            return self.guard.shown_to(principal, reply)

        return call

    def _stream(
        self, behavior: Callable[..., Any], method: str, metadata: Any
    ) -> Callable[..., Any]:
        guard = self.guard

        async def call(request: Any, context: Context) -> AsyncIterator[Any]:
            try:
                principal = self._admit(method, metadata, request)
                close = guard.open_stream(principal)
            except GenconfError as exc:
                await abort_with(context, exc)
            current_principal.set(principal)
            task = asyncio.current_task()
            assert task is not None
            # Why the token stopped being usable, once it has; and whether the call
            # is waiting inside the handler (only then may it be interrupted: while
            # suspended at a yield, gRPC is writing and the check below runs next).
            ended: list[str] = []
            waiting = False

            def on_revoked(_: str) -> None:
                reason = guard.still_valid(principal)
                if reason is not None and not ended:
                    ended.append(reason)
                    if waiting:
                        task.cancel()

            unlisten = guard.tokens.listen(principal.token_id, on_revoked)
            items = aiter(behavior(request, _bound(context, guard, principal)))
            try:
                while not ended:
                    waiting = True
                    try:
                        item = await anext(items)
                    except StopAsyncIteration:
                        return
                    except asyncio.CancelledError:
                        if not ended:
                            raise  # the client went away: not ours to handle
                        task.uncancel()
                        break
                    finally:
                        waiting = False
                    # Nothing of a re-created unit reaches a token of the old one.
                    if (stale := guard.tokens.principal_problem(principal)) is not None:
                        ended.append(stale)
                        break
                    yield guard.shown_to(principal, item)
                await abort_with(context, Unauthenticated(ended[0]))
            finally:
                unlisten()
                close()
                aclose = getattr(items, "aclose", None)
                if aclose is not None:
                    await aclose()

        return call


class _AgentContext:
    """An agent's servicer context. When its unit goes, the handler ends the call
    NOT_FOUND; an abort while the token no longer matches its unit ends it
    UNAUTHENTICATED instead, as a revocation would (the token is dead for good)."""

    def __init__(self, context: Context, guard: Guard, principal: auth.Principal) -> None:
        self._context = context
        self._guard = guard
        self._principal = principal

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def abort(self, code: grpc.StatusCode, details: str = "", *args: Any, **kw: Any) -> None:
        reason = self._guard.still_valid(self._principal)
        if reason is not None:
            await abort_with(self._context, Unauthenticated(reason))
        await self._context.abort(code, details, *args, **kw)


def _bound(context: Context, guard: Guard, principal: auth.Principal) -> Context:
    if principal.role is auth.Role.AGENT:
        return _AgentContext(context, guard, principal)  # type: ignore[return-value]
    return context


def _peer_limited(handler: grpc.RpcMethodHandler, guard: Guard) -> grpc.RpcMethodHandler:
    """The same handler, its streams counted by `Guard.open_peer_stream`."""
    decode, encode = handler.request_deserializer, handler.response_serializer
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _limit(handler.unary_stream, guard), decode, encode
        )
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(
            _limit(handler.stream_stream, guard), decode, encode
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _limit(handler.stream_unary, guard), decode, encode
        )
    return handler


def _limit(behavior: Callable[..., Any], guard: Guard) -> Callable[..., Any]:
    """``behavior`` admitted by the peer and server stream limits, released when it
    ends however it ends. Keeps its kind: gRPC serves a coroutine (which writes with
    ``context.write``, as grpc_health's Watch does) and an async generator differently."""
    if inspect.iscoroutinefunction(behavior):

        async def call(request: Any, context: Context) -> Any:
            try:
                close = guard.open_peer_stream(context.peer())
            except GenconfError as exc:
                await abort_with(context, exc)
            try:
                return await behavior(request, context)
            finally:
                close()

        return call
    if not inspect.isasyncgenfunction(behavior):
        return behavior  # a blocking handler: grpc.aio serves none here

    async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
        try:
            close = guard.open_peer_stream(context.peer())
        except GenconfError as exc:
            await abort_with(context, exc)
        try:
            async with contextlib.aclosing(behavior(request, context)) as items:
                async for item in items:
                    yield item
        finally:
            close()

    return stream


def _rewrap(
    handler: grpc.RpcMethodHandler,
    method: str,
    wrap_unary: Callable[[Callable[..., Any]], Callable[..., Any]],
    wrap_stream: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> grpc.RpcMethodHandler:
    """The same handler with its behavior wrapped and its decoder made forgiving."""
    decode = forgiving_decoder(handler.request_deserializer, method)
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            wrap_unary(handler.unary_unary), decode, handler.response_serializer
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            wrap_stream(handler.unary_stream), decode, handler.response_serializer
        )
    if handler.stream_stream is not None:  # reflection: authenticate the caller only
        return grpc.stream_stream_rpc_method_handler(
            _wrap_bidi(handler.stream_stream, wrap_unary),
            handler.request_deserializer,
            handler.response_serializer,
        )
    return handler


def _wrap_bidi(
    behavior: Callable[..., Any], wrap_unary: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> Callable[..., Any]:
    async def admitted(request: Any, context: Context) -> None:
        return None

    check = wrap_unary(admitted)

    async def call(requests: Any, context: Context) -> AsyncIterator[Any]:
        await check(None, context)
        async for item in behavior(requests, context):
            yield item

    return call
