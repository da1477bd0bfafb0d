"""Version labels and bumps (`genconf.domain.semver`)."""

from __future__ import annotations

import itertools

import pytest

from genconf.domain.semver import Bump, SemVer, next_label
from genconf.errors import InvalidArgument

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
