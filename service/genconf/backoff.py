"""Jittered exponential backoff: the one retry schedule genconf waits by.

Whoever retries (a client's watch, the agent's reports, the CLI's follow, the
read side's change stream) takes ``delays()`` afresh when it starts retrying
and again once a try succeeds, so one good answer resets the schedule. A leaf:
it imports nothing of genconf, so every layer may use it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Backoff:
    """Delays from ``initial`` growing by ``factor`` up to ``maximum`` seconds, each
    drawn from its upper half (jitter), so reconnecting clients do not move in step."""

    initial: float = 0.1
    maximum: float = 5.0
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay * (0.5 + random.random() / 2)
            delay = min(delay * self.factor, self.maximum)
