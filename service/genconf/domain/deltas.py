"""Deltas: what the multiwatcher tells the cache, and the admin feed tells admins.

A delta is one object's new state (or its removal) at a revision, the cluster
time of the change as one integer. Deltas of one transaction travel together in
one `Batch`, so nobody sees half a commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from genconf.domain.records import Application, Branch, Generation, Unit
from genconf.domain.rollouts import Rollout

Record = Application | Unit | Branch | Generation | Rollout


class Kind(enum.StrEnum):
    APPLICATION = "application"
    UNIT = "unit"
    BRANCH = "branch"
    GENERATION = "generation"
    ROLLOUT = "rollout"


COLLECTION_KINDS: Final = {
    "applications": Kind.APPLICATION,
    "units": Kind.UNIT,
    "branches": Kind.BRANCH,
    "generations": Kind.GENERATION,
    "rollouts": Kind.ROLLOUT,
}


@dataclass(frozen=True, slots=True)
class Delta:
    """``value`` is the object after the change, None when it was removed.

    ``previous`` is what a removal removed, filled in by the cache when it applies
    the delta, slimmed to what feed filters read (`readside.core.retained`): an update
    keeps no previous state, which would double what the admin feed's ring holds.

    ``size`` estimates the bytes the delta keeps alive (0: not known), so that
    what keeps deltas (the ring and each feed's queue) is bounded in memory, not
    only in count. The multiwatcher measures it once per event, walking only what
    the event makes anew (`readside.events.retained_bytes`); a reload's deltas get
    `estimate_bytes` of their value.
    """

    kind: Kind
    key: str
    revision: int
    value: Record | None
    previous: Record | None = None
    size: int = 0
    # Memo for encoders (e.g. the admin feed's message): a delta is encoded once,
    # however many feeds send it.
    encoded: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def removed(self) -> bool:
        return self.value is None

    @property
    def application(self) -> str | None:
        """The application this delta concerns, for filtering (None: model-wide)."""
        obj = self.value or self.previous
        if isinstance(obj, Application):
            return obj.name
        if isinstance(obj, Unit | Rollout):
            return obj.application
        return None

    def with_previous(self, previous: Record | None) -> Delta:
        # Direct construction: dataclasses.replace costs several times more, per event.
        return Delta(self.kind, self.key, self.revision, self.value, previous, self.size)

    @property
    def bytes(self) -> int:
        """``size``, or an estimate from the value (walked on each call) without one."""
        return self.size or DELTA_OVERHEAD + estimate_bytes(self.value)


# What a delta costs besides its value: the objects around it, and a removal's slim
# stand-in for the object it removed (`readside.core.retained`).
DELTA_OVERHEAD: Final = 256
_SCALAR: Final = 8  # a number, boolean, date or null, roughly as BSON stores it


def estimate_bytes(value: object) -> int:
    """Roughly the BSON size of ``value`` (a record, or plain data): string lengths
    plus a few bytes per value and key. Walks it once, iteratively (no recursion
    limit on deep values); used where no event size is known (a reload, tests)."""
    total = 0
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item) + _SCALAR
        elif isinstance(item, Mapping):
            total += 5
            for key, sub in item.items():
                total += len(key) + 2 if isinstance(key, str) else _SCALAR
                stack.append(sub)
        elif isinstance(item, list | tuple | set | frozenset):
            total += 5 + 2 * len(item)
            stack.extend(item)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            for f in dataclasses.fields(item):
                total += len(f.name) + 2
                stack.append(getattr(item, f.name))
        elif item is None or isinstance(item, int | float | dt.datetime | enum.Enum):
            total += _SCALAR
        else:
            total += _SCALAR * 4  # an object we do not know: counted, not walked
    return total


def plain_bytes(value: object) -> int:
    """`estimate_bytes` for plain decoded BSON (dicts, lists, strings, scalars), with
    exact type checks and scalars counted in place: the multiwatcher's hot path."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            total += 5
            for key, sub in item.items():  # type: ignore[attr-defined]
                sub_kind = type(sub)
                if sub_kind is str:
                    total += len(key) + len(sub) + 10
                elif sub_kind is dict or sub_kind is list:
                    total += len(key) + 2
                    stack.append(sub)
                else:
                    total += len(key) + 2 + _SCALAR
        elif kind is list:
            total += 5
            for sub in item:  # type: ignore[attr-defined]
                if type(sub) is str:
                    total += len(sub) + 10
                else:
                    total += 2
                    stack.append(sub)
        elif kind is str:
            total += len(item) + _SCALAR  # type: ignore[arg-type]
        elif item is not None:
            total += _SCALAR
    return total


@dataclass(frozen=True, slots=True)
class Batch:
    """The deltas of one transaction (one cluster time), applied atomically."""

    revision: int
    deltas: tuple[Delta, ...]
    # Memo for encoders: feeds with the same filter share one batch (`FeedFilter.view`),
    # so its message is built once for all of them.
    encoded: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
