"""Bench-only baseline handlers: the same server doing the same transport work with
none of genconf's.

`genconf bench` compares each figure with one of these, measured in the same run
on the same server process, so the ratio shows what genconf itself costs. They
are registered only by the bench server (``ServerConfig.extra_handlers``), and take
and return raw bytes (no serializers, no proto of their own):

- ``Empty`` (unary): answers ``b""`` at once, whatever the request: the floor for
  ``GetConfig``.
- ``Watch`` (server stream): the request names a topic (any bytes; most use the
  empty one). Sends the topic's current pre-encoded message on subscribe, then
  every message published to it. The subscribers of a topic share one wake-up
  and one bytes object: no cache, no per-stream encoding, no timers.
- ``Fire`` (unary): publishes a pre-encoded ``WatchConfigResponse``: the request
  is the message itself (to every topic), or ``NUL topic NUL message`` (to one).
- ``Stats`` (unary): the server process's own figures as JSON (pid, resident
  memory, CPU seconds, watch counts), so the bench measures the server, not its
  own processes. A request of ``b"gc"`` runs a full collection first.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import grpc

from genconf.readside.cache import ModelCache

SERVICE: Final = "genconf.bench.Baseline"
EMPTY: Final = f"/{SERVICE}/Empty"
WATCH: Final = f"/{SERVICE}/Watch"
FIRE: Final = f"/{SERVICE}/Fire"
STATS: Final = f"/{SERVICE}/Stats"

Context = grpc.aio.ServicerContext[Any, Any]


class Broadcast:
    """The current message and one event that every subscriber waits on.

    Publishing replaces the event, so a subscriber that wakes late still sees
    that the message moved on (by its sequence number) and never waits on a
    spent event.
    """

    __slots__ = ("_changed", "message", "seq", "subscribers")

    def __init__(self) -> None:
        self.message = b""
        self.seq = 0
        self.subscribers = 0
        self._changed = asyncio.Event()

    def publish(self, message: bytes) -> None:
        self.message = message
        self.seq += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def changed_since(self, seq: int) -> None:
        while self.seq == seq:
            await self._changed.wait()


def _rss_bytes() -> int:
    """Resident set size now (not the peak), from /proc; 0 where there is none."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class BaselineServicer:
    """The handlers; ``cache`` only feeds ``Stats``."""

    def __init__(self, cache: ModelCache) -> None:
        self.cache = cache
        self.topics: dict[bytes, Broadcast] = {}
        self.message = b""  # what a new topic starts with: the last message to all

    def topic(self, name: bytes) -> Broadcast:
        broadcast = self.topics.get(name)
        if broadcast is None:
            broadcast = self.topics[name] = Broadcast()
            broadcast.message = self.message
        return broadcast

    @property
    def subscribers(self) -> int:
        return sum(b.subscribers for b in self.topics.values())

    async def empty(self, request: bytes, context: Context) -> bytes:
        return b""

    async def watch(self, request: bytes, context: Context) -> AsyncIterator[bytes]:
        broadcast = self.topic(request)
        broadcast.subscribers += 1
        try:
            seq = broadcast.seq
            yield broadcast.message
            while True:
                await broadcast.changed_since(seq)
                seq = broadcast.seq
                yield broadcast.message
        finally:
            broadcast.subscribers -= 1

    async def fire(self, request: bytes, context: Context) -> bytes:
        # A serialized message never starts with NUL (field number 0 is invalid).
        if request.startswith(b"\0"):
            name, _, message = request[1:].partition(b"\0")
            self.topic(name).publish(message)
        else:
            self.message = request
            for broadcast in self.topics.values():
                broadcast.publish(request)
        return b""

    async def stats(self, request: bytes, context: Context) -> bytes:
        if request == b"gc":
            gc.collect()
        cache = self.cache.statistics()
        return json.dumps(
            {
                "pid": os.getpid(),
                "rss_bytes": _rss_bytes(),
                # Every thread's, to the nanosecond (os.times counts in 10 ms ticks).
                "cpu_seconds": time.process_time(),
                "monotonic": time.monotonic(),
                "baseline_subscribers": self.subscribers,
                "config_watchers": cache.watchers,
                "ring_deltas": cache.ring_size,
                "revision": cache.revision,
                "notifications": cache.notifications,
                # Collections per generation so far: a round's share shows in its CPU.
                "gc_collections": [g["collections"] for g in gc.get_stats()],
            }
        ).encode()


def add_baseline_handlers(server: grpc.aio.Server, cache: ModelCache) -> BaselineServicer:
    """Register the baseline service on ``server`` (before it starts)."""
    servicer = BaselineServicer(cache)
    handlers = {
        "Empty": grpc.unary_unary_rpc_method_handler(servicer.empty),
        "Watch": grpc.unary_stream_rpc_method_handler(servicer.watch),
        "Fire": grpc.unary_unary_rpc_method_handler(servicer.fire),
        "Stats": grpc.unary_unary_rpc_method_handler(servicer.stats),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    return servicer
