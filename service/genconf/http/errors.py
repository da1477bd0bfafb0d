"""The one place a refused call becomes an HTTP status and a JSON body.

Every error answers ``{code, message, details}``: ``code`` the gRPC status name,
``message`` the same text gRPC gives, ``details`` the typed `ErrorDetail` as JSON
(every key always present: the genconf error class, expected and actual version,
conflicts, mismatches, units; ``fields`` names what a malformed request got wrong).

    INVALID_ARGUMENT 400   UNAUTHENTICATED 401   PERMISSION_DENIED 403   NOT_FOUND 404
    ALREADY_EXISTS 409     ABORTED 409           FAILED_PRECONDITION 412
    OUT_OF_RANGE 400 (410: a revision too old to resume from)
    RESOURCE_EXHAUSTED 429 (413: a request body past --max-request-bytes)
    UNAVAILABLE 503        anything else 500
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

import grpc

from genconf import errors
from genconf.api.errors import detail_of, status_of
from genconf.http.calls import Aborted
from genconf.shapes import conflict_view
from genconf.v1 import types_pb2

log = logging.getLogger("genconf.http")

HTTP_STATUS: Final[Mapping[grpc.StatusCode, int]] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
}
TOO_OLD: Final = 410  # OUT_OF_RANGE for a revision older than the server keeps
TOO_LARGE: Final = 413  # RESOURCE_EXHAUSTED for a body past the request limit
# The error class `ErrorDetail.code` names for a revision too old to resume from.
TOO_OLD_CLASS: Final = errors.RevisionTooOld.__name__


class Refusal(Exception):
    """An error the HTTP layer itself finds (a malformed request, a body too large),
    with the status it answers and the fields it names."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        status: int | None = None,
        fields: Sequence[Mapping[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else HTTP_STATUS.get(code, 500)
        self.fields = list(fields)


def detail_view(
    detail: types_pb2.ErrorDetail | None, fields: Sequence[Mapping[str, str]] = ()
) -> dict[str, Any]:
    """The typed detail as JSON, every key present (null versions when not stated)."""
    detail = detail or types_pb2.ErrorDetail()
    return {
        "code": detail.code or None,
        "expected_version": detail.expected_version or None,
        "actual_version": detail.actual_version or None,
        "conflicts": [conflict_view(c) for c in detail.conflicts],
        "mismatches": [
            {
                "application": m.application,
                "key": m.key,
                "expected": m.expected,
                "actual": m.actual,
                "branch": m.branch or None,
            }
            for m in detail.mismatches
        ],
        "units": list(detail.units),
        "fields": [dict(f) for f in fields],
    }


def error_body(
    code: grpc.StatusCode,
    message: str,
    detail: types_pb2.ErrorDetail | None = None,
    fields: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    return {"code": code.name, "message": message, "details": detail_view(detail, fields)}


def too_old(detail: types_pb2.ErrorDetail | None) -> bool:
    return detail is not None and detail.code == TOO_OLD_CLASS


def status_for(code: grpc.StatusCode, detail: types_pb2.ErrorDetail | None = None) -> int:
    if code is grpc.StatusCode.OUT_OF_RANGE and too_old(detail):
        return TOO_OLD
    return HTTP_STATUS.get(code, 500)


def expected(exc: BaseException) -> bool:
    """Whether ``exc`` is a refusal (anything else is a bug: 500, logged)."""
    return isinstance(exc, (Aborted, Refusal, errors.GenconfError))


def body_of(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of any error a route can meet; an unexpected one
    answers 500 without its text (whoever caught it logs it: `log_unexpected`)."""
    if isinstance(exc, Aborted):
        return status_for(exc.code, exc.detail), error_body(exc.code, exc.message, exc.detail)
    if isinstance(exc, Refusal):
        return exc.status, error_body(exc.code, exc.message, None, exc.fields)
    if isinstance(exc, errors.GenconfError):
        code, detail = status_of(exc), detail_of(exc)
        return status_for(code, detail), error_body(code, exc.message, detail)
    return 500, error_body(
        grpc.StatusCode.INTERNAL, "internal error; the server's log has the details"
    )


def log_unexpected(exc: BaseException) -> None:
    """Log a bug that ended a stream (uvicorn logs those that end a plain request)."""
    if not expected(exc):
        log.error("internal error in an HTTP stream", exc_info=exc)


def headers_for(status: int) -> dict[str, str]:
    """A 401 says which scheme to authenticate with (RFC 6750)."""
    return {"WWW-Authenticate": 'Bearer realm="genconf"'} if status == 401 else {}


def encode(data: Any) -> bytes:
    """JSON as every route answers it: compact, keys sorted, UTF-8."""
    return json.dumps(
        data, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
    ).encode()
