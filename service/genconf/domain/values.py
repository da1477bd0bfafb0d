"""The smallest vocabulary of values: "absent", equality, canonical JSON and its hash,
and how a value reads in a message.

A leaf module (it imports nothing of genconf), so that both the exception tree
(`genconf.errors`) and the domain rules (`genconf.domain.schema`, `.config`,
`.diff`) can use it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final


class _Absent:
    """The sentinel for "no value": a key unset in master, or an unset change."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()


def show_value(value: Any) -> str:
    """A short, readable rendering of a config value for error messages."""
    if value is ABSENT:
        return "absent"
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
        )
    except (TypeError, ValueError, RecursionError):
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes the hash is taken over."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


# `canonical_json`'s settings in an encoder built once: json.dumps builds a
# JSONEncoder, and that its C encoder, on every call, half the cost of hashing a
# small config (once per change event the cache applies). No circular-reference
# markers: a config is decoded BSON or JSON, never circular.
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_make_c_encoder = getattr(json.encoder, "c_make_encoder", None)
_encode_chunks: Final = (
    None
    if _make_c_encoder is None
    else _make_c_encoder(
        None,  # markers
        _canonical.default,
        json.encoder.encode_basestring,  # ensure_ascii=False
        None,  # indent
        ":",
        ",",
        True,  # sort_keys
        False,  # skipkeys
        False,  # allow_nan
    )
)


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of `canonical_json` (the same bytes, checked by tests)."""
    if _encode_chunks is None:  # no C accelerator: the plain way
        return hashlib.sha256(canonical_json(config)).hexdigest()
    return hashlib.sha256("".join(_encode_chunks(config, 0)).encode()).hexdigest()


def values_equal(a: Any, b: Any) -> bool:
    """Equality of config values as JSON sees them (1 != 1.0 != true); ABSENT only equals itself."""
    if a is ABSENT or b is ABSENT:
        return a is b
    return type(a) is type(b) and canonical_json(a) == canonical_json(b)
