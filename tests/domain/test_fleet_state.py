"""Where a unit stands (`genconf.domain.fleet`): current, behind, failed or
unreported, from its effective hash and its agent's latest report; and which
branches are in flight for an application. Pure rules, no I/O."""

from __future__ import annotations

import datetime as dt

import pytest
from domain_strategies import PROPERTY
from hypothesis import given
from hypothesis import strategies as st

from genconf.domain.cohorts import Cohort
from genconf.domain.config import Change, Op
from genconf.domain.fleet import (
    STATES,
    BranchInFlight,
    UnitState,
    branches_in_flight,
    count_states,
    unit_state,
)
from genconf.domain.records import HEALTH_STATES, AppliedReport, Branch, Unit

NOW = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
THIS = "a" * 64  # the unit's effective hash
OLDER = "b" * 64  # another config's


def report(hash_: str, ok: bool, health: str = "unknown") -> AppliedReport:
    return AppliedReport(hash_, ok, "", NOW, health, "", NOW if health != "unknown" else None)


CASES = [
    # (what the agent reported, the state)
    (None, UnitState.UNREPORTED),
    (report(THIS, True), UnitState.CURRENT),
    (report(THIS, True, "healthy"), UnitState.CURRENT),
    (report(THIS, True, "unhealthy"), UnitState.FAILED),
    (report(THIS, False), UnitState.FAILED),
    (report(THIS, False, "healthy"), UnitState.FAILED),
    (report(THIS, False, "unhealthy"), UnitState.FAILED),
    (report(OLDER, True), UnitState.BEHIND),
    (report(OLDER, True, "healthy"), UnitState.BEHIND),
    # Unhealthy counts whatever config it reported.
    (report(OLDER, True, "unhealthy"), UnitState.FAILED),
    (report(OLDER, False, "unhealthy"), UnitState.FAILED),
    # It failed a config it should no longer run, and has not tried this one yet.
    (report(OLDER, False), UnitState.BEHIND),
    # An agent that reported nothing it could hash (an empty hash) runs no config.
    (report("", True), UnitState.BEHIND),
]


@pytest.mark.parametrize(("applied", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_the_state_table(applied: AppliedReport | None, expected: UnitState) -> None:
    assert unit_state(THIS, applied) is expected


def test_states_read_as_the_words_the_cli_and_the_api_use() -> None:
    assert [s.value for s in STATES] == ["current", "behind", "failed", "unreported"]


HASHES = st.sampled_from([THIS, OLDER, "c" * 64])
REPORTS = st.none() | st.builds(report, HASHES, st.booleans(), st.sampled_from(HEALTH_STATES))


@PROPERTY
@given(effective=HASHES, applied=REPORTS)
def test_the_rule_in_its_own_words(effective: str, applied: AppliedReport | None) -> None:
    """Current exactly when it reported this config, ok, and not unhealthy; failed
    exactly when unhealthy or this config not ok; unreported exactly without a report."""
    state = unit_state(effective, applied)
    assert (state is UnitState.UNREPORTED) == (applied is None)
    if applied is None:
        return
    unhealthy = applied.health == "unhealthy"
    this = applied.hash == effective
    assert (state is UnitState.CURRENT) == (this and applied.ok and not unhealthy)
    assert (state is UnitState.FAILED) == (unhealthy or (this and not applied.ok))
    assert (state is UnitState.BEHIND) == (not this and not unhealthy)


@PROPERTY
@given(effective=HASHES, applied=REPORTS, message=st.text(max_size=20))
def test_messages_and_times_never_change_the_state(
    effective: str, applied: AppliedReport | None, message: str
) -> None:
    if applied is None:
        return
    other = AppliedReport(applied.hash, applied.ok, message, None, applied.health, message, None)
    assert unit_state(effective, other) is unit_state(effective, applied)


@PROPERTY
@given(st.lists(st.sampled_from(STATES), max_size=50))
def test_counts_cover_every_state_and_add_up(states: list[UnitState]) -> None:
    counts = count_states(states)
    assert list(counts) == list(STATES)
    assert sum(counts.values()) == len(states)
    for state in STATES:
        assert counts[state] == states.count(state)


# -- branches in flight ------------------------------------------------------------------


def unit(name: str, branch: str | None = None) -> Unit:
    app, _, number = name.partition("/")
    return Unit(name, app, int(number), branch, None, 1)


def branch(
    name: str,
    *,
    changes: dict[str, dict[str, Change]] | None = None,
    whole: tuple[str, ...] = (),
    cohorts: dict[str, Cohort] | None = None,
) -> Branch:
    return Branch(name, "ann", NOW, whole, changes or {}, 1, cohorts=cohorts or {})


SET = Change(Op.SET, 1)


def test_a_branch_touches_an_application_it_tracks_stages_for_or_holds_a_cohort_of() -> None:
    units = [unit("web/0", "canary"), unit("web/1", "canary"), unit("web/2"), unit("web/3", "b")]
    branches = [
        branch("canary", changes={"web": {"port": SET, "motd": SET}}),
        branch("b"),  # tracks web/3, stages nothing yet
        branch("staged", changes={"web": {"port": SET}}),  # no unit yet
        branch("whole", whole=("web",)),
        branch("cohort", cohorts={"web": Cohort.of(10)}),
        branch("elsewhere", changes={"db": {"port": SET}}, whole=("db",)),
        branch("empty-changes", changes={"web": {}}),
    ]
    assert branches_in_flight("web", branches, units) == [
        BranchInFlight("b", 1, 0),
        BranchInFlight("canary", 2, 2),
        BranchInFlight("cohort", 0, 0),
        BranchInFlight("staged", 0, 1),
        BranchInFlight("whole", 0, 0),
    ]
    assert branches_in_flight("db", branches, []) == [BranchInFlight("elsewhere", 0, 1)]
    assert branches_in_flight("api", branches, [unit("api/0")]) == []


@PROPERTY
@given(st.lists(st.sampled_from([None, "x", "y", "z"]), max_size=30))
def test_tracking_counts_add_up_to_the_units_on_branches(tracks: list[str | None]) -> None:
    units = [unit(f"web/{n}", b) for n, b in enumerate(tracks)]
    found = branches_in_flight("web", [branch("x"), branch("y"), branch("z")], units)
    assert {b.branch: b.units for b in found} == {
        b: tracks.count(b) for b in ("x", "y", "z") if b in tracks
    }
