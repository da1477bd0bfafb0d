"""Tokens never travel in clear off loopback, and every stream kind is bounded.

Real mongod, real servers. The server with ``--insecure-plaintext`` listens on a
non-loopback address of this machine (0.0.0.0 only when it has none) for the
instant of one test, with authentication on; every other refusal happens before
anything binds or connects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.cli_runner import Genconf, clean_env
from support.procs import stop_process
from support.rpcs import CALL_TIMEOUT, bearer
from support.servers import BOOTSTRAP, running_server, server_config, wait_serving
from support.streams import EXHAUSTED, WAIT, first_reply, until_admitted
from support.tls_certs import CertificateAuthority

from genconf.api.server import check_transport, serve
from genconf.cli import main as cli
from genconf.cli.framework import Ctx
from genconf.cli.output import ColorMode, Format, Output
from genconf.cli.settings import resolve
from genconf.client import Client
from genconf.errors import ConfigFileError, GenconfError, InvalidArgument
from genconf.v1 import admin_pb2, admin_pb2_grpc, agent_pb2, agent_pb2_grpc

REMOTE = "10.1.2.3:50051"  # never connected to: every refusal comes first
NO_MONGO = "mongodb://127.0.0.1:1"  # nothing there: a refusal must come before MongoDB


def lan_address() -> str:
    """A non-loopback IPv4 address of this machine, else 0.0.0.0 (which counts as
    non-loopback too). Connecting a UDP socket sends nothing: it only picks the
    address the machine would send from."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: any route will do
            host = str(probe.getsockname()[0])
    except OSError:
        return "0.0.0.0"
    return "0.0.0.0" if ipaddress.ip_address(host).is_loopback else host


# -- the server: tokens in clear off loopback only when told --------------------------------


def test_check_transport_needs_tls_or_the_flag_off_loopback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="genconf.api.server")
    auth = {"admin_token": BOOTSTRAP}
    for listen in ("0.0.0.0:50051", "[::]:50051", "192.0.2.2:50051", "genconf.example:1"):
        with pytest.raises(InvalidArgument) as caught:
            check_transport(server_config(NO_MONGO, "x", listen=listen, **auth), tls=False)
        message = caught.value.message
        assert listen in message and "\n" not in message
        assert "--tls-cert" in message and "--tls-key" in message  # both fixes
        assert "--insecure-plaintext" in message
    assert not caplog.records
    fine = (
        ({"listen": "0.0.0.0:1", **auth}, True),  # TLS
        ({"listen": "127.0.0.1:1", **auth}, False),  # loopback
        ({"listen": "localhost:1", **auth}, False),
        ({"listen": "[::1]:1", **auth}, False),
        ({"listen": "127.0.0.1:1"}, False),  # no tokens at all
    )
    for overrides, tls in fine:
        check_transport(server_config(NO_MONGO, "x", **overrides), tls=tls)
    assert not caplog.records, "nothing to warn about"
    told = server_config(NO_MONGO, "x", listen="0.0.0.0:1", insecure_plaintext=True, **auth)
    check_transport(told, tls=False)
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING and "0.0.0.0:1" in warning.getMessage()
    assert "--insecure-plaintext" in warning.getMessage() and "in clear" in warning.getMessage()


async def test_serve_with_auth_on_a_network_address_refuses_plaintext_before_anything(
    db_name: str, tmp_path: Path
) -> None:
    """Refused before MongoDB (there is none at NO_MONGO) and before binding."""
    listen = f"{lan_address()}:0"
    config = server_config(NO_MONGO, db_name, listen=listen, admin_token=BOOTSTRAP)
    with pytest.raises(InvalidArgument, match="--insecure-plaintext") as caught:
        async with serve(config):
            raise AssertionError("started with tokens in clear")
    assert listen in caught.value.message
    # The same from the command line: exit 1, one line naming both fixes.
    token_file = tmp_path / "admin-token"
    token_file.write_text(BOOTSTRAP)
    run = Genconf(None, clean_env(tmp_path))
    done = await run(
        "serve", "--mongo-uri", NO_MONGO, "--database", db_name, "--listen", listen,
        "--admin-token-file", str(token_file),
    )  # fmt: skip
    assert done.rc == 1 and done.out == "", done
    [line] = done.err.splitlines()
    assert line.startswith(f"error: refusing to take bearer tokens in clear on {listen}"), line
    assert "--tls-cert and --tls-key, or --insecure-plaintext" in line


async def agent_applied(admin: Client, unit: str, hash_: str) -> None:
    """Until ``unit`` reports ``hash_`` applied: the snapshot, then the admin feed."""
    with anyio.fail_after(WAIT):
        snapshot = await admin.snapshot()
        if any(u.name == unit and u.applied.hash == hash_ for u in snapshot.units):
            return
        async for batch in admin.watch_deltas(since_revision=snapshot.revision, kinds=["unit"]):
            if any(d.key == unit and d.unit.applied.hash == hash_ for d in batch.deltas):
                return
    raise AssertionError("the admin feed ended")


@asynccontextmanager
async def agent_process(argv: list[str], log: Path) -> AsyncIterator[None]:
    """`genconf agent ARGV` as a subprocess, stopped (SIGTERM, else SIGKILL) after."""
    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "genconf.cli.main", "agent", *argv,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    try:
        yield
    finally:
        await stop_process(proc)


async def test_insecure_plaintext_starts_warns_and_lets_told_clients_send_tokens(
    mongo_uri: str, db_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="genconf")
    host = lan_address()
    config = server_config(
        mongo_uri, db_name, listen=f"{host}:0", admin_token=BOOTSTRAP, insecure_plaintext=True
    )
    async with AsyncExitStack() as stack:
        srv = await stack.enter_async_context(serve(config))
        port = srv.address.rsplit(":", 1)[1]
        target = f"{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
        await wait_serving(target)
        warnings = [
            r
            for r in caplog.records
            if r.name == "genconf.api.server" and "--insecure-plaintext" in r.getMessage()
        ]
        assert [w.levelno for w in warnings] == [logging.WARNING]
        assert f"{host}:0" in warnings[0].getMessage()
        if host != "0.0.0.0":  # a client not told refuses, before any call
            with pytest.raises(GenconfError, match=f"in clear to {target}"):
                Client(target, token=BOOTSTRAP)
        admin = await stack.enter_async_context(
            Client(target, token=BOOTSTRAP, insecure_plaintext=True, timeout=CALL_TIMEOUT)
        )
        created = await admin.create_application("web", units=1)
        agent_token = (await admin.create_token("agent", unit="web/0")).token
        config_hash = (await admin.get_config("web/0", min_revision=created.revision)).hash
        # The command line: the global flag, the environment and the config file, and
        # the agent (its client is made by `genconf agent`, not by the handlers' Ctx).
        conf_file = tmp_path / "genconf.yaml"
        conf_file.write_text("insecure_plaintext: true\n")
        run = Genconf(target, clean_env(tmp_path, GENCONF_TOKEN=BOOTSTRAP))
        told_by_env = clean_env(tmp_path, GENCONF_TOKEN=BOOTSTRAP, GENCONF_INSECURE_PLAINTEXT="yes")
        refused, flag, env, from_file = await asyncio.gather(
            run("app", "list"),
            run("app", "list", "--insecure-plaintext", "-o", "json"),
            run("app", "list", "-o", "json", env=told_by_env),
            run("app", "list", "-o", "json", "--config", str(conf_file)),
        )
        for done in (flag, env, from_file):
            assert [a["name"] for a in done.json()] == ["web"], done
        if host != "0.0.0.0":  # else the target is loopback: nothing to refuse or say
            assert refused.rc == 1 and "refusing to send a token in clear" in refused.err
            assert "sending the token in clear" in flag.err  # the client says so too
        path = tmp_path / "web-0.json"
        agent_argv = ["--server", target, "--token", agent_token, "--unit", "web/0"]
        agent_argv += ["--write", str(path), "--insecure-plaintext"]
        async with agent_process(agent_argv, tmp_path / "agent.log"):
            await agent_applied(admin, "web/0", config_hash)
        assert path.is_file()


# -- the client: refuses before any call -----------------------------------------------------


async def test_the_client_refuses_a_token_in_clear_off_loopback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for target in (REMOTE, "genconf.example:50051", "127.0.0.1:1,10.1.2.3:1", "[fd00::9]:1"):
        with pytest.raises(GenconfError) as caught:
            Client(target, token="some-token-0123456789")
        assert caught.value.message == (
            f"refusing to send a token in clear to {target}: use --tls-ca, or "
            "--insecure-plaintext if the network is trusted"
        )
    ca = CertificateAuthority(tmp_path, "transport")
    allowed: list[tuple[str, dict[str, Any]]] = [
        (REMOTE, {"insecure_plaintext": True}),
        (REMOTE, {"tls_ca": str(ca.cert_path)}),
        (REMOTE, {"token": None}),  # nothing secret to send
        ("127.0.0.1:1", {}),
        ("localhost:1", {}),
        ("[::1]:1", {}),
        ("127.0.0.1:1,127.0.0.2:1", {}),
    ]
    caplog.set_level(logging.WARNING, logger="genconf.client.channel")
    for target, extra in allowed:
        kwargs: dict[str, Any] = {"token": "some-token-0123456789", **extra}
        async with Client(target, **kwargs):
            pass
    [warning] = caplog.records  # the one told to send in clear says it does
    assert REMOTE in warning.getMessage() and "--insecure-plaintext" in warning.getMessage()


async def test_cli_settings_carry_the_flag_to_the_client(tmp_path: Path) -> None:
    """Flag, then environment, then config file; a bad value is a usage error."""
    conf = tmp_path / "conf.yaml"
    conf.write_text("insecure_plaintext: true\n")
    text_conf = tmp_path / "text.yaml"
    text_conf.write_text("insecure_plaintext: 'off'\n")
    bad_conf = tmp_path / "bad.yaml"
    bad_conf.write_text("insecure_plaintext: sometimes\n")
    env = clean_env(tmp_path)
    cases: list[tuple[dict[str, Any], dict[str, str], bool]] = [
        ({}, {}, False),
        ({"insecure_plaintext": True}, {}, True),
        ({}, {"GENCONF_INSECURE_PLAINTEXT": "1"}, True),
        ({}, {"GENCONF_INSECURE_PLAINTEXT": "no"}, False),
        ({"config": str(conf)}, {}, True),
        ({"config": str(text_conf)}, {}, False),
        ({"config": str(conf)}, {"GENCONF_INSECURE_PLAINTEXT": "false"}, False),
        ({"config": str(text_conf), "insecure_plaintext": True}, {}, True),
    ]
    for flags, extra, expected in cases:
        settings = resolve({"server": REMOTE, "token": "t" * 20, **flags}, {**env, **extra})
        assert settings.insecure_plaintext is expected, (flags, extra)
        ctx = Ctx(settings, Output.for_stream(Format.JSON, ColorMode.NEVER))
        if expected:
            await ctx.client.aclose()
        else:
            with pytest.raises(GenconfError, match="refusing to send a token in clear"):
                _ = ctx.client
    for flags, extra in (
        ({}, {"GENCONF_INSECURE_PLAINTEXT": "maybe"}),
        ({"config": str(bad_conf)}, {}),
    ):
        with pytest.raises(ConfigFileError, match="must be true or false"):
            resolve(flags, {**env, **extra})


def test_commands_and_the_agent_refuse_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GENCONF_INSECURE_PLAINTEXT", "GENCONF_CONFIG", "GENCONF_TLS_CA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    common = ["--server", REMOTE, "--token", "t" * 20]
    path = str(tmp_path / "web-0.json")
    for argv in (
        [*common, "app", "list"],
        ["agent", *common, "--unit", "web/0", "--write", path],
    ):
        assert cli.main(argv) == 1, argv
        err = capsys.readouterr().err
        assert f"error: refusing to send a token in clear to {REMOTE}: use --tls-ca" in err


# -- stream limits: the health watch and the global cap ----------------------------------------


def health_watch(channel: grpc.aio.Channel) -> Any:
    return health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=WAIT)


async def admitted(open_call: Callable[[], Any], opened: list[Any]) -> Any:
    """A new stream, once the server admits one (`support.streams.until_admitted`)."""
    call, code, details = await until_admitted(open_call, opened)
    assert code == grpc.StatusCode.OK, details
    return call


async def test_the_health_watch_is_limited_per_peer(mongo_uri: str, db_name: str) -> None:
    """Health.Watch needs no token; its streams count against the peer's address,
    over however many connections."""
    limit = 5
    async with (
        running_server(mongo_uri, db_name, admin_token=BOOTSTRAP, streams_per_peer=limit) as srv,
        grpc.aio.insecure_channel(srv.address) as first,
        grpc.aio.insecure_channel(
            srv.address, options=[("grpc.use_local_subchannel_pool", 1)]
        ) as second,
    ):
        opened: list[Any] = []
        try:
            watches = [
                await admitted(lambda n=n: health_watch((first, second)[n % 2]), opened)
                for n in range(limit)
            ]
            for channel in (first, second):
                refused = health_watch(channel)
                opened.append(refused)
                code, details = await first_reply(refused)
                assert code == EXHAUSTED
                assert f"--streams-per-peer={limit}" in details and "127.0.0.1" in details
            check = health_pb2_grpc.HealthStub(second).Check
            reply = await check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            watches[0].cancel()
            await admitted(lambda: health_watch(first), opened)
            extra = health_watch(second)  # the freed slot was the only one
            opened.append(extra)
            assert (await first_reply(extra))[0] == EXHAUSTED
        finally:
            for call in opened:
                call.cancel()


async def test_the_global_cap_counts_streams_of_every_kind(mongo_uri: str, db_name: str) -> None:
    cap = 3
    async with (
        running_server(mongo_uri, db_name, admin_token=BOOTSTRAP, max_streams=cap) as srv,
        Client(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin,
        grpc.aio.insecure_channel(srv.address) as channel,
    ):
        start = (await admin.snapshot()).revision
        created = await admin.create_application("web", units=2)
        agents = [(await admin.create_token("agent", unit=f"web/{n}")).token for n in (0, 1)]
        agent_stub = agent_pb2_grpc.AgentServiceStub(channel)

        def watch_config(n: int) -> Any:
            request = agent_pb2.WatchConfigRequest(unit=f"web/{n}", min_revision=created.revision)
            return agent_stub.WatchConfig(request, metadata=bearer(agents[n]), timeout=WAIT)

        def watch_deltas() -> Any:
            return admin_pb2_grpc.AdminServiceStub(channel).WatchDeltas(
                admin_pb2.WatchDeltasRequest(since_revision=start),  # replays the app
                metadata=bearer(BOOTSTRAP),
                timeout=WAIT,
            )

        opened: list[Any] = []
        try:
            await admitted(lambda: watch_config(0), opened)
            feed = await admitted(watch_deltas, opened)
            await admitted(lambda: health_watch(channel), opened)
            for kind in (lambda: watch_config(1), watch_deltas, lambda: health_watch(channel)):
                call = kind()
                opened.append(call)
                code, details = await first_reply(call)
                assert code == EXHAUSTED and f"--max-streams={cap}" in details, details
            # Unary calls are not streams.
            assert (await admin.get_config("web/1")).unit == "web/1"
            assert await admin.health() == "SERVING"
            feed.cancel()  # an admin feed makes room for an agent
            await admitted(lambda: watch_config(1), opened)
        finally:
            for call in opened:
                call.cancel()
