"""Shared by the domain tests: option specs, JSON-aware equality, and hypothesis
strategies for JSON-like data that obeys the domain's rules."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from genconf.domain.config import (
    Change,
    Op,
    touch,
)
from genconf.domain.schema import (
    MAX_EXACT_INT,
    OptionSpec,
    ValueType,
    coerce_value,
    parse_schema,
)
from genconf.domain.values import ABSENT, canonical_json

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

STRING = OptionSpec(ValueType.STRING)
INT = OptionSpec(ValueType.INT)
FLOAT = OptionSpec(ValueType.FLOAT)
BOOLEAN = OptionSpec(ValueType.BOOLEAN)
OBJECT = OptionSpec(ValueType.OBJECT)
LIST = OptionSpec(ValueType.LIST)
SPECS = {t: OptionSpec(t) for t in ValueType}


def same(a: Any, b: Any) -> bool:
    """Equal as JSON sees it: 1, 1.0 and true all differ (plain == conflates them)."""
    return a == b and canonical_json(a) == canonical_json(b)


def nest(levels: int) -> Any:
    """A scalar wrapped in ``levels`` lists: the scalar sits at depth ``levels``."""
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


# ---------------------------------------------------------------------------
# Hypothesis strategies: JSON-like data that obeys the model's rules

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
object_keys = st.one_of(
    st.sampled_from(["x", "y", "z"]),
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters=".\0"), min_size=1)
    .filter(lambda k: not k.startswith("$"))
    .map(lambda k: k[:8]),
)
exact_ints = st.integers(-MAX_EXACT_INT, MAX_EXACT_INT)
finite = st.floats(allow_nan=False, allow_infinity=False)
# numbers inside objects and lists: exact on the wire (see MAX_EXACT_INT)
exact_floats = st.floats(-MAX_EXACT_INT, MAX_EXACT_INT)
scalars = st.one_of(st.none(), st.booleans(), exact_ints, exact_floats, text)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(object_keys, children, max_size=4)
    ),
    max_leaves=12,
)
config_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,6}", fullmatch=True)
# top-level dicts with few keys (so a and b overlap) and often-nested values
nested_dicts = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]) | config_keys,
    st.one_of(json_values, st.dictionaries(object_keys, json_values, max_size=4)),
    max_size=5,
)

TYPE_NAMES = {
    "string": ValueType.STRING,
    "str": ValueType.STRING,
    "int": ValueType.INT,
    "integer": ValueType.INT,
    "float": ValueType.FLOAT,
    "boolean": ValueType.BOOLEAN,
    "bool": ValueType.BOOLEAN,
    "object": ValueType.OBJECT,
    "dict": ValueType.OBJECT,
    "list": ValueType.LIST,
}


def raw_values(t: ValueType) -> st.SearchStrategy[Any]:
    """Values an API caller may send for type ``t`` (before coercion)."""
    return {
        ValueType.STRING: text,
        ValueType.INT: exact_ints,
        ValueType.FLOAT: finite | st.integers(-(2**53), 2**53),
        ValueType.BOOLEAN: st.booleans(),
        ValueType.OBJECT: st.dictionaries(object_keys, json_values, max_size=4),
        ValueType.LIST: st.lists(json_values, max_size=4),
    }[t]


def values_for(key: str, spec: OptionSpec) -> st.SearchStrategy[Any]:
    return raw_values(spec.type).map(lambda v: coerce_value(key, spec, v))


@st.composite
def option_docs(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(TYPE_NAMES)))
    doc: dict[str, Any] = {"type": name}
    if draw(st.booleans()):
        doc["default"] = draw(raw_values(TYPE_NAMES[name]))
    if draw(st.booleans()):
        doc["description"] = draw(text)
    if draw(st.booleans()):
        doc["secret"] = draw(st.booleans())
    return doc


schemas = st.dictionaries(config_keys, option_docs(), max_size=6).map(parse_schema)


@st.composite
def masters(draw: st.DrawFn, schema: dict[str, OptionSpec]) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(sorted(schema)), unique=True)) if schema else []
    return {k: draw(values_for(k, schema[k])) for k in keys}


@st.composite
def branch_edits(
    draw: st.DrawFn, schema: dict[str, OptionSpec], master: dict[str, Any]
) -> dict[str, Change]:
    """A branch's changes built the way the store builds them: ``touch`` on master."""
    changes: dict[str, Change] = {}
    if not schema:
        return changes
    for _ in range(draw(st.integers(0, 8))):
        key = draw(st.sampled_from(sorted(schema)))
        op = draw(st.sampled_from(list(Op)))
        value = draw(values_for(key, schema[key])) if op is Op.SET else ABSENT
        changes[key] = touch(changes.get(key), master.get(key, ABSENT), op, value)
    return changes


def reorder(value: Any, rnd: random.Random) -> Any:
    """The same JSON value with every object's keys inserted in a shuffled order."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: reorder(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [reorder(v, rnd) for v in value]
    return value
