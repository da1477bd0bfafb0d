"""Protobuf wire bytes built by hand, for requests a well-behaved client never sends.

Requests are built as protobuf wire bytes where they hold hostile JSON values:
protobuf's own builders refuse to nest deeper than the parser's limit, and the
usual converters refuse NaN; a hostile client does neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from struct import pack
from typing import Any

from google.protobuf.message import Message


def length_delimited(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def wire(request: Message, *fields: tuple[str, bytes]) -> bytes:
    """``request`` serialized, with length-delimited ``fields`` (by name) appended."""
    out = request.SerializeToString()
    for name, payload in fields:
        out += length_delimited(request.DESCRIPTOR.fields_by_name[name].number, payload)
    return out


def struct(values: Mapping[str, Any]) -> bytes:
    """A google.protobuf.Struct's wire bytes."""
    return b"".join(
        length_delimited(1, length_delimited(1, key.encode()) + length_delimited(2, value(v)))
        for key, v in values.items()
    )


def value(v: Any) -> bytes:
    """A google.protobuf.Value's wire bytes (NaN, Infinity and any depth included)."""
    if v is None:
        return varint(1 << 3) + varint(0)
    if isinstance(v, bool):
        return varint(4 << 3) + varint(int(v))
    if isinstance(v, (int, float)):
        return varint(2 << 3 | 1) + pack("<d", float(v))
    if isinstance(v, str):
        return length_delimited(3, v.encode())
    if isinstance(v, Mapping):
        return length_delimited(5, struct(v))
    return length_delimited(6, b"".join(length_delimited(1, value(x)) for x in v))


def nested(depth: int, leaf: Any, as_list: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if as_list else {"k": value}
    return value
