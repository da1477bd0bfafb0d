"""A rollout plan and its recorded state: pure values (no I/O, no clock).

A rollout takes a branch to an application's units in steps: each step tracks a
prefix of the branch's stable hash order of the units (`genconf.domain.cohorts`),
so a step only adds units to the ones before it. `genconf.rollout` drives it; this
module holds what the multiwatcher, the cache and the API share: the steps, the
failure budget, the states and phases, and the `Rollout` record as the document
in the ``rollouts`` collection reads.

**Steps** are written as people write them: ``1`` is one unit, ``10%`` a share of
the units the rollout's selector matches, rounded up (``ceil(P/100 * N)``, so a
step of a few percent of a small application still takes a unit).

**The failure budget** (``--max-failed``) is how many of the tracking units may
have failed before the rollout stops: ``2`` units, or ``10%`` of the units
tracking at the time (rounded down); the default is 0.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

from genconf.errors import InvalidArgument

# States of a rollout. Only `RUNNING` is driven; `PAUSED` waits for an operator;
# the others are final (a new rollout of the same branch may then be started).
RUNNING: Final = "running"
PAUSED: Final = "paused"
COMPLETED: Final = "completed"  # every step done; the operator commits the branch
COMMITTED: Final = "committed"  # every step done and the branch committed by the driver
ROLLED_BACK: Final = "rolled_back"  # failures past the budget: every unit back on master
ABORTED: Final = "aborted"  # by an operator, or the branch (or application) went away
STATES: Final = (RUNNING, PAUSED, COMPLETED, COMMITTED, ROLLED_BACK, ABORTED)
ACTIVE: Final = frozenset({RUNNING, PAUSED})

# Phases of the current step (meaningful while running or paused).
TRACKING: Final = "tracking"  # the step's units are not tracked yet
WAITING: Final = "waiting"  # tracked; waiting for every tracking unit to report it
BAKING: Final = "baking"  # every tracking unit is current; holding until bake_until
PHASES: Final = (TRACKING, WAITING, BAKING)

PAUSE: Final = "pause"
ROLLBACK: Final = "rollback"
ON_FAILURE: Final = (PAUSE, ROLLBACK)

COLLECTION: Final = "rollouts"  # where the documents live (`_id`: the branch)

MAX_STEPS: Final = 50
MAX_BAKE_SECONDS: Final = 7 * 86400
MAX_TRANSITIONS: Final = 200  # the newest ones are kept
MAX_NAMED: Final = 100  # failed and skipped units a rollout keeps by name
MAX_REASON_CHARS: Final = 1024


def _number(text: str, what: str, example: str) -> tuple[int, float]:
    """``"3"`` -> (3, 0); ``"10%"`` -> (0, 10.0); InvalidArgument naming ``what``."""
    raw = text.strip()
    try:
        if raw.endswith("%"):
            percent = float(raw[:-1])
            if not (math.isfinite(percent) and 0 < percent <= 100):
                raise ValueError
            return 0, percent
        units = int(raw)
        if units < 0:
            raise ValueError
        return units, 0.0
    except ValueError:
        raise InvalidArgument(
            f"invalid {what} {text!r}: a number of units (e.g. {example}) or a percentage "
            "more than 0 and at most 100 (e.g. 10%)"
        ) from None


@dataclass(frozen=True, slots=True)
class Step:
    """How many units a step holds: ``units`` of them, or ``percent`` % (one is set)."""

    units: int = 0
    percent: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Step:
        units, percent = _number(text, "step", "1")
        return cls.of(units, percent)

    @classmethod
    def of(cls, units: int = 0, percent: float = 0.0) -> Step:
        """A checked step: exactly one of ``units`` (at least 1) or ``percent``."""
        if bool(units) == bool(percent):
            raise InvalidArgument(
                "a step is a number of units (at least 1) or a percentage of them, e.g. 1 or 10%"
            )
        if units < 0 or (percent and not (math.isfinite(percent) and 0 < percent <= 100)):
            raise InvalidArgument(
                f"invalid step {units or percent}: units at least 1, a percentage more than "
                "0 and at most 100"
            )
        return cls(int(units), float(percent))

    def size(self, total: int) -> int:
        """Units of the step among ``total`` candidates (exact, rounded up)."""
        if self.units:
            return min(self.units, total)
        return min(total, math.ceil(Fraction(self.percent) * total / 100))

    def to_doc(self) -> dict[str, Any]:
        return {"units": self.units} if self.units else {"percent": self.percent}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Step:
        return cls(int(doc.get("units", 0)), float(doc.get("percent", 0.0)))

    def __str__(self) -> str:
        return str(self.units) if self.units else f"{self.percent:g}%"


@dataclass(frozen=True, slots=True)
class Budget:
    """Failed units a rollout tolerates: ``units`` of them, or ``percent`` % of the
    units tracking (rounded down); ``Budget()`` tolerates none."""

    units: int = 0
    percent: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Budget:
        units, percent = _number(text, "failure budget", "2")
        return cls(units, percent)

    def allowed(self, tracking: int) -> int:
        if self.percent:
            return math.floor(Fraction(self.percent) * tracking / 100)
        return self.units

    def to_doc(self) -> dict[str, Any]:
        return {"percent": self.percent} if self.percent else {"units": self.units}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None) -> Budget:
        doc = doc or {}
        return cls(int(doc.get("units", 0)), float(doc.get("percent", 0.0)))

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent else str(self.units)


def parse_steps(text: str) -> tuple[Step, ...]:
    """``1,10%,50%,100%`` as steps (checked by `check_steps`)."""
    return check_steps([Step.parse(part) for part in text.split(",")])


def steps_text(steps: Sequence[Step]) -> str:
    return ",".join(str(s) for s in steps)


def check_steps(steps: Sequence[Step]) -> tuple[Step, ...]:
    """Steps that only grow: 1 to `MAX_STEPS` of them, and among the steps of each
    kind (units, percent) each larger than the one before. (Whether a units step
    and a percent step grow depends on the number of units: see `check_sizes`.)"""
    if not steps:
        raise InvalidArgument("a rollout needs at least one step, e.g. 1,10%,50%,100%")
    if len(steps) > MAX_STEPS:
        raise InvalidArgument(f"a rollout has at most {MAX_STEPS} steps, not {len(steps)}")
    checked = tuple(Step.of(s.units, s.percent) for s in steps)
    last_units, last_percent = 0, 0.0
    for step in checked:
        if step.units:
            if step.units <= last_units:
                raise InvalidArgument(
                    f"steps {steps_text(checked)}: {step} is not more than an earlier step "
                    f"({last_units}); each step adds units to the ones before"
                )
            last_units = step.units
        else:
            if step.percent <= last_percent:
                raise InvalidArgument(
                    f"steps {steps_text(checked)}: {step} is not more than an earlier step "
                    f"({last_percent:g}%); each step adds units to the ones before"
                )
            last_percent = step.percent
    return checked


def check_sizes(steps: Sequence[Step], total: int) -> list[int]:
    """Each step's size among ``total`` units; InvalidArgument if one is smaller than
    an earlier one (a step never takes units off the branch)."""
    sizes = [s.size(total) for s in steps]
    for i in range(1, len(sizes)):
        if sizes[i] < sizes[i - 1]:
            raise InvalidArgument(
                f"steps {steps_text(steps)} over {total} unit(s) are {sizes}: step {i + 1} "
                f"({steps[i]}) would hold fewer units than step {i} ({steps[i - 1]}); "
                "each step adds units to the ones before"
            )
    return sizes


def check_bake(seconds: float) -> float:
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_BAKE_SECONDS):
        raise InvalidArgument(
            f"bake time must be 0 to {MAX_BAKE_SECONDS} seconds (7 days), not {seconds!r}"
        )
    return float(seconds)


def check_on_failure(value: str) -> str:
    value = value or PAUSE
    if value not in ON_FAILURE:
        raise InvalidArgument(
            f"on_failure must be pause or rollback, not {value!r}: pause stops the rollout "
            "where it is, rollback puts every unit back on master"
        )
    return value


def phase_label(state: str, phase: str) -> str:
    """What a transition's ``from`` and ``to`` say: the phase while running, else the state."""
    return phase if state == RUNNING else state


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a rollout's state or phase: when, who (an operator, or
    ``replica ID`` for the driver, with the lease epoch it held), from what to what,
    at which step (0-based), why; ``tracked``: units this transition put on the branch."""

    at: dt.datetime | None
    by: str
    from_: str
    to: str
    step: int
    why: str
    epoch: int = 0
    tracked: int = 0

    def to_doc(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "by": self.by,
            "from": self.from_,
            "to": self.to,
            "step": self.step,
            "why": self.why[:MAX_REASON_CHARS],
            "epoch": self.epoch,
            "tracked": self.tracked,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Transition:
        return cls(
            doc.get("at"),
            doc.get("by", ""),
            doc.get("from", ""),
            doc.get("to", ""),
            int(doc.get("step", 0)),
            doc.get("why", ""),
            int(doc.get("epoch", 0)),
            int(doc.get("tracked", 0)),
        )


@dataclass(frozen=True, slots=True)
class Rollout:
    """A rollout as its document holds it (``_id``: the branch)."""

    branch: str
    application: str
    steps: tuple[Step, ...]
    bake_seconds: float
    max_failed: Budget
    on_failure: str
    commit: bool
    selector: str  # canonical (`cohorts.Selector`); "" for every unit
    state: str
    step: int  # 0-based index into steps
    phase: str
    bake_until: dt.datetime | None
    reason: str  # why the state is what it is (a pause, a rollback, the end)
    failed: tuple[str, ...]
    skipped: Mapping[str, str]
    transitions: tuple[Transition, ...]
    # How many times the stored document was written (its `revision` field).
    write_count: int
    created_by: str = ""
    on_behalf_of: str = ""
    authenticated: bool = False
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    note: str = ""  # the operator's reason for starting it

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def label(self) -> str:
        return phase_label(self.state, self.phase)

    def step_text(self, index: int | None = None) -> str:
        """``step 2/4 (10%)``."""
        i = self.step if index is None else index
        return f"step {i + 1}/{len(self.steps)} ({self.steps[i]})"

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Rollout:
        steps = tuple(Step.from_doc(s) for s in doc["steps"])
        if not steps:
            raise ValueError("a rollout document without steps")
        state = doc["state"]
        if state not in STATES or doc.get("phase", TRACKING) not in PHASES:
            raise ValueError(f"unknown rollout state {state!r} / phase {doc.get('phase')!r}")
        return cls(
            branch=doc["_id"],
            application=doc["application"],
            steps=steps,
            bake_seconds=float(doc.get("bake_seconds", 0)),
            max_failed=Budget.from_doc(doc.get("max_failed")),
            on_failure=doc.get("on_failure", PAUSE),
            commit=bool(doc.get("commit", False)),
            selector=doc.get("selector", ""),
            state=state,
            step=min(int(doc.get("step", 0)), len(steps) - 1),
            phase=doc.get("phase", TRACKING),
            bake_until=doc.get("bake_until"),
            reason=doc.get("reason", ""),
            failed=tuple(doc.get("failed", ())),
            skipped=dict(doc.get("skipped") or {}),
            transitions=tuple(Transition.from_doc(t) for t in doc.get("transitions", ())),
            write_count=int(doc.get("revision", 0)),
            created_by=doc.get("created_by", ""),
            on_behalf_of=doc.get("on_behalf_of", ""),
            authenticated=bool(doc.get("authenticated", False)),
            created_at=doc.get("created_at"),
            updated_at=doc.get("updated_at"),
            note=doc.get("note", ""),
        )
