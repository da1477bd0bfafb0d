"""Requests no handler could take become INVALID_ARGUMENT before any handler runs.

gRPC raises inside its own deserializer when a request cannot be decoded (invalid
UTF-8 in a name, values nested past the decoder's limit); the interceptor swaps in
a forgiving decoder that returns `BadRequest` instead, and refuses the same way
config writes naming more than `schema.MAX_KEYS` keys, and NaN or infinities
(JSON has no such numbers).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import DecodeError, Message

from genconf.domain import schema
from genconf.errors import InvalidArgument
from genconf.security import auth


@dataclass(frozen=True)
class BadRequest:
    """Stands in for a request that could not be decoded."""

    reason: str


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
            f"nested at most {schema.MAX_DEPTH} levels deep"
        )
    return BadRequest(f"the request to {auth.short_method(method)} is not valid: {why}")


def forgiving_decoder(
    deserializer: Callable[[bytes], Any] | None, method: str
) -> Callable[[bytes], Any]:
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
                schema.check_write_keys(keys)
            except InvalidArgument as exc:
                return BadRequest(f"{auth.short_method(method)}: {exc.message}")
        if _holds_json(request.DESCRIPTOR) and _non_finite(request):
            return BadRequest(
                f"the request to {auth.short_method(method)} is not valid: it holds NaN or "
                "an infinite number; JSON values allow finite numbers only"
            )
        return request

    return decode
