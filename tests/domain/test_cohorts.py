"""Stable cohorts, selectors and unit labels (`genconf.domain.cohorts`, `.labels`):
pure rules, no I/O."""

from __future__ import annotations

import hashlib
import math

import pytest
from domain_strategies import PROPERTY
from hypothesis import given
from hypothesis import strategies as st

from genconf.domain.cohorts import (
    Cohort,
    Selector,
    check_percent,
    hash_order,
    hash_point,
    members,
    threshold,
)
from genconf.domain.labels import MAX_LABELS, relabelled, validate_label_key
from genconf.errors import InvalidArgument

UNITS = [f"web/{n}" for n in range(100)]
PERCENTS = st.floats(min_value=0.001, max_value=100, allow_nan=False)
BRANCHES = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
LABELS = st.dictionaries(
    st.sampled_from(["zone", "tier", "example.com/rack"]), st.sampled_from(["a", "b", "db", ""])
)


def unlabelled(units: list[str]) -> dict[str, dict[str, str]]:
    return {u: {} for u in units}


# -- the rule -------------------------------------------------------------------------


def test_the_point_is_the_first_eight_bytes_of_sha256_of_branch_nul_unit() -> None:
    """Written down so that another implementation (or a later genconf) draws the same
    cohorts from the same names."""
    digest = hashlib.sha256(b"canary\x00web/7").digest()
    assert hash_point("canary", "web/7") == int.from_bytes(digest[:8], "big")
    assert hash_point("canary", "web/7") != hash_point("canary2", "web/7")


def test_a_hundred_percent_takes_every_unit_and_the_threshold_is_exact() -> None:
    assert members("b", Cohort.of(100), unlabelled(UNITS)) == sorted(UNITS)
    assert threshold(100) == 2**64
    assert threshold(50) == 2**63
    assert threshold(12.5) == 2**61


def test_ten_then_twenty_five_percent_of_a_hundred_units_nest() -> None:
    """The acceptance case: the first 10 % are among the 25 %, and the counts are
    about right (the rule is per unit, so not exactly 10 and 25)."""
    ten = members("canary", Cohort.of(10), unlabelled(UNITS))
    quarter = members("canary", Cohort.of(25), unlabelled(UNITS))
    assert set(ten) < set(quarter)
    assert 2 <= len(ten) <= 20 and 12 <= len(quarter) <= 40


def test_a_cohort_is_a_prefix_of_the_branch_hash_order() -> None:
    """So a caller that needs an exact count can take the first k of the order and
    still nest with every percentage cohort."""
    order = hash_order("canary", UNITS)
    for percent in (1, 10, 33.3, 50, 99):
        cohort = members("canary", Cohort.of(percent), unlabelled(UNITS))
        assert order[: len(cohort)] == sorted(cohort, key=order.index)


@PROPERTY
@given(branch=BRANCHES, low=PERCENTS, high=PERCENTS)
def test_a_larger_percent_never_loses_a_unit(branch: str, low: float, high: float) -> None:
    low, high = sorted((low, high))
    units = unlabelled(UNITS)
    assert set(members(branch, Cohort.of(low), units)) <= set(
        members(branch, Cohort.of(high), units)
    )


@PROPERTY
@given(
    branch=BRANCHES,
    percent=PERCENTS,
    before=st.integers(0, 60),
    added=st.lists(st.integers(60, 500), unique=True, max_size=40),
)
def test_adding_units_moves_no_unit_in_or_out(
    branch: str, percent: float, before: int, added: list[int]
) -> None:
    cohort = Cohort.of(percent)
    old = unlabelled([f"web/{n}" for n in range(before)])
    new = {**old, **unlabelled([f"web/{n}" for n in added])}
    in_new = set(members(branch, cohort, new))
    assert in_new & set(old) == set(members(branch, cohort, old))
    # ...and each added unit is in or out by the rule alone, whatever else was added.
    for n in added:
        unit = f"web/{n}"
        assert (unit in in_new) == cohort.contains(branch, unit, {})


@PROPERTY
@given(branch=BRANCHES, percent=PERCENTS, labels=st.lists(LABELS, min_size=20, max_size=20))
def test_selector_and_percent_combine(branch: str, percent: float, labels: list[dict]) -> None:
    units = {f"web/{n}": labels[n] for n in range(20)}
    both = set(members(branch, Cohort.of(percent, "zone=a"), units))
    share = set(members(branch, Cohort.of(percent), units))
    matching = {u for u, lab in units.items() if lab.get("zone") == "a"}
    assert both == share & matching


# -- percent --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -1, 100.0001, 150, math.nan, math.inf, -math.inf, True])
def test_a_percent_outside_zero_to_a_hundred_is_refused(bad: float) -> None:
    with pytest.raises(InvalidArgument, match="percent must be more than 0 and at most 100"):
        check_percent(bad)


def test_a_selector_alone_means_every_unit_it_matches() -> None:
    cohort = Cohort.of(0, "zone=a")
    assert cohort.percent == 100
    units = {"web/0": {"zone": "a"}, "web/1": {"zone": "b"}, "web/2": {}}
    assert members("b", cohort, units) == ["web/0"]
    with pytest.raises(InvalidArgument, match="percent"):
        Cohort.of(0)


def test_covers_only_a_superset_whatever_the_units() -> None:
    assert Cohort.of(25, "zone=a").covers(Cohort.of(10, "zone=a"))
    assert Cohort.of(10).covers(Cohort.of(10))
    assert not Cohort.of(10).covers(Cohort.of(25))
    assert not Cohort.of(50, "zone=a").covers(Cohort.of(10))
    assert Cohort.from_doc(Cohort.of(12.5, "tier!=db,zone=a").to_doc()) == Cohort.of(
        12.5, "zone=a, tier!=db"
    )


# -- selectors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ("", {}, True),
        ("zone=a", {"zone": "a"}, True),
        ("zone==a", {"zone": "a", "tier": "web"}, True),
        ("zone=a", {"zone": "b"}, False),
        ("zone=a", {}, False),
        ("tier!=db", {}, True),  # as in Kubernetes: a missing label is "not db"
        ("tier!=db", {"tier": "db"}, False),
        ("zone=a,tier!=db", {"zone": "a", "tier": "web"}, True),
        ("zone=a,tier!=db", {"zone": "a", "tier": "db"}, False),
        (" zone = a , tier != db ", {"zone": "a"}, True),
        ("zone=", {"zone": ""}, True),
        ("example.com/rack=r1", {"example.com/rack": "r1"}, True),
    ],
)
def test_selectors_match_as_kubernetes_equality_selectors(
    text: str, labels: dict[str, str], matches: bool
) -> None:
    assert Selector.parse(text).matches(labels) is matches


def test_a_selector_has_one_canonical_text() -> None:
    selector = Selector.parse("zone==a, tier!=db,zone=a")
    assert str(selector) == "tier!=db,zone=a"
    assert Selector.parse(str(selector)) == selector


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("zone", "'zone' is not KEY=VALUE or KEY!=VALUE"),
        ("zone=a,", "an empty term"),
        (",zone=a", "an empty term"),
        ("zone=a,,tier=b", "an empty term"),
        ("=a", "invalid label key ''"),
        ("zo ne=a", "invalid label key 'zo ne'"),
        ("zone=a b", "invalid value 'a b' for label 'zone'"),
        ("zone=" + "a" * 64, "for label 'zone'"),
        ("zone=a=b", "invalid value 'a=b'"),
        ("Bad_Prefix/x=1", "the prefix before '/' must be a DNS subdomain"),
    ],
)
def test_a_bad_selector_is_refused_naming_the_term(text: str, named: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        Selector.parse(text)
    assert "invalid selector" in err.value.message
    assert named in err.value.message


# -- labels ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["zone", "a", "a" * 63, "x.y_z-1", "example.com/zone", "k8s.io/a"])
def test_label_keys_as_kubernetes_spells_them(key: str) -> None:
    assert validate_label_key(key) == key


@pytest.mark.parametrize(
    "key", ["", "-zone", "zone-", "a" * 64, "zo ne", "zöne", "/zone", "Example.com/zone", "a/b/c"]
)
def test_bad_label_keys_are_refused_naming_them(key: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate_label_key(key)
    assert repr(key) in err.value.message


def test_a_label_write_sets_removes_and_checks_first() -> None:
    assert relabelled({"zone": "a", "tier": "db"}, {"zone": "b"}, ["tier", "absent"]) == {
        "zone": "b"
    }
    with pytest.raises(InvalidArgument, match="both set and removed"):
        relabelled({}, {"zone": "a"}, ["zone"])
    with pytest.raises(InvalidArgument, match="give labels"):
        relabelled({"zone": "a"}, {}, [])
    with pytest.raises(InvalidArgument, match="for label 'zone'"):
        relabelled({}, {"zone": "a" * 64}, [])
    full = {f"k{n}": "v" for n in range(MAX_LABELS)}
    assert relabelled(full, {"k0": "w"}, []) == {**full, "k0": "w"}
    with pytest.raises(InvalidArgument, match=f"at most {MAX_LABELS} labels"):
        relabelled(full, {"one-more": "v"}, [])
