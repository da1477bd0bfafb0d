"""The whole-server health status follows whether this replica's cache is current.

A replica that has lost its change stream (MongoDB unreachable, an election
taking long) still answers reads from its cache, but may be behind and cannot
write. It reports NOT_SERVING on the whole-server health name (``""``), so
readiness probes and health-checking balancers send work elsewhere, and SERVING
again once the stream is back. The per-service names stay SERVING while the
process serves: that is what a liveness probe should ask, since restarting a
replica does not bring MongoDB back.

A reload (RESYNCING: history lost, or an event too large to read was skipped)
counts as not current too: the cache is about to jump to a fresh snapshot. State
changes are followed as they happen, so even a reload of a fraction of a second
shows as NOT_SERVING, then SERVING; silence is noticed by looking periodically.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from genconf.defaults import DEFAULT_STALE_AFTER
from genconf.readside.status import State, WatcherStats

log = logging.getLogger(__name__)

WHOLE_SERVER = ""


def is_current(stats: WatcherStats, now: float, stale_after: float) -> bool:
    """The stream is open and MongoDB answered it within ``stale_after`` seconds.

    An idle stream is answered every ``max_await_ms``, so silence means a stream
    stuck in the driver's own retry (an election) or a dead connection."""
    return stats.state is State.SYNCED and now - stats.last_heard <= stale_after


async def follow_readiness(
    health: HealthServicer,
    stats: WatcherStats,
    *,
    stale_after: float = DEFAULT_STALE_AFTER,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Keep the whole-server status in step with `is_current` until cancelled.

    Starts from SERVING (the caller marks it once the cache has synced). Wakes on
    every change of the watcher's state; the stream has no event for "nothing
    arrived", so it also looks a few times per ``stale_after``."""
    serving = True
    interval = min(1.0, stale_after / 4)
    seen = stats.state_changes
    while True:
        with anyio.move_on_after(interval):
            await stats.state_changed(seen)
        seen = stats.state_changes
        now = clock()
        silent_for = now - stats.last_heard
        current = is_current(stats, now, stale_after)
        if current == serving:
            continue
        serving = current
        if serving:
            log.info("change stream current again; reporting SERVING")
            await health.set(WHOLE_SERVER, health_pb2.HealthCheckResponse.SERVING)
        else:
            log.warning(
                "change stream %s, silent for %.1fs (last error: %s); reporting NOT_SERVING "
                "until it is current again",
                stats.state.value,
                silent_for,
                stats.last_error or "none",
            )
            await health.set(WHOLE_SERVER, health_pb2.HealthCheckResponse.NOT_SERVING)
