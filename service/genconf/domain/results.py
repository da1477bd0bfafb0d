"""What a write did, as the store returns it and the client receives it: one type
on both sides of the wire (`genconf.wire` converts it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WriteResult:
    """A write's revision (pass it as ``min_revision`` to read your own write), the
    generation it recorded (0: none) and the versions it made, per application.
    ``skipped``: units the write chose but left as they were, and why."""

    revision: int
    generation: int = 0
    versions: Mapping[str, int] = field(default_factory=dict)
    units: Sequence[str] = ()
    skipped: Mapping[str, str] = field(default_factory=dict)
