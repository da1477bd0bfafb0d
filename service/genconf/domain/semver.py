"""Semantic version labels of an application's versions, the bump to the next one,
and the rule that keeps them in order: labels grow with versions.

A label names a version wherever a number does, so the two orders must agree: a
label on version N is above every label on versions before N and below every
label on versions after it (labels on the same version are free among
themselves). The store checks it, under the application's fence, on every label it
puts.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from genconf.errors import FailedPrecondition, InvalidArgument

SEMVER_RE: Final = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?\Z",
    re.ASCII,
)


class Bump(enum.StrEnum):
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"


@dataclass(frozen=True, order=False)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        match = SEMVER_RE.match(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidArgument(
                f"invalid version label {text!r}: use MAJOR.MINOR.PATCH, e.g. 1.4.0 "
                "(optionally -prerelease, e.g. 2.0.0-rc.1)"
            )
        return cls(int(match[1]), int(match[2]), int(match[3]), match[4] or "")

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{self.prerelease}" if self.prerelease else core

    def sort_key(self) -> tuple[Any, ...]:
        # A release sorts after its prereleases; prerelease identifiers compare
        # numerically when numeric, else lexically, as semver.org says.
        pre: tuple[Any, ...] = (1,)
        if self.prerelease:
            pre = (
                0,
                tuple(
                    (0, int(p), "") if p.isdigit() else (1, 0, p)
                    for p in self.prerelease.split(".")
                ),
            )
        return (self.major, self.minor, self.patch, pre)

    def __lt__(self, other: SemVer) -> bool:
        return self.sort_key() < other.sort_key()

    def bump(self, part: Bump) -> SemVer:
        if part is Bump.MAJOR:
            return SemVer(self.major + 1, 0, 0)
        if part is Bump.MINOR:
            return SemVer(self.major, self.minor + 1, 0)
        if self.prerelease:
            return SemVer(self.major, self.minor, self.patch)
        return SemVer(self.major, self.minor, self.patch + 1)


def next_label(existing: Iterable[str], part: Bump) -> SemVer:
    """The label a bump gives: the first bump of an application is 1.0.0."""
    parsed = [SemVer.parse(label) for label in existing]
    if not parsed:
        return SemVer(1, 0, 0)
    return max(parsed, key=SemVer.sort_key).bump(part)


def highest(labels: Iterable[str]) -> SemVer | None:
    """The highest of ``labels`` in semver order; None when there are none."""
    parsed = [SemVer.parse(label) for label in labels]
    return max(parsed, key=SemVer.sort_key) if parsed else None


def backwards_neighbour(
    label: SemVer, version: int, labelled: Iterable[tuple[int, str]]
) -> tuple[int, SemVer] | None:
    """The label ``label`` on ``version`` would go backwards against, if any.

    ``labelled``: (version, label) pairs of the application's other labels. The
    nearest offender is named: the closest earlier version with a label not below
    ``label`` (its highest), else the closest later one with a label not above it
    (its lowest).
    """
    key = label.sort_key()
    earlier = [
        (n, other.sort_key(), other)
        for n, other in ((n, SemVer.parse(t)) for n, t in labelled)
        if n < version and other.sort_key() >= key
    ]
    if earlier:
        number, _, other = max(earlier, key=lambda e: (e[0], e[1]))
        return number, other
    later = [
        (n, other.sort_key(), other)
        for n, other in ((n, SemVer.parse(t)) for n, t in labelled)
        if n > version and other.sort_key() <= key
    ]
    if later:
        number, _, other = min(later, key=lambda e: (e[0], e[1]))
        return number, other
    return None


def check_order(label: SemVer, version: int, labelled: Iterable[tuple[int, str]]) -> None:
    """Refuse a label that would break "labels grow with versions" (`backwards_neighbour`)."""
    pairs = list(labelled)
    offender = backwards_neighbour(label, version, pairs)
    if offender is None:
        return
    number, other = offender
    below = highest(text for n, text in pairs if n < version)
    above = [SemVer.parse(text) for n, text in pairs if n > version]
    room = [
        f"above {below}" if below else "",
        f"below {min(above, key=SemVer.sort_key)}" if above else "",
    ]
    raise FailedPrecondition(
        f"label {label} on version {version} would go backwards: version {number} "
        f"already has {other}; labels grow with versions (version {version} may take "
        f"a label {' and '.join(r for r in room if r)})"
    )
