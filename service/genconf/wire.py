"""Values on the wire: Python values <-> protobuf, shared by the server (`genconf.api`)
and the client, so neither needs the other's modules (the client loads no server
code, no pymongo).

Config values travel as `google.protobuf.Value`, whose numbers are doubles: see
`schema.MAX_EXACT_INT` for which numbers cross exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from genconf.domain.results import WriteResult
from genconf.domain.schema import MAX_EXACT_INT
from genconf.domain.values import ABSENT
from genconf.errors import InvalidArgument
from genconf.v1 import types_pb2

# The trailing-metadata key of a call's typed error detail (a `types_pb2.ErrorDetail`).
DETAIL_KEY: Final = "genconf-error-bin"


def to_value(value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    json_format.ParseDict(value, out)
    return out


# The largest message either side of the API sends or takes in: the server's max
# send length and every client channel's max receive length (one limit, so a config
# the server accepted always reaches its agent and the CLI). Derivation, for the
# largest reply, a unit's `Config`: the effective config has at most MAX_KEYS keys
# (the schema's limit), each value at most MAX_VALUE_BYTES of canonical JSON, so
# `config_json` is at most 1000 x (64 KiB + 132 bytes of key and punctuation) =
# 62.6 MiB. The same config also travels as a Struct: each value comes from the
# application's document (default or master) or the branch's, each at most 4 MiB
# of BSON (the store's limits), and protobuf takes at most 3 bytes per BSON byte
# (objects of one-letter keys holding null), so at most 24 MiB. Together < 87 MiB,
# plus names and hash; an Application (one 4 MiB document, three Structs) is less.
# gRPC's default receive limit, 4 MiB, cut off configs from about 2 MB.
MAX_MESSAGE_BYTES: Final = 128 * 1024 * 1024


def _ints(value: Any) -> Any:
    """protobuf carries every number as a double; JSON does not tell 1 from 1.0, so
    integral numbers come back as ints and every write path hashes alike (only
    within ±MAX_EXACT_INT, where a double is an exact integer)."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_EXACT_INT:
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def from_value(value: struct_pb2.Value) -> Any:
    return _ints(json_format.MessageToDict(value))


def to_struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(dict(values))
    return out


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return _ints(json_format.MessageToDict(struct))


def to_timestamp(when: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if when is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(when.astimezone(dt.UTC) if when.tzinfo else when)
    return out


# A unit's health as stored and shown (`records.HEALTH_STATES`) <-> the proto enum.
_HEALTH_NAMES: Final[dict[int, str]] = {
    types_pb2.HEALTH_UNKNOWN: "unknown",
    types_pb2.HEALTH_HEALTHY: "healthy",
    types_pb2.HEALTH_UNHEALTHY: "unhealthy",
}
_HEALTH_VALUES: Final[dict[str, types_pb2.Health]] = {
    "unknown": types_pb2.HEALTH_UNKNOWN,
    "healthy": types_pb2.HEALTH_HEALTHY,
    "unhealthy": types_pb2.HEALTH_UNHEALTHY,
}


def health_name(value: int) -> str:
    """``HEALTH_HEALTHY`` -> ``"healthy"``; a value this build does not know (a newer
    peer's) is ``"unknown"`` rather than an error."""
    return _HEALTH_NAMES.get(value, "unknown")


def health_value(name: str) -> types_pb2.Health:
    """``"healthy"`` -> ``HEALTH_HEALTHY``."""
    try:
        return _HEALTH_VALUES[name]
    except KeyError:
        raise InvalidArgument(
            f"health must be one of {', '.join(_HEALTH_VALUES)}, not {name!r}"
        ) from None


def expectations_to_proto(
    expect: Mapping[str, Any],
    out: Any,  # a request's map<string, ExpectedValue>
) -> None:
    """A write's per-key expectations (ABSENT: the key has no value) into ``out``."""
    for key, value in expect.items():
        if value is ABSENT:
            out[key].absent = True
        else:
            out[key].value.CopyFrom(to_value(value))


def expectations_from_proto(expect: Mapping[str, types_pb2.ExpectedValue]) -> dict[str, Any]:
    """The inverse of `expectations_to_proto`; an entry stating neither expects null."""
    return {
        key: ABSENT if item.WhichOneof("expected") == "absent" else from_value(item.value)
        for key, item in expect.items()
    }


def schema_from_proto(schema: Mapping[str, types_pb2.OptionSchema]) -> dict[str, Any]:
    """Protobuf schema to the plain mapping `schema.parse_schema` validates."""
    raw: dict[str, Any] = {}
    for key, option in schema.items():
        entry: dict[str, Any] = {
            "type": option.type,
            "description": option.description,
            "secret": option.secret,
        }
        if option.HasField("default"):
            entry["default"] = from_value(option.default)
        raw[key] = entry
    return raw


def write_response(result: WriteResult) -> types_pb2.WriteResponse:
    return types_pb2.WriteResponse(
        revision=result.revision,
        generation=result.generation,
        versions=dict(result.versions),
        units=list(result.units),
        skipped=dict(result.skipped),
    )


def write_result(msg: types_pb2.WriteResponse) -> WriteResult:
    return WriteResult(
        msg.revision, msg.generation, dict(msg.versions), list(msg.units), dict(msg.skipped)
    )
