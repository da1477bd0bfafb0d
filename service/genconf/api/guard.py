"""The gate every RPC passes: request decoding, authentication, authorization, limits.

One server interceptor wraps each handler once per call. It turns undecodable
requests (e.g. invalid UTF-8 in a name, values nested past the decoder's limit)
and config writes naming more than `model.MAX_KEYS` keys into INVALID_ARGUMENT
before any handler runs, and, when authentication is on, checks the bearer
token against the `TokenBook`, the method against `auth.RULES`, an agent's unit
against the request (and against the incarnation its token was issued for), and
the number of open streams per token. A stream whose token is revoked or expires,
or whose agent's unit is removed or re-created, ends with UNAUTHENTICATED. Every
other stream (health watches, reflection, every stream without authentication)
counts against its peer's IP address, and streams of any kind against one cap for
the server, so no caller, authenticated or not, can hold memory without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import functools
import inspect
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import anyio
import grpc
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message

from genconf.addresses import peer_host
from genconf.api.errors import abort_with
from genconf.defaults import (
    DEFAULT_MAX_STREAMS,
    DEFAULT_STREAMS_PER_PEER,
    DEFAULT_STREAMS_PER_TOKEN,
)
from genconf.domain import model
from genconf.errors import GenconfError, InvalidArgument, ResourceExhausted, Unauthenticated
from genconf.security import auth
from genconf.security.redact import PublicKeys, redacted
from genconf.security.tokenbook import TokenBook

log = logging.getLogger("genconf.guard")

Context = grpc.aio.ServicerContext[Any, Any]
Clock = Callable[[], dt.datetime]

# The caller of the RPC being served (None: authentication is off).
current_principal: contextvars.ContextVar[auth.Principal | None] = contextvars.ContextVar(
    "genconf_principal", default=None
)

SWEEP_INTERVAL: Final = 1.0


@dataclass(frozen=True)
class BadRequest:
    """Stands in for a request that could not be decoded."""

    reason: str


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_JSON_TYPES: Final = frozenset(
    {"google.protobuf.Value", "google.protobuf.Struct", "google.protobuf.ListValue"}
)


@functools.cache
def _holds_json(descriptor: Descriptor) -> bool:
    """Whether messages of this type can contain a `google.protobuf.Value`."""
    seen: set[str] = set()

    def walk(d: Descriptor) -> bool:
        if d.full_name in _JSON_TYPES:
            return True
        if d.full_name in seen:
            return False
        seen.add(d.full_name)
        return any(f.message_type is not None and walk(f.message_type) for f in d.fields)

    return walk(descriptor)


def _non_finite(message: Message) -> bool:
    """Whether a JSON value in ``message`` holds NaN or an infinity.

    protobuf carries them in `Value.number_value`, but JSON has no such numbers:
    they cannot be config, and the JSON conversion of the handlers fails on them."""
    name = message.DESCRIPTOR.full_name
    if name == "google.protobuf.Value":
        kind = message.WhichOneof("kind")  # type: ignore[arg-type]
        if kind == "number_value":
            return not math.isfinite(message.number_value)  # type: ignore[attr-defined]
        if kind == "struct_value":
            return _non_finite(message.struct_value)  # type: ignore[attr-defined]
        if kind == "list_value":
            return any(_non_finite(v) for v in message.list_value.values)  # type: ignore[attr-defined]
        return False
    if name == "google.protobuf.Struct":
        return any(_non_finite(v) for v in message.fields.values())  # type: ignore[attr-defined]
    if name == "google.protobuf.ListValue":
        return any(_non_finite(v) for v in message.values)  # type: ignore[attr-defined]
    for field, value in message.ListFields():
        if field.message_type is None or not _holds_json(field.message_type):
            continue
        if field.message_type.GetOptions().map_entry:
            items = value.values()
        elif field.is_repeated:
            items = value
        else:
            items = (value,)
        if any(isinstance(item, Message) and _non_finite(item) for item in items):
            return True
    return False


@functools.cache
def _is_config_write(descriptor: Descriptor) -> bool:
    """Whether requests of this type set (a ``Struct``) and unset (names) config keys."""
    fields = descriptor.fields_by_name
    set_field, unset_field = fields.get("set"), fields.get("unset")
    return (
        set_field is not None
        and set_field.message_type is not None
        and set_field.message_type.full_name == "google.protobuf.Struct"
        and unset_field is not None
        and unset_field.is_repeated
    )


def _write_keys(message: Message) -> int | None:
    """How many keys a config write names (``set`` and ``unset`` together); None
    for requests that are not config writes."""
    if not _is_config_write(message.DESCRIPTOR):
        return None
    return len(message.set.fields) + len(message.unset)  # type: ignore[attr-defined]


def _decode_error(method: str, exc: Exception) -> BadRequest:
    why = str(exc)
    if "MaxDepth" in why:  # upb's own recursion limit, hit before our depth check
        why = (
            "it nests deeper than the protobuf decoder accepts; config values may be "
            f"nested at most {model.MAX_DEPTH} levels deep"
        )
    return BadRequest(f"the request to {auth.short_method(method)} is not valid: {why}")


def _decoder(deserializer: Callable[[bytes], Any] | None, method: str) -> Callable[[bytes], Any]:
    """A deserializer that returns `BadRequest` instead of raising, and that also
    refuses what no handler could take: NaN/infinities, too many keys in one write."""

    def decode(data: bytes) -> Any:
        if deserializer is None:
            return data
        try:
            request = deserializer(data)
        except (DecodeError, UnicodeDecodeError, ValueError) as exc:
            return _decode_error(method, exc)
        if not isinstance(request, Message):
            return request
        keys = _write_keys(request)
        if keys is not None:
            try:
                model.check_write_keys(keys)
            except InvalidArgument as exc:
                return BadRequest(f"{auth.short_method(method)}: {exc.message}")
        if _holds_json(request.DESCRIPTOR) and _non_finite(request):
            return BadRequest(
                f"the request to {auth.short_method(method)} is not valid: it holds NaN or "
                "an infinite number; JSON values allow finite numbers only"
            )
        return request

    return decode


class KeySource(Protocol):
    async def observer_key(self) -> bytes: ...


def sees_secrets(principal: auth.Principal | None) -> bool:
    """Whether ``principal`` sees secret values and exact config hashes (None:
    authentication is off). Observers do not: `Guard.shown_to` redacts for them."""
    return principal is None or principal.role is not auth.Role.OBSERVER


def author(claimed: str) -> dict[str, Any]:
    """The store's authorship arguments for a write whose client says ``claimed``:
    the caller's token when authentication is on (see `auth.authorship`)."""
    return auth.authorship(current_principal.get(), claimed).fields()


def bearer_token(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class Guard:
    """Authentication state shared by every call of one server."""

    def __init__(
        self,
        tokens: TokenBook,
        bootstrap: auth.TokenRecord | None,
        *,
        public_keys: PublicKeys,
        streams_per_token: int = DEFAULT_STREAMS_PER_TOKEN,
        streams_per_peer: int = DEFAULT_STREAMS_PER_PEER,
        max_streams: int = DEFAULT_MAX_STREAMS,
        clock: Clock = _utcnow,
    ) -> None:
        self.tokens = tokens
        self.bootstrap = bootstrap
        # What observers may see; redaction fails closed: see `genconf.security.redact`.
        self.public_keys = public_keys
        # Keys the config hashes observers see (`load_observer_key`); None: blanked.
        self.observer_key: bytes | None = None
        self.streams_per_token = streams_per_token
        self.clock = clock
        self._streams: dict[str, int] = {}
        self.streams_per_peer = streams_per_peer
        self.max_streams = max_streams
        self._peer_streams: dict[str, int] = {}
        self.open_streams = 0  # of any kind

    @property
    def enabled(self) -> bool:
        return self.bootstrap is not None

    async def load_observer_key(self, store: KeySource) -> None:
        """Read (or make) the server key of observers' hashes, once at start-up: the
        same on every replica, so an observer's hashes agree wherever it reads."""
        if self.enabled:
            self.observer_key = await store.observer_key()

    def shown_to(self, principal: auth.Principal, response: Any) -> Any:
        """The response as ``principal`` may see it: observers get secrets redacted
        and config hashes keyed, so that no hash can be tested against a guess."""
        if not sees_secrets(principal) and isinstance(response, Message):
            return redacted(response, self.public_keys, self.observer_key)
        return response

    def authenticate(self, metadata: Any) -> auth.Principal:
        token = bearer_token(metadata)
        if token is None:
            raise Unauthenticated(
                "this server requires a bearer token: pass --token or set GENCONF_TOKEN "
                "(metadata 'authorization: Bearer <token>')"
            )
        principal = auth.authenticate(token, self.tokens.records, self.bootstrap, self.clock())
        stale = self.tokens.principal_problem(principal)  # an agent's unit was re-created
        if stale is not None:
            raise Unauthenticated(stale)
        return principal

    def open_stream(self, principal: auth.Principal) -> Callable[[], None]:
        """Count a stream against its token and the server's cap; returns its release."""
        count = self._streams.get(principal.token_id, 0)
        if count >= self.streams_per_token:
            raise ResourceExhausted(
                f"token {principal.token_id} already has {count} open streams "
                f"(limit streams_per_token={self.streams_per_token}); close some first"
            )
        return self._open(self._streams, principal.token_id)

    def open_peer_stream(self, peer: str) -> Callable[[], None]:
        """Count a stream no token answers for against its peer's IP address (all
        the connections of one machine) and the server's cap; returns its release."""
        host = peer_host(peer)
        count = self._peer_streams.get(host, 0)
        if count >= self.streams_per_peer:
            raise ResourceExhausted(
                f"{host} already has {count} open streams not bound to a token (limit "
                f"--streams-per-peer={self.streams_per_peer}); close some first"
            )
        return self._open(self._peer_streams, host)

    def _open(self, counts: dict[str, int], key: str) -> Callable[[], None]:
        if self.open_streams >= self.max_streams:
            raise ResourceExhausted(
                f"the server already has {self.open_streams} open streams (limit "
                f"--max-streams={self.max_streams}); try again later"
            )
        counts[key] = counts.get(key, 0) + 1
        self.open_streams += 1
        closed = False

        def close() -> None:
            nonlocal closed
            if closed:
                return
            closed = True
            self.open_streams -= 1
            left = counts.get(key, 1) - 1
            if left > 0:
                counts[key] = left
            else:
                counts.pop(key, None)

        return close

    async def sweep_expired(self) -> None:
        """End streams whose token expired: one timer for all of them, not one each."""
        while True:
            await anyio.sleep(SWEEP_INTERVAL)
            self.tokens.announce_expired(self.clock())

    def still_valid(self, principal: auth.Principal) -> str | None:
        """Why the principal's token is no longer usable (None: it still is)."""
        if principal.token_id == auth.BOOTSTRAP_ID:
            return None
        record = self.tokens.get(principal.token_id)
        if record is None:
            return f"token {principal.token_id} was removed"
        if record.revoked:
            return f"token {principal.token_id} has been revoked"
        if record.expired(self.clock()):
            return f"token {principal.token_id} has expired"
        return self.tokens.principal_problem(principal)


class GuardInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method: str = details.method  # type: ignore[attr-defined]
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
    decode = _decoder(handler.request_deserializer, method)
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
