"""Wiring and lifecycle: MongoDB (given or embedded) -> store + read side -> gRPC
(and, with ``http_listen``, the same services over HTTP: `genconf.http`).

`serve()` is one async context: everything it starts is stopped on the way out,
in reverse order, even when startup fails half-way. Health is NOT_SERVING until
the cache has synced; on shutdown every stream ends with UNAVAILABLE so agents
reconnect to another replica (HTTP streams end the same way, then HTTP stops).
"""

from __future__ import annotations

import argparse
import enum
import errno
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import anyio
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from genconf.addresses import is_loopback
from genconf.api.admin import AdminServicer
from genconf.api.agent import AgentServicer, add_agent_service
from genconf.api.controller import ControllerServicer
from genconf.api.guard import Guard
from genconf.api.history import HistoryServicer
from genconf.api.interceptor import GuardInterceptor
from genconf.api.metrics import Metrics, MetricsInterceptor
from genconf.api.reads import DEFAULT_WAITS_PER_CALLER, limit_parked_reads
from genconf.api.rollout import RolloutServicer
from genconf.api.tokens import TokenServicer
from genconf.api.transfer import add_transfer_service
from genconf.defaults import (
    DEFAULT_BOOKMARK_INTERVAL,
    DEFAULT_DATA_DIR,
    DEFAULT_DATABASE,
    DEFAULT_FEED_BUFFER,
    DEFAULT_FEED_BYTES,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_LISTEN,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_STREAMS,
    DEFAULT_RING_BYTES,
    DEFAULT_RING_SIZE,
    DEFAULT_ROLLOUT_TICK,
    DEFAULT_STALE_AFTER,
    DEFAULT_STREAMS_PER_PEER,
    DEFAULT_STREAMS_PER_TOKEN,
    server_config_values,
)
from genconf.dev.embedded import EmbeddedMongo
from genconf.errors import GenconfError, InvalidArgument
from genconf.http.api import HttpApi
from genconf.http.calls import Gate, MethodTable
from genconf.http.server import HttpSettings, serve_http, split_listen
from genconf.readside.cache import ModelCache
from genconf.readside.multiwatcher import Tuning
from genconf.readside.readiness import follow_readiness
from genconf.readside.supervisor import ReadSide, read_side
from genconf.rollout.driver import Driver, branch_expiry
from genconf.rollout.lease import check_lease_seconds
from genconf.rollout.store import RolloutStore
from genconf.security.auth import TokenRecord, bootstrap_record
from genconf.signals import stop_signals
from genconf.store.history import History
from genconf.store.store import Store
from genconf.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    controller_pb2,
    controller_pb2_grpc,
    history_pb2,
    history_pb2_grpc,
    rollout_pb2,
    rollout_pb2_grpc,
    tokens_pb2,
    tokens_pb2_grpc,
    transfer_pb2,
)
from genconf.wire import MAX_MESSAGE_BYTES
from genconf.workers import WorkerLink

log = logging.getLogger("genconf.api.server")

SERVICE_NAMES: Final = (
    agent_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
    controller_pb2.DESCRIPTOR.services_by_name["ControllerService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
    history_pb2.DESCRIPTOR.services_by_name["HistoryService"].full_name,
    rollout_pb2.DESCRIPTOR.services_by_name["RolloutService"].full_name,
    tokens_pb2.DESCRIPTOR.services_by_name["TokenService"].full_name,
    transfer_pb2.DESCRIPTOR.services_by_name["TransferService"].full_name,
)


class Fleet(Protocol):
    """A worker's line to the other workers of `genconf serve --workers N` (the
    implementation is the command's: `genconf.workers.WorkerLink`)."""

    def report(self, serving: bool) -> None:
        """This worker's own whole-server status changed."""

    def changes(self) -> AsyncIterator[bool]:
        """Whether every worker is serving: now, then at each change."""


class FleetHealth(HealthServicer):
    """gRPC health of one worker of a fleet: each name is SERVING only while this
    worker says so AND every worker of the fleet is serving, so a probe or balancer
    asking any worker sees the whole fleet (one down or restarting: NOT_SERVING).
    This worker's own whole-server status goes to the fleet as it changes."""

    def __init__(self, fleet: Fleet) -> None:
        super().__init__()
        self._fleet = fleet
        self._own = dict(self._server_status)  # what this worker alone would answer
        self._fleet_serving = False

    def _gated(
        self, status: health_pb2.HealthCheckResponse.ServingStatus
    ) -> health_pb2.HealthCheckResponse.ServingStatus:
        return status if self._fleet_serving else health_pb2.HealthCheckResponse.NOT_SERVING

    async def set(self, service: str, status: health_pb2.HealthCheckResponse.ServingStatus) -> None:
        if self._gracefully_shutting_down:
            return
        self._own[service] = status
        if service == "":
            self._fleet.report(status == health_pb2.HealthCheckResponse.SERVING)
        await super().set(service, self._gated(status))

    async def enter_graceful_shutdown(self) -> None:
        if not self._gracefully_shutting_down:
            self._fleet.report(False)
        await super().enter_graceful_shutdown()

    async def follow_fleet(self) -> None:
        """Re-answer every name at each change of the fleet's state, until cancelled."""
        async for serving in self._fleet.changes():
            self._fleet_serving = serving
            for name in list(self._own):
                await super().set(name, self._gated(self._own[name]))


class Phase(enum.StrEnum):
    STARTING = "starting"
    SERVING = "serving"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass
class ServerConfig:
    """What `serve` runs with; the flags that set it are `genconf.defaults.SERVE_OPTIONS`."""

    mongo_uri: str | None = None  # None: an embedded replica set in data_dir
    data_dir: Path = field(default_factory=lambda: Path(DEFAULT_DATA_DIR))
    listen: str = DEFAULT_LISTEN
    database: str = DEFAULT_DATABASE
    bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL
    shutdown_grace: float = 5.0
    tuning: Tuning = field(default_factory=Tuning)
    ring_size: int = DEFAULT_RING_SIZE  # deltas the admin feed keeps for resume
    ring_bytes: int = DEFAULT_RING_BYTES  # and their (estimated) bytes at most
    retain_versions: int | None = None  # None: keep every version
    # Security: authentication is on when a bootstrap admin token is given.
    admin_token: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # require client certificates signed by it
    # With authentication on, a non-loopback listen needs TLS unless this says the
    # network is trusted (tokens then travel in clear; logged at every start).
    insecure_plaintext: bool = False
    # Limits (values, keys and depth per write are fixed in genconf.domain.schema).
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    streams_per_token: int = DEFAULT_STREAMS_PER_TOKEN
    # Streams not bound to a token (health watches, reflection, every stream without
    # auth) per peer IP address; and open streams of any kind in all.
    streams_per_peer: int = DEFAULT_STREAMS_PER_PEER
    max_streams: int = DEFAULT_MAX_STREAMS
    # Reads one caller (token, or connection without auth) may have waiting for a
    # min_revision this server has not reached; past it they fail RESOURCE_EXHAUSTED.
    waits_per_caller: int = DEFAULT_WAITS_PER_CALLER
    # Batches an admin feed (WatchDeltas) may have waiting for a slow client; past
    # it the stream ends RESOURCE_EXHAUSTED and the client resumes from a revision.
    feed_buffer: int = DEFAULT_FEED_BUFFER
    feed_bytes: int = DEFAULT_FEED_BYTES  # the same limit in (estimated) bytes
    metrics_listen: str | None = None  # HOST:PORT for Prometheus' /metrics (None: off)
    # HOST:PORT for the JSON API and the console (None: off); the same rules as
    # `listen` (loopback without authentication, TLS or --insecure-plaintext off it).
    http_listen: str | None = None
    http_bench: bool = False  # serve the bench's empty HTTP route (genconf bench http-read)
    # Whole-server health is NOT_SERVING after this long without word from the
    # change stream (genconf.readside.readiness).
    stale_after: float = DEFAULT_STALE_AFTER
    # The rollout driver (`genconf.rollout`): this replica's name in its lease and in
    # rollout history (None: HOSTNAME:PID), the lease's length, and how often it looks
    # at its rollouts (0: this replica drives none).
    replica_id: str | None = None
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    rollout_tick: float = DEFAULT_ROLLOUT_TICK
    # More handlers on the same gRPC server, given the cache (the bench's baseline):
    # the caller owns them, so the server imports nothing of theirs.
    extra_handlers: Callable[[grpc.aio.Server, ModelCache], None] | None = None
    # One worker of `genconf serve --workers N` (None: a server of its own). Its parent
    # checked the addresses free and holds them, so the worker binds them with
    # SO_REUSEPORT beside its siblings and skips `check_listen_free`; its health
    # follows the whole fleet's (`FleetHealth`).
    fleet: Fleet | None = None

    @classmethod
    def from_flags(cls, args: argparse.Namespace, **more: Any) -> ServerConfig:
        """The config the parsed serve flags in ``args`` give, plus ``more`` fields."""
        return cls(**server_config_values(args), **more)


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
    metrics_address: str | None = None
    http_address: str | None = None  # host:port the HTTP API actually bound (None: off)
    driver: Driver | None = None  # this replica's rollout driver (None: --rollout-tick 0)


async def _serve_when_synced(running: RunningServer) -> None:
    """SERVING once the cache has synced; then the whole-server status follows
    the change stream (`genconf.readside.readiness`)."""
    await running.read.wait_synced()
    running.phase = Phase.SERVING
    for name in ("", *SERVICE_NAMES):
        await running.health.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("cache synced at revision %d; serving", running.read.cache.revision)
    await follow_readiness(
        running.health, running.read.watcher.stats, stale_after=running.config.stale_after
    )


def rollout_driver(config: ServerConfig, store: Store, cache: ModelCache) -> Driver | None:
    """This replica's rollout driver (None with ``rollout_tick`` 0: it drives none). It
    also expires branches (`Store.expire_branches`), under the same lease: one replica
    at a time, when the cache shows a branch past its expiry."""
    if not config.rollout_tick:
        return None
    replica = config.replica_id or f"{socket.gethostname()}:{os.getpid()}"
    return Driver(
        store,
        cache,
        replica=replica,
        lease_seconds=config.lease_seconds,
        tick=config.rollout_tick,
        maintenance=[branch_expiry(store, cache)],
    )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read the {what} {path}: {exc.strerror}") from None


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """TLS credentials from the configured PEM files (None: plaintext)."""
    if config.tls_cert is None and config.tls_key is None:
        if config.tls_client_ca is not None:
            raise InvalidArgument("--tls-client-ca needs --tls-cert and --tls-key too")
        return None
    if config.tls_cert is None or config.tls_key is None:
        raise InvalidArgument("TLS needs both --tls-cert and --tls-key")
    pair = (_read(config.tls_key, "TLS key"), _read(config.tls_cert, "TLS certificate"))
    client_ca = (
        _read(config.tls_client_ca, "client CA") if config.tls_client_ca is not None else None
    )
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def check_limits(config: ServerConfig) -> None:
    """Refuse settings that would make a limit meaningless, naming the option."""
    if not config.stale_after > 0:
        raise InvalidArgument(f"--stale-after must be > 0 seconds, got {config.stale_after}")
    if not config.rollout_tick >= 0:
        raise InvalidArgument(
            f"--rollout-tick must be 0 (no driver) or more seconds, got {config.rollout_tick}"
        )
    check_lease_seconds(config.lease_seconds)
    for option, value in (
        ("--feed-buffer", config.feed_buffer),
        ("--feed-bytes", config.feed_bytes),
        ("--ring-bytes", config.ring_bytes),
        ("--streams-per-token", config.streams_per_token),
        ("--streams-per-peer", config.streams_per_peer),
        ("--max-streams", config.max_streams),
        ("waits_per_caller", config.waits_per_caller),
        ("--max-request-bytes", config.max_request_bytes),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgument(f"{option} must be a positive whole number, got {value!r}")


def check_transport(config: ServerConfig, *, tls: bool) -> None:
    """With authentication on, a listen off loopback carries bearer tokens: refuse
    plaintext unless ``insecure_plaintext`` says the network is trusted, and then say
    so loudly at every start (before anything binds, so nothing is exposed). The
    HTTP listen, when given, is judged the same way."""
    for listen in (config.listen, config.http_listen):
        if listen is None or config.admin_token is None or tls or is_loopback(listen):
            continue
        if not config.insecure_plaintext:
            raise InvalidArgument(
                f"refusing to take bearer tokens in clear on {listen} (authentication on, "
                "no TLS): give --tls-cert and --tls-key, or --insecure-plaintext if the "
                "network is trusted"
            )
        log.warning(
            "--insecure-plaintext: bearer tokens travel in clear on %s; anyone on the "
            "network path can read and reuse them; use --tls-cert/--tls-key unless the "
            "network is trusted",
            listen,
        )


def address_in_use(listen: str) -> str:
    return f"{listen} is already in use (another genconf serve?)"


def check_listen_free(listen: str) -> None:
    """Refuse an address another process listens on, naming it, before anything
    starts. gRPC, without SO_REUSEPORT, would refuse it too, but only once MongoDB
    and the cache are up, and with a message that does not say why."""
    host, _, port_text = listen.rpartition(":")
    try:
        port = int(port_text)
        infos = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (ValueError, OSError):
        return  # not HOST:PORT, or not resolvable: gRPC's bind says so
    if port == 0:
        return
    for family, kind, proto, _, address in infos:
        try:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC's
                probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise GenconfError(address_in_use(listen)) from None
            # Any other failure (no IPv6 here, say) is gRPC's to judge.


def check_http_listen(config: ServerConfig, *, authenticated: bool) -> None:
    """The HTTP listen obeys the rule of the gRPC one: loopback only without
    authentication; and it cannot be the gRPC address."""
    listen = config.http_listen
    if listen is None:
        return
    split_listen(listen)
    if not authenticated and not is_loopback(listen):
        raise InvalidArgument(
            f"refusing to serve HTTP on {listen} without authentication: give a bootstrap "
            "admin token with --admin-token-file FILE or GENCONF_ADMIN_TOKEN (and TLS with "
            "--tls-cert/--tls-key), or bind to a loopback address such as 127.0.0.1:8080"
        )
    if listen == config.listen and not listen.endswith(":0"):
        raise InvalidArgument(f"--http-listen and --listen are both {listen}: give each its own")


def check_config(
    config: ServerConfig,
) -> tuple[TokenRecord | None, grpc.ServerCredentials | None]:
    """Every refusal that needs nothing started (limits, authentication, transport);
    the bootstrap admin token's record and the TLS credentials. `genconf serve
    --workers N` runs it in the parent too, so a bad setting is said once."""
    check_limits(config)
    # An empty token is a mistake (an empty file, say), never a way to turn auth off.
    bootstrap = bootstrap_record(config.admin_token) if config.admin_token is not None else None
    if bootstrap is None and not is_loopback(config.listen):
        raise InvalidArgument(
            f"refusing to listen on {config.listen} without authentication: give a bootstrap "
            "admin token with --admin-token-file FILE or GENCONF_ADMIN_TOKEN (and TLS with "
            "--tls-cert/--tls-key), or bind to a loopback address such as 127.0.0.1:50051"
        )
    check_http_listen(config, authenticated=bootstrap is not None)
    credentials = server_credentials(config)
    check_transport(config, tls=credentials is not None)
    return bootstrap, credentials


async def mongo_uri_of(config: ServerConfig, stack: AsyncExitStack) -> str:
    """``--mongo-uri``, or else the embedded mongod's, started here on ``--data-dir``
    and stopped when ``stack`` closes."""
    if config.mongo_uri is not None:
        return config.mongo_uri
    embedded = EmbeddedMongo(config.data_dir)
    await anyio.to_thread.run_sync(embedded.start)
    stack.push_async_callback(anyio.to_thread.run_sync, embedded.stop)
    log.info("embedded MongoDB started at %s (data in %s)", embedded.uri, config.data_dir)
    return embedded.uri


async def serve_as_worker(config: ServerConfig, link: WorkerLink) -> None:
    """Serve as one worker of a fleet (``config.fleet`` is ``link``) until a stop
    signal comes or the parent is gone (`genconf.workers`)."""
    with stop_signals() as stop:
        async with anyio.create_task_group() as tg:
            tg.start_soon(link.run)
            async with serve(config) as running:
                with anyio.fail_after(120):
                    await running.read.wait_synced()
                await link.until_stopped(stop)
            tg.cancel_scope.cancel()


@asynccontextmanager
async def serve(config: ServerConfig) -> AsyncIterator[RunningServer]:
    """Run a genconf server until the block exits."""
    bootstrap, credentials = check_config(config)
    if config.fleet is None:  # a worker's parent checked and holds the addresses
        check_listen_free(config.listen)  # before MongoDB: a clash is found at once
        if config.http_listen is not None:
            check_listen_free(config.http_listen)
    async with AsyncExitStack() as stack:
        mongo_uri = await mongo_uri_of(config, stack)
        store = Store.connect(mongo_uri, config.database, retain_versions=config.retain_versions)
        stack.push_async_callback(store.aclose)
        await store.ensure_schema()
        await RolloutStore(store).ensure_schema()
        read = await stack.enter_async_context(
            read_side(
                store.db,
                tuning=config.tuning,
                ring_size=config.ring_size,
                ring_bytes=config.ring_bytes,
                feed_bytes=config.feed_bytes,
            )
        )
        limit_parked_reads(read.cache, config.waits_per_caller)

        health = HealthServicer() if config.fleet is None else FleetHealth(config.fleet)
        for name in ("", *SERVICE_NAMES):
            await health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        guard = Guard(
            read.tokens,
            bootstrap,
            public_keys=read.cache.public_keys,
            streams_per_token=config.streams_per_token,
            streams_per_peer=config.streams_per_peer,
            max_streams=config.max_streams,
        )
        await guard.load_observer_key(store)
        interceptors: list[grpc.aio.ServerInterceptor] = [GuardInterceptor(guard)]
        metrics_address = None
        if config.metrics_listen is not None:
            metrics = Metrics(read)
            interceptors.insert(0, MetricsInterceptor(metrics))
            metrics_address = stack.enter_context(metrics.serve_http(config.metrics_listen))
            log.info("metrics on http://%s/metrics", metrics_address)
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", config.max_request_bytes),
                # Replies up to the one limit clients take in (a large config, twice).
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                # gRPC sets SO_REUSEPORT by default: a second server on a port in use
                # would start, and clients would reach one or the other at random. A
                # worker of a fleet shares its port with its siblings on purpose (its
                # parent holds the port, so no other server can join it).
                ("grpc.so_reuseport", int(config.fleet is not None)),
                # Calls that arrived but that the event loop has not picked up yet:
                # past the soft limit (default 1,000) gRPC cancels new ones at random,
                # so a reconnect storm of 10,000 agents would lose some of them.
                ("grpc.server.max_pending_requests", 50_000),
                ("grpc.server.max_pending_requests_hard_limit", 100_000),
            ],
        )
        # Each service goes on the gRPC server through `services`, which keeps its
        # handlers for the HTTP side: both protocols call the same servicer objects.
        services = MethodTable(server)
        add_agent_service(
            AgentServicer(store, read.cache, bookmark_interval=config.bookmark_interval),
            services,
        )
        controller_pb2_grpc.add_ControllerServiceServicer_to_server(
            ControllerServicer(store, read.cache), services
        )
        admin_pb2_grpc.add_AdminServiceServicer_to_server(
            AdminServicer(read.cache, feed_buffer=config.feed_buffer), services
        )
        history_pb2_grpc.add_HistoryServiceServicer_to_server(
            HistoryServicer(store, History(store.db)), services
        )
        rollout_pb2_grpc.add_RolloutServiceServicer_to_server(
            RolloutServicer(store, read.cache), services
        )
        tokens_pb2_grpc.add_TokenServiceServicer_to_server(
            TokenServicer(store, read.cache, read.tokens), services
        )
        add_transfer_service(store, services)
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        if config.extra_handlers is not None:
            config.extra_handlers(server, read.cache)
        reflection.enable_server_reflection(
            (
                *SERVICE_NAMES,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            server,
        )
        http_address = None
        if config.http_listen is not None:
            # Before gRPC binds, so that the stack stops it if that fails; it stops after
            # `stop_grpc` below has ended the streams, its own included.
            api = HttpApi(
                Gate(services, interceptors),
                read.cache,
                guard,
                health=health,
                max_request_bytes=config.max_request_bytes,
            )
            settings = HttpSettings(
                config.http_listen,
                shutdown_grace=config.shutdown_grace,
                tls_cert=config.tls_cert,
                tls_key=config.tls_key,
                tls_client_ca=config.tls_client_ca,
                bench=config.http_bench,
                reuse_port=config.fleet is not None,
            )
            http_address = await stack.enter_async_context(serve_http(settings, api))
        try:
            if credentials is None:
                port = server.add_insecure_port(config.listen)
            else:
                port = server.add_secure_port(config.listen, credentials)
        except RuntimeError:  # grpcio 1.85 raises; older versions returned 0
            port = 0
        if port == 0:
            await server.stop(None)
            # `check_listen_free` passed: someone took the address since, or gRPC
            # cannot bind it for another reason (its log line above says which).
            raise GenconfError(
                f"cannot listen on {config.listen}: in use (another genconf serve?) "
                "or not an address of this machine"
            )
        host = config.listen.rsplit(":", 1)[0]
        address = f"{host}:{port}"
        await server.start()
        running = RunningServer(
            config,
            address,
            store,
            read,
            health,
            server,
            mongo_uri,
            metrics_address=metrics_address,
            http_address=http_address,
            driver=rollout_driver(config, store, read.cache),
        )
        transport = "TLS" if credentials else "plaintext"
        if guard.enabled:
            log.info("listening on %s (%s); authentication on", address, transport)
        else:
            log.warning(
                "listening on %s (%s) without authentication: loopback only, anyone on this "
                "machine can change config; give --admin-token-file to turn it on",
                address,
                transport,
            )

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
            tg.start_soon(_serve_when_synced, running)
            if isinstance(health, FleetHealth):
                tg.start_soon(health.follow_fleet)
            if running.driver is not None:
                tg.start_soon(running.driver.run)
            if guard.enabled:
                tg.start_soon(guard.sweep_expired)
            try:
                yield running
            finally:
                tg.cancel_scope.cancel()
