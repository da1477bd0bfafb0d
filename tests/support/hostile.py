"""Hostile pieces for the fuzzer: names, values, settings and schemas that a server
must refuse, as hypothesis strategies, against the model the fuzz server is seeded
with (`SCHEMA`: one key of each type; `WRONG_TYPE` has a wrong value for each)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from genconf.domain.names import APP_NAME_RE, BRANCH_NAME_RE, KEY_RE, UNIT_NAME_RE
from genconf.domain.schema import MAX_DEPTH, MAX_KEYS, MAX_VALUE_BYTES, ValueType
from support.wire_bytes import length_delimited, nested, struct, value

MAX_REQUEST = 256 * 1024  # the fuzz server's max_request_bytes

SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 80},
    "ratio": {"type": "float"},
    "flag": {"type": "boolean"},
    "name": {"type": "string"},
    "obj": {"type": "object"},
    "items": {"type": "list"},
    "password": {"type": "string", "secret": True},
}

PATH_LIKE = [
    "../web/0",
    "web/0/../1",
    "web/-1",
    "./web/0",
    "/web/0",
    "web//0",
    "web/0/",
    "web/01",
    "web/+1",
    "web/0x1",
    "web\\0",
    "web/0\x00",
    "web/1e3",
    "web/ 0",
    "web/\u0663",  # an Arabic-Indic digit three
    "web/9999999999",
    "WEB/0",
    "web/0\n",
    "%2e%2e/web/0",
    "web/0;drop",
    "..",
    ".",
    "",
    " ",
    "$where",
    "web.0",
    "a" * 64,
    "web\u202e0/",  # right-to-left override
    "we\u0000b",
    "web\t",
    "\u00e9t\u00e9",
    "\U0001f600",
]
CONTROL = st.characters(min_codepoint=0, max_codepoint=31) | st.sampled_from(
    ["\x7f", "\u2028", "\ufeff", "\u200b"]
)


def bad_text(valid: Callable[[str], bool]) -> st.SearchStrategy[str]:
    """Text that ``valid`` refuses: path-like names, control characters, anything."""
    with_control = st.tuples(st.text(max_size=10), CONTROL, st.text(max_size=10)).map("".join)
    return st.one_of(st.sampled_from(PATH_LIKE), with_control, st.text(max_size=80)).filter(
        lambda s: not valid(s)
    )


def matches(pattern: Any) -> Callable[[str], bool]:
    return lambda s: pattern.match(s) is not None


BAD_APP = bad_text(matches(APP_NAME_RE))
BAD_UNIT = bad_text(matches(UNIT_NAME_RE))
BAD_BRANCH = bad_text(matches(BRANCH_NAME_RE))
BAD_KEY = bad_text(matches(KEY_RE))
MISSING_APP = st.sampled_from(["nope", "web2", "x", "db-0", "a" * 63])
MISSING_UNIT = st.sampled_from(["web/3", "web/999999999", "nope/0", "db/1"])
MISSING_BRANCH = st.sampled_from(["nope", "0", "b.1", "b_", "a" * 63])
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


# Deeper than the model allows; past ~33 levels also deeper than protobuf parses.
DEEP = st.builds(
    nested,
    st.one_of(st.integers(MAX_DEPTH + 1, 40), st.integers(41, 300)),
    st.sampled_from([1, "x", None]),
    st.booleans(),
)
HUGE_TEXT = st.integers(MAX_VALUE_BYTES + 1, MAX_REQUEST - 4096).map(lambda n: "x" * n)
BAD_OBJECT = st.one_of(
    DEEP.map(lambda v: {"deep": v}),
    NON_FINITE.map(lambda v: {"n": v}),
    st.sampled_from(["$set", "a.b", "", "\x00", "$"]).map(lambda k: {k: 1}),
    HUGE_TEXT.map(lambda v: {"big": v}),
)

# A value of the wrong type for each key of SCHEMA.
WRONG_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "port": st.one_of(
        st.text(max_size=5), st.booleans(), st.sampled_from([1.5, -0.25, 2.0**70, [], {}])
    ),
    "ratio": st.one_of(st.text(max_size=5), st.booleans(), st.sampled_from([[], {}])),
    "flag": st.one_of(st.text(max_size=5), st.sampled_from([0, 1, 0.5, [], {}])),
    "name": st.one_of(st.integers(-5, 5), st.booleans(), st.sampled_from([[], {}, 1.5])),
    "obj": st.one_of(st.text(max_size=5), st.integers(-5, 5), st.booleans(), st.just([])),
    "items": st.one_of(st.text(max_size=5), st.integers(-5, 5), st.booleans(), st.just({})),
    "password": st.one_of(st.integers(-5, 5), st.booleans(), st.just([])),
}
HOSTILE_ENTRY: st.SearchStrategy[tuple[str, Any]] = st.one_of(
    st.sampled_from(sorted(WRONG_TYPE)).flatmap(lambda k: st.tuples(st.just(k), WRONG_TYPE[k])),
    st.tuples(st.sampled_from(["port", "ratio"]), NON_FINITE),
    st.tuples(st.sampled_from(["name", "password"]), HUGE_TEXT),
    st.tuples(st.just("obj"), BAD_OBJECT),
    st.tuples(st.just("items"), st.one_of(DEEP.map(lambda v: [v]), NON_FINITE.map(lambda v: [v]))),
    st.tuples(BAD_KEY, st.integers(0, 5)),
    st.tuples(st.sampled_from(["unknown", "Port", "port_", "_"]), st.integers(0, 5)),
)
VALID_ENTRY = st.sampled_from(
    [("port", 8081), ("ratio", 0.5), ("flag", True), ("name", "n"), ("items", [1])]
)


@st.composite
def hostile_settings(draw: st.DrawFn) -> dict[str, Any]:
    """A set of config values with at least one that must be refused."""
    if draw(st.integers(0, 9)) == 0:  # too many keys
        return {f"k{i}": i for i in range(MAX_KEYS + 1 + draw(st.integers(0, 50)))}
    values = dict(draw(st.lists(VALID_ENTRY, max_size=3)))
    key, value = draw(HOSTILE_ENTRY)
    values[key] = value
    return values


def option(type_: str, *default: Any) -> bytes:
    """An OptionSchema's wire bytes (with a default when one is given)."""
    return length_delimited(1, type_.encode()) + b"".join(
        length_delimited(2, value(d)) for d in default
    )


@st.composite
def hostile_schema(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    """A schema (map entries for `wire`) with at least one option that must be refused."""
    schema = {"ok": option("int", 1)} if draw(st.booleans()) else {}
    kind = draw(st.integers(0, 7))
    if kind == 0:
        schema[draw(BAD_KEY)] = option("int")
    elif kind == 1:
        bad_type = draw(
            st.text(max_size=12).filter(
                lambda t: t not in {v.value for v in ValueType} | {"str", "integer", "bool", "dict"}
            )
        )
        schema["k"] = option(bad_type)
    elif kind == 2:
        type_ = draw(st.sampled_from(sorted(WRONG_TYPE)))
        spec = SCHEMA[type_]["type"]
        schema["k"] = option(spec, draw(WRONG_TYPE[type_]))
    elif kind == 3:
        schema["k"] = option(draw(st.sampled_from(["int", "float"])), draw(NON_FINITE))
    elif kind == 4:
        schema["k"] = option("string", draw(HUGE_TEXT))
    elif kind == 5:
        schema["k"] = option("object", draw(BAD_OBJECT))
    elif kind == 6:
        schema["k"] = option("list", [draw(DEEP)])
    else:
        for i in range(MAX_KEYS + 1):
            schema[f"k{i}"] = option("int")
    return [
        ("schema", length_delimited(1, key.encode()) + length_delimited(2, spec))
        for key, spec in schema.items()
    ]


@st.composite
def hostile_metadata(draw: st.DrawFn) -> bytes:
    return struct({"m": draw(BAD_OBJECT)} if draw(st.booleans()) else draw(BAD_OBJECT))
