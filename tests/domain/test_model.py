"""Unit and property tests of the pure domain rules in ``genconf.domain.model`` (no I/O)."""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genconf.domain.model import (
    ABSENT,
    MAX_DEPTH,
    MAX_EXACT_INT,
    MAX_KEYS,
    MAX_UNIT_NUMBER,
    MAX_VALUE_BYTES,
    Bump,
    Change,
    Op,
    OptionSpec,
    SemVer,
    ValueType,
    apply_changes,
    apply_diff,
    canonical_json,
    check_unit_numbers,
    check_wire_numbers,
    check_write_keys,
    coerce_value,
    config_hash,
    diff,
    effective_config,
    find_conflicts,
    inverse_changes,
    key_history,
    next_label,
    parse_schema,
    parse_text_value,
    parse_unit_name,
    schema_to_doc,
    touch,
    unit_name,
    validate_app_name,
    validate_branch_name,
    validate_key,
    validate_settings,
    values_equal,
)
from genconf.errors import Conflict, ConflictedKey, InvalidArgument

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
# Names


@pytest.mark.parametrize("name", ["web", "a", "a" * 63, "my-app2", "x-"])
def test_validate_app_name_accepts(name: str) -> None:
    assert validate_app_name(name) == name


@pytest.mark.parametrize(
    "name", ["Web", "wEb", "1web", "-web", "a" * 64, "we/b", "web.1", "", "web\n", " web"]
)
def test_validate_app_name_rejects_and_names_the_input(name: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_app_name(name)
    assert repr(name) in err.value.message


@pytest.mark.parametrize("name", [None, 5, b"web", ["web"]])
def test_validate_app_name_rejects_non_str(name: Any) -> None:
    with pytest.raises(InvalidArgument, match="invalid application name"):
        validate_app_name(name)


@pytest.mark.parametrize("name", ["feature-1", "0day", "release.1_x", "b", "b" * 63])
def test_validate_branch_name_accepts(name: str) -> None:
    assert validate_branch_name(name) == name


@pytest.mark.parametrize(
    "name", ["Feature", "-x", ".x", "_x", "", "b" * 64, "a/b", "a b", "b\n", None, 1]
)
def test_validate_branch_name_rejects_and_names_the_input(name: Any) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_branch_name(name)
    assert repr(name) in err.value.message


@pytest.mark.parametrize("key", ["port", "_private", "log-level", "A1", "k" * 128])
def test_validate_key_accepts(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    "key", ["1port", "-x", "a.b", "$x", "", "k" * 129, "a b", "k\n", "ключ", None]
)
def test_validate_key_rejects_and_names_the_input(key: Any) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_key(key)
    assert repr(key) in err.value.message


@pytest.mark.parametrize(
    ("name", "expected"),
    [("web/0", ("web", 0)), ("web/12", ("web", 12)), ("my-app/7", ("my-app", 7))],
)
def test_parse_unit_name_accepts(name: str, expected: tuple[str, int]) -> None:
    assert parse_unit_name(name) == expected


@pytest.mark.parametrize(
    "name",
    ["web/01", "web/-1", "../x", "web", "Web/0", "web/", "/0", "web/0/1", "web/0\n", "web/ 1"],
)
def test_parse_unit_name_rejects_and_names_the_input(name: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        parse_unit_name(name)
    assert repr(name) in err.value.message


def test_parse_unit_name_rejects_non_str() -> None:
    with pytest.raises(InvalidArgument, match="invalid unit name"):
        parse_unit_name(None)  # type: ignore[arg-type]


@PROPERTY
@given(st.integers(0, MAX_UNIT_NUMBER) | st.sampled_from([0, 9, 10, MAX_UNIT_NUMBER]))
def test_prop_every_allowed_unit_number_round_trips(number: int) -> None:
    check_unit_numbers("nums", [number])
    assert parse_unit_name(unit_name("nums", number)) == ("nums", number)


@PROPERTY
@given(st.integers(MAX_UNIT_NUMBER + 1, 10**30) | st.integers(max_value=-1))
def test_prop_unit_numbers_parse_unit_name_refuses_are_refused_up_front(number: int) -> None:
    """`unit add` checks numbers with check_unit_numbers: a unit it lets through can
    always be named again, and one parse_unit_name refuses is never made."""
    with pytest.raises(InvalidArgument, match="invalid unit name"):
        parse_unit_name(unit_name("nums", number))
    with pytest.raises(InvalidArgument) as err:
        check_unit_numbers("nums", [0, number, 5])
    assert f"unit number {number} of 'nums'" in err.value.message
    assert f"0 to {MAX_UNIT_NUMBER}" in err.value.message


def test_check_unit_numbers_names_the_largest_and_the_last_unit() -> None:
    with pytest.raises(InvalidArgument) as err:
        check_unit_numbers("nums", range(MAX_UNIT_NUMBER - 1, MAX_UNIT_NUMBER + 3))
    assert err.value.message == (
        f"unit number {MAX_UNIT_NUMBER + 2} of 'nums' is out of range: unit numbers go from "
        f"0 to {MAX_UNIT_NUMBER} (nums/{MAX_UNIT_NUMBER} is the last unit an application can have)"
    )
    check_unit_numbers("nums", [])
    check_unit_numbers("nums", range(MAX_UNIT_NUMBER - 3, MAX_UNIT_NUMBER + 1))


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
# coerce_value


@pytest.mark.parametrize("value", [True, False, 1.5, -0.1, "1", None, [1]])
def test_coerce_int_rejects(value: Any) -> None:
    with pytest.raises(InvalidArgument, match="'k' is of type int"):
        coerce_value("k", INT, value)


@pytest.mark.parametrize(("value", "expected"), [(3.0, 3), (-2.0, -2), (0.0, 0), (7, 7)])
def test_coerce_int_accepts_integral_float(value: Any, expected: int) -> None:
    result = coerce_value("k", INT, value)
    assert type(result) is int
    assert result == expected


@pytest.mark.parametrize(
    "value",
    [
        MAX_EXACT_INT + 1,
        -MAX_EXACT_INT - 1,
        2**63,
        -(2**63) - 1,
        float(2**53),  # how 2**53 + 1 arrives over gRPC: rounded to a double
        -float(2**60),
        pytest.param(10**5000, id="10^5000"),
    ],
)
def test_coerce_int_outside_the_exact_range_rejected(value: int | float) -> None:
    """An int option holds only what a protobuf double carries exactly (±(2^53-1)):
    2**53 + 1 would arrive as 2**53, so neither may pass."""
    with pytest.raises(InvalidArgument) as err:
        coerce_value("k", INT, value)
    assert err.value.message.startswith("value of 'k' is ")
    assert f"integers must lie within ±{MAX_EXACT_INT} (±(2^53-1))" in err.value.message


@pytest.mark.parametrize("value", [MAX_EXACT_INT, -MAX_EXACT_INT, float(MAX_EXACT_INT)])
def test_coerce_int_at_the_edge_of_the_exact_range_accepted(value: int | float) -> None:
    result = coerce_value("k", INT, value)
    assert (type(result), result) == (int, int(value))


@pytest.mark.parametrize(
    ("spec", "value", "path"),
    [
        (OBJECT, {"a": MAX_EXACT_INT + 1}, "k.a"),
        (OBJECT, {"a": [1, {"b": -(2**63)}]}, "k.a[1].b"),
        (OBJECT, {"a": {"b": 1e20}}, "k.a.b"),  # a double that large is an integer
        (LIST, [0, [float(2**53)]], "k[1][0]"),
        (LIST, [10**5000], "k[0]"),
    ],
)
def test_coerce_nested_number_outside_the_exact_range_names_key_and_path(
    spec: OptionSpec, value: Any, path: str
) -> None:
    for check in (lambda: coerce_value("k", spec, value), lambda: check_wire_numbers("k", value)):
        with pytest.raises(InvalidArgument) as err:
            check()
        message = err.value.message
        assert message.startswith("value of 'k' has ") and f" at {path}: " in message
        assert f"within ±{MAX_EXACT_INT} (±(2^53-1))" in message


def test_float_options_keep_large_numbers() -> None:
    """Only a float option says a number is a float: there, a large double is exact."""
    assert coerce_value("k", FLOAT, 1e300) == 1e300
    assert coerce_value("k", FLOAT, 2**60) == float(2**60)
    check_wire_numbers("k", 1e300)


wide_numbers = st.integers() | st.floats(allow_nan=False, allow_infinity=False)
wide_json = st.recursive(
    st.one_of(st.none(), st.booleans(), wide_numbers, st.text(max_size=3)),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "c"]), children, max_size=3)
    ),
    max_leaves=12,
)


def _refusal(check: Any) -> str | None:
    try:
        check()
    except InvalidArgument as exc:
        return exc.message
    return None


typed_wide_values = st.one_of(
    st.tuples(st.just(OBJECT), st.dictionaries(st.sampled_from(["a", "b"]), wide_json)),
    st.tuples(st.just(LIST), st.lists(wide_json, max_size=4)),
    st.tuples(st.just(INT), st.integers() | st.integers(-(2**70), 2**70).map(float)),
    st.tuples(st.just(FLOAT), wide_numbers),
)


@PROPERTY
@given(typed_wide_values)
def test_prop_the_clients_number_check_refuses_what_the_model_refuses(
    spec_and_value: tuple[OptionSpec, Any],
) -> None:
    """`check_wire_numbers` (run by the client before sending) and coerce_value (run
    by the server) refuse the same numbers, with the same message."""
    spec, value = spec_and_value
    model_says = _refusal(lambda: coerce_value("k", spec, value))
    client_says = _refusal(lambda: check_wire_numbers("k", value))
    if client_says is not None and spec.type is ValueType.FLOAT and isinstance(value, int):
        # An int past 2^53-1 is a fine value of a float option in Python (it becomes a
        # float), but the client, which cannot know the option is a float, will not send
        # it as a double that would round it: it asks for a float instead.
        assert model_says is None or model_says == client_says
    elif client_says is not None:
        assert model_says == client_says
    elif model_says is not None and not (spec.type is ValueType.INT and isinstance(value, float)):
        # Refused for its type, not a number. (A float past 2^53-1 is a fine value of a
        # float option: only the server, which knows the key is an int, refuses it.)
        assert "±(2^53-1)" not in model_says


def test_metadata_is_checked_as_one_object() -> None:
    with pytest.raises(InvalidArgument, match=r"'metadata' has 9007199254740992 at metadata\.n"):
        coerce_value("metadata", OBJECT, {"n": 2**53})


@pytest.mark.parametrize(("value", "expected"), [(2, 2.0), (1.5, 1.5), (-3, -3.0)])
def test_coerce_float_accepts_int_and_float(value: Any, expected: float) -> None:
    result = coerce_value("k", FLOAT, value)
    assert type(result) is float
    assert result == expected


@pytest.mark.parametrize("value", [True, "1.5", None])
def test_coerce_float_rejects_non_numbers(value: Any) -> None:
    with pytest.raises(InvalidArgument, match="'k' is of type float"):
        coerce_value("k", FLOAT, value)


def test_coerce_float_rejects_int_too_large_for_a_float() -> None:
    with pytest.raises(InvalidArgument, match="too large for a float"):
        coerce_value("k", FLOAT, 10**400)


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        (FLOAT, float("nan")),
        (FLOAT, float("inf")),
        (FLOAT, float("-inf")),
        (INT, float("nan")),
        (INT, float("inf")),
        (OBJECT, {"a": float("nan")}),
        (OBJECT, {"a": {"b": [float("inf")]}}),
        (LIST, [1, float("-inf")]),
    ],
)
def test_coerce_non_finite_rejected(spec: OptionSpec, value: Any) -> None:
    with pytest.raises(InvalidArgument):
        coerce_value("k", spec, value)


@pytest.mark.parametrize(
    "value",
    [
        {"a.b": 1},
        {"$set": 1},
        {"ok": {"in.ner": 1}},
        {"ok": [{"$x": 1}]},
        {"": 1},
        {"a\0b": 1},
        {1: "a"},
        {1: "a", "b": 2},
    ],
)
def test_coerce_object_bad_keys_rejected(value: dict[Any, Any]) -> None:
    with pytest.raises(InvalidArgument, match="object key"):
        coerce_value("k", OBJECT, value)


def test_coerce_object_dollar_inside_key_is_fine() -> None:
    assert coerce_value("k", OBJECT, {"a$b": 1}) == {"a$b": 1}


@pytest.mark.parametrize("spec", [OBJECT, LIST])
def test_coerce_depth_limit(spec: OptionSpec) -> None:
    def wrap(levels: int) -> Any:  # the innermost scalar sits at depth ``levels``
        return {"a": nest(levels - 1)} if spec is OBJECT else nest(levels)

    assert coerce_value("k", spec, wrap(MAX_DEPTH)) is not None
    with pytest.raises(InvalidArgument, match=f"deeper than {MAX_DEPTH} levels"):
        coerce_value("k", spec, wrap(MAX_DEPTH + 1))


def test_coerce_very_deep_value_is_invalid_argument_not_recursion_error() -> None:
    with pytest.raises(InvalidArgument, match="deeper than"):
        coerce_value("k", LIST, nest(5000))


def test_coerce_size_limit() -> None:
    # canonical JSON of a string adds two quotes
    assert coerce_value("k", STRING, "x" * (MAX_VALUE_BYTES - 2))
    with pytest.raises(InvalidArgument) as err:
        coerce_value("k", STRING, "x" * (MAX_VALUE_BYTES - 1))
    assert str(MAX_VALUE_BYTES) in err.value.message
    assert f"{MAX_VALUE_BYTES + 1} bytes" in err.value.message


def test_coerce_size_limit_counts_utf8_bytes() -> None:
    with pytest.raises(InvalidArgument, match="bytes as JSON"):
        coerce_value("k", LIST, ["é" * (MAX_VALUE_BYTES // 2)])


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (LIST, (1, "a"), [1, "a"]),
        (LIST, [(1, 2), {"a": (3,)}], [[1, 2], {"a": [3]}]),
        (OBJECT, {"b": (1,), "a": {"c": None}}, {"a": {"c": None}, "b": [1]}),
    ],
)
def test_coerce_list_and_object_normalised(spec: OptionSpec, value: Any, expected: Any) -> None:
    result = coerce_value("k", spec, value)
    assert result == expected
    assert type(result) is type(expected)


def test_coerce_object_returns_a_copy() -> None:
    value = {"a": [1]}
    result = coerce_value("k", OBJECT, value)
    value["a"].append(2)
    assert result == {"a": [1]}


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        (STRING, "\ud800"),
        (OBJECT, {"a": "\udfff"}),
        (OBJECT, {"\ud800": 1}),
        (LIST, ["\ud800"]),
    ],
)
def test_coerce_lone_surrogate_rejected(spec: OptionSpec, value: Any) -> None:
    with pytest.raises(InvalidArgument, match="not valid UTF-8"):
        coerce_value("k", spec, value)


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        (STRING, b"x"),
        (STRING, datetime.date(2024, 1, 1)),
        (STRING, {1, 2}),
        pytest.param(STRING, 10**5000, id="string-10^5000"),
        (OBJECT, {"a": {1, 2}}),
        (OBJECT, {"a": b"x"}),
        (LIST, [object()]),
        (OBJECT, {"a": 2**64}),
        pytest.param(LIST, [10**5000], id="list-10^5000"),
    ],
)
def test_coerce_non_json_is_invalid_argument(spec: OptionSpec, value: Any) -> None:
    with pytest.raises(InvalidArgument):
        coerce_value("k", spec, value)


@pytest.mark.parametrize(
    ("spec", "value"),
    [(STRING, 1), (BOOLEAN, 1), (BOOLEAN, "true"), (OBJECT, [1]), (LIST, {"a": 1}), (LIST, "ab")],
)
def test_coerce_wrong_type_message(spec: OptionSpec, value: Any) -> None:
    with pytest.raises(InvalidArgument) as err:
        coerce_value("port", spec, value)
    assert err.value.message.startswith(f"'port' is of type {spec.type.value}; got ")


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


# ---------------------------------------------------------------------------
# Branch changes and effective config: the seed scenario

SEED_SCHEMA = parse_schema({"k": {"type": "int", "default": 1}})
SEED_MASTER = {"k": 5}


def test_seed_branch_set_is_effective() -> None:
    changes = {"k": touch(None, SEED_MASTER.get("k", ABSENT), Op.SET, 7)}
    assert changes["k"] == Change(Op.SET, 7, 5)
    assert effective_config(SEED_SCHEMA, SEED_MASTER, changes) == {"k": 7}


def test_seed_branch_unset_restores_the_default_not_master() -> None:
    existing = touch(None, 5, Op.SET, 7)
    changes = {"k": touch(existing, master_value=5, op=Op.UNSET)}
    assert changes["k"] == Change(Op.UNSET, ABSENT, 5)
    assert effective_config(SEED_SCHEMA, SEED_MASTER, changes) == {"k": 1}


def test_seed_unit_without_changes_sees_master() -> None:
    assert effective_config(SEED_SCHEMA, SEED_MASTER) == {"k": 5}
    assert effective_config(SEED_SCHEMA, SEED_MASTER, {}) == {"k": 5}


def test_seed_from_is_kept_across_later_touches() -> None:
    first = touch(None, 5, Op.SET, 7)
    second = touch(first, 9, Op.SET, 8)
    third = touch(second, 11, Op.UNSET)
    fourth = touch(third, ABSENT, Op.SET, 2)
    assert [c.from_ for c in (first, second, third, fourth)] == [5, 5, 5, 5]
    assert second.value == 8
    assert third.value is ABSENT
    assert fourth.value == 2


def test_unset_without_default_removes_the_key() -> None:
    schema = parse_schema({"k": {"type": "int"}})
    assert effective_config(schema, {"k": 5}, {"k": touch(None, 5, Op.UNSET)}) == {}


def test_effective_config_ignores_keys_outside_the_schema() -> None:
    changes = {"gone": touch(None, ABSENT, Op.SET, 1)}
    assert effective_config(SEED_SCHEMA, {"stale": 3}, changes) == {"k": 1}


def test_apply_changes_set_and_unset() -> None:
    changes = {"a": Change(Op.SET, 2, 1), "b": Change(Op.UNSET, ABSENT, 3)}
    assert apply_changes({"a": 1, "b": 3, "c": 4}, changes) == {"a": 2, "c": 4}


@pytest.mark.parametrize(
    "change", [Change(Op.SET, 7, 5), Change(Op.UNSET, ABSENT, 5), Change(Op.SET, {"a": 1})]
)
def test_change_doc_round_trip(change: Change) -> None:
    assert Change.from_doc(change.to_doc()) == change


# ---------------------------------------------------------------------------
# find_conflicts


def test_no_conflict_when_master_is_still_from() -> None:
    assert find_conflicts("web", {"k": 5}, {"k": Change(Op.SET, 7, 5)}) == []


def test_conflict_when_master_moved() -> None:
    conflicts = find_conflicts("web", {"k": 6}, {"k": Change(Op.SET, 7, 5)})
    assert conflicts == [ConflictedKey("web", "k", expected=5, current=6, proposed=7)]


def test_conflict_on_unset_proposes_absent() -> None:
    conflicts = find_conflicts("web", {"k": 6}, {"k": Change(Op.UNSET, ABSENT, 5)})
    assert conflicts == [ConflictedKey("web", "k", 5, 6, ABSENT)]


@pytest.mark.parametrize(
    ("master", "change"),
    [
        ({"k": 7}, Change(Op.SET, 7, 5)),
        ({}, Change(Op.UNSET, ABSENT, 5)),
    ],
)
def test_no_conflict_when_master_moved_to_the_branch_target(
    master: dict[str, Any], change: Change
) -> None:
    assert find_conflicts("web", master, {"k": change}) == []


def test_absent_from_and_still_absent_is_no_conflict() -> None:
    assert find_conflicts("web", {}, {"k": touch(None, ABSENT, Op.SET, 3)}) == []


def test_absent_from_but_someone_set_it_meanwhile_is_a_conflict() -> None:
    change = touch(None, ABSENT, Op.SET, 3)
    assert find_conflicts("web", {"k": 4}, {"k": change}) == [
        ConflictedKey("web", "k", ABSENT, 4, 3)
    ]


def test_master_unset_meanwhile_is_a_conflict() -> None:
    assert find_conflicts("web", {}, {"k": Change(Op.SET, 7, 5)}) == [
        ConflictedKey("web", "k", 5, ABSENT, 7)
    ]


def test_conflict_compares_json_types() -> None:
    # master holding 1.0 is not the branch's from 1 (nor true)
    assert len(find_conflicts("web", {"k": 1.0}, {"k": Change(Op.SET, 2, 1)})) == 1
    assert len(find_conflicts("web", {"k": True}, {"k": Change(Op.SET, 2, 1)})) == 1


def test_conflicts_list_every_key_sorted() -> None:
    changes = {
        "b": Change(Op.SET, 1, 0),
        "a": Change(Op.SET, 1, 0),
        "c": Change(Op.SET, 1, 9),
    }
    conflicts = find_conflicts("web", {"a": 5, "b": 5, "c": 9}, changes)
    assert [c.key for c in conflicts] == ["a", "b"]


def test_conflict_message_names_key_from_master_and_branch_value() -> None:
    err = Conflict(
        "branch 'b1'",
        [ConflictedKey("web", "port", 80, 81, 8080), ConflictedKey("db", "x", ABSENT, "y", ABSENT)],
    )
    assert "2 key(s)" in err.message
    assert "web.port (from 80, master now 81, branch 'b1' wants 8080)" in err.message
    assert "db.x (from absent, master now \"y\", branch 'b1' wants absent)" in err.message
    assert "force" in err.message
    assert err.keys[0].key == "port"


# ---------------------------------------------------------------------------
# config_hash


def test_config_hash_is_sha256_of_canonical_json() -> None:
    config = {"b": [1, 2.5, None], "a": {"z": True, "é": "ü"}}
    expected = hashlib.sha256(
        b'{"a":{"z":true,"\xc3\xa9":"\xc3\xbc"},"b":[1,2.5,null]}'
    ).hexdigest()
    assert config_hash(config) == expected
    assert (
        config_hash(config)
        == hashlib.sha256(
            json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()
    )


def test_config_hash_distinguishes_json_types() -> None:
    assert len({config_hash({"k": 1}), config_hash({"k": 1.0}), config_hash({"k": True})}) == 3


# ---------------------------------------------------------------------------
# diff / apply_diff


def test_diff_nested_change_reported_at_dotted_path() -> None:
    a = {"a": {"b": {"c": 1, "d": 2}}, "x": 1}
    b = {"a": {"b": {"c": 3, "d": 2}}, "x": 1}
    d = diff(a, b)
    assert d.added == []
    assert d.removed == []
    assert [(e.path, e.old, e.new) for e in d.changed] == [("a.b.c", 1, 3)]


def test_diff_added_and_removed() -> None:
    d = diff({"gone": 1, "obj": {"old": 1}}, {"new": 2, "obj": {"fresh": [1]}})
    assert [(e.path, e.new) for e in d.added] == [("new", 2), ("obj.fresh", [1])]
    assert all(e.old is ABSENT for e in d.added)
    assert [(e.path, e.old) for e in d.removed] == [("gone", 1), ("obj.old", 1)]
    assert all(e.new is ABSENT for e in d.removed)
    assert d.changed == []


def test_diff_object_replaced_by_scalar_is_one_change() -> None:
    d = diff({"a": {"b": 1}}, {"a": 1})
    assert [(e.path, e.old, e.new) for e in d.changed] == [("a", {"b": 1}, 1)]


def test_diff_multiline_string_has_unified_text_diff() -> None:
    old, new = "line1\nline2\nline3\n", "line1\nLINE2\nline3\n"
    (entry,) = diff({"k": old}, {"k": new}).changed
    assert entry.text_diff == (
        "--- a/k\n+++ b/k\n@@ -1,3 +1,3 @@\n line1\n-line2\n+LINE2\n line3\n"
    )


def test_diff_text_diff_without_trailing_newline_is_well_formed() -> None:
    (entry,) = diff({"k": "a\nb"}, {"k": "a\nc"}).changed
    lines = entry.text_diff.splitlines()
    assert "-b" in lines
    assert "+c" in lines
    assert lines.count("\\ No newline at end of file") == 2


def test_diff_single_line_strings_have_no_text_diff() -> None:
    (entry,) = diff({"k": "a"}, {"k": "b"}).changed
    assert entry.text_diff == ""


@pytest.mark.parametrize(("old", "new"), [(1, 1.0), (1, True), (0, False), ([1], [1.0])])
def test_diff_type_change_counts_as_changed(old: Any, new: Any) -> None:
    (entry,) = diff({"k": old}, {"k": new}).changed
    assert entry.path == "k"
    assert same(entry.old, old)
    assert same(entry.new, new)


def test_diff_identical_is_empty_and_apply_diff_patches() -> None:
    a = {"a": {"b": 1}, "l": [1, 2]}
    assert diff(a, a).empty
    b = {"a": {"b": 2, "c": {"d": 1}}, "m": "x"}
    assert apply_diff(a, diff(a, b)) == b


def test_apply_diff_does_not_mutate_its_input() -> None:
    a = {"a": {"b": 1}}
    apply_diff(a, diff(a, {"a": {"b": 2}}))
    assert a == {"a": {"b": 1}}


# ---------------------------------------------------------------------------
# SemVer


@pytest.mark.parametrize(
    "label", ["0.0.0", "1.4.0", "2.0.0-rc.1", "1.0.0-alpha.beta.1", "10.20.30-x-y.0", "1.0.0-0a"]
)
def test_semver_round_trip(label: str) -> None:
    assert str(SemVer.parse(label)) == label


def test_semver_parse_fields_and_v_prefix() -> None:
    assert SemVer.parse("v1.2.3-rc.4") == SemVer(1, 2, 3, "rc.4")
    assert str(SemVer.parse("v1.2.3")) == "1.2.3"


@pytest.mark.parametrize(
    "label",
    [
        "",
        "1",
        "1.0",
        "1.0.0.0",
        "01.0.0",
        "1.00.0",
        "1.0.0-",
        "1.0.0-01",
        "1.0.0-rc..1",
        "1.0.0+build",
        "a.b.c",
        "1.0.0\n",
        " 1.0.0",
        "1\u0661.0.0",
        "V1.0.0",
        "latest",
    ],
)
def test_semver_invalid_labels_rejected(label: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        SemVer.parse(label)
    assert repr(label) in err.value.message


def test_semver_non_str_rejected() -> None:
    with pytest.raises(InvalidArgument):
        SemVer.parse(100)  # type: ignore[arg-type]


def test_semver_ordering() -> None:
    ordered = ["1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    parsed = [SemVer.parse(x) for x in ordered]
    assert [str(v) for v in sorted(reversed(parsed))] == ordered
    assert all(a < b for a, b in itertools.pairwise(parsed))
    assert not parsed[1] < parsed[1]


def test_semver_prerelease_ordering_per_semver_org() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ]
    shuffled = ordered[::-1]
    assert [str(v) for v in sorted(SemVer.parse(x) for x in shuffled)] == ordered


@pytest.mark.parametrize(
    ("low", "high"),
    [("1.0.0-rc.2", "1.0.0-rc.10"), ("1.0.0-2", "1.0.0-10"), ("1.9.0", "1.10.0")],
)
def test_semver_numeric_parts_compare_numerically(low: str, high: str) -> None:
    assert SemVer.parse(low) < SemVer.parse(high)
    assert not SemVer.parse(high) < SemVer.parse(low)


@pytest.mark.parametrize(
    ("label", "part", "expected"),
    [
        ("1.2.3", Bump.MAJOR, "2.0.0"),
        ("1.2.3", Bump.MINOR, "1.3.0"),
        ("1.2.3", Bump.PATCH, "1.2.4"),
        ("1.2.3-rc.1", Bump.PATCH, "1.2.3"),
        ("1.2.3-rc.1", Bump.MAJOR, "2.0.0"),
        ("0.0.0", Bump.PATCH, "0.0.1"),
    ],
)
def test_semver_bump(label: str, part: Bump, expected: str) -> None:
    assert str(SemVer.parse(label).bump(part)) == expected


@pytest.mark.parametrize("part", list(Bump))
def test_next_label_first_bump_is_1_0_0(part: Bump) -> None:
    assert next_label([], part) == SemVer(1, 0, 0)


@pytest.mark.parametrize(
    ("existing", "part", "expected"),
    [
        (["1.0.0"], Bump.PATCH, "1.0.1"),
        (["1.0.0"], Bump.MINOR, "1.1.0"),
        (["1.0.0"], Bump.MAJOR, "2.0.0"),
        (["1.2.0", "1.10.0", "1.9.3"], Bump.MINOR, "1.11.0"),
        (["2.0.0-rc.1", "1.9.0"], Bump.PATCH, "2.0.0"),
        (["v1.0.0", "0.9.0"], Bump.PATCH, "1.0.1"),
    ],
)
def test_next_label(existing: list[str], part: Bump, expected: str) -> None:
    assert str(next_label(existing, part)) == expected


def test_next_label_rejects_invalid_existing_label() -> None:
    with pytest.raises(InvalidArgument, match="invalid version label 'nope'"):
        next_label(["1.0.0", "nope"], Bump.PATCH)


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


# ---------------------------------------------------------------------------
# Properties


@PROPERTY
@given(nested_dicts, nested_dicts)
def test_prop_apply_diff_of_diff_gives_b(a: dict[str, Any], b: dict[str, Any]) -> None:
    d = diff(a, b)
    assert same(apply_diff(a, d), b)
    # nested objects are never reported as a whole-object change
    assert not any(isinstance(e.old, dict) and isinstance(e.new, dict) for e in d.changed)


@PROPERTY
@given(nested_dicts)
def test_prop_diff_with_itself_is_empty(a: dict[str, Any]) -> None:
    assert diff(a, a).empty
    assert diff(a, reorder(a, random.Random(0))).empty


@PROPERTY
@given(nested_dicts, st.randoms(use_true_random=False))
def test_prop_config_hash_ignores_key_order(a: dict[str, Any], rnd: random.Random) -> None:
    shuffled = reorder(a, rnd)
    assert config_hash(shuffled) == config_hash(a)
    assert config_hash(a) == hashlib.sha256(canonical_json(a)).hexdigest()


@PROPERTY
@given(st.data())
def test_prop_commit_of_conflict_free_branch_keeps_tracking_units_config(
    data: st.DataObject,
) -> None:
    schema = data.draw(schemas)
    master = data.draw(masters(schema))
    master["stale-key-not-in-schema"] = 1  # e.g. left behind by a schema change
    changes = data.draw(branch_edits(schema, master))
    assert find_conflicts("app", master, changes) == []
    before = effective_config(schema, master, changes)
    after = effective_config(schema, apply_changes(master, changes))
    assert same(after, before)
    assert config_hash(after) == config_hash(before)


@PROPERTY
@given(st.data())
def test_prop_effective_config_only_has_schema_keys(data: st.DataObject) -> None:
    schema = data.draw(schemas)
    master = data.draw(masters(schema))
    master.update(data.draw(st.dictionaries(config_keys, scalars, max_size=3)))
    changes = data.draw(branch_edits(schema, master))
    changes.update(
        {
            k: Change(Op.SET, 1)
            for k in data.draw(st.lists(config_keys, max_size=3))
            if k not in schema
        }
    )
    config = effective_config(schema, master, changes)
    assert set(config) <= set(schema)
    for key, spec in schema.items():
        if spec.default is not ABSENT:
            assert key in config  # a key with a default is never missing


@PROPERTY
@given(st.data())
def test_prop_set_then_unset_on_a_branch_gives_the_default(data: st.DataObject) -> None:
    schema = data.draw(schemas.filter(bool))
    master = data.draw(masters(schema))
    key = data.draw(st.sampled_from(sorted(schema)))
    current = master.get(key, ABSENT)
    set_once = touch(None, current, Op.SET, data.draw(values_for(key, schema[key])))
    changes = {key: touch(set_once, current, Op.UNSET)}
    config = effective_config(schema, master, changes)
    default = schema[key].default
    if default is ABSENT:
        assert key not in config
    else:
        assert same(config[key], default)
    assert changes[key].from_ is current


@PROPERTY
@given(schemas)
def test_prop_schema_doc_round_trip(schema: dict[str, OptionSpec]) -> None:
    again = parse_schema(schema_to_doc(schema))
    assert again == schema
    for key, spec in schema.items():
        assert again[key].type is spec.type
        assert values_equal(again[key].default, spec.default)
    assert json.loads(json.dumps(schema_to_doc(schema))) == schema_to_doc(schema)


# -- history: inverse of a generation, per-key history ----------------------------------

SMALL_VALUES = st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b"]))
SMALL_SETTINGS = st.dictionaries(st.sampled_from(["p", "q", "r"]), SMALL_VALUES, max_size=3)


def generation_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """What a generation records: ``{key: {from?, to?}}`` for each key that changed."""
    out: dict[str, dict[str, Any]] = {}
    for key in set(old) | set(new):
        if values_equal(old.get(key, ABSENT), new.get(key, ABSENT)):
            continue
        entry = {}
        if key in old:
            entry["from"] = old[key]
        if key in new:
            entry["to"] = new[key]
        out[key] = entry
    return out


@PROPERTY
@given(SMALL_SETTINGS, SMALL_SETTINGS)
def test_inverse_changes_undo_a_generation_without_conflicts(
    old: dict[str, Any], new: dict[str, Any]
) -> None:
    inverse = inverse_changes(generation_changes(old, new))
    assert find_conflicts("app", new, inverse) == []
    assert apply_changes(new, inverse) == old


@PROPERTY
@given(SMALL_SETTINGS, SMALL_SETTINGS, SMALL_SETTINGS)
def test_inverse_changes_conflict_exactly_on_keys_moved_since(
    old: dict[str, Any], new: dict[str, Any], later: dict[str, Any]
) -> None:
    changes = generation_changes(old, new)
    conflicts = find_conflicts("app", later, inverse_changes(changes))
    moved = {
        key
        for key, ft in changes.items()
        if not values_equal(later.get(key, ABSENT), ft.get("to", ABSENT))
        and not values_equal(later.get(key, ABSENT), ft.get("from", ABSENT))
    }
    assert {c.key for c in conflicts} == moved


def test_inverse_of_an_added_key_is_an_unset() -> None:
    inverse = inverse_changes({"k": {"to": 5}, "s": {"from": "x"}})
    assert inverse == {"k": Change(Op.UNSET, ABSENT, 5), "s": Change(Op.SET, "x", ABSENT)}


@PROPERTY
@given(st.lists(SMALL_SETTINGS, min_size=1, max_size=8), st.none() | SMALL_VALUES)
def test_key_history_lists_exactly_the_versions_where_the_value_changed(
    settings_seq: list[dict[str, Any]], default: Any
) -> None:
    spec = OptionSpec(ValueType.STRING, ABSENT if default is None else default)
    versions = list(enumerate(settings_seq, start=1))
    rows = key_history(spec, versions, "p")

    def value(settings: dict[str, Any]) -> Any:
        return settings.get("p", spec.default)

    changed = [1] + [
        n
        for n in range(2, len(settings_seq) + 1)
        if not values_equal(value(settings_seq[n - 1]), value(settings_seq[n - 2]))
    ]
    assert [r.version for r in rows] == changed
    for row in rows:
        assert values_equal(row.value, value(settings_seq[row.version - 1]))
        assert row.is_default == ("p" not in settings_seq[row.version - 1])


def test_key_history_change_back_to_default_counts_but_explicit_default_does_not() -> None:
    spec = OptionSpec(ValueType.INT, 80)
    versions = [(1, {}), (2, {"p": 8080}), (3, {}), (4, {"p": 80}), (5, {"q": 1})]
    rows = key_history(spec, versions, "p")
    assert [(r.version, r.value, r.is_default) for r in rows] == [
        (1, 80, True),
        (2, 8080, False),
        (3, 80, True),
    ]
