"""The gate every RPC passes: request decoding, authentication, authorization, limits.

One server interceptor wraps each handler once per call. It turns undecodable
requests (e.g. invalid UTF-8 in a name, values nested past the decoder's limit)
and config writes naming more than `model.MAX_KEYS` keys into INVALID_ARGUMENT
before any handler runs, and, when authentication is on, checks the bearer
token against the `TokenBook`, the method against `auth.RULES`, an agent's unit
against the request, and the number of open streams per token. A stream whose
token is revoked or expires ends with UNAUTHENTICATED.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import anyio
import grpc
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message

from genconf import auth, model
from genconf.api.errors import abort_with
from genconf.api.redact import PublicKeys, redacted
from genconf.errors import GenconfError, InvalidArgument, ResourceExhausted, Unauthenticated
from genconf.tokenbook import TokenBook

log = logging.getLogger("genconf.guard")

Context = grpc.aio.ServicerContext[Any, Any]
Clock = Callable[[], dt.datetime]

# The caller of the RPC being served (None: authentication is off).
current_principal: contextvars.ContextVar[auth.Principal | None] = contextvars.ContextVar(
    "genconf_principal", default=None
)

DEFAULT_STREAMS_PER_TOKEN: Final = 1000
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
        clock: Clock = _utcnow,
    ) -> None:
        self.tokens = tokens
        self.bootstrap = bootstrap
        # What observers may see; redaction fails closed: see `genconf.api.redact`.
        self.public_keys = public_keys
        self.streams_per_token = streams_per_token
        self.clock = clock
        self._streams: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return self.bootstrap is not None

    def shown_to(self, principal: auth.Principal, response: Any) -> Any:
        """The response as ``principal`` may see it: observers get secrets redacted."""
        if principal.role is auth.Role.OBSERVER and isinstance(response, Message):
            return redacted(response, self.public_keys)
        return response

    def authenticate(self, metadata: Any) -> auth.Principal:
        token = bearer_token(metadata)
        if token is None:
            raise Unauthenticated(
                "this server requires a bearer token: pass --token or set GENCONF_TOKEN "
                "(metadata 'authorization: Bearer <token>')"
            )
        return auth.authenticate(token, self.tokens.records, self.bootstrap, self.clock())

    def open_stream(self, principal: auth.Principal) -> Callable[[], None]:
        count = self._streams.get(principal.token_id, 0)
        if count >= self.streams_per_token:
            raise ResourceExhausted(
                f"token {principal.token_id} already has {count} open streams "
                f"(limit streams_per_token={self.streams_per_token}); close some first"
            )
        self._streams[principal.token_id] = count + 1

        def close() -> None:
            left = self._streams.get(principal.token_id, 1) - 1
            if left > 0:
                self._streams[principal.token_id] = left
            else:
                self._streams.pop(principal.token_id, None)

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
        return None


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
            if not method.startswith("/genconf."):
                return handler
            return _rewrap(handler, method, self._open_unary, self._open_stream)
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
            return self.guard.shown_to(principal, await behavior(request, context))

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
            items = aiter(behavior(request, context))
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
                    yield guard.shown_to(principal, item)
                await abort_with(context, Unauthenticated(ended[0]))
            finally:
                unlisten()
                close()
                aclose = getattr(items, "aclose", None)
                if aclose is not None:
                    await aclose()

        return call


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
