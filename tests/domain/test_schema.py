"""Schemas, typed text and whole writes (`genconf.domain.schema`): parse_schema,
parse_text_value, validate_settings."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from domain_strategies import (
    BOOLEAN,
    FLOAT,
    INT,
    LIST,
    OBJECT,
    PROPERTY,
    STRING,
    same,
    schemas,
)
from hypothesis import given

from genconf.domain.schema import (
    MAX_KEYS,
    OptionSpec,
    ValueType,
    check_write_keys,
    parse_schema,
    parse_text_value,
    schema_to_doc,
    validate_settings,
)
from genconf.domain.values import ABSENT, values_equal
from genconf.errors import InvalidArgument

# ---------------------------------------------------------------------------
# parse_schema


@pytest.mark.parametrize(
    ("type_name", "default", "expected_type", "expected_default"),
    [
        ("string", "x", ValueType.STRING, "x"),
        ("int", 3, ValueType.INT, 3),
        ("float", 2.5, ValueType.FLOAT, 2.5),
        ("boolean", True, ValueType.BOOLEAN, True),
        ("object", {"a": [1, 2]}, ValueType.OBJECT, {"a": [1, 2]}),
        ("list", [1, "a"], ValueType.LIST, [1, "a"]),
    ],
)
def test_parse_schema_all_types(
    type_name: str, default: Any, expected_type: ValueType, expected_default: Any
) -> None:
    spec = parse_schema({"k": {"type": type_name, "default": default, "description": "d"}})["k"]
    assert spec.type is expected_type
    assert same(spec.default, expected_default)
    assert spec.description == "d"
    assert spec.secret is False


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("str", ValueType.STRING),
        ("integer", ValueType.INT),
        ("bool", ValueType.BOOLEAN),
        ("dict", ValueType.OBJECT),
    ],
)
def test_parse_schema_type_aliases(alias: str, expected: ValueType) -> None:
    assert parse_schema({"k": {"type": alias}})["k"].type is expected


def test_parse_schema_int_default_for_float_becomes_float() -> None:
    default = parse_schema({"k": {"type": "float", "default": 1}})["k"].default
    assert type(default) is float
    assert default == 1.0


def test_parse_schema_integral_float_default_for_int_becomes_int() -> None:
    default = parse_schema({"k": {"type": "int", "default": 4.0}})["k"].default
    assert type(default) is int
    assert default == 4


@pytest.mark.parametrize("raw", [{"type": "int"}, {"type": "int", "default": None}])
def test_parse_schema_without_default_is_absent(raw: dict[str, Any]) -> None:
    assert parse_schema({"k": raw})["k"].default is ABSENT


def test_parse_schema_bad_type_lists_valid_types() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_schema({"k": {"type": "number"}})
    message = err.value.message
    assert "'number'" in message
    assert "'k'" in message
    for t in ("string", "int", "float", "boolean", "object", "list"):
        assert t in message


def test_parse_schema_missing_type_rejected() -> None:
    with pytest.raises(InvalidArgument, match="use one of string, int"):
        parse_schema({"k": {"default": 1}})


def test_parse_schema_unknown_field_rejected() -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_schema({"k": {"type": "int", "min": 0}})
    assert "'min'" in err.value.message
    assert "allowed: type, default, description, secret" in err.value.message


@pytest.mark.parametrize(
    ("type_name", "default"),
    [
        ("int", "x"),
        ("int", True),
        ("int", 1.5),
        ("float", True),
        ("float", "1.0"),
        ("string", 5),
        ("boolean", 1),
        ("boolean", "true"),
        ("object", [1]),
        ("list", {"a": 1}),
    ],
)
def test_parse_schema_wrong_default_type_rejected(type_name: str, default: Any) -> None:
    with pytest.raises(InvalidArgument, match=f"'k' is of type {type_name}"):
        parse_schema({"k": {"type": type_name, "default": default}})


def test_parse_schema_secret_flag() -> None:
    schema = parse_schema({"pw": {"type": "string", "secret": True}, "port": {"type": "int"}})
    assert schema["pw"].secret is True
    assert schema["port"].secret is False
    assert schema_to_doc(schema)["pw"]["secret"] is True
    assert "secret" not in schema_to_doc(schema)["port"]


def test_parse_schema_secret_must_be_bool() -> None:
    with pytest.raises(InvalidArgument, match="secret must be true or false"):
        parse_schema({"pw": {"type": "string", "secret": "yes"}})


def test_parse_schema_description_must_be_str() -> None:
    with pytest.raises(InvalidArgument, match="description must be a string"):
        parse_schema({"k": {"type": "string", "description": 3}})


@pytest.mark.parametrize("raw", [{"1bad": {"type": "int"}}, {"a.b": {"type": "int"}}])
def test_parse_schema_bad_key_rejected(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument, match="invalid config key"):
        parse_schema(raw)


@pytest.mark.parametrize("raw", [{"k": "int"}, ["k"], "k"])
def test_parse_schema_not_mappings_rejected(raw: Any) -> None:
    with pytest.raises(InvalidArgument):
        parse_schema(raw)


def test_parse_schema_non_json_default_is_invalid_argument() -> None:
    # YAML reads an unquoted 2024-01-01 as a date; that must be a clean error.
    with pytest.raises(InvalidArgument, match="'k' is of type string; got date"):
        parse_schema({"k": {"type": "string", "default": datetime.date(2024, 1, 1)}})


# ---------------------------------------------------------------------------
# parse_text_value


@pytest.mark.parametrize(
    ("spec", "text", "expected"),
    [
        (STRING, " hello world ", " hello world "),
        (STRING, "", ""),
        (INT, "42", 42),
        (INT, " -7 ", -7),
        (FLOAT, "1.5", 1.5),
        (FLOAT, "2", 2.0),
        (FLOAT, "-1e3", -1000.0),
        (OBJECT, '{"a": 1, "b": [true]}', {"a": 1, "b": [True]}),
        (LIST, '[1, "x", null]', [1, "x", None]),
    ],
)
def test_parse_text_value(spec: OptionSpec, text: str, expected: Any) -> None:
    assert same(parse_text_value("k", spec, text), expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("false", False),
        ("yes", True),
        ("no", False),
        ("1", True),
        ("0", False),
        ("on", True),
        ("off", False),
        ("TRUE", True),
        (" No ", False),
    ],
)
def test_parse_text_value_booleans(text: str, expected: bool) -> None:
    assert parse_text_value("k", BOOLEAN, text) is expected


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (INT, "1.5"),
        (INT, "abc"),
        (INT, ""),
        (FLOAT, "abc"),
        (BOOLEAN, "maybe"),
        (BOOLEAN, "2"),
        (OBJECT, "not json"),
        (LIST, "[1,"),
    ],
)
def test_parse_text_value_unreadable(spec: OptionSpec, text: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_text_value("k", spec, text)
    message = err.value.message
    assert f"'k' is of type {spec.type.value}" in message
    assert repr(text) in message
    assert ("(give JSON)" in message) == (spec in (OBJECT, LIST))


@pytest.mark.parametrize(
    ("spec", "text"),
    [(FLOAT, "nan"), (FLOAT, "inf"), (OBJECT, "[1]"), (LIST, '{"a": 1}'), (OBJECT, '{"a": NaN}')],
)
def test_parse_text_value_readable_but_invalid(spec: OptionSpec, text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_text_value("k", spec, text)


# ---------------------------------------------------------------------------
# validate_settings

SCHEMA = parse_schema(
    {
        "port": {"type": "int", "default": 80},
        "ratio": {"type": "float"},
        "name": {"type": "string", "default": "x"},
    }
)


def test_validate_settings_coerces() -> None:
    out = validate_settings(SCHEMA, {"port": 8080.0, "ratio": 1})
    assert same(out, {"port": 8080, "ratio": 1.0})


def test_validate_settings_unknown_key_lists_schema_keys() -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_settings(SCHEMA, {"prot": 1})
    assert err.value.message == "unknown config key 'prot'; the schema has: name, port, ratio"


def test_validate_settings_unknown_key_with_empty_schema() -> None:
    with pytest.raises(InvalidArgument, match="the schema has: none"):
        validate_settings({}, {"k": 1})


def test_validate_settings_wrong_type() -> None:
    with pytest.raises(InvalidArgument, match="'port' is of type int; got str"):
        validate_settings(SCHEMA, {"port": "80"})


def test_validate_settings_checks_the_keys_to_unset_too() -> None:
    assert validate_settings(SCHEMA, {"port": 1}, unset=["name"]) == {"port": 1}
    with pytest.raises(InvalidArgument, match="unknown config key 'nmae'"):
        validate_settings(SCHEMA, {}, unset=["nmae"])


WIDE_SCHEMA = parse_schema({f"k{i}": {"type": "int"} for i in range(MAX_KEYS)})
WIDE_KEYS = sorted(WIDE_SCHEMA)


@pytest.mark.parametrize(
    ("values", "unset"),
    [
        ({k: 1 for k in WIDE_KEYS} | {"k-extra": 1}, []),
        ({k: 1 for k in WIDE_KEYS[:500]}, WIDE_KEYS[499:]),  # one key both ways
        ({}, [*WIDE_KEYS, WIDE_KEYS[0]]),  # one key unset twice
    ],
    ids=["set", "set-and-unset", "unset"],
)
def test_one_write_counts_set_and_unset_keys_against_the_limit(
    values: dict[str, Any], unset: list[str]
) -> None:
    """Checked first: the message is about the limit, not the unknown or doubled key."""
    with pytest.raises(InvalidArgument) as err:
        validate_settings(WIDE_SCHEMA, values, unset=unset)
    assert err.value.message.startswith(f"{MAX_KEYS + 1} keys in one write")
    assert f"the limit is {MAX_KEYS} keys per write" in err.value.message


def test_a_write_of_exactly_the_key_limit_is_fine() -> None:
    half = MAX_KEYS // 2
    values = {k: 1 for k in WIDE_KEYS[:half]}
    assert validate_settings(WIDE_SCHEMA, values, unset=WIDE_KEYS[half:]) == values
    check_write_keys(MAX_KEYS)
    with pytest.raises(InvalidArgument, match=f"the limit is {MAX_KEYS} keys"):
        check_write_keys(MAX_KEYS + 1)


@PROPERTY
@given(schemas)
def test_prop_schema_doc_round_trip(schema: dict[str, OptionSpec]) -> None:
    again = parse_schema(schema_to_doc(schema))
    assert again == schema
    for key, spec in schema.items():
        assert again[key].type is spec.type
        assert values_equal(again[key].default, spec.default)
    assert json.loads(json.dumps(schema_to_doc(schema))) == schema_to_doc(schema)
