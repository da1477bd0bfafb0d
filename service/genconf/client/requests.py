"""Values checked and encoded for requests: the client refuses here what protobuf
would round on the way, before the server sees it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import struct_pb2

from genconf.client.status import client_error
from genconf.domain.schema import check_wire_numbers
from genconf.domain.values import ABSENT
from genconf.errors import InvalidArgument
from genconf.v1 import types_pb2
from genconf.wire import to_struct, to_value


def exact(key: str, value: Any) -> None:
    """Refuse here what protobuf would round on the way (an integer past
    ±`schema.MAX_EXACT_INT`) and the server then refuse or, worse, store rounded."""
    try:
        check_wire_numbers(key, value)
    except InvalidArgument as exc:
        raise client_error(grpc.StatusCode.INVALID_ARGUMENT, exc.message) from None


def values_struct(values: Mapping[str, Any] | None) -> struct_pb2.Struct:
    """Config values as a Struct, each checked by `exact`."""
    for key, value in (values or {}).items():
        exact(key, value)
    return to_struct(values or {})


def metadata_struct(metadata: Mapping[str, Any] | None) -> struct_pb2.Struct:
    """Metadata as a Struct; checked as one object value, as the server checks it."""
    exact("metadata", dict(metadata or {}))
    return to_struct(metadata or {})


def expectations(expect: Mapping[str, Any] | None) -> dict[str, Any]:
    """Per-key expectations, each value checked by `exact` (ABSENT passes)."""
    out = dict(expect or {})
    for key, value in out.items():
        if value is not ABSENT:
            exact(key, value)
    return out


def schema_to_proto(schema: Mapping[str, Mapping[str, Any]]) -> dict[str, types_pb2.OptionSchema]:
    out = {}
    for key, option in schema.items():
        msg = types_pb2.OptionSchema(
            type=str(option.get("type", "")),
            description=str(option.get("description", "")),
            secret=bool(option.get("secret", False)),
        )
        if option.get("default") is not None:
            exact(key, option["default"])
            msg.default.CopyFrom(to_value(option["default"]))
        out[key] = msg
    return out
