"""Wiring and lifecycle: MongoDB (given or embedded) -> store + read side -> gRPC.

`serve()` is one async context: everything it starts is stopped on the way out,
in reverse order, even when startup fails half-way. Health is NOT_SERVING until
the cache has synced; on shutdown every stream ends with UNAVAILABLE so agents
reconnect to another replica.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import anyio
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from genconf.api.admin import AdminServicer
from genconf.api.agent import AgentServicer
from genconf.api.controller import ControllerServicer
from genconf.api.history import HistoryServicer
from genconf.cache import DEFAULT_RING_SIZE
from genconf.embedded import EmbeddedMongo
from genconf.errors import InvalidArgument
from genconf.history import History
from genconf.multiwatcher import Tuning
from genconf.readside import ReadSide, read_side
from genconf.store import Store
from genconf.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    controller_pb2,
    controller_pb2_grpc,
    history_pb2,
    history_pb2_grpc,
)

log = logging.getLogger("genconf.server")

DEFAULT_LISTEN: Final = "127.0.0.1:50051"
SERVICE_NAMES: Final = (
    agent_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
    controller_pb2.DESCRIPTOR.services_by_name["ControllerService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
    history_pb2.DESCRIPTOR.services_by_name["HistoryService"].full_name,
)


class Phase(enum.StrEnum):
    STARTING = "starting"
    SERVING = "serving"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass
class ServerConfig:
    mongo_uri: str | None = None  # None: an embedded replica set in data_dir
    data_dir: Path = field(default_factory=lambda: Path(".genconf-data"))
    listen: str = DEFAULT_LISTEN
    database: str = "genconf"
    bookmark_interval: float = 30.0
    shutdown_grace: float = 5.0
    tuning: Tuning = field(default_factory=Tuning)
    ring_size: int = DEFAULT_RING_SIZE  # deltas the admin feed keeps for resume
    retain_versions: int | None = None  # None: keep every version
    bench_baseline: bool = False  # also serve genconf.api.baseline (`genconf bench` only)


@dataclass
class RunningServer:
    config: ServerConfig
    address: str  # host:port actually bound
    store: Store
    read: ReadSide
    health: HealthServicer
    grpc_server: grpc.aio.Server
    mongo_uri: str
    phase: Phase = Phase.STARTING


def is_loopback(listen: str) -> bool:
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _mark_serving_when_synced(running: RunningServer) -> None:
    await running.read.wait_synced()
    running.phase = Phase.SERVING
    for name in ("", *SERVICE_NAMES):
        await running.health.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("cache synced at revision %d; serving", running.read.cache.revision)


@asynccontextmanager
async def serve(config: ServerConfig) -> AsyncIterator[RunningServer]:
    """Run a genconf server until the block exits."""
    if not is_loopback(config.listen):
        # Authentication arrives with the security work; until then an open
        # server must not be reachable from other machines.
        raise InvalidArgument(
            f"refusing to listen on {config.listen} without authentication: "
            "bind to a loopback address such as 127.0.0.1:50051"
        )
    async with AsyncExitStack() as stack:
        mongo_uri = config.mongo_uri
        if mongo_uri is None:
            embedded = EmbeddedMongo(config.data_dir)
            await anyio.to_thread.run_sync(embedded.start)
            stack.push_async_callback(anyio.to_thread.run_sync, embedded.stop)
            mongo_uri = embedded.uri
            log.info("embedded MongoDB started at %s (data in %s)", mongo_uri, config.data_dir)
        store = Store.connect(mongo_uri, config.database, retain_versions=config.retain_versions)
        stack.push_async_callback(store.aclose)
        await store.ensure_schema()
        read = await stack.enter_async_context(
            read_side(store.db, tuning=config.tuning, ring_size=config.ring_size)
        )

        health = HealthServicer()
        for name in ("", *SERVICE_NAMES):
            await health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        server = grpc.aio.server()
        agent_pb2_grpc.add_AgentServiceServicer_to_server(
            AgentServicer(store, read.cache, bookmark_interval=config.bookmark_interval), server
        )
        controller_pb2_grpc.add_ControllerServiceServicer_to_server(
            ControllerServicer(store, read.cache), server
        )
        admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(read.cache), server)
        history_pb2_grpc.add_HistoryServiceServicer_to_server(
            HistoryServicer(store, History(store.db)), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        if config.bench_baseline:
            from genconf.api.baseline import add_baseline_handlers

            add_baseline_handlers(server, read.cache)
        reflection.enable_server_reflection(
            (
                *SERVICE_NAMES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        port = server.add_insecure_port(config.listen)
        host = config.listen.rsplit(":", 1)[0]
        address = f"{host}:{port}"
        await server.start()
        running = RunningServer(config, address, store, read, health, server, mongo_uri)
        log.warning("listening on %s without authentication (loopback only)", address)

        async def stop_grpc() -> None:
            running.phase = Phase.STOPPING
            await health.enter_graceful_shutdown()
            # Ending the watches first makes every open stream finish with
            # UNAVAILABLE instead of being cut by the grace period.
            read.cache.close_all("the server is shutting down")
            await server.stop(config.shutdown_grace)
            running.phase = Phase.STOPPED
            log.info("stopped")

        stack.push_async_callback(stop_grpc)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_mark_serving_when_synced, running)
            try:
                yield running
            finally:
                tg.cancel_scope.cancel()
