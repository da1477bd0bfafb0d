"""Server lifecycle: restarts under watching agents, the `genconf serve` command with
its embedded MongoDB, health, shutdown, and generated code freshness."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from support.procs import lines_of, processes_mentioning
from support.servers import free_port, running_server

from genconf.api.server import Phase, RunningServer, ServerConfig, serve
from genconf.backoff import Backoff
from genconf.client import Client
from genconf.dev import protogen
from genconf.errors import ClientError, InvalidArgument
from genconf.store.store import Store
from genconf.v1 import agent_pb2, agent_pb2_grpc, controller_pb2, controller_pb2_grpc

SCHEMA: dict[str, Any] = {"k": {"type": "int", "default": 1}}
AGENTS = 100


def test_generated_protobuf_code_is_fresh() -> None:
    assert protogen.stale() == [], "run `make protos` and commit service/genconf/v1"


async def test_refuses_a_non_loopback_listen_without_auth(db_name: str) -> None:
    config = ServerConfig(mongo_uri="mongodb://127.0.0.1:1", database=db_name, listen="0.0.0.0:0")
    with pytest.raises(InvalidArgument, match="refusing to listen"):
        async with serve(config):
            pass


@pytest.mark.parametrize("stale_after", [0.0, -1.0])
async def test_refuses_a_stale_after_that_is_not_positive(db_name: str, stale_after: float) -> None:
    config = ServerConfig(
        mongo_uri="mongodb://127.0.0.1:1", database=db_name, stale_after=stale_after
    )
    with pytest.raises(InvalidArgument, match="--stale-after must be > 0"):
        async with serve(config):
            pass


class Progress:
    """How many agents have seen at least n configs, with an event per n."""

    def __init__(self, agents: int, levels: int) -> None:
        self.agents = agents
        self.count = [0] * (levels + 1)
        self.reached = [anyio.Event() for _ in range(levels + 1)]

    def saw(self, n: int) -> None:
        if n < len(self.count):
            self.count[n] += 1
            if self.count[n] == self.agents:
                self.reached[n].set()

    async def wait(self, n: int, limit: float = 30) -> None:
        with anyio.fail_after(limit):
            await self.reached[n].wait()


async def test_agents_follow_a_server_restart_on_the_same_port(
    mongo_uri: str, db_name: str
) -> None:
    """100 agents watch; the server stops (streams end UNAVAILABLE), a write lands while
    it is down, a new server starts on the same port and another write follows. Every
    agent sees each config once, in write order, and ends on the current one."""
    listen = f"127.0.0.1:{free_port()}"
    seen: dict[str, list[str]] = {f"web/{n}": [] for n in range(AGENTS)}
    progress = Progress(AGENTS, 3)
    scopes: list[anyio.CancelScope] = []
    agents = [
        Client(listen, timeout=10, backoff=Backoff(initial=0.05, maximum=0.5)) for _ in range(4)
    ]

    async def agent(client: Client, unit: str) -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            async for config in client.watch_config(unit):
                seen[unit].append(config.hash)
                progress.saw(len(seen[unit]))

    try:
        async with anyio.create_task_group() as tg:
            async with running_server(mongo_uri, db_name, listen=listen) as first:
                assert first.address == listen and first.phase is Phase.SERVING
                async with Client(listen, timeout=10) as admin:
                    created = await admin.create_application("web", schema=SCHEMA, units=AGENTS)
                    h0 = (await admin.get_config("web/0", min_revision=created.revision)).hash
                for n, unit in enumerate(seen):
                    tg.start_soon(agent, agents[n % len(agents)], unit)
                await progress.wait(1)
                # One more stream, raw, to see how streams end when the server stops.
                raw_call = agent_pb2_grpc.AgentServiceStub(agents[0].channel).WatchConfig(
                    agent_pb2.WatchConfigRequest(unit="web/0")
                )
                assert (await raw_call.read()).config.hash == h0
            assert first.phase is Phase.STOPPED
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                with anyio.fail_after(5):
                    while await raw_call.read() is not grpc.aio.EOF:
                        pass
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE

            # Down: write straight to MongoDB; nobody is serving the change.
            store = Store.connect(mongo_uri, db_name)
            try:
                while_down = await store.set_config("web", set={"k": 2})
            finally:
                await store.aclose()
            assert all(len(hashes) == 1 for hashes in seen.values())

            async with running_server(mongo_uri, db_name, listen=listen) as second:
                async with Client(listen, timeout=10) as admin:
                    await progress.wait(2)  # every agent reconnected and caught up
                    h1 = (await admin.get_config("web/0", min_revision=while_down.revision)).hash
                    after = await admin.set_config("web", {"k": 3})
                    await progress.wait(3)
                    final = await admin.get_config("web/0", min_revision=after.revision)
                    assert dict(final.config) == {"k": 3}
                for scope in scopes:
                    scope.cancel()
                assert second.phase is Phase.SERVING
    finally:
        for client in agents:
            await client.aclose()

    assert len({h0, h1, final.hash}) == 3
    wrong = {unit: hashes for unit, hashes in seen.items() if hashes != [h0, h1, final.hash]}
    assert not wrong, (
        f"{len(wrong)} agent(s) saw another sequence, e.g. {next(iter(wrong.items()))}"
    )


async def test_watch_config_without_reconnect_raises_unavailable_on_shutdown(
    mongo_uri: str, db_name: str
) -> None:
    async with AsyncExitStack() as stack:  # the client outlives the server
        async with running_server(mongo_uri, db_name) as srv:
            client = await stack.enter_async_context(Client(srv.address, timeout=10))
            created = await client.create_application("web", schema=SCHEMA, units=1)
            watch = client.watch_config("web/0", reconnect=False, min_revision=created.revision)
            stack.push_async_callback(watch.aclose)  # type: ignore[attr-defined]
            first = await anext(watch)
        with anyio.fail_after(5), pytest.raises(ClientError) as caught:
            await anext(watch)
    assert first.unit == "web/0"
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


# -- the `genconf serve` command ------------------------------------------------------


def health_statuses(address: str, deadline: float) -> Iterator[str]:
    """gRPC health of a starting server until SERVING: yields each status as it changes.

    No polling: one Check first (UNAVAILABLE while nothing listens yet), then the
    channel's own connectivity event says when the server accepts connections, and
    Health.Watch reports every status change from there."""
    options = [
        ("grpc.initial_reconnect_backoff_ms", 50),
        ("grpc.min_reconnect_backoff_ms", 50),
        ("grpc.max_reconnect_backoff_ms", 200),
    ]
    request = health_pb2.HealthCheckRequest()
    with grpc.insecure_channel(address, options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            last = status_name(stub.Check(request, timeout=1).status)
        except grpc.RpcError as exc:
            last = exc.code().name  # type: ignore[attr-defined]
        yield last
        if last == "SERVING":
            return
        try:
            grpc.channel_ready_future(channel).result(timeout=left(deadline))
        except grpc.FutureTimeoutError:
            raise AssertionError(
                f"{address} accepted no connection in time (last: {last})"
            ) from None
        try:
            for reply in stub.Watch(request, timeout=left(deadline)):
                status = status_name(reply.status)
                if status != last:
                    yield status
                    last = status
                if status == "SERVING":
                    return
        except grpc.RpcError as exc:
            code = exc.code().name  # type: ignore[attr-defined]
            raise AssertionError(f"{address}: health watch ended {code} (last: {last})") from exc
    raise AssertionError(f"{address}: health watch ended before SERVING (last: {last})")


def status_name(status: int) -> str:
    return health_pb2.HealthCheckResponse.ServingStatus.Name(status)


def left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


@pytest.mark.mongo  # starts its own mongod
def test_genconf_serve_with_embedded_mongodb(tmp_path: Path) -> None:
    """`genconf serve` without --mongo-uri: embedded mongod, health NOT_SERVING ->
    SERVING, the ready line, then SIGTERM: open watches end UNAVAILABLE, exit 0, and
    no mongod is left behind."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    data_dir = tmp_path / "genconf-data"
    stderr_path = tmp_path / "stderr.log"
    argv = [sys.executable, "-m", "genconf.cli.main", "serve", "--listen", address]
    argv += ["--data-dir", str(data_dir), "--bookmark-interval", "0.2"]
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True)
    mongods: dict[int, str] = {}
    try:
        assert proc.stdout is not None
        stdout = lines_of(proc.stdout)
        statuses = list(health_statuses(address, time.monotonic() + 90))
        assert statuses[-1] == "SERVING"
        assert statuses[0] in ("UNAVAILABLE", "NOT_SERVING"), statuses
        assert "DEADLINE_EXCEEDED" not in statuses

        ready = stdout.get(timeout=30)
        assert ready is not None and ready.startswith(f"genconf is ready on {address}"), ready

        mongods = {p: c for p, c in processes_mentioning(str(data_dir)).items() if p != proc.pid}
        assert mongods, "the embedded mongod should run with its dbpath in the data dir"
        assert all(Path(cmd.split()[0]).name == "mongod" for cmd in mongods.values()), mongods

        with grpc.insecure_channel(address) as channel:
            controller = controller_pb2_grpc.ControllerServiceStub(channel)
            written = controller.CreateApplication(
                controller_pb2.CreateApplicationRequest(name="web", units=1), timeout=10
            )
            agent = agent_pb2_grpc.AgentServiceStub(channel)
            watch = agent.WatchConfig(
                agent_pb2.WatchConfigRequest(unit="web/0", min_revision=written.revision),
                timeout=60,
            )
            first = next(watch)
            assert first.config.unit == "web/0"
            assert next(watch).HasField("bookmark")  # the stream is live

            proc.send_signal(signal.SIGTERM)
            with pytest.raises(grpc.RpcError) as ended:
                for _ in watch:
                    pass
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]

        assert proc.wait(timeout=60) == 0, stderr_path.read_text()[-3000:]
        left = processes_mentioning(str(data_dir))
        assert not left, f"processes left behind: {left}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        # Only if the test failed: the mongod our genconf started (by PID, found by
        # its dbpath in this test's own temporary directory).
        for pid in processes_mentioning(str(data_dir)):
            os.kill(pid, signal.SIGKILL)


async def test_reflection_lists_every_service(srv: RunningServer) -> None:
    async with grpc.aio.insecure_channel(srv.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        reply = await call.read()
        call.cancel()
    names = {s.name for s in reply.list_services_response.service}
    assert {
        "genconf.v1.AgentService",
        "genconf.v1.ControllerService",
        "genconf.v1.AdminService",
        "grpc.health.v1.Health",
    } <= names
