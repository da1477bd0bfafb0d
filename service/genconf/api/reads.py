"""Read-your-writes for every read RPC: wait until the cache reaches a revision.

Every read that names a ``min_revision`` this server has not applied yet parks
here, so this is where one caller is kept from crowding out the others: the
reads a caller may have parked at once are bounded (`ParkedReads`), and a
revision no write can have returned is refused at once instead of parked.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anyio
import grpc

from genconf.api.errors import unary
from genconf.api.guard import current_principal
from genconf.errors import InvalidArgument, ResourceExhausted, Unavailable
from genconf.readside.cache import ModelCache
from genconf.store.store import Store

DEFAULT_MAX_WAIT: Final = 30.0
DEFAULT_WAITS_PER_CALLER: Final = 1000
# How far ahead of this server a min_revision may be, in seconds of cluster time
# (a revision is ``seconds << 32 | increment``): beyond any clock skew between
# this server and the cluster, and far beyond any wait a call may make.
MAX_AHEAD_SECONDS: Final = 86_400

Context = grpc.aio.ServicerContext[Any, Any]


class ParkedReads:
    """How many reads each caller has parked on a revision, bounded per caller.

    Without a bound one client could park reads until the server's memory, and
    the work of expiring them, stall everybody else."""

    def __init__(self, per_caller: int = DEFAULT_WAITS_PER_CALLER) -> None:
        if per_caller < 1:
            raise ValueError(f"per_caller must be at least 1, not {per_caller}")
        self.per_caller = per_caller
        self._parked: dict[str, int] = {}
        self._total = 0
        self.refused = 0

    def __len__(self) -> int:
        """How many reads are parked, all callers together."""
        return self._total

    def parked(self, caller: str) -> int:
        return self._parked.get(caller, 0)

    def park(self, caller: str) -> None:
        """Count one more parked read of ``caller``; ResourceExhausted past the limit."""
        count = self._parked.get(caller, 0)
        if count >= self.per_caller:
            self.refused += 1
            raise ResourceExhausted(
                f"{caller} already has {count} reads waiting for a revision this server "
                f"has not reached (limit waits_per_caller={self.per_caller}); let them "
                "finish first, or read without min_revision"
            )
        self._parked[caller] = count + 1
        self._total += 1

    def leave(self, caller: str) -> None:
        count = self._parked.get(caller, 0)
        if count == 0:
            return
        self._total -= 1
        left = count - 1
        if left > 0:
            self._parked[caller] = left
        else:
            self._parked.pop(caller, None)


# One book per server, found through its cache: the read handlers hold the cache
# and the call's context, nothing else of the server's.
_books: weakref.WeakKeyDictionary[ModelCache, ParkedReads] = weakref.WeakKeyDictionary()


def parked_reads(cache: ModelCache) -> ParkedReads:
    """The parked-read book of the server whose cache this is (the default limit
    until `limit_parked_reads` sets another)."""
    book = _books.get(cache)
    if book is None:
        book = _books[cache] = ParkedReads()
    return book


def limit_parked_reads(cache: ModelCache, per_caller: int) -> ParkedReads:
    """Bound the reads each caller may park on ``cache`` (the server's setting)."""
    book = parked_reads(cache)
    if per_caller < 1:
        raise ValueError(f"per_caller must be at least 1, not {per_caller}")
    book.per_caller = per_caller
    return book


def caller_of(context: Context) -> str:
    """Who parks a read: the token when authentication is on (however many
    connections it uses), else the connection (``context.peer()``: address and
    port), since without tokens there is nothing else to tell callers apart by."""
    principal = current_principal.get()
    if principal is not None:
        return f"token {principal.token_id}"
    return f"connection {context.peer()}"


def wait_limit(context: Context, max_wait: float) -> float:
    """How long a call may wait: ``max_wait``, less if its deadline comes sooner."""
    remaining = context.time_remaining()
    return max_wait if remaining is None else max(0.0, min(max_wait, remaining - 0.05))


def check_reachable(cache: ModelCache, revision: int, *, now: float | None = None) -> None:
    """InvalidArgument for a revision more than `MAX_AHEAD_SECONDS` of cluster time
    ahead of both this server's clock and its cache: no write returned it, so a
    wait for it could only end at the deadline, having held a place meanwhile."""
    seconds = revision >> 32
    clock = int(time.time() if now is None else now)
    horizon = max(clock, cache.revision >> 32) + MAX_AHEAD_SECONDS
    if seconds > horizon:
        raise InvalidArgument(
            f"min_revision {revision} is at cluster time {seconds} s, more than "
            f"{MAX_AHEAD_SECONDS} s ahead of this server (clock {clock} s, cache at "
            f"{cache.revision >> 32} s): no write returned it; pass the revision a write, "
            "a read or a bookmark returned"
        )


async def await_revision(
    cache: ModelCache,
    revision: int,
    context: Context,
    max_wait: float = DEFAULT_MAX_WAIT,
) -> None:
    """Wait (bounded by the call's deadline) until the cache has ``revision``."""
    if revision <= cache.revision:
        return
    check_reachable(cache, revision)
    limit = wait_limit(context, max_wait)
    if limit > 0:
        book = parked_reads(cache)
        caller = caller_of(context)
        book.park(caller)
        try:
            # The cache keeps the deadline: one timer for every parked read, no
            # timer (and no burst of cancellations) per read.
            await cache.wait_for(revision, anyio.current_time() + limit)
        finally:
            book.leave(caller)
    if cache.revision < revision:
        raise Unavailable(
            f"this server has applied revision {cache.revision}, not yet {revision}; "
            "retry, or read from another replica"
        )


class CacheServicer:
    """The wiring of a servicer that writes through the store and reads the cache
    (what `read` handlers wait on)."""

    def __init__(self, store: Store, cache: ModelCache) -> None:
        self.store = store
        self.cache = cache


def read(
    check: Callable[[Any], object] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Awaitable[Any]]]:
    """A read handler of a servicer holding ``self.cache``: ``check`` the request
    first (its names: a malformed one fails at once, not after the wait), then wait
    for its ``min_revision`` (read-your-writes), then build the response, with no
    await, from the cache at one revision."""

    def decorate(method: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(method)
        async def handler(self: Any, request: Any, context: Context) -> Any:
            if check is not None:
                check(request)
            await await_revision(self.cache, request.min_revision, context)
            return method(self, request, context)

        return handler

    return decorate


def listing(
    response: Callable[..., Any], **fields: Callable[[ModelCache], Any]
) -> Callable[..., Awaitable[Any]]:
    """A `read` handler listing the cache: a ``response`` whose each of ``fields``
    is what its function makes of the cache, with the revision they were read at."""

    def handler(self: Any, request: Any, context: Context) -> Any:
        cache = self.cache
        return response(revision=cache.revision, **{k: of(cache) for k, of in fields.items()})

    return unary(read()(handler))
