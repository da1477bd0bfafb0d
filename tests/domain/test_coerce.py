"""Coercing a value to its option (`genconf.domain.schema.coerce_value`): types,
numbers that cross the wire exactly, depth, size and JSON-only data."""

from __future__ import annotations

import datetime
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
    nest,
)
from hypothesis import given
from hypothesis import strategies as st

from genconf.domain.schema import (
    MAX_DEPTH,
    MAX_EXACT_INT,
    MAX_VALUE_BYTES,
    OptionSpec,
    ValueType,
    check_wire_numbers,
    coerce_value,
)
from genconf.errors import InvalidArgument

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
