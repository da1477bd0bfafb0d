"""Open schemas (the '*' entry): which keys they allow, how values are read and
checked, what observers see, and the effective config they give."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genconf.domain.config import Change, Op, apply_changes, effective_config, mismatches
from genconf.domain.schema import (
    OPEN_SCHEMA,
    ValueType,
    parse_schema,
    parse_text_value,
    require_key,
    validate_expectations,
    validate_settings,
    visible_keys,
)
from genconf.domain.values import ABSENT
from genconf.errors import InvalidArgument

OPEN = parse_schema(
    {
        **OPEN_SCHEMA,
        "port": {"type": "int", "default": 80},
        "pw": {"type": "string", "secret": True},
    }
)
CLOSED = parse_schema({"port": {"type": "int", "default": 80}})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"*": {"type": "any", "default": 1}}, "cannot have a default"),
        ({"*": {"type": "any", "secret": True}}, "cannot be secret"),
        ({"*": {"type": "anything"}}, "use one of string, int, float, boolean, object, list, any"),
        ({"**": {"type": "any"}}, r"invalid config key '\*\*'"),
    ],
)
def test_wildcard_refusals(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_schema(raw)


def test_open_schema_takes_any_valid_key_in_its_wildcard_type() -> None:
    assert require_key(OPEN, "port").type is ValueType.INT  # a declared key keeps its type
    assert require_key(OPEN, "anything").type is ValueType.ANY
    with pytest.raises(InvalidArgument, match=r"invalid config key 'a\.b'"):
        require_key(OPEN, "a.b")
    with pytest.raises(InvalidArgument, match="unknown config key 'anything'"):
        require_key(CLOSED, "anything")
    strings = parse_schema({"*": {"type": "string"}})
    with pytest.raises(InvalidArgument, match="'n' is of type string"):
        validate_settings(strings, {"n": 1})


def test_any_values_are_json_checked_and_normalised() -> None:
    assert validate_settings(OPEN, {"a": (1, 2), "b": {"c": None}}) == {
        "a": [1, 2],
        "b": {"c": None},
    }
    with pytest.raises(InvalidArgument, match="only finite numbers"):
        validate_settings(OPEN, {"a": [float("nan")]})
    with pytest.raises(InvalidArgument, match="unsupported type set"):
        validate_settings(OPEN, {"a": {1, 2}})


@pytest.mark.parametrize(
    ("text", "value"),
    [("8080", 8080), ("true", True), ('{"a": 1}', {"a": 1}), ('"8080"', "8080"), ("hello", "hello"),
     ("", ""), ("[1,", "[1,")],
)  # fmt: skip
def test_command_line_values_of_any_keys_are_json_or_text(text: str, value: Any) -> None:
    assert parse_text_value("k", require_key(OPEN, "k"), text) == value


def test_observers_see_undeclared_keys_but_not_declared_secrets() -> None:
    public = visible_keys(OPEN)
    assert "anything" in public and "port" in public and "pw" not in public
    closed = visible_keys(CLOSED)
    assert "port" in closed and "anything" not in closed


def test_expectations_are_typed_and_compared_per_key() -> None:
    expected = validate_expectations(OPEN, {"port": 8080.0, "gone": ABSENT, "x": [1]})
    assert expected == {"port": 8080, "gone": ABSENT, "x": [1]}
    effective = effective_config(OPEN, {"port": 8080, "x": [2]})
    wrong = mismatches("app", effective, expected)
    assert [(m.key, m.expected, m.actual) for m in wrong] == [("x", [1], [2])]


KEYS = st.sampled_from(["a", "b", "c", "port"])
VALUES = st.one_of(st.integers(-5, 5), st.text(max_size=3), st.lists(st.booleans(), max_size=2))
CHANGES = st.dictionaries(
    KEYS,
    st.one_of(VALUES.map(lambda v: Change(Op.SET, v)), st.just(Change(Op.UNSET))),
    max_size=4,
)


@given(master=st.dictionaries(KEYS.filter(lambda k: k != "port"), VALUES), changes=CHANGES)
def test_open_effective_config_is_master_with_changes_applied(
    master: dict[str, Any], changes: dict[str, Change]
) -> None:
    """Undeclared keys have no default: unset removes them, as committing would."""
    schema = parse_schema(OPEN_SCHEMA)
    assert effective_config(schema, master, changes) == apply_changes(master, changes)
