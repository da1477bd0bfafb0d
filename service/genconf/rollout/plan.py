"""What a running rollout does next: a pure function of its recorded state and of
what the read side shows of its application's units (`decide`).

No I/O and no clock: the driver passes ``now`` and the units in an `Observation`
and carries out the `Action` (one fenced transaction, `genconf.rollout.store`).
Table-tested in tests/rollout/test_rollout_plan.py.

The rules (the package docstring says why):

- **tracking**: track the step's cohort, the first k units of the branch's hash
  order of the units the selector matches, but never more than k units of the
  application on the branch in all; a unit of the cohort that tracks another
  branch is skipped and named. -> waiting.
- **waiting**: a tracking unit is *current* when its latest report is the hash of
  its effective config now, ok, and not unhealthy; *failed* when it reported that
  hash not ok, or unhealthy. More failed units than the budget -> the rollout
  stops (paused, or rolled back: every unit of the application back on master).
  Every tracking unit current -> baking until now + bake. Failed units within the
  budget block the step until they are fixed or the budget is exceeded.
- **baking**: the same failure check; a unit no longer current -> waiting again;
  at bake_until, the next step (tracked in the same transaction), or after the
  last step the end: committed (the branch committed, conflict-checked) or
  completed (the operator commits).
- The branch or the application gone (committed, aborted or removed by hand)
  -> aborted, saying which.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from genconf.domain.cohorts import Selector, hash_order
from genconf.domain.records import AppliedReport
from genconf.domain.rollouts import (
    ABORTED,
    BAKING,
    COMMITTED,
    COMPLETED,
    MAX_NAMED,
    PAUSE,
    PAUSED,
    ROLLED_BACK,
    RUNNING,
    TRACKING,
    WAITING,
    Rollout,
)

SHOWN: Final = 10  # units named in one message
MESSAGE_CHARS: Final = 80  # of an agent's message quoted in a reason


@dataclass(frozen=True, slots=True)
class UnitState:
    """One unit of the rollout's application as the read side shows it: ``expected``
    is the hash of its effective config now (None unless it tracks the branch)."""

    name: str
    branch: str | None
    labels: Mapping[str, str]
    report: AppliedReport | None
    expected: str | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    now: dt.datetime
    units: Sequence[UnitState]  # every unit of the application
    branch_exists: bool = True
    app_exists: bool = True
    # The branch tracks the application as a whole or by a cohort of its own:
    # a rollback untracks the application rather than unit by unit.
    whole: bool = False


# Kinds of action.
TRACK: Final = "track"
BAKE: Final = "bake"
UNBAKE: Final = "unbake"
STOP: Final = "stop"
FINISH: Final = "finish"
GONE: Final = "gone"


@dataclass(frozen=True, slots=True)
class Action:
    """One transition: the rollout's state, phase and step after it, why, and the
    branch write that goes with it in the same transaction (``track`` units onto
    the branch, ``untrack`` units off it, or ``commit`` it)."""

    kind: str
    state: str
    phase: str
    step: int
    why: str
    track: tuple[str, ...] = ()
    untrack: tuple[str, ...] = ()
    untrack_application: bool = False
    commit: bool = False
    skipped: Mapping[str, str] = field(default_factory=dict)
    failed: tuple[str, ...] = ()
    bake_until: dt.datetime | None = None


def listed(names: Sequence[str], shown: int = SHOWN) -> str:
    head = ", ".join(names[:shown])
    return head + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "…"


def failure(unit: UnitState) -> str:
    """Why ``unit`` failed the branch's config ("" if it did not): it reported that
    config's hash not applied, or unhealthy on it."""
    report = unit.report
    if report is None or unit.expected is None or report.hash != unit.expected:
        return ""
    if not report.ok:
        return f"apply failed: {_short(report.message)}" if report.message else "apply failed"
    if report.health == "unhealthy":
        said = _short(report.health_message)
        return f"unhealthy: {said}" if said else "unhealthy"
    return ""


def current(unit: UnitState) -> bool:
    """Whether ``unit`` reported its config now as applied, ok and not unhealthy."""
    report = unit.report
    return (
        report is not None
        and unit.expected is not None
        and report.hash == unit.expected
        and report.ok
        and report.health != "unhealthy"
    )


def candidates(r: Rollout, units: Sequence[UnitState]) -> list[str]:
    """The units the rollout may take, in the branch's stable order."""
    selector = Selector.parse(r.selector)
    return hash_order(r.branch, [u.name for u in units if selector.matches(u.labels)])


def step_size(r: Rollout, step: int, units: Sequence[UnitState]) -> int:
    return r.steps[step].size(len(candidates(r, units)))


def track(r: Rollout, obs: Observation, step: int) -> Action:
    """Track ``step``'s cohort: the first k candidates, at most k units of the
    application on the branch in all (units already on it count; a step never
    takes one off)."""
    by_name = {u.name: u for u in obs.units}
    order = candidates(r, obs.units)
    k = r.steps[step].size(len(order))
    room = k - sum(1 for u in obs.units if u.branch == r.branch)
    fresh: list[str] = []
    skipped: dict[str, str] = {}
    for name in order[:k]:
        unit = by_name[name]
        if unit.branch == r.branch:
            continue
        if unit.branch is not None:
            skipped[name] = f"tracks {unit.branch!r}"
        elif room > 0:
            fresh.append(name)
            room -= 1
    why = f"{r.step_text(step)}: {k} of {len(order)} unit(s); {len(fresh)} more tracked"
    if fresh:
        why += f" ({listed(sorted(fresh))})"
    if skipped:
        shown = [f"{u} ({why_})" for u, why_ in sorted(skipped.items())]
        why += f"; skipped, on another branch: {listed(shown)}"
    return Action(TRACK, RUNNING, WAITING, step, why, track=tuple(fresh), skipped=skipped)


def stop(r: Rollout, obs: Observation, failed: Mapping[str, str], budget: int) -> Action:
    """Failures past the budget: pause where it is, or roll back."""
    names = sorted(failed)
    shown = [f"{name} ({failed[name]})" for name in names]
    why = (
        f"{len(names)} unit(s) failed at {r.step_text()}, more than the failure budget of "
        f"{budget}: {listed(shown)}"
    )
    kept = tuple(names[:MAX_NAMED])
    if r.on_failure == PAUSE:
        why += f". Fix them, then: genconf rollout resume {r.branch}"
        return Action(STOP, PAUSED, r.phase, r.step, why, failed=kept)
    tracking = tuple(sorted(u.name for u in obs.units if u.branch == r.branch))
    why += f"; every unit of {r.application} is back on master (the branch is kept)"
    return Action(
        STOP,
        ROLLED_BACK,
        r.phase,
        r.step,
        why,
        untrack=() if obs.whole else tracking,
        untrack_application=obs.whole,
        failed=kept,
    )


def finish(r: Rollout) -> Action:
    if r.commit:
        why = f"every step done; branch {r.branch} committed"
        return Action(FINISH, COMMITTED, BAKING, r.step, why, commit=True)
    why = f"every step done; commit the branch when ready: genconf branch commit {r.branch}"
    return Action(FINISH, COMPLETED, BAKING, r.step, why)


def commit_refused(r: Rollout, message: str) -> Action:
    """The end's commit was refused (a conflict with master, units not applied):
    pause, saying why, for the operator to resolve and resume."""
    why = f"the commit of branch {r.branch} was refused: {message}"
    return Action(STOP, PAUSED, r.phase, r.step, why)


def decide(r: Rollout, obs: Observation) -> Action | None:
    """The next transition of ``r`` (None: nothing to do now)."""
    if r.state != RUNNING:
        return None
    if not obs.app_exists:
        why = f"application {r.application!r} was removed"
        return Action(GONE, ABORTED, r.phase, r.step, why)
    if not obs.branch_exists:
        why = f"branch {r.branch!r} is gone: committed or aborted outside the rollout"
        return Action(GONE, ABORTED, r.phase, r.step, why)
    if r.phase == TRACKING:
        return track(r, obs, r.step)
    tracking = [u for u in obs.units if u.branch == r.branch]
    failed = {u.name: why for u in tracking if (why := failure(u))}
    budget = r.max_failed.allowed(len(tracking))
    if len(failed) > budget:
        return stop(r, obs, failed, budget)
    behind = sorted(u.name for u in tracking if not current(u))
    if r.phase == WAITING:
        if behind:
            return None
        why = f"{len(tracking)} unit(s) current at {r.step_text()}; baking {r.bake_seconds:g}s"
        until = obs.now + dt.timedelta(seconds=r.bake_seconds)
        return Action(BAKE, RUNNING, BAKING, r.step, why, bake_until=until)
    if behind:
        why = f"{listed(behind)} no longer current at {r.step_text()}; waiting again"
        return Action(UNBAKE, RUNNING, WAITING, r.step, why)
    if r.bake_until is not None and obs.now < r.bake_until:
        return None
    if r.step + 1 < len(r.steps):
        return track(r, obs, r.step + 1)
    return finish(r)
