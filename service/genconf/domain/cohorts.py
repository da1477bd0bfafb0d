"""Stable percentage cohorts of an application's units, narrowed by a label selector.

**The rule.** Each (branch, unit) pair has a fixed point in [0, 2^64): the first
eight bytes of ``sha256(branch + "\\0" + unit)``. A unit is in the P % cohort of a
branch iff its point lies below ``P/100 * 2^64`` (and its labels match the
selector). Nothing else enters the decision, so:

- cohorts nest: raising 10 % to 25 % keeps every unit of the 10 % and adds to it;
- a unit added later is in or out by the same test, and its arrival moves no other
  unit in or out;
- each branch draws its own cohort (the branch name is hashed too), so the first
  10 % of one rollout is not always the same unlucky units.

The price is that a cohort holds *about* P % of the units, not exactly: each unit
is in with probability P/100, independently (of 100 units, a 10 % cohort holds 10
on average; 4 and 16 are both possible). An "exactly the first ⌈P·N/100⌉ units in
hash order" rule would hit the count but break the other two properties: a new
unit that ranks early would push an old one out (or the cohort would stop being
"the rule" once units arrive). Both rules agree on the order, though: a threshold
cohort is always a prefix of `hash_order`, so a caller that needs an exact count
(a rollout step of "1 unit") can take the first k units of `hash_order` and still
nest with every percentage cohort of the same branch.

**Selectors** are Kubernetes equality selectors: ``zone=a,tier!=db`` (``=`` or
``==`` for equal, ``!=`` for not equal, a comma for "and"); ``tier!=db`` also
matches a unit without a ``tier`` label. The empty selector matches every unit.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

from genconf.domain.labels import validate_label_key, validate_label_value
from genconf.errors import InvalidArgument

POINTS: Final = 2**64  # a hash point lies in [0, POINTS)
MAX_SELECTOR_CHARS: Final = 4096
EQUAL: Final = "="
NOT_EQUAL: Final = "!="


def hash_point(branch: str, unit: str) -> int:
    """The fixed place of ``unit`` in ``branch``'s order: an integer in [0, 2^64)."""
    digest = hashlib.sha256(f"{branch}\0{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def hash_order(branch: str, units: Iterable[str]) -> list[str]:
    """``units`` in ``branch``'s stable order: every cohort of the branch is a prefix."""
    return sorted(units, key=lambda unit: (hash_point(branch, unit), unit))


def check_percent(percent: float) -> float:
    """``percent`` if it is a share of units a cohort may take: more than 0, at most 100."""
    if (
        isinstance(percent, bool)
        or not isinstance(percent, int | float)
        or not math.isfinite(percent)
        or not 0 < percent <= 100
    ):
        raise InvalidArgument(
            f"percent must be more than 0 and at most 100, not {percent!r}: e.g. 10 for "
            "a tenth of the units, 100 for every unit the selector matches"
        )
    return float(percent)


def threshold(percent: float) -> int:
    """The points below which a unit is in a ``percent`` cohort (exact: no float error
    decides a unit's side, and a larger percent never gives a smaller threshold)."""
    return math.floor(Fraction(check_percent(percent)) * POINTS / 100)


@dataclass(frozen=True, order=True)
class Requirement:
    """One term of a selector: label ``key`` must (``=``) or must not (``!=``) be ``value``."""

    key: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        equal = labels.get(self.key) == self.value
        return equal if self.op == EQUAL else not equal

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"


def _split(term: str) -> Requirement | None:
    """``key!=value``, ``key==value`` or ``key=value`` as a requirement (unchecked)."""
    for spelled, op in (("!=", NOT_EQUAL), ("==", EQUAL), ("=", EQUAL)):
        key, found, value = term.partition(spelled)
        if found:
            return Requirement(key.strip(), op, value.strip())
    return None


@dataclass(frozen=True)
class Selector:
    """Every requirement must hold (an empty selector matches every unit)."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Selector:
        """``zone=a,tier!=db``; InvalidArgument naming the term that is wrong."""
        if not isinstance(text, str):
            raise InvalidArgument("a selector is text, e.g. 'zone=a,tier!=db'")
        if len(text) > MAX_SELECTOR_CHARS:
            raise InvalidArgument(
                f"selector of {len(text)} characters: at most {MAX_SELECTOR_CHARS}"
            )
        if not text.strip():
            return cls()
        terms = []
        for raw in text.split(","):
            term = raw.strip()
            if not term:
                raise InvalidArgument(
                    f"invalid selector {text!r}: an empty term (two commas, or one at an end)"
                )
            found = _split(term)
            if found is None:
                raise InvalidArgument(
                    f"invalid selector {text!r}: {term!r} is not KEY=VALUE or KEY!=VALUE "
                    "(terms are joined by ',', e.g. 'zone=a,tier!=db')"
                )
            try:
                validate_label_key(found.key)
                validate_label_value(found.key, found.value)
            except InvalidArgument as exc:
                raise InvalidArgument(f"invalid selector {text!r}: {exc.message}") from None
            terms.append(found)
        return cls(tuple(sorted(set(terms))))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        """The canonical text: terms sorted, ``=`` for equal (parses back to itself)."""
        return ",".join(str(r) for r in self.requirements)


@dataclass(frozen=True)
class Cohort:
    """About ``percent`` % of the units ``selector`` matches, by the branch's hash order."""

    percent: float
    selector: Selector = Selector()

    @classmethod
    def of(cls, percent: float, selector: str = "") -> Cohort:
        """A checked cohort; ``percent`` 0 with a selector means every unit it matches."""
        parsed = Selector.parse(selector)
        if percent == 0 and parsed.requirements:
            percent = 100
        return cls(check_percent(percent), parsed)

    def contains(self, branch: str, unit: str, labels: Mapping[str, str]) -> bool:
        if self.percent < 100 and hash_point(branch, unit) >= threshold(self.percent):
            return False
        return self.selector.matches(labels)

    def covers(self, other: Cohort) -> bool:
        """Whether every unit of ``other`` is in this cohort too, whatever the units."""
        return self.selector == other.selector and self.percent >= other.percent

    def to_doc(self) -> dict[str, Any]:
        return {"percent": self.percent, "selector": str(self.selector)}

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Cohort:
        return cls(float(doc["percent"]), Selector.parse(doc.get("selector", "")))

    def __str__(self) -> str:
        share = f"{self.percent:g}%"
        if not self.selector.requirements:
            return share
        return f"{share} of the units matching {self.selector}"


def members(branch: str, cohort: Cohort, units: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The units of ``units`` (name -> labels) in ``cohort`` of ``branch``, by name."""
    return sorted(name for name, labels in units.items() if cohort.contains(branch, name, labels))
