"""A gRPC status becomes a ClientError in one place, as its typed subclass when it has one."""

from __future__ import annotations

import grpc

from genconf.client.status import ERROR_FOR_CODE, client_error
from genconf.errors import ClientError, TooOld
from genconf.v1 import types_pb2


def test_a_revision_too_old_is_too_old() -> None:
    detail = types_pb2.ErrorDetail(code="RevisionTooOld")
    error = client_error(grpc.StatusCode.OUT_OF_RANGE, "7 is older than the oldest", detail)
    assert type(error) is TooOld
    assert isinstance(error, ClientError)
    assert str(error) == "OUT_OF_RANGE: 7 is older than the oldest"


def test_a_revision_ahead_of_the_server_is_not_too_old() -> None:
    """Also OUT_OF_RANGE, but a retry (shortly, or on another replica) serves it."""
    detail = types_pb2.ErrorDetail(code="OutOfRange")
    error = client_error(grpc.StatusCode.OUT_OF_RANGE, "9 is ahead of this server", detail)
    assert type(error) is ClientError


def test_other_statuses_are_plain_client_errors_with_their_details() -> None:
    detail = types_pb2.ErrorDetail(code="VersionMismatch", expected_version=2, actual_version=3)
    error = client_error(grpc.StatusCode.ABORTED, "someone wrote first", detail)
    assert type(error) is ClientError
    assert (error.expected_version, error.actual_version) == (2, 3)
    assert client_error(grpc.StatusCode.NOT_FOUND, "x").detail == types_pb2.ErrorDetail()


def test_every_typed_error_is_a_client_error() -> None:
    assert all(issubclass(cls, ClientError) for cls in ERROR_FOR_CODE.values())
