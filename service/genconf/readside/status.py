"""How the multiwatcher is doing: its lifecycle state and its figures.

Readiness and metrics read these; the multiwatcher is their only writer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import anyio


class State(enum.StrEnum):
    STARTING = "starting"
    SYNCING = "syncing"
    SYNCED = "synced"
    RESYNCING = "resyncing"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"


@dataclass
class WatcherStats:
    state: State = State.STARTING
    events: int = 0
    batches: int = 0
    resumes: int = 0
    resyncs: int = 0
    # Events the server could not return (too large): each skipped by a reload.
    unreadable_events: int = 0
    # Documents (written by another tool) that are not records genconf can read.
    unreadable_documents: int = 0
    last_error: str = ""
    lag_seconds: float = 0.0
    # time.monotonic() when MongoDB last answered the stream (events or an empty
    # getMore, every max_await_ms when idle): how current the cache is known to be.
    last_heard: float = 0.0
    # Bumped on each change of ``state``; `state_changed` waits for it (readiness).
    state_changes: int = 0
    _changed: anyio.Event | None = field(default=None, repr=False, compare=False)

    def set_state(self, state: State) -> None:
        if state is self.state:
            return
        self.state = state
        self.state_changes += 1
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def state_changed(self, seen: int) -> None:
        """Return once ``state_changes`` is no longer ``seen`` (no polling)."""
        while self.state_changes == seen:
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()
