"""Fleet status: whether each unit runs the config it should, and which branches
are in flight for an application (`genconf status`).

**The rule.** A unit *should* run its effective config (its branch's view when it
tracks one); its agent's latest applied report says what it *does* run. Comparing
the two hashes:

=============  ==============================================================
``current``    reported this config, ok, and its health is not unhealthy
``failed``     reported this config with ok false, or is unhealthy (whatever
               config it reported: a unit that fails its health check is not
               serving, so it counts against a rollout either way)
``behind``     reported another config (an older one: it has not applied the
               newest yet), healthy or unknown
``unreported`` no report at all (no agent yet, or one that never reported)
=============  ==============================================================

A report of another config with ok false is ``behind``, not ``failed``: the config
it failed is no longer the one it should run, and it has not tried that one yet.

The server works states out from the true hashes (an observer's hashes are keyed:
`genconf.security.redact`), so every role sees the same state.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from genconf.domain.records import AppliedReport, Branch, Unit


class UnitState(enum.StrEnum):
    CURRENT = "current"
    BEHIND = "behind"
    FAILED = "failed"
    UNREPORTED = "unreported"


# The order states are counted and shown in.
STATES: Final = tuple(UnitState)


def unit_state(effective_hash: str, report: AppliedReport | None) -> UnitState:
    """Where a unit whose effective config hashes to ``effective_hash`` stands, given
    its agent's latest ``report`` (None: it never reported)."""
    if report is None:
        return UnitState.UNREPORTED
    if report.health == "unhealthy":
        return UnitState.FAILED
    if report.hash != effective_hash:
        return UnitState.BEHIND
    return UnitState.CURRENT if report.ok else UnitState.FAILED


def count_states(states: Iterable[UnitState]) -> dict[UnitState, int]:
    """How many of ``states`` are each state, every state present (0 when none)."""
    counts = dict.fromkeys(STATES, 0)
    for state in states:
        counts[state] += 1
    return counts


@dataclass(frozen=True, slots=True)
class BranchInFlight:
    """A branch as it concerns one application."""

    branch: str
    units: int  # units of the application tracking it now
    keys: int  # keys it stages for the application


def branches_in_flight(
    application: str, branches: Iterable[Branch], units: Iterable[Unit]
) -> list[BranchInFlight]:
    """The branches that touch ``application`` (``units``: its units), by name: those
    tracking any of its units, tracking it whole or a cohort of it (even with no
    unit on it yet), or staging keys for it."""
    tracking: dict[str, int] = {}
    for unit in units:
        if unit.branch:
            tracking[unit.branch] = tracking.get(unit.branch, 0) + 1
    out = []
    for branch in sorted(branches, key=lambda b: b.name):
        staged: Mapping[str, object] = branch.changes.get(application, {})
        touches = (
            branch.name in tracking
            or application in branch.track_applications
            or application in branch.cohorts
            or bool(staged)
        )
        if touches:
            out.append(BranchInFlight(branch.name, tracking.get(branch.name, 0), len(staged)))
    return out
