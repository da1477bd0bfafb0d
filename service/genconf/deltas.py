"""Deltas: what the multiwatcher tells the cache, and the admin feed tells admins.

A delta is one object's new state (or its removal) at a revision, the cluster
time of the change as one integer. Deltas of one transaction travel together in
one `Batch`, so nobody sees half a commit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from genconf.records import Application, Branch, Generation, Unit

Record = Application | Unit | Branch | Generation


class Kind(enum.StrEnum):
    APPLICATION = "application"
    UNIT = "unit"
    BRANCH = "branch"
    GENERATION = "generation"


COLLECTION_KINDS: Final = {
    "applications": Kind.APPLICATION,
    "units": Kind.UNIT,
    "branches": Kind.BRANCH,
    "generations": Kind.GENERATION,
}


@dataclass(frozen=True, slots=True)
class Delta:
    """``value`` is the object after the change, None when it was removed.

    ``previous`` is the object before, filled in by the cache when it applies the
    delta, so each consumer can decide what the change means to it.
    """

    kind: Kind
    key: str
    revision: int
    value: Record | None
    previous: Record | None = None

    @property
    def removed(self) -> bool:
        return self.value is None

    @property
    def application(self) -> str | None:
        """The application this delta concerns, for filtering (None: model-wide)."""
        obj = self.value or self.previous
        if isinstance(obj, Application):
            return obj.name
        if isinstance(obj, Unit):
            return obj.application
        return None

    def with_previous(self, previous: Record | None) -> Delta:
        # Direct construction: dataclasses.replace costs several times more, per event.
        return Delta(self.kind, self.key, self.revision, self.value, previous)


@dataclass(frozen=True, slots=True)
class Batch:
    """The deltas of one transaction (one cluster time), applied atomically."""

    revision: int
    deltas: tuple[Delta, ...]
