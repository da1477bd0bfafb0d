"""`genconf serve --workers N`: N worker processes on one address under one parent.

Real processes throughout: the parent is `genconf serve --workers 2` as a child of
the test, its workers are its own children, and which worker holds a connection is
read from /proc (an ESTABLISHED socket on the port in the worker's fds).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.cli_runner import Genconf, clean_env
from support.procs import processes_mentioning, stop_process, tail
from support.servers import eventually, free_port

from genconf.api.server import SERVICE_NAMES, FleetHealth, address_in_use, check_listen_free
from genconf.backoff import Backoff
from genconf.cli.main import build_parser
from genconf.cli.serve import READY_LINE
from genconf.client import Client
from genconf.errors import GenconfError
from genconf.workers import hold_address, supervise

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
ENDED = -1  # a health watch whose connection went away
SCHEMA = {"port": {"type": "int", "default": 8080}}
# One connection per channel: gRPC shares connections between channels otherwise.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


# -- processes, from /proc ---------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def children(pid: int) -> set[int]:
    """Live child processes of ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == str(pid) and stat[0] not in ("Z", "X"):
                found.add(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def established_on(port: int) -> set[str]:
    """Socket inodes of ESTABLISHED TCP connections whose local port is ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == port and state == "01":
                inodes.add(inode)
    return inodes


def holds_connection(pid: int, port: int) -> bool:
    """``pid`` has an accepted connection on ``port`` among its open files."""
    wanted = {f"socket:[{inode}]" for inode in established_on(port)}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) in wanted:
                return True
        except OSError:
            continue
    return False


# -- a fleet ---------------------------------------------------------------------------


@dataclass
class Fleet:
    proc: asyncio.subprocess.Process
    address: str
    port: int
    pids: list[int]  # as the ready line names them
    banner: list[str]  # what came before the ready line
    log: Path


@asynccontextmanager
async def fleet(tmp_path: Path, *flags: str, workers: int = 2) -> AsyncIterator[Fleet]:
    """`genconf serve --workers N` on a free port, ready; stopped (SIGTERM) afterwards."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    argv = ["serve", "--workers", str(workers), "--listen", address, *flags]
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "genconf.cli.main", *argv,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=clean_env(tmp_path),
        )  # fmt: skip
    assert proc.stdout is not None
    try:
        banner = []
        with anyio.fail_after(60):
            while not (line := (await proc.stdout.readline()).decode()).startswith(READY_LINE):
                assert line, f"exited before its ready line: {tail(log)}"
                banner.append(line)
        ready = re.fullmatch(
            rf"{READY_LINE} {address} \({workers} workers: pids ([0-9, ]+)\)\n", line
        )
        assert ready, line
        pids = [int(pid) for pid in ready[1].split(", ")]
        yield Fleet(proc, address, port, pids, banner, log)
    finally:
        await stop_process(proc)


def mongo_flags(mongo_uri: str, db_name: str) -> list[str]:
    return ["--mongo-uri", mongo_uri, "--database", db_name]


async def own_clients(stack: AsyncExitStack, address: str, count: int) -> list[Client]:
    """``count`` clients, each on a connection of its own (so the kernel spreads them)."""
    clients = []
    for _ in range(count):
        channel = grpc.aio.insecure_channel(address, options=OWN_CONNECTION)
        clients.append(await stack.enter_async_context(Client(address, channel=channel)))
    return clients


async def until(check: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    async def holds() -> bool:
        return check()

    await eventually(holds, what, limit)


# -- the tests -------------------------------------------------------------------------


@pytest.mark.mongo
async def test_two_workers_serve_one_port_with_one_model(
    tmp_path: Path, mongo_uri: str, db_name: str
) -> None:
    http = f"127.0.0.1:{free_port()}"
    async with fleet(tmp_path, *mongo_flags(mongo_uri, db_name), "--http-listen", http) as f:
        assert len(set(f.pids)) == 2 and children(f.proc.pid) == set(f.pids)
        async with AsyncExitStack() as stack:
            clients = await own_clients(stack, f.address, 20)
            assert {await c.health() for c in clients} == {"SERVING"}
            created = await clients[3].create_application("shop", schema=SCHEMA, units=1)
            for c in clients:  # every worker's cache has it
                assert (await c.get_config("shop/0", min_revision=created.revision)).config == {
                    "port": 8080
                }
            moved = await clients[11].set_config("shop", {"port": 9090}, reason="test")
            for c in clients:
                got = await c.get_config("shop/0", min_revision=moved.revision)
                assert got.config == {"port": 9090}
            # Both workers took some of the 20 connections: one port, two processes.
            assert {pid for pid in f.pids if holds_connection(pid, f.port)} == set(f.pids)
        # The HTTP side shares its port the same way.
        for _ in range(4):
            reply = await anyio.to_thread.run_sync(
                _get, f"http://{http}/api/v1/health", abandon_on_cancel=True
            )
            assert reply == '{"status":"SERVING"}'


def _get(url: str) -> str:
    """The body of a GET, whatever its status."""
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return str(reply.read().decode())
    except urllib.error.HTTPError as exc:
        return str(exc.read().decode())


async def until_http(http: str, status: str) -> None:
    """Until GET /api/v1/health on a new connection answers ``status``."""

    async def answers() -> bool:
        try:
            body = await anyio.to_thread.run_sync(_get, f"http://{http}/api/v1/health")
        except OSError:
            return False  # reset or refused: the killed worker's socket
        return bool(json.loads(body)["status"] == status)

    await eventually(answers, f"HTTP health {status}", 30)


@pytest.mark.mongo
async def test_a_killed_worker_is_replaced_and_health_dips_meanwhile(
    tmp_path: Path, mongo_uri: str, db_name: str
) -> None:
    http = f"127.0.0.1:{free_port()}"
    flags = [*mongo_flags(mongo_uri, db_name), "--http-listen", http]
    async with fleet(tmp_path, *flags) as f, AsyncExitStack() as stack:
        watchers = await own_clients(stack, f.address, 10)
        agents = await own_clients(stack, f.address, 10)
        created = await watchers[0].create_application("shop", schema=SCHEMA, units=1)
        seen: list[list[int]] = [[] for _ in watchers]
        configs: list[list[int]] = [[] for _ in agents]

        async def watch_health(client: Client, out: list[int]) -> None:
            stub = health_pb2_grpc.HealthStub(client.channel)
            try:
                async for reply in stub.Watch(health_pb2.HealthCheckRequest(service="")):
                    out.append(reply.status)
            except grpc.aio.AioRpcError:
                out.append(ENDED)

        async def agent(client: Client, out: list[int]) -> None:
            async for config in client.watch_config("shop/0", min_revision=created.revision):
                out.append(config.config["port"])

        async with anyio.create_task_group() as tg:
            for client, out in zip(watchers, seen, strict=True):
                tg.start_soon(watch_health, client, out)
            for client, ports in zip(agents, configs, strict=True):
                tg.start_soon(agent, client, ports)
            await until(lambda: all(s == [SERVING] for s in seen), "every watch SERVING")
            await until(lambda: all(c == [8080] for c in configs), "every agent has its config")

            victim, survivor = f.pids
            os.kill(victim, signal.SIGKILL)
            # The HTTP health route agrees, on either worker (the victim's refuses).
            await until_http(http, "NOT_SERVING")
            fresh = lambda: children(f.proc.pid) - {survivor, victim}  # noqa: E731
            await until(lambda: len(fresh()) == 1, "a new worker")
            (replacement,) = fresh()
            assert not alive(victim) and survivor in children(f.proc.pid)
            # Watches on the survivor saw the fleet go NOT_SERVING, then SERVING once the
            # replacement served; those on the victim ended with it.
            await until(
                lambda: all(s[-1] in (SERVING, ENDED) and len(s) > 1 for s in seen),
                "every watch SERVING again or ended",
            )
            assert {tuple(s) for s in seen} <= {(SERVING, NOT_SERVING, SERVING), (SERVING, ENDED)}
            assert (SERVING, NOT_SERVING, SERVING) in {tuple(s) for s in seen}
            assert {await c.health() for c in watchers} == {"SERVING"}  # reconnected
            await until_http(http, "SERVING")

            # Agents reconnect (those that were on the victim too) and follow a change.
            await watchers[0].set_config("shop", {"port": 9090}, reason="after the restart")
            await until(lambda: all(c[-1] == 9090 for c in configs), "every agent saw 9090")
            tg.cancel_scope.cancel()
        logged = f.log.read_text()
        assert f"worker 0 (pid {victim}) exited with signal SIGKILL; starting it again" in logged
        assert f"worker 0 started (pid {replacement})" in logged


@pytest.mark.mongo
async def test_ctrl_c_leaves_no_worker_and_no_mongod(tmp_path: Path) -> None:
    """With the embedded MongoDB (started once, by the parent) and the demo (loaded
    once, its banner printed once)."""
    async with fleet(tmp_path, "--data-dir", str(tmp_path / "data"), "--demo") as f:
        started = children(f.proc.pid)
        mongods = {pid for pid in started if Path(cmdline(pid).split()[0]).name == "mongod"}
        assert len(mongods) == 1 and started == set(f.pids) | mongods
        assert sum("loaded the demo model" in line for line in f.banner) == 1
        assert all("--mongo-uri mongodb://" in cmdline(pid) for pid in f.pids)

        f.proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(f.proc.wait(), 30) == 0, tail(f.log)
        assert [pid for pid in started if alive(pid)] == []
        assert f.proc.stdout is not None
        assert await f.proc.stdout.read() == b""  # banner and ready line once, nothing else
        assert "received SIGINT; stopping 2 workers" in f.log.read_text()


@pytest.mark.mongo
async def test_a_second_server_on_the_port_is_refused(
    tmp_path: Path, mongo_uri: str, db_name: str
) -> None:
    """By one process or by another fleet, with the message a one-process serve gives."""
    async with fleet(tmp_path, *mongo_flags(mongo_uri, db_name)) as f:
        genconf = Genconf(None, clean_env(tmp_path))
        second = ["serve", "--listen", f.address, *mongo_flags(mongo_uri, db_name)]
        runs = await genconf.all([*second, "--workers", "1"], [*second, "--workers", "2"])
        for run in runs:
            assert run.rc == 1, run.err
            assert f"error: {address_in_use(f.address)}" in run.err
        assert children(f.proc.pid) == set(f.pids)
        async with Client(f.address, channel=grpc.aio.insecure_channel(f.address)) as c:
            assert await c.health() == "SERVING"


@pytest.mark.mongo
async def test_workers_stop_when_their_parent_is_killed(
    tmp_path: Path, mongo_uri: str, db_name: str
) -> None:
    async with fleet(tmp_path, *mongo_flags(mongo_uri, db_name)) as f:
        os.kill(f.proc.pid, signal.SIGKILL)
        await f.proc.wait()
        await until(lambda: not any(alive(pid) for pid in f.pids), "the workers exited", 20)
    assert "the parent process is gone; shutting down" in f.log.read_text()


@pytest.mark.mongo
async def test_metrics_with_several_workers_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    genconf = Genconf(None, clean_env(tmp_path))
    run = await genconf(
        "serve", "--workers", "2", "--metrics-listen", "127.0.0.1:0",
        "--data-dir", str(tmp_path / "data"), "--listen", "127.0.0.1:0",
    )  # fmt: skip
    assert run.rc == 1
    assert "error: --metrics-listen serves one process's metrics" in run.err
    assert not (tmp_path / "data").exists()  # no mongod was started


def test_workers_is_a_number_or_auto(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["serve"]).workers == 1
    assert parser.parse_args(["serve", "--workers", "auto"]).workers == (os.cpu_count() or 1)
    assert parser.parse_args(["serve", "--workers", "3"]).workers == 3
    for bad, message in (
        ("0", "expected a number >= 1 or auto, got 0"),
        ("two", "expected a number >= 1 or auto, got 'two'"),
    ):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args(["serve", "--workers", bad])
        assert exc.value.code == 2
        assert f"argument --workers: {message}" in capsys.readouterr().err


def test_the_held_port_refuses_other_servers_but_takes_no_connection() -> None:
    """The parent's socket: bound, never listening. The free-check of another server
    (or of another fleet's parent) fails, a worker (SO_REUSEPORT) binds beside it, and
    a client that connects while no worker listens is refused rather than queued."""
    with hold_address("127.0.0.1:0") as address:
        host, port = address.rsplit(":", 1)
        with pytest.raises(GenconfError) as refused:
            check_listen_free(address)
        assert str(refused.value) == address_in_use(address)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, int(port)), timeout=5).close()
        with socket.socket() as worker:
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind((host, int(port)))
            worker.listen()
            with socket.create_connection((host, int(port)), timeout=5):
                conn, _ = worker.accept()
                conn.close()
    check_listen_free(address)  # released on the way out


class FakeFleet:
    """A `genconf.api.server.Fleet` the test drives."""

    def __init__(self) -> None:
        self.reports: list[bool] = []
        self.serving = False
        self._changed = anyio.Event()

    def report(self, serving: bool) -> None:
        self.reports.append(serving)

    async def changes(self) -> AsyncIterator[bool]:
        while True:
            changed = self._changed
            yield self.serving
            await changed.wait()

    def set(self, serving: bool) -> None:
        self.serving = serving
        self._changed.set()
        self._changed = anyio.Event()


async def test_a_worker_is_serving_only_while_the_whole_fleet_is() -> None:
    fake = FakeFleet()
    health = FleetHealth(fake)
    names = ("", *SERVICE_NAMES)

    async def statuses() -> set[int]:
        await anyio.wait_all_tasks_blocked()  # `follow_fleet` has taken the change in
        replies = [
            await health.Check(health_pb2.HealthCheckRequest(service=n), None) for n in names
        ]
        return {reply.status for reply in replies}

    async with anyio.create_task_group() as tg:
        tg.start_soon(health.follow_fleet)
        for name in names:
            await health.set(name, SERVING)
        assert fake.reports == [True]  # its own whole-server status, told the fleet
        assert await statuses() == {NOT_SERVING}  # the fleet is not all serving yet
        fake.set(True)
        assert await statuses() == {SERVING}
        await health.set("", NOT_SERVING)  # its own stream fell behind
        assert fake.reports == [True, False]
        assert (await health.Check(health_pb2.HealthCheckRequest(service=""), None)).status == (
            NOT_SERVING
        )
        await health.set("", SERVING)
        fake.set(False)  # another worker is down
        assert await statuses() == {NOT_SERVING}
        fake.set(True)
        assert await statuses() == {SERVING}
        await health.enter_graceful_shutdown()
        assert fake.reports == [True, False, True, False]
        assert await statuses() == {NOT_SERVING}
        tg.cancel_scope.cancel()


@pytest.mark.mongo
async def test_a_worker_that_cannot_start_fails_the_fleet(
    tmp_path: Path, mongo_uri: str, db_name: str
) -> None:
    """A certificate that is not one: the parent's checks read the file, the workers'
    HTTP side refuses it; the parent then exits 1, naming the worker, and leaves none."""
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    genconf = Genconf(None, clean_env(tmp_path))
    run = await genconf(
        "serve", "--workers", "2", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
        "--tls-cert", str(bad), "--tls-key", str(bad), *mongo_flags(mongo_uri, db_name),
    )  # fmt: skip
    assert run.rc == 1, run.err
    assert re.search(
        r"error: worker \d \(pid (\d+)\) exited with status 1 before it was ready", run.err
    )
    assert processes_mentioning(str(bad)) == {}


def test_connections_in_time_wait_do_not_stop_the_hold(caplog: pytest.LogCaptureFixture) -> None:
    """A one-process server stopped a moment ago leaves its side of closed
    connections in TIME_WAIT: the port is free to listen on, so it can be held."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC's
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            accepted, _ = server.accept()
            accepted.close()  # the server's side closes first: TIME_WAIT on its port
            assert client.recv(1) == b""
    with caplog.at_level("INFO", "genconf.workers"), hold_address(f"127.0.0.1:{port}") as address:
        assert address == f"127.0.0.1:{port}"
    assert f"port {port} has connections of an earlier server in TIME_WAIT" in caplog.text


# -- the supervisor alone, with workers of a few lines (as another server would) --------

# A worker: serving at once, until its parent's pipe ends or SIGTERM.
TINY_WORKER = "import sys; print('serving', flush=True); sys.stdin.read()"
QUICK = Backoff(initial=0.01, maximum=0.02)


async def test_the_supervisor_restarts_any_worker_and_stops_them_all() -> None:
    async with supervise(lambda i: [sys.executable, "-c", TINY_WORKER], 2, backoff=QUICK) as sup:
        with anyio.fail_after(30):
            await sup.wait_ready()
        first = sup.pids
        assert len(first) == 2 and sup.all_serving and children(os.getpid()) >= set(first)
        os.kill(first[1], signal.SIGKILL)
        await until(lambda: len(sup.pids) == 2 and sup.pids[1] != first[1], "a new worker 1")
        await until(lambda: sup.all_serving, "serving again")
        assert sup.pids[0] == first[0]
        last = sup.pids
    assert [pid for pid in [*first, *last] if alive(pid)] == []


async def test_a_worker_that_cannot_even_start_fails_the_fleet(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-program")
    async with supervise(lambda i: [missing], 2, backoff=QUICK) as sup:
        with anyio.fail_after(30), pytest.raises(GenconfError) as failed:
            await sup.wait_ready()
    assert re.fullmatch(
        r"worker \d could not start: .*no-such-program.* before it was ready", str(failed.value)
    )
