"""`genconf agent --health-cmd`: the unit's health, checked after each apply and
every interval, reported with the command's output tail only when it changes; and
the health fields of ReportApplied as the server keeps and shows them."""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path
from typing import Any

import anyio
import grpc
import pytest
from agent_harness import Ticks, agent_process, report_where
from support.servers import settled_model

from genconf import shapes
from genconf.agent.health import TAIL_BYTES, Health, check_health, output_tail
from genconf.agent.status import Status
from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.errors import InvalidArgument
from genconf.v1 import agent_pb2, agent_pb2_grpc, types_pb2

SCHEMA: dict[str, Any] = {"port": {"type": "int", "default": 8080}}
HEALTHY = types_pb2.HEALTH_HEALTHY
UNHEALTHY = types_pb2.HEALTH_UNHEALTHY


async def test_health_is_reported_after_apply_then_only_when_it_changes(
    srv: RunningServer, tmp_path: Path
) -> None:
    """Healthy after the first apply (with the command's output and the exec env);
    periodic checks that find the same say nothing; a check that starts failing
    (its file removed) is reported unhealthy with the output tail; a new config is
    checked and reported at once; fixed, healthy again. The server shows each."""
    target = tmp_path / "web.json"
    flag = tmp_path / "up"
    flag.touch()
    runs = Ticks(tmp_path / "runs")
    check = (
        f'echo run >> {runs.path}; echo "checking $GENCONF_HASH on $GENCONF_UNIT"; '
        f"if test -f {flag}; then echo fine; else echo 'flag gone' >&2; exit 1; fi"
    )
    log = tmp_path / "agent.log"
    seen: list[types_pb2.AppliedReport] = []
    until_unhealthy: list[types_pb2.AppliedReport] = []
    async with Client(srv.address, timeout=10) as c:
        created = await c.create_application("web", schema=SCHEMA, units=1)
        config = await c.get_config("web/0", min_revision=created.revision)
        extra = ("--health-cmd", check, "--health-interval", "1s")
        async with agent_process(srv.address, "web/0", target, *extra, log=log) as agent:
            healthy = await report_where(
                c, "web/0", created.revision, lambda r: r.health == HEALTHY, seen
            )
            # Three more periodic checks find it healthy still: nothing is reported.
            await runs.reach(runs.count + 3)
            flag.unlink()
            unhealthy = await report_where(
                c, "web/0", created.revision, lambda r: r.health == UNHEALTHY, until_unhealthy
            )
            units = await c.list_units("web")

            changed = await c.set_config("web", {"port": 9090})
            new = await c.get_config("web/0", min_revision=changed.revision)
            on_new = await report_where(c, "web/0", changed.revision, lambda r: r.hash == new.hash)
            flag.touch()
            again = await report_where(c, "web/0", changed.revision, lambda r: r.health == HEALTHY)

    runs.close()
    assert [r.health for r in seen] == [HEALTHY], "one report for the apply"
    assert [r.health for r in until_unhealthy] == [HEALTHY, UNHEALTHY], "none per steady check"
    assert healthy.hash == config.hash and healthy.ok
    assert healthy.message == f"wrote {target}"
    assert healthy.health_message == f"checking {config.hash} on web/0\nfine"
    assert healthy.HasField("health_since")

    assert (unhealthy.hash, unhealthy.ok, unhealthy.message) == (config.hash, True, healthy.message)
    assert unhealthy.health_message == (
        f"health check exited with code 1: checking {config.hash} on web/0\nflag gone"
    )
    assert unhealthy.health_since.ToDatetime() > healthy.health_since.ToDatetime()
    assert unhealthy.health_since == unhealthy.at, "the health changed with this report"

    [unit] = units
    assert unit.applied.health == UNHEALTHY
    assert unit.applied.health_message == unhealthy.health_message
    view = shapes.unit_view(unit)["applied"]
    assert view["health"] == "unhealthy" and view["health_message"].endswith("flag gone")
    assert view["health_since"].endswith("Z")

    assert on_new.health == UNHEALTHY, "checked right after the apply, still failing"
    assert on_new.health_message.startswith(f"health check exited with code 1: checking {new.hash}")
    assert on_new.health_since == on_new.at, "a new config: health counted from now"
    assert again.hash == new.hash and again.health_message.endswith("fine")

    text = agent.text
    assert "web/0: health: healthy" in text
    assert "web/0: health: unhealthy: health check exited with code 1" in text


async def test_without_a_health_command_health_stays_unknown(
    srv: RunningServer, tmp_path: Path
) -> None:
    async with Client(srv.address, timeout=10) as c:
        created = await c.create_application("web", schema=SCHEMA, units=1)
        config = await c.get_config("web/0", min_revision=created.revision)
        async with agent_process(
            srv.address, "web/0", tmp_path / "web.json", log=tmp_path / "agent.log"
        ) as agent:
            report = await report_where(c, "web/0", created.revision, lambda r: True)
    assert report.hash == config.hash and report.ok
    assert report.health == types_pb2.HEALTH_UNKNOWN and report.health_message == ""
    assert not report.HasField("health_since")
    assert "web/0: health:" not in agent.text


async def test_a_restarted_agent_reports_health_on_the_config_its_file_holds(
    srv: RunningServer, tmp_path: Path
) -> None:
    """A restarted agent gets no config (the file holds the current one) yet checks
    health at once and reports it with that hash; SIGHUP then finds PATH as it
    should be (nothing done), and after a hand edit writes it back."""
    target = tmp_path / "web.json"
    log = tmp_path / "agent.log"
    runs = tmp_path / "runs"
    command = f"echo run >> {runs}"  # a file: CMD runs only inside `apply`, awaited
    async with Client(srv.address, timeout=10) as c:
        created = await c.create_application("web", schema=SCHEMA, units=1)
        config = await c.get_config("web/0", min_revision=created.revision)
        async with agent_process(srv.address, "web/0", target, "--exec", command, log=log):
            await report_where(c, "web/0", created.revision, lambda r: r.hash == config.hash)
        checkpoint = (await c.snapshot()).revision
        extra = ("--exec", command, "--health-cmd", "echo up", "--health-interval", "1m")
        async with agent_process(srv.address, "web/0", target, *extra, log=log) as agent:
            resumed = await report_where(c, "web/0", checkpoint, lambda r: True)
            agent.send_signal(signal.SIGHUP)
            await agent.logged("nothing to do")
            target.write_text('{"port": 1}\n')
            agent.send_signal(signal.SIGHUP)
            restored = await report_where(c, "web/0", checkpoint, lambda r: "exec ok" in r.message)
    assert resumed.hash == config.hash and resumed.ok and resumed.health == HEALTHY
    assert resumed.message == f"{target} holds config {config.hash[:12]} (agent restarted)"
    assert resumed.health_message == "up"
    assert restored.hash == config.hash and restored.health == HEALTHY
    assert json.loads(target.read_text()) == dict(config.config)
    assert runs.read_text() == "run\nrun\n", "CMD: the first write, then the edited file's"
    assert f"received SIGHUP; rendering config {config.hash[:12]} again" in agent.text


# -- the server's side: ReportApplied's health fields -------------------------------------


async def test_health_since_holds_until_health_or_hash_changes(client: Client) -> None:
    created = await client.create_application("web", schema=SCHEMA, units=1)
    config = await client.get_config("web/0", min_revision=created.revision)
    other = "f" * 64

    async def report(hash_: str, health: str, message: str = "") -> types_pb2.AppliedReport:
        w = await client.report_applied(
            "web/0", hash_, ok=True, message="m", health=health, health_message=message
        )
        [unit] = await client.list_units("web", min_revision=w.revision)
        return unit.applied

    first = await report(config.hash, "healthy", "fine")
    assert first.health == HEALTHY and first.health_message == "fine"
    assert first.health_since == first.at
    same = await report(config.hash, "healthy", "fine, again")
    assert same.health_since == first.health_since and same.at != first.at
    assert same.health_message == "fine, again"
    sick = await report(config.hash, "unhealthy", "down")
    assert sick.health_since == sick.at
    moved = await report(other, "unhealthy", "down")
    assert moved.health_since == moved.at, "another config: counted again"
    unknown = await report(other, "unknown")
    assert unknown.health == types_pb2.HEALTH_UNKNOWN and not unknown.HasField("health_since")
    long = await report(other, "unhealthy", "x" * 5000)
    assert len(long.health_message) == 4096


async def test_a_health_the_server_does_not_know_is_refused_and_writes_nothing(
    client: Client,
) -> None:
    created = await client.create_application("web", schema=SCHEMA, units=1)
    config = await client.get_config("web/0", min_revision=created.revision)
    before = await settled_model(client)
    stub = agent_pb2_grpc.AgentServiceStub(client.channel)
    request = agent_pb2.ReportAppliedRequest(unit="web/0", hash=config.hash, ok=True, health=7)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ReportApplied(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == (
        "health must be HEALTH_UNKNOWN, HEALTH_HEALTHY or HEALTH_UNHEALTHY, not 7"
    )
    with pytest.raises(InvalidArgument, match="health must be one of unknown, healthy, unhealthy"):
        await client.report_applied("web/0", config.hash, health="fine")
    assert await settled_model(client) == before


# -- in-process: the check, its output tail, the status line ------------------------------


async def test_a_check_is_healthy_on_exit_0_with_stdout_and_stderr_in_order() -> None:
    env = {**os.environ, "WHO": "web/0"}
    state = await check_health('echo "out $WHO"; echo err >&2; echo more', env, 10)
    assert state.health is Health.HEALTHY
    assert state.message == "out web/0\nerr\nmore"


async def test_a_check_that_fails_or_hangs_is_unhealthy_and_says_how() -> None:
    env = dict(os.environ)
    failed = await check_health("echo 'db unreachable'; exit 4", env, 10)
    assert failed.health is Health.UNHEALTHY
    assert failed.message == "health check exited with code 4: db unreachable"
    with anyio.fail_after(10):
        hung = await check_health("echo waiting; sleep 30", env, 0.3)
    assert hung.health is Health.UNHEALTHY
    assert hung.message == "health check timed out after 0.3s: waiting"
    killed = await check_health("kill -9 $$", env, 10)
    assert killed.message == "health check killed by signal 9"


def test_the_output_tail_is_the_last_lines_within_the_byte_limit() -> None:
    text = "\n".join(f"line {n}" for n in range(100)) + "\n\n"
    assert output_tail(text) == "\n".join(f"line {n}" for n in range(80, 100))
    wide = "é" * 3000  # two bytes each: cut to the limit, never inside a character
    tail = output_tail(wide)
    assert tail == "é" * (TAIL_BYTES // 2) and len(tail.encode()) == TAIL_BYTES
    odd = "x" + "é" * 3000  # an odd cut point: the broken character is dropped
    assert len(output_tail(odd, limit=TAIL_BYTES - 1).encode()) == TAIL_BYTES - 2


def test_the_status_line_shows_health_only_with_a_health_command() -> None:
    stream = io.StringIO()
    status = Status("web/0", stream=stream, live=True)
    status.draw()
    assert "health" not in stream.getvalue() and "healthy" not in stream.getvalue()
    status.health = "unhealthy"
    status.draw()
    assert stream.getvalue().endswith("| 0 config(s) written | unhealthy")
