"""Read-your-writes for every read RPC: wait until the cache reaches a revision."""

from __future__ import annotations

from typing import Any, Final

import anyio
import grpc

from genconf.cache import ModelCache
from genconf.errors import Unavailable

DEFAULT_MAX_WAIT: Final = 30.0


def wait_limit(context: grpc.aio.ServicerContext[Any, Any], max_wait: float) -> float:
    """How long a call may wait: ``max_wait``, less if its deadline comes sooner."""
    remaining = context.time_remaining()
    return max_wait if remaining is None else max(0.0, min(max_wait, remaining - 0.05))


async def await_revision(
    cache: ModelCache,
    revision: int,
    context: grpc.aio.ServicerContext[Any, Any],
    max_wait: float = DEFAULT_MAX_WAIT,
) -> None:
    """Wait (bounded by the call's deadline) until the cache has ``revision``."""
    if revision <= cache.revision:
        return
    with anyio.move_on_after(wait_limit(context, max_wait)):
        await cache.wait_for(revision)
    if cache.revision < revision:
        raise Unavailable(
            f"this server has applied revision {cache.revision}, not yet {revision}; "
            "retry, or read from another replica"
        )
