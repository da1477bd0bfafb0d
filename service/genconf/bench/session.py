"""A workload's session: a server (started or given), the agent processes, a client
for setup, and the helpers the workloads drive them with.

Processes, all ours and all on loopback, each stopped by its PID in a ``finally``
even when the run fails:

- an embedded mongod in a temporary directory (unless ``--mongo-uri`` or
  ``--server`` is given);
- the server, ``python -m genconf.bench.server`` (unless ``--server``): genconf
  plus the baseline handlers of `genconf.bench.baseline`, so genconf and its
  baseline are measured on the same server process; with ``--server-workers N``,
  N such processes on one address under a parent (``--workers N``), each also on
  a loopback port of its own, where the bench fires and reads its figures (the
  server's figures are then the sum over the workers);
- ``--workers`` agent processes, ``python -m genconf.bench.agents``, each with
  ``--channels`` TCP connections, the streams spread evenly over them.

The bench process itself only sets the model up, triggers changes and computes
the figures. Client processes share the machine with the server: on a 2-core
host they compete with it for the CPU, for genconf and its baseline alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

import anyio.to_thread
import grpc
from pymongo import AsyncMongoClient

from genconf.bench import baseline, ingest_passes
from genconf.bench.options import ERRORS, Options
from genconf.bench.processes import ServerProcess, Worker
from genconf.client import Client
from genconf.dev.embedded import EmbeddedMongo
from genconf.errors import BenchError, ClientError
from genconf.v1 import agent_pb2, agent_pb2_grpc, types_pb2

T = TypeVar("T")

UNITS_PER_CALL: Final = 1000  # the store's limit on units per CreateApplication/AddUnits

# The config every workload's fleet carries (bench ingest's), plus the integers the
# workloads bump.
SCHEMA: Final[dict[str, Any]] = {
    **ingest_passes.SCHEMA,
    "round": {"type": "int", "default": 0, "description": "bumped by the bench"},
    "seq": {"type": "int", "default": 0, "description": "bumped by the bench"},
}


class Session:
    """A server (started or given), agent processes, and a client for setup."""

    def __init__(self, opts: Options, workdir: Path, workload: str) -> None:
        self.opts = opts
        self.workdir = workdir
        self.workload = workload
        self.mongo_uri: str | None = opts.mongo_uri
        self.database = opts.database or f"bench_{workload}_{uuid.uuid4().hex[:10]}"
        self.own_database = opts.database is None and opts.server is None
        self.prefix = f"b{uuid.uuid4().hex[:6]}"  # application names of this run
        self.address = opts.server or ""
        self.server: ServerProcess | None = None
        self.workers: list[Worker] = []
        self.extra: list[Worker] = []  # client processes that hold no agents
        self.client: Client | None = None
        self.channel: grpc.aio.Channel | None = None
        # One per worker of a started fleet, on its own address (empty: one process,
        # reached through `channel`): Fire and Stats go to each.
        self.worker_channels: list[grpc.aio.Channel] = []
        self.mongodb = "?"
        self.apps: list[str] = []

    # -- lifecycle ---------------------------------------------------------------

    async def start_server(self, bookmark_interval: float | None = None) -> None:
        """Start (or restart) our server; a given ``--server`` is used as it is."""
        if self.opts.server is not None:
            return
        await self.stop_server()
        assert self.mongo_uri is not None
        self.server = ServerProcess(self.workdir / "server.log")
        fleet = self.opts.server_workers
        self.address = await self.server.start(
            self.mongo_uri,
            self.database,
            self.opts.bookmark_interval if bookmark_interval is None else bookmark_interval,
            (*self.opts.server_args, *(("--workers", str(fleet)) if fleet > 1 else ())),
        )
        await self._connect(self.server.worker_addresses)

    async def stop_server(self) -> None:
        await self._disconnect()
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def _connect(self, worker_addresses: Sequence[str] = ()) -> None:
        self.channel = grpc.aio.insecure_channel(self.address)
        self.client = Client(self.address, channel=self.channel, timeout=self.opts.timeout)
        self.worker_channels = [grpc.aio.insecure_channel(a) for a in worker_addresses]
        async with asyncio.timeout(30):
            await asyncio.gather(
                *(c.channel_ready() for c in (self.channel, *self.worker_channels))
            )
        await asyncio.gather(
            *(
                w.request(30, op="connect", address=self.address, channels=self.opts.channels)
                for w in self.workers
            )
        )

    async def _disconnect(self) -> None:
        for channel in self.worker_channels:
            await channel.close()
        self.worker_channels = []
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
            self.client = None

    async def extra_worker(self, name: str) -> Worker:
        """One more client process, for work apart from the agents (not connected,
        stopped with the others)."""
        worker = Worker(len(self.workers) + len(self.extra), self.workdir / f"{name}.log")
        self.extra.append(worker)
        await worker.start()
        return worker

    async def start_workers(self) -> None:
        for i in range(self.opts.workers):
            worker = Worker(i, self.workdir / f"agents-{i}.log", self.opts.agents_module)
            self.workers.append(worker)
            await worker.start()

    async def remove_apps(self) -> None:
        """Remove the applications we made (in a database that is not ours)."""
        if self.client is not None:
            for app in self.apps:
                with contextlib.suppress(ClientError):
                    await self.client.remove_application(app, force=True)

    async def drop_database(self) -> None:
        """Drop the database we made (after our server stopped watching it)."""
        if self.own_database and self.mongo_uri is not None:
            client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.mongo_uri)
            try:
                await client.drop_database(self.database)
            finally:
                await client.close()

    # -- helpers the workloads use --------------------------------------------------

    def need_client(self) -> Client:
        if self.client is None:
            raise BenchError("no server connection")
        return self.client

    def app(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    async def create_app(
        self, name: str, units: int, schema: dict[str, Any] | None = None
    ) -> list[str]:
        """An application with ``units`` units, in the server's cache when this returns."""
        client = self.need_client()
        app = self.app(name)
        first = min(units, UNITS_PER_CALL)
        result = await client.create_application(
            app, charm="bench", schema=SCHEMA if schema is None else schema, units=first
        )
        self.apps.append(app)
        created = list(result.units)
        while len(created) < units:
            result = await client.add_units(app, count=min(UNITS_PER_CALL, units - len(created)))
            created.extend(result.units)
        if created:
            # In every worker's cache: an agent's stream may reach any of them.
            await asyncio.gather(
                *(
                    c.get_config(created[-1], min_revision=result.revision)
                    for c in self._worker_clients()
                )
            )
        return created

    def _worker_clients(self) -> list[Client]:
        """A client per server process (the setup client for one process)."""
        if not self.worker_channels:
            return [self.need_client()]
        return [
            Client(self.address, channel=c, timeout=self.opts.timeout) for c in self.worker_channels
        ]

    def _stats_channels(self) -> list[grpc.aio.Channel]:
        """Where Fire and Stats go: each worker, or the one server."""
        assert self.channel is not None
        return self.worker_channels or [self.channel]

    async def config_message(self, unit: str) -> bytes:
        """The unit's current config as a serialized WatchConfigResponse (the
        baseline's pre-encoded message: the same bytes genconf would send)."""
        assert self.channel is not None
        stub = agent_pb2_grpc.AgentServiceStub(self.channel)
        config: types_pb2.Config = await stub.GetConfig(agent_pb2.GetConfigRequest(unit=unit))
        return bytes(agent_pb2.WatchConfigResponse(config=config).SerializeToString())

    async def fire(self, message: bytes, *, topic: str | None = None) -> None:
        """Publish ``message`` to the baseline streams: of every topic, or of one (on
        every worker at once: each has its own share of the streams)."""
        request = message if topic is None else b"\0" + topic.encode() + b"\0" + message
        await asyncio.gather(
            *(c.unary_unary(baseline.FIRE)(request) for c in self._stats_channels())
        )

    async def server_stats(self, *, collect: bool = False) -> dict[str, Any]:
        """The server's own figures (`genconf.bench.baseline` Stats): of its one
        process, or of a fleet summed over its workers (`sum_stats`); each process's
        own under ``"workers"``."""
        request = b"gc" if collect else b""
        raws = await asyncio.gather(
            *(c.unary_unary(baseline.STATS)(request) for c in self._stats_channels())
        )
        return sum_stats([json.loads(raw) for raw in raws])

    def split(self, items: Sequence[T]) -> list[list[T]]:
        """``items`` spread evenly over the agent processes (or values per item, grouped
        as the items are)."""
        n = len(self.workers)
        return [list(items[i::n]) for i in range(n)]

    async def each(
        self, make: Callable[[int, Worker], Awaitable[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """One command per agent process, all at once; their answers in order."""
        return list(await asyncio.gather(*(make(i, w) for i, w in enumerate(self.workers))))

    async def subscribe(
        self,
        group: str,
        kind: str,
        units: Sequence[str],
        *,
        known_hash: str = "",
        fresh_channels: bool = False,
        topics: int = 0,
    ) -> list[float]:
        """Open one stream per unit over the agent processes; when each had its
        first message. Fails unless every stream got one. Baseline streams listen
        to the empty topic, or are spread over ``topics`` topics "0", "1", ..."""
        parts = self.split(units)
        extra: dict[str, Any] = {"topics": topics}
        if fresh_channels:
            extra.update(address=self.address, channels=self.opts.channels)
        replies = await self.each(
            lambda i, w: w.request(
                self.opts.timeout,
                op="subscribe",
                group=group,
                kind=kind,
                units=parts[i],
                known_hash=known_hash,
                timeout=self.opts.timeout,
                **extra,
            )
        )
        firsts: list[float] = []
        errors = 0
        sample = ""
        for reply in replies:
            errors += reply["errors"]
            sample = sample or reply["error_sample"]
            firsts.extend(t for t in reply["first"] if t is not None)
        if errors or len(firsts) != len(units):
            raise BenchError(
                f"{group}: {len(units) - errors} of {len(units)} streams opened; "
                f"{errors} failed (e.g. {sample or 'timed out'})"
            )
        return firsts

    async def wait_configs(self, group: str, totals: Sequence[int]) -> list[dict[str, Any]]:
        """Until agent process i's streams of ``group`` have ``totals[i]`` configs."""
        return await self.each(
            lambda i, w: w.request(
                self.opts.timeout,
                op="wait",
                group=group,
                total=totals[i],
                timeout=self.opts.timeout,
            )
        )

    async def records(self, group: str) -> dict[str, Any]:
        """Every stream's config messages (times and hashes) and bookmark count."""
        replies = await self.each(lambda i, w: w.request(60, op="records", group=group))
        out: dict[str, Any] = {"units": [], "times": [], "hashes": [], "bookmarks": 0, "errors": 0}
        for reply in replies:
            for key in ("units", "times", "hashes"):
                out[key].extend(reply[key])
            out["bookmarks"] += reply["bookmarks"]
            out["errors"] += reply["errors"]
        return out

    async def close(self, group: str) -> None:
        await self.each(lambda i, w: w.request(60, op="close", group=group))


@asynccontextmanager
async def session(
    opts: Options, workload: str, *, start_server: bool = True
) -> AsyncIterator[Session]:
    """Everything a workload needs, stopped (by PID) and cleaned up on the way out."""
    if opts.server is not None and opts.database is not None:
        raise ValueError("--database names the started server's database; not with --server")
    with tempfile.TemporaryDirectory(prefix=f"genconf-bench-{workload}-") as tmp:
        workdir = Path(tmp)
        s = Session(opts, workdir, workload)
        mongod: EmbeddedMongo | None = None
        try:
            if s.mongo_uri is None and opts.server is None:
                mongod = EmbeddedMongo(workdir / "mongo")
                await anyio.to_thread.run_sync(mongod.start)
                s.mongo_uri = mongod.uri
            if s.mongo_uri is not None:
                s.mongodb = await _mongo_version(s.mongo_uri)
            await s.start_workers()
            if opts.server is not None:
                await s._connect()
            elif start_server:
                await s.start_server()
            try:
                yield s
            finally:
                if not s.own_database:
                    with contextlib.suppress(*ERRORS):
                        await s.remove_apps()
        finally:
            for worker in (*s.workers, *s.extra):
                await worker.stop()
            await s.stop_server()
            if mongod is not None:
                await anyio.to_thread.run_sync(mongod.stop)  # its data goes with workdir
            else:
                with contextlib.suppress(*ERRORS):
                    await s.drop_database()


# Stats a fleet adds up over its workers (lists of counts: item by item); of the
# rest, the first worker's stands.
SUMMED: Final = (
    "rss_bytes",
    "cpu_seconds",
    "baseline_subscribers",
    "config_watchers",
    "notifications",
    "gc_collections",
)


def sum_stats(per_process: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The server's figures from each process's Stats: the SUMMED ones added up, the
    lowest revision (what every worker has applied), and every process's own under
    ``"workers"``. One process: its own figures as they are."""
    total = dict(per_process[0])
    for key in SUMMED:
        if not all(key in stats for stats in per_process):
            continue
        values = [stats[key] for stats in per_process]
        if isinstance(values[0], list):
            total[key] = [sum(items) for items in zip(*values, strict=True)]
        else:
            total[key] = sum(values)
    if all("revision" in stats for stats in per_process):
        total["revision"] = min(stats["revision"] for stats in per_process)
    total["workers"] = list(per_process)
    return total


async def _mongo_version(uri: str) -> str:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri, serverSelectionTimeoutMS=10_000
    )
    try:
        info = await client.admin.command("buildInfo")
        return str(info.get("version", "?"))
    finally:
        await client.close()
