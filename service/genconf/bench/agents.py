"""A client process of `genconf bench`: many agents over a few gRPC channels.

The bench starts a few of these (``python -m genconf.bench.agents``) so that the
load comes from processes other than the server's and the bench's own. Each
reads one JSON command per line on stdin and answers it with one JSON line on
stdout, in order; the bench (`genconf.bench.processes.Worker`) sends the next
command only after the answer to the previous one.

Times are ``time.monotonic()``: CLOCK_MONOTONIC is one clock for every process
of the machine, so the bench can subtract its own timestamps from ours.

Commands (``op``), each answered with ``{"ok": true, ...}`` or ``{"ok": false,
"error": ...}``:

- ``connect {address, channels}``: open the shared channels (one TCP connection
  each).
- ``subscribe {group, kind, units, known_hash?, channels?, topics?, timeout}``:
  open one stream per unit (``kind`` ``genconf``: ``WatchConfig``; ``baseline``:
  the baseline ``Watch``, on the empty topic or spread over ``topics`` topics
  named "0", "1", ...), on ``channels`` fresh channels of the group's own if
  given (a reconnect storm), and answer once every stream has its first message:
  ``first`` holds when each did.
- ``wait {group, total, timeout}``: until the group has received ``total`` config
  messages in all (bookmarks do not count).
- ``records {group}``: per stream, the time and hash of every config message, and
  the bookmarks received.
- ``close {group}``: cancel the group's streams, close its own channels.
- ``call {kind, units, concurrency, duration}``: unary calls in a loop from
  ``concurrency`` callers for ``duration`` seconds (``genconf``: ``GetConfig``;
  ``baseline``: the baseline ``Empty``, sent the same request bytes).
- ``raw_watch {mongo_uri, database}`` then ``raw_records``: a plain change
  stream with the multiwatcher's pipeline and options, recording when each
  application update arrives and the ``seq`` setting it carries.
- ``exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Final

import grpc
from pymongo import AsyncMongoClient

from genconf.bench import baseline
from genconf.readside.multiwatcher import WATCHED
from genconf.store.documents import APPLICATIONS
from genconf.v1 import agent_pb2, agent_pb2_grpc, types_pb2

# One TCP connection per channel (channels to one target share one by default).
CHANNEL_OPTIONS: Final = (
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)


def open_channels(address: str, count: int) -> list[grpc.aio.Channel]:
    return [grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) for _ in range(count)]


class Stream:
    """One agent's stream and what it received."""

    __slots__ = ("bookmarks", "call", "error", "first", "hashes", "times", "unit")

    def __init__(self, unit: str) -> None:
        self.unit = unit
        self.call: Any = None
        self.first = 0.0
        self.times: list[float] = []
        self.hashes: list[str] = []
        self.bookmarks = 0
        self.error = ""


class Group:
    """Streams opened together, counted together."""

    def __init__(self, streams: list[Stream], channels: list[grpc.aio.Channel]) -> None:
        self.streams = streams
        self.own_channels = channels
        self.tasks: list[asyncio.Task[None]] = []
        self.started = 0  # streams with a first message (or an error)
        self.configs = 0  # config messages in all
        self.errors = 0
        self.target = 0  # configs awaited by `wait`
        self.changed = asyncio.Event()

    def note(self) -> None:
        """Wake the waiting command only when what it waits for is there (not per message)."""
        if (self.started >= len(self.streams) and self.configs >= self.target) or self.errors:
            self.changed.set()


class Agents:
    """The state of this process: channels, stream groups, a raw change stream."""

    # The commands (``op``) it answers, each by the method of that name.
    COMMANDS: ClassVar[tuple[str, ...]] = (
        "connect",
        "subscribe",
        "wait",
        "records",
        "close",
        "call",
        "raw_watch",
        "raw_records",
    )

    def __init__(self) -> None:
        self.channels: list[grpc.aio.Channel] = []
        self.groups: dict[str, Group] = {}
        self.raw: list[tuple[float, str, int]] = []
        self.raw_task: asyncio.Task[None] | None = None
        self.raw_client: AsyncMongoClient[dict[str, Any]] | None = None

    # -- streams ---------------------------------------------------------------

    @staticmethod
    def _watchers(channel: grpc.aio.Channel) -> tuple[Any, Any]:
        """The two kinds of watch call on one channel (made once per channel)."""
        return (
            agent_pb2_grpc.AgentServiceStub(channel).WatchConfig,
            channel.unary_stream(
                baseline.WATCH, response_deserializer=agent_pb2.WatchConfigResponse.FromString
            ),
        )

    @staticmethod
    def _open(
        watchers: tuple[Any, Any], kind: str, unit: str, known_hash: str, topic: bytes
    ) -> Any:
        genconf, plain = watchers
        if kind == "genconf":
            return genconf(agent_pb2.WatchConfigRequest(unit=unit, known_hash=known_hash))
        return plain(topic)

    async def _read(self, group: Group, stream: Stream) -> None:
        clock = time.monotonic
        try:
            async for message in stream.call:
                now = clock()
                if not stream.first:
                    stream.first = now
                    group.started += 1
                if message.HasField("bookmark"):
                    stream.bookmarks += 1
                else:
                    stream.times.append(now)
                    stream.hashes.append(message.config.hash)
                    group.configs += 1
                group.note()
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED or not stream.first:
                stream.error = f"{exc.code().name}: {exc.details()}"
                group.errors += 1
        finally:
            if not stream.first:
                stream.first = clock()
                group.started += 1
                group.note()

    async def subscribe(self, cmd: dict[str, Any]) -> dict[str, Any]:
        name = cmd["group"]
        if name in self.groups:
            raise ValueError(f"group {name!r} is open already")
        own = open_channels(cmd["address"], cmd["channels"]) if cmd.get("channels") else []
        channels = own or self.channels
        if not channels:
            raise ValueError("connect first, or give channels")
        streams = [Stream(unit) for unit in cmd["units"]]
        group = Group(streams, own)
        self.groups[name] = group
        known_hash = cmd.get("known_hash", "")
        topics = cmd.get("topics", 0)
        watchers = [self._watchers(channel) for channel in channels]
        for i, stream in enumerate(streams):
            topic = str(i % topics).encode() if topics else b""
            stream.call = self._open(
                watchers[i % len(watchers)], cmd["kind"], stream.unit, known_hash, topic
            )
            group.tasks.append(asyncio.create_task(self._read(group, stream)))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(cmd["timeout"]):
                while group.started < len(streams):
                    group.changed.clear()
                    await group.changed.wait()
        return {
            "first": [s.first if s.first else None for s in streams],
            "started": group.started,
            "errors": group.errors,
            "error_sample": next((s.error for s in streams if s.error), ""),
        }

    async def wait(self, cmd: dict[str, Any]) -> dict[str, Any]:
        group = self.groups[cmd["group"]]
        group.target = cmd["total"]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(cmd["timeout"]):
                while group.configs < group.target and group.errors == 0:
                    group.changed.clear()
                    await group.changed.wait()
        return {"configs": group.configs, "errors": group.errors}

    async def records(self, cmd: dict[str, Any]) -> dict[str, Any]:
        group = self.groups[cmd["group"]]
        return {
            "units": [s.unit for s in group.streams],
            "times": [s.times for s in group.streams],
            "hashes": [s.hashes for s in group.streams],
            "bookmarks": sum(s.bookmarks for s in group.streams),
            "errors": group.errors,
        }

    async def close(self, cmd: dict[str, Any]) -> dict[str, Any]:
        group = self.groups.pop(cmd["group"], None)
        if group is None:
            return {}
        for stream in group.streams:
            stream.call.cancel()
        await asyncio.gather(*group.tasks, return_exceptions=True)
        for channel in group.own_channels:
            await channel.close()
        return {}

    # -- unary calls -------------------------------------------------------------

    async def call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        units: list[str] = cmd["units"]
        requests = [agent_pb2.GetConfigRequest(unit=u) for u in units]
        methods: list[Callable[[Any], Awaitable[Any]]] = []
        for channel in self.channels:
            if cmd["kind"] == "genconf":
                methods.append(agent_pb2_grpc.AgentServiceStub(channel).GetConfig)
            else:
                methods.append(
                    channel.unary_unary(
                        baseline.EMPTY,
                        request_serializer=agent_pb2.GetConfigRequest.SerializeToString,
                        response_deserializer=types_pb2.Config.FromString,
                    )
                )
        calls = errors = 0
        deadline = time.monotonic() + cmd["duration"]

        async def caller(i: int) -> None:
            nonlocal calls, errors
            method = methods[i % len(methods)]
            n = i
            while time.monotonic() < deadline:
                try:
                    await method(requests[n % len(requests)])
                    calls += 1
                except grpc.aio.AioRpcError:
                    errors += 1
                n += cmd["concurrency"]

        started = time.monotonic()
        await asyncio.gather(*(caller(i) for i in range(cmd["concurrency"])))
        return {"calls": calls, "errors": errors, "seconds": time.monotonic() - started}

    # -- a raw change stream (the targeted baseline) ------------------------------

    async def raw_watch(self, cmd: dict[str, Any]) -> dict[str, Any]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(cmd["mongo_uri"])
        self.raw_client = client
        db = client[cmd["database"]]
        # The multiwatcher's own pipeline and options (see Multiwatcher._open).
        stream = await db.watch(
            [{"$match": {"ns.coll": {"$in": list(WATCHED)}}}],
            full_document="required",
            max_await_time_ms=500,
            batch_size=5_000,
        )

        async def follow() -> None:
            async with stream:
                async for event in stream:
                    now = time.monotonic()
                    if event["ns"]["coll"] != APPLICATIONS:
                        continue
                    doc = event.get("fullDocument") or {}
                    seq = (doc.get("settings") or {}).get("seq")
                    if isinstance(seq, int):
                        self.raw.append((now, str(doc["_id"]), seq))

        self.raw_task = asyncio.create_task(follow())
        return {}

    async def raw_records(self, cmd: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.raw_task is not None:
            self.raw_task.cancel()
            await asyncio.gather(self.raw_task, return_exceptions=True)
            self.raw_task = None
        if self.raw_client is not None:
            await self.raw_client.close()
            self.raw_client = None
        records, self.raw = self.raw, []
        return {"records": records}

    # -- the command loop ----------------------------------------------------------

    async def connect(self, cmd: dict[str, Any]) -> dict[str, Any]:
        for channel in self.channels:  # a restarted server: drop the old connections
            await channel.close()
        self.channels = open_channels(cmd["address"], cmd["channels"])
        async with asyncio.timeout(cmd.get("timeout", 30)):
            await asyncio.gather(*(c.channel_ready() for c in self.channels))
        return {"pid": os.getpid()}

    async def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op = cmd["op"]
        if op not in self.COMMANDS:
            raise ValueError(f"unknown command {op!r}")
        answer: dict[str, Any] = await getattr(self, op)(cmd)
        return answer

    async def aclose(self) -> None:
        for name in list(self.groups):
            await self.close({"group": name})
        await self.raw_records()
        for channel in self.channels:
            await channel.close()


async def serve_commands(make: Callable[[], Agents] = Agents) -> None:
    """Answer commands from stdin until ``exit`` or end of input (``make``: a subclass
    with commands of its own, as `genconf.bench.soak_agents`)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    agents = make()
    try:
        while line := await reader.readline():
            cmd = json.loads(line)
            if cmd["op"] == "exit":
                break
            try:
                reply = {"ok": True, **await agents.handle(cmd)}
            except Exception as exc:  # the bench shows it; this process goes on
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    finally:
        await agents.aclose()


def main() -> int:
    asyncio.run(serve_commands())
    return 0


if __name__ == "__main__":
    sys.exit(main())
