"""A failed call as the client raises it: the one place a gRPC status becomes a
`ClientError`, or the typed subclass a caller can act on (`TooOld`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import grpc

from genconf.errors import ClientError, TooOld
from genconf.v1 import types_pb2
from genconf.wire import DETAIL_KEY

# Statuses a reconnecting watch or a retrying report waits out.
RETRYABLE: Final = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})

# The server's errors with a class of their own here, by the name the server sends in
# the details (`ErrorDetail.code`); every other error is a plain ClientError.
ERROR_FOR_CODE: Final[Mapping[str, type[ClientError]]] = {
    "RevisionTooOld": TooOld,
}


def client_error(
    code: grpc.StatusCode, message: str, detail: types_pb2.ErrorDetail | None = None
) -> ClientError:
    """The error for ``code``: its typed subclass when the details name one."""
    detail = detail if detail is not None else types_pb2.ErrorDetail()
    cls = ERROR_FOR_CODE.get(detail.code, ClientError)
    return cls(code, message, detail)


def from_rpc_error(exc: grpc.aio.AioRpcError) -> ClientError:
    """The server's status, message and structured details (trailing metadata)."""
    detail = types_pb2.ErrorDetail()
    for key, value in exc.trailing_metadata() or ():
        if key == DETAIL_KEY and isinstance(value, bytes):
            detail.ParseFromString(value)
    return client_error(exc.code(), exc.details() or "", detail)
