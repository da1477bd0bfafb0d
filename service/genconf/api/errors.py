"""The one place genconf errors become gRPC statuses.

Each error keeps its actionable message; details a client acts on (expected and
actual version, conflicting keys, units) travel as an `ErrorDetail` message in
the trailing metadata key ``genconf-error-bin``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final, TypeVar

import grpc

from genconf import errors
from genconf.api.convert import conflict_to_proto, mismatch_to_proto
from genconf.v1 import types_pb2
from genconf.wire import DETAIL_KEY, write_response

log = logging.getLogger("genconf.api")


STATUS: Final[dict[type[errors.GenconfError], grpc.StatusCode]] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.VersionMismatch: grpc.StatusCode.ABORTED,
    errors.ExpectationFailed: grpc.StatusCode.ABORTED,
    errors.Conflict: grpc.StatusCode.FAILED_PRECONDITION,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
}


def status_of(exc: errors.GenconfError) -> grpc.StatusCode:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return grpc.StatusCode.INTERNAL


def detail_of(exc: errors.GenconfError) -> types_pb2.ErrorDetail:
    detail = types_pb2.ErrorDetail(code=type(exc).__name__)
    if isinstance(exc, errors.VersionMismatch):
        detail.expected_version = exc.expected
        detail.actual_version = exc.actual
    if isinstance(exc, errors.Conflict):
        detail.conflicts.extend(conflict_to_proto(k) for k in exc.keys)
    if isinstance(exc, errors.ExpectationFailed):
        detail.mismatches.extend(mismatch_to_proto(k) for k in exc.keys)
    units = getattr(exc, "units", None)
    if units:
        detail.units.extend(units)
    return detail


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], exc: errors.GenconfError) -> None:
    context.set_trailing_metadata(((DETAIL_KEY, detail_of(exc).SerializeToString()),))
    await context.abort(status_of(exc), exc.message)


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def unary(method: F) -> F:
    """Map GenconfError raised by a unary handler to its status and details."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await method(self, request, context)
        except errors.GenconfError as exc:
            await abort_with(context, exc)

    return wrapper  # type: ignore[return-value]


R = TypeVar("R")


def replies(
    encode: Callable[[R], Any],
) -> Callable[[Callable[..., Awaitable[R]]], Callable[..., Awaitable[Any]]]:
    """A unary handler (errors mapped as by `unary`) whose result goes out as
    ``encode`` makes it a message."""

    def decorate(method: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(method)
        async def wrapper(
            self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> Any:
            return encode(await method(self, request, context))

        return unary(wrapper)

    return decorate


# A write handler: the store's `WriteResult` it returns goes out as a WriteResponse.
write = replies(write_response)


def streaming(
    method: Callable[..., AsyncIterator[Any]],
) -> Callable[..., AsyncIterator[Any]]:
    """The same mapping for server-streaming handlers."""

    @functools.wraps(method)
    async def wrapper(
        self: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        try:
            async for item in method(self, request, context):
                yield item
        except errors.GenconfError as exc:
            await abort_with(context, exc)

    return wrapper
