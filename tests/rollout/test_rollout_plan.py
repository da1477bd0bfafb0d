"""The rollout plan and its state machine, pure: steps and budgets as people write
them, and `plan.decide` on tables of unit states, then driven to its end by
hypothesis over random fleets (no mongod, no clock)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genconf.domain.cohorts import hash_order
from genconf.domain.records import AppliedReport
from genconf.domain.rollouts import (
    Budget,
    Rollout,
    Step,
    check_sizes,
    parse_steps,
    steps_text,
)
from genconf.errors import InvalidArgument
from genconf.rollout import plan
from genconf.rollout.plan import Observation, UnitState

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
NEW = "new-hash"  # the branch's config, as tracking units should report it
OLD = "old-hash"


def rollout(**fields: object) -> Rollout:
    base: dict[str, object] = {
        "branch": "canary",
        "application": "web",
        "steps": parse_steps("1,50%,100%"),
        "bake_seconds": 60.0,
        "max_failed": Budget(),
        "on_failure": "pause",
        "commit": True,
        "selector": "",
        "state": "running",
        "step": 0,
        "phase": "tracking",
        "bake_until": None,
        "reason": "",
        "failed": (),
        "skipped": {},
        "transitions": (),
        "write_count": 1,
    }
    base.update(fields)
    return Rollout(**base)  # type: ignore[arg-type]


def report(
    hash_: str = NEW, ok: bool = True, health: str = "healthy", message: str = ""
) -> AppliedReport:
    return AppliedReport(
        hash_, ok, message, NOW, health, "probe failed" if health == "unhealthy" else ""
    )


def unit(
    name: str,
    branch: str | None = None,
    rep: AppliedReport | None = None,
    labels: Mapping[str, str] | None = None,
) -> UnitState:
    """A unit of web; one on canary expects the branch's config (NEW)."""
    return UnitState(name, branch, labels or {}, rep, NEW if branch == "canary" else None)


WEB = [f"web/{n}" for n in range(10)]
ORDER = hash_order("canary", WEB)


def fleet(on_branch: int = 0, rep: AppliedReport | None = None) -> list[UnitState]:
    """web/0..9, the first ``on_branch`` of canary's order tracking it, reporting ``rep``."""
    tracking = set(ORDER[:on_branch])
    return [
        unit(u, "canary" if u in tracking else None, rep if u in tracking else None) for u in WEB
    ]


# -- steps and budgets ----------------------------------------------------------------


def test_steps_read_as_people_write_them() -> None:
    steps = parse_steps("1, 10%,50% ,100%")
    assert steps == (Step(units=1), Step(percent=10), Step(percent=50), Step(percent=100))
    assert steps_text(steps) == "1,10%,50%,100%"
    # Percentages round up: 10% of 5 units is one unit, not none.
    assert [s.size(5) for s in steps] == [1, 1, 3, 5]
    assert Step(units=3).size(2) == 2  # capped at the units there are
    assert Budget.parse("10%").allowed(25) == 2 and Budget.parse("3").allowed(1) == 3


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "invalid step ''"),
        ("0", "at least 1"),
        ("-1", "invalid step '-1'"),
        ("0%", "invalid step '0%'"),
        ("101%", "invalid step '101%'"),
        ("ten", "invalid step 'ten'"),
        ("5,5", "5 is not more than an earlier step (5)"),
        ("50%,10%", "10% is not more than an earlier step (50%)"),
        (",".join(str(n) for n in range(1, 52)), "at most 50 steps"),
    ],
)
def test_steps_that_do_not_grow_or_do_not_parse_are_refused(text: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_steps(text)
    assert problem in caught.value.message


def test_a_units_step_larger_than_a_later_percent_step_is_refused_for_that_fleet() -> None:
    steps = parse_steps("5,10%,100%")
    assert check_sizes(steps, 100) == [5, 10, 100]
    with pytest.raises(InvalidArgument) as caught:
        check_sizes(steps, 20)  # 10% of 20 is 2, fewer than 5
    assert "step 2 (10%) would hold fewer units than step 1 (5)" in caught.value.message


# -- decide: a table --------------------------------------------------------------------


def test_tracking_takes_the_first_units_of_the_branch_order() -> None:
    action = plan.decide(rollout(), Observation(NOW, fleet()))
    assert action is not None and action.kind == plan.TRACK
    assert action.track == (ORDER[0],) and (action.state, action.phase) == ("running", "waiting")
    assert "step 1/3 (1): 1 of 10 unit(s); 1 more tracked" in action.why


def test_a_unit_on_another_branch_is_skipped_and_named_and_does_not_count() -> None:
    units = fleet()
    units[WEB.index(ORDER[0])] = unit(ORDER[0], "hotfix")
    action = plan.decide(rollout(step=1), Observation(NOW, units))  # 50%: 5 units
    assert action is not None
    assert action.skipped == {ORDER[0]: "tracks 'hotfix'"}
    assert action.track == tuple(ORDER[1:5])  # the step holds 4: no unit past the prefix
    assert f"skipped, on another branch: {ORDER[0]} (tracks 'hotfix')" in action.why


def test_units_already_on_the_branch_count_against_the_step() -> None:
    """An operator tracked two units by hand, outside the prefix: a 1-unit step adds none."""
    units = [unit(u, "canary" if u in ORDER[-2:] else None) for u in WEB]
    action = plan.decide(rollout(), Observation(NOW, units))
    assert action is not None and action.track == ()


def test_a_selector_narrows_the_candidates() -> None:
    labels = {u: {"zone": "a" if n % 2 else "b"} for n, u in enumerate(WEB)}
    units = [unit(u, labels=labels[u]) for u in WEB]
    action = plan.decide(rollout(selector="zone=a", step=2), Observation(NOW, units))
    assert action is not None
    assert set(action.track) == {u for u in WEB if labels[u]["zone"] == "a"}


def test_waiting_for_units_that_have_not_reported() -> None:
    units = fleet(1, report(OLD))  # still on the old config
    assert plan.decide(rollout(phase="waiting"), Observation(NOW, units)) is None
    assert plan.decide(rollout(phase="waiting"), Observation(NOW, fleet(1))) is None  # none yet


def test_every_unit_current_starts_the_bake() -> None:
    action = plan.decide(rollout(phase="waiting"), Observation(NOW, fleet(1, report())))
    assert action is not None and action.phase == "baking"
    assert action.bake_until == NOW + dt.timedelta(seconds=60)


def test_a_failed_apply_past_the_budget_pauses_naming_the_units() -> None:
    units = fleet(5, report())
    units[WEB.index(ORDER[2])] = unit(ORDER[2], "canary", report(ok=False, message="exit 1"))
    units[WEB.index(ORDER[3])] = unit(ORDER[3], "canary", report(health="unhealthy"))
    r = rollout(step=1, phase="waiting")
    action = plan.decide(r, Observation(NOW, units))
    assert action is not None and (action.state, action.phase) == ("paused", "waiting")
    assert action.failed == tuple(sorted([ORDER[2], ORDER[3]]))
    assert "2 unit(s) failed at step 2/3 (50%), more than the failure budget of 0" in action.why
    assert f"{ORDER[2]} (apply failed: exit 1)" in action.why
    assert f"{ORDER[3]} (unhealthy: probe failed)" in action.why
    assert "genconf rollout resume canary" in action.why
    # Within the budget, the failures block the step: no bake, no stop.
    assert (
        plan.decide(dataclasses.replace(r, max_failed=Budget(2)), Observation(NOW, units)) is None
    )
    # 40% of 5 tracking units is 2: within; 20% is 1: past it.
    assert (
        plan.decide(dataclasses.replace(r, max_failed=Budget(percent=40)), Observation(NOW, units))
        is None
    )
    assert plan.decide(
        dataclasses.replace(r, max_failed=Budget(percent=20)), Observation(NOW, units)
    )


def test_a_report_of_another_config_is_no_failure() -> None:
    """Unhealthy on the old config is not the branch's fault: the unit is waited for."""
    units = fleet(1, report(OLD, ok=False, health="unhealthy"))
    assert plan.decide(rollout(phase="waiting"), Observation(NOW, units)) is None


def test_rollback_untracks_every_tracking_unit() -> None:
    units = fleet(5, report())
    units[WEB.index(ORDER[4])] = unit(ORDER[4], "canary", report(ok=False))
    action = plan.decide(
        rollout(step=1, phase="baking", on_failure="rollback"), Observation(NOW, units)
    )
    assert action is not None and action.state == "rolled_back"
    assert action.untrack == tuple(sorted(ORDER[:5])) and not action.untrack_application
    assert "every unit of web is back on master (the branch is kept)" in action.why
    whole = Observation(NOW, units, whole=True)
    action = plan.decide(rollout(step=1, phase="baking", on_failure="rollback"), whole)
    assert action is not None and action.untrack == () and action.untrack_application


def test_baking_holds_until_its_time_then_tracks_the_next_step() -> None:
    r = rollout(phase="baking", bake_until=NOW + dt.timedelta(seconds=1))
    units = fleet(1, report())
    assert plan.decide(r, Observation(NOW, units)) is None
    later = Observation(NOW + dt.timedelta(seconds=1), units)
    action = plan.decide(r, later)
    assert action is not None and (action.kind, action.step, action.phase) == (
        "track",
        1,
        "waiting",
    )
    assert action.track == tuple(ORDER[1:5])


def test_a_unit_no_longer_current_sends_the_bake_back_to_waiting() -> None:
    units = fleet(1, report(OLD))  # the branch changed: its config is new again
    action = plan.decide(rollout(phase="baking", bake_until=NOW), Observation(NOW, units))
    assert action is not None and (action.kind, action.phase) == ("unbake", "waiting")
    assert f"{ORDER[0]} no longer current" in action.why


def test_the_end_commits_or_completes() -> None:
    units = fleet(10, report())
    last = rollout(step=2, phase="baking", bake_until=NOW)
    committed = plan.decide(last, Observation(NOW, units))
    assert committed is not None and committed.commit and committed.state == "committed"
    completed = plan.decide(dataclasses.replace(last, commit=False), Observation(NOW, units))
    assert completed is not None and not completed.commit and completed.state == "completed"
    assert "genconf branch commit canary" in completed.why


def test_a_branch_or_application_gone_aborts_saying_which() -> None:
    gone = plan.decide(rollout(phase="waiting"), Observation(NOW, fleet(), branch_exists=False))
    assert gone is not None and gone.state == "aborted"
    assert "branch 'canary' is gone: committed or aborted outside the rollout" in gone.why
    removed = plan.decide(rollout(), Observation(NOW, (), app_exists=False))
    assert removed is not None and "application 'web' was removed" in removed.why


def test_nothing_is_decided_for_a_rollout_that_is_not_running() -> None:
    for state in ("paused", "completed", "committed", "rolled_back", "aborted"):
        assert plan.decide(rollout(state=state), Observation(NOW, fleet())) is None


# -- decide, driven to the end ------------------------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[str], dict[str, str | None], str, tuple[Step, ...]]:
    n = draw(st.integers(1, 60))
    names = [f"web/{i}" for i in range(n)]
    busy = draw(st.sets(st.sampled_from(names), max_size=n // 3))
    branch = draw(st.sampled_from(["canary", "b2", "rollout-7"]))
    units_first = draw(st.integers(1, 5))
    percents = sorted(draw(st.sets(st.integers(1, 100), min_size=1, max_size=4)))
    steps = (Step(units=units_first), *(Step(percent=float(p)) for p in percents))
    start = {name: ("hotfix" if name in busy else None) for name in names}
    return names, start, branch, steps


@settings(max_examples=150)
@given(scenario=scenarios(), fail_at=st.none() | st.integers(0, 5))
def test_a_rollout_only_adds_units_never_past_the_step_and_reaches_each_step_once(
    scenario: tuple[list[str], dict[str, str | None], str, tuple[Step, ...]],
    fail_at: int | None,
) -> None:
    """Agents report at once; one unit fails at step ``fail_at`` (None: none does).
    After every action: the branch's units include the ones before, are at most the
    step's size, and are a set of the first units of the branch order (skipping the
    busy ones); each step is reached once and in order; the end is committed, or a
    pause at the failing step naming the unit."""
    names, branch_of, branch, steps = scenario
    try:
        sizes = check_sizes(steps, len(names))
    except InvalidArgument:
        return  # a plan the server refuses for this fleet
    r = rollout(branch=branch, steps=steps, bake_seconds=0)
    reports: dict[str, AppliedReport] = {}
    order = hash_order(branch, names)
    reached: list[int] = [0]
    bad: str | None = None
    now = NOW
    for _ in range(10 * len(steps) + 10):
        units = [
            UnitState(u, branch_of[u], {}, reports.get(u), NEW if branch_of[u] == branch else None)
            for u in names
        ]
        action = plan.decide(r, Observation(now, units))
        if action is None:
            break
        before = {u for u in names if branch_of[u] == branch}
        for u in action.track:
            assert branch_of[u] is None
            branch_of[u] = branch
        for u in action.untrack:
            branch_of[u] = None
        after = {u for u in names if branch_of[u] == branch}
        assert before <= after  # a step never untracks
        assert len(after) <= sizes[action.step]
        free_prefix = {u for u in order[: sizes[action.step]] if branch_of[u] in (None, branch)}
        assert after <= free_prefix
        if action.step != r.step:
            assert action.step == r.step + 1
            reached.append(action.step)
        r = dataclasses.replace(
            r,
            state=action.state,
            phase=action.phase,
            step=action.step,
            bake_until=action.bake_until,
            write_count=r.write_count + 1,
        )
        for u in action.track:  # the agents apply at once
            fails = fail_at is not None and action.step == min(fail_at, len(steps) - 1)
            if fails and bad is None:
                bad = u
            reports[u] = report(ok=u != bad)
        now += dt.timedelta(seconds=1)
    assert reached == list(range(len(reached)))
    if bad is None:
        assert r.state == "committed"
        assert reached == list(range(len(steps)))
    else:
        assert r.state == "paused" and r.step == reached[-1]
