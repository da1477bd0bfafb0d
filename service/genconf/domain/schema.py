"""An application's schema: option types, parsing, coercion and the limits of a value.

A value is checked against its option where it enters, so every stored value is
JSON data of the option's type, bounded in size and depth, whose numbers cross
the gRPC API exactly.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Collection, Container, Mapping
from dataclasses import dataclass
from typing import Any, Final

from genconf.domain.names import validate_key
from genconf.domain.values import ABSENT, canonical_json, show_value
from genconf.errors import InvalidArgument

MAX_VALUE_BYTES: Final = 64 * 1024
MAX_DEPTH: Final = 32
MAX_KEYS: Final = 1000
# Config values cross the gRPC API as `google.protobuf.Value`, whose numbers are
# doubles: an integer is exact there, and cannot be told from its neighbours'
# rounding, only up to 2^53 - 1 in magnitude (JSON's "safe integers", RFC 7493).
# So every integer in a value, at the top or nested, lies within ±MAX_EXACT_INT,
# and so does every number inside an object or list value (a double that large is
# an integer, maybe a rounded one). Only a `float` option holds larger numbers.
MAX_EXACT_INT: Final = 2**53 - 1


class ValueType(enum.StrEnum):
    STRING = "string"
    INT = "int"
    FLOAT = "float"
    BOOLEAN = "boolean"
    OBJECT = "object"
    LIST = "list"
    ANY = "any"  # any JSON value: what an open application's undeclared keys hold


@dataclass(frozen=True)
class OptionSpec:
    """One key of an application's schema. ``default`` is ABSENT when there is none."""

    type: ValueType
    default: Any = ABSENT
    description: str = ""
    secret: bool = False

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": self.type.value, "description": self.description}
        if self.default is not ABSENT:
            doc["default"] = self.default
        if self.secret:
            doc["secret"] = True
        return doc


Schema = Mapping[str, OptionSpec]

# The schema entry that makes an application open: any key the schema does not
# declare is allowed, with the wildcard's type (usually ``any``) and no default.
# Declared keys keep their own type, default and secrecy.
WILDCARD: Final = "*"
OPEN_SCHEMA: Final = {WILDCARD: {"type": ValueType.ANY.value, "description": "any key"}}

_TYPE_ALIASES: Final = {"str": "string", "integer": "int", "bool": "boolean", "dict": "object"}


def parse_schema(raw: Mapping[str, Any]) -> dict[str, OptionSpec]:
    """Validate a schema given as ``{key: {type, default?, description?, secret?}}``."""
    if not isinstance(raw, Mapping):
        raise InvalidArgument("schema must be a mapping of key -> {type, default, description}")
    if len(raw) > MAX_KEYS:
        raise InvalidArgument(f"schema has {len(raw)} keys; the limit is {MAX_KEYS}")
    schema: dict[str, OptionSpec] = {}
    for key, option in raw.items():
        if key != WILDCARD:
            validate_key(key)
        if not isinstance(option, Mapping):
            raise InvalidArgument(f"schema option {key!r} must be a mapping with a 'type'")
        unknown = set(option) - {"type", "default", "description", "secret"}
        if unknown:
            raise InvalidArgument(
                f"schema option {key!r} has unknown field(s) {sorted(unknown)}; "
                "allowed: type, default, description, secret"
            )
        type_name = _TYPE_ALIASES.get(str(option.get("type")), option.get("type"))
        try:
            value_type = ValueType(type_name)
        except ValueError:
            raise InvalidArgument(
                f"schema option {key!r} has type {option.get('type')!r}; use one of "
                + ", ".join(t.value for t in ValueType)
            ) from None
        description = option.get("description", "")
        if not isinstance(description, str):
            raise InvalidArgument(f"schema option {key!r}: description must be a string")
        secret = option.get("secret", False)
        if not isinstance(secret, bool):
            raise InvalidArgument(f"schema option {key!r}: secret must be true or false")
        spec = OptionSpec(value_type, ABSENT, description, secret)
        if key == WILDCARD:
            _check_wildcard(option, secret)
        elif "default" in option and option["default"] is not None:
            spec = OptionSpec(
                value_type, coerce_value(key, spec, option["default"]), description, secret
            )
        schema[key] = spec
    return schema


def _check_wildcard(option: Mapping[str, Any], secret: bool) -> None:
    """The wildcard opens the schema; what only a named key can carry is refused."""
    if option.get("default") is not None:
        raise InvalidArgument(
            "schema option '*' (any other key) cannot have a default: an open "
            "application's undeclared keys have a value only when set"
        )
    if secret:
        raise InvalidArgument(
            "schema option '*' (any other key) cannot be secret: declare each secret "
            "key by name, e.g. password: {type: string, secret: true}"
        )


def is_open(schema: Schema) -> bool:
    return WILDCARD in schema


def option_for(schema: Schema, key: str) -> OptionSpec | None:
    """The option ``key`` is held to: its own, else the wildcard's in an open schema.
    None: the schema does not allow the key. (Names are checked where keys enter,
    by `require_key`.)"""
    spec = schema.get(key)
    if spec is not None or key == WILDCARD:
        return spec
    return schema.get(WILDCARD)


@dataclass(frozen=True)
class AllBut:
    """Every key but these: the public keys of an open schema, whose undeclared keys
    (never secret: the wildcard cannot be) observers may see."""

    secret: frozenset[str]

    def __contains__(self, key: object) -> bool:
        return key not in self.secret


def visible_keys(schema: Schema) -> Container[str]:
    """The keys whose values observers may see: the declared non-secret ones, and
    in an open schema every undeclared one too."""
    if is_open(schema):
        return AllBut(frozenset(k for k, spec in schema.items() if spec.secret))
    return frozenset(k for k, spec in schema.items() if not spec.secret)


def schema_to_doc(schema: Schema) -> dict[str, dict[str, Any]]:
    return {key: spec.to_doc() for key, spec in schema.items()}


def _inexact(key: str, path: str, number: int | float) -> InvalidArgument:
    if isinstance(number, float) and abs(number) < 1e19:
        number = int(number)  # an integral double, most likely sent as an integer
    if path == key:
        where, what = f"value of {key!r} is {show_value(number)}", "integers"
    else:
        where = f"value of {key!r} has {show_value(number)} at {path}"
        what = "numbers inside objects and lists"
    return InvalidArgument(
        f"{where}: {what} must lie within ±{MAX_EXACT_INT} (±(2^53-1)) to cross the API "
        "exactly (its numbers are doubles); give a larger one as a string"
    )


def _check_number(key: str, path: str, value: int | float, nested: bool) -> None:
    """Integers anywhere, and any number inside an object or list, within
    ±MAX_EXACT_INT (see there); floats finite."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"value of {key!r} is {value}; only finite numbers are allowed")
        if nested and abs(value) > MAX_EXACT_INT:
            raise _inexact(key, path, value)
    elif abs(value) > MAX_EXACT_INT:
        raise _inexact(key, path, value)


def check_wire_numbers(key: str, value: Any) -> None:
    """What `_check_json` says about numbers, alone: for a client to refuse a value
    the server would refuse, before protobuf rounds it on the way."""
    stack: list[tuple[Any, str, bool]] = [(value, key, False)]
    while stack:
        item, path, nested = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, (int, float)):
            _check_number(key, path, item, nested)
        elif isinstance(item, Mapping):  # reversed: the first offender, as _check_json
            stack.extend(reversed([(v, f"{path}.{k}", True) for k, v in item.items()]))
        elif isinstance(item, (list, tuple)):
            stack.extend(reversed([(v, f"{path}[{i}]", True) for i, v in enumerate(item)]))


def _check_json(key: str, value: Any, depth: int, path: str | None = None) -> None:
    """Only JSON data, bounded depth, finite floats, exact numbers (see
    MAX_EXACT_INT), Mongo-safe object keys."""
    path = key if path is None else path
    if depth > MAX_DEPTH:
        raise InvalidArgument(f"value of {key!r} is nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        _check_number(key, path, value, depth > 0)
        return
    if isinstance(value, str):
        _check_text(key, value)
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str) or not k or "." in k or k.startswith("$") or "\0" in k:
                raise InvalidArgument(
                    f"value of {key!r} has object key {k!r}: object keys must be non-empty "
                    "strings without '.', NUL or a leading '$'"
                )
            _check_text(key, k)
            _check_json(key, v, depth + 1, f"{path}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_json(key, v, depth + 1, f"{path}[{i}]")
        return
    raise InvalidArgument(f"value of {key!r} has unsupported type {type(value).__name__}")


def _check_text(key: str, text: str) -> None:
    try:
        text.encode()
    except UnicodeEncodeError:
        raise InvalidArgument(
            f"value of {key!r} holds text that is not valid UTF-8 (a lone surrogate)"
        ) from None


def _expect(key: str, spec: OptionSpec, value: Any) -> InvalidArgument:
    return InvalidArgument(
        f"{key!r} is of type {spec.type.value}; got {type(value).__name__} {show_value(value)}"
    )


def coerce_value(key: str, spec: OptionSpec, value: Any) -> Any:
    """Check a typed value (from the API) against its option and normalise it."""
    t = spec.type
    if t is ValueType.STRING:
        if not isinstance(value, str):
            raise _expect(key, spec, value)
    elif t is ValueType.INT:
        if isinstance(value, float) and value.is_integer():
            # protobuf Value carries every number as a double; past MAX_EXACT_INT
            # it may be a rounded integer, refused as one.
            if abs(value) > MAX_EXACT_INT:
                raise _inexact(key, key, value)
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _expect(key, spec, value)
    elif t is ValueType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _expect(key, spec, value)
        try:
            value = float(value)
        except OverflowError:
            raise InvalidArgument(
                f"{key!r} is {show_value(value)}, too large for a float"
            ) from None
    elif t is ValueType.BOOLEAN:
        if not isinstance(value, bool):
            raise _expect(key, spec, value)
    elif t is ValueType.OBJECT:
        if not isinstance(value, Mapping):
            raise _expect(key, spec, value)
        _check_json(key, value, 0)
        value = json.loads(canonical_json(value))
    elif t is ValueType.LIST:
        if not isinstance(value, (list, tuple)):
            raise _expect(key, spec, value)
        _check_json(key, value, 0)
        value = json.loads(canonical_json(list(value)))
    elif t is ValueType.ANY:
        _check_json(key, value, 0)
        value = json.loads(canonical_json(value))
    _check_json(key, value, 0)
    size = len(canonical_json(value))
    if size > MAX_VALUE_BYTES:
        raise InvalidArgument(
            f"value of {key!r} is {size} bytes as JSON; the limit is {MAX_VALUE_BYTES}"
        )
    return value


_TRUE: Final = {"true", "yes", "on", "1"}
_FALSE: Final = {"false", "no", "off", "0"}


def parse_text_value(key: str, spec: OptionSpec, text: str) -> Any:
    """Turn a command-line string into a typed value of the option's type."""
    t = spec.type
    try:
        if t is ValueType.STRING:
            value: Any = text
        elif t is ValueType.INT:
            value = int(text.strip())
        elif t is ValueType.FLOAT:
            value = float(text.strip())
        elif t is ValueType.BOOLEAN:
            lowered = text.strip().lower()
            if lowered not in _TRUE | _FALSE:
                raise ValueError(text)
            value = lowered in _TRUE
        elif t is ValueType.ANY:
            value = json_or_text(text)
        else:
            value = json.loads(text)
    except ValueError:
        raise InvalidArgument(
            f"{key!r} is of type {t.value}; cannot read {text!r} as one"
            + (" (give JSON)" if t in (ValueType.OBJECT, ValueType.LIST) else "")
        ) from None
    return coerce_value(key, spec, value)


def json_or_text(text: str) -> Any:
    """A value of an ``any`` key from the command line: JSON when it reads as JSON
    (``8080``, ``true``, ``{"a": 1}``, ``"8080"``), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def check_write_keys(count: int) -> None:
    """One write names at most `MAX_KEYS` keys, those it sets and those it unsets
    together: checked before any key is looked at, so a huge write costs little."""
    if count > MAX_KEYS:
        raise InvalidArgument(
            f"{count} keys in one write (set and unset together); the limit is "
            f"{MAX_KEYS} keys per write: split the change into smaller writes"
        )


def validate_settings(
    schema: Schema, values: Mapping[str, Any], unset: Collection[str] = ()
) -> dict[str, Any]:
    """Check every key is in the schema and every value has the key's type; the
    keys to ``unset`` in the same write count towards the limit and must exist too."""
    check_write_keys(len(values) + len(unset))
    for key in unset:
        require_key(schema, key)
    out: dict[str, Any] = {}
    for key, value in values.items():
        out[key] = coerce_value(key, require_key(schema, key), value)
    return out


def validate_expectations(schema: Schema, expect: Mapping[str, Any]) -> dict[str, Any]:
    """A write's per-key expectations, keys checked and values in their keys' types
    (so ``port: 8080`` from JSON compares equal to the int stored); ABSENT stays."""
    if len(expect) > MAX_KEYS:
        raise InvalidArgument(f"{len(expect)} expected keys in one write; the limit is {MAX_KEYS}")
    out: dict[str, Any] = {}
    for key, value in expect.items():
        spec = require_key(schema, key)
        out[key] = value if value is ABSENT else coerce_value(key, spec, value)
    return out


def require_key(schema: Schema, key: str) -> OptionSpec:
    spec = option_for(schema, key)
    if spec is not None and key not in schema:
        validate_key(key)  # an undeclared key of an open schema: only its name to check
    if spec is None:
        known = ", ".join(sorted(schema)) or "none"
        raise InvalidArgument(f"unknown config key {key!r}; the schema has: {known}")
    return spec


def defaults(schema: Schema) -> dict[str, Any]:
    return {k: s.default for k, s in schema.items() if s.default is not ABSENT and k != WILDCARD}
