"""When a replica calls itself current (whole-server health); the end-to-end flip
to NOT_SERVING and back across a failover is in test_failover_service."""

from __future__ import annotations

import pytest

from genconf.readside.readiness import is_current
from genconf.readside.status import State, WatcherStats


@pytest.mark.parametrize(
    ("state", "silent_for", "current"),
    [
        (State.SYNCED, 0.0, True),
        (State.SYNCED, 9.9, True),
        (State.SYNCED, 10.1, False),  # a stream stuck inside the driver's retry
        (State.RECONNECTING, 0.0, False),
        (State.RESYNCING, 0.0, False),
        (State.SYNCING, 0.0, False),
        (State.STOPPED, 0.0, False),
    ],
)
def test_current_means_an_open_stream_heard_from_recently(
    state: State, silent_for: float, current: bool
) -> None:
    stats = WatcherStats(state=state, last_heard=1_000.0)
    assert is_current(stats, 1_000.0 + silent_for, stale_after=10.0) is current
