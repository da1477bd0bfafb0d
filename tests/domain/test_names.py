"""Application, branch, unit and key names (`genconf.domain.names`)."""

from __future__ import annotations

from typing import Any

import pytest
from domain_strategies import (
    PROPERTY,
)
from hypothesis import given
from hypothesis import strategies as st

from genconf.domain.names import (
    MAX_UNIT_NUMBER,
    check_unit_numbers,
    parse_unit_name,
    unit_name,
    validate_app_name,
    validate_branch_name,
    validate_key,
)
from genconf.errors import InvalidArgument

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
