"""Semantic version labels of an application's versions, and the bump to the next one."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from genconf.errors import InvalidArgument

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
