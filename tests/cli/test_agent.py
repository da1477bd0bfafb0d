"""The reference unit agent (`genconf agent`): a subprocess against a real server that
is restarted under it. File-format and atomic-write details are tested in-process."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.procs import stop_process
from support.servers import applied, free_port, running_server

from genconf.agent import files
from genconf.agent.command import run_command
from genconf.agent.files import FileFormat, hash_on_disk, render, write_atomic
from genconf.agent.status import Status, wants_live_status
from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.domain import values
from genconf.errors import UsageError
from genconf.store.store import Store

SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 8080},
    "workers": {"type": "int", "default": 2},
    "name": {"type": "string", "default": "web"},
}
WAIT = 30  # seconds: generous bounds on events, not sleeps


@asynccontextmanager
async def agent_process(
    server: str, unit: str, path: Path, *extra: str, stderr: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`genconf agent` as a subprocess; stopped (SIGTERM, then SIGKILL) afterwards."""
    argv = [sys.executable, "-m", "genconf.cli.main", "agent", "--server", server, "--unit", unit]
    argv += ["--write", str(path), "--max-backoff", "0.3", *extra]
    err = stderr.open("ab")  # a local file, opened once
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
    finally:
        err.close()  # the child holds its own descriptor
    try:
        yield proc
    finally:
        await stop_process(proc)


async def stop(proc: asyncio.subprocess.Process) -> int:
    proc.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(proc.wait(), 10)


async def test_agent_applies_each_config_once_across_branch_commit_and_restarts(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    """Branch change, commit, a server restart with a write while it is down, and an
    agent restart: the file ends right, CMD ran once per distinct config, the server
    holds the reports, and no temp file is left."""
    listen = f"127.0.0.1:{free_port()}"
    conf = tmp_path / "conf"
    conf.mkdir()
    target = conf / "web-0.json"
    runs = tmp_path / "runs.log"
    command = f'echo "$GENCONF_HASH $GENCONF_BRANCH" >> {runs}'
    stderr = tmp_path / "agent.log"
    hashes: list[str] = []

    def ran() -> list[str]:
        return runs.read_text().splitlines() if runs.exists() else []

    try:
        async with AsyncExitStack() as stack:
            async with running_server(mongo_uri, db_name, listen=listen):
                async with Client(listen, timeout=10) as c:
                    created = await c.create_application("web", schema=SCHEMA, units=2)
                    first = await c.get_config("web/0", min_revision=created.revision)
                    hashes.append(first.hash)
                    proc = await stack.enter_async_context(
                        agent_process(listen, "web/0", target, "--exec", command, stderr=stderr)
                    )
                    await applied(c, "web/0", first.hash)

                    await c.add_branch("canary")
                    await c.track_branch("canary", units=["web/0"])
                    staged = await c.set_branch_config("canary", "web", {"port": 9090})
                    on_branch = await c.get_config("web/0", min_revision=staged.revision)
                    assert on_branch.branch == "canary"
                    hashes.append(on_branch.hash)
                    await applied(c, "web/0", on_branch.hash)
                    # The tracking unit's config does not change on commit: no new write.
                    await c.commit_branch("canary")

            # The server is down (the agent's watch ended UNAVAILABLE); a change lands.
            store = Store.connect(mongo_uri, db_name)
            try:
                while_down = await store.set_config("web", set={"workers": 8})
            finally:
                await store.aclose()

            async with running_server(mongo_uri, db_name, listen=listen):
                async with Client(listen, timeout=10) as c:
                    after_restart = await c.get_config("web/0", min_revision=while_down.revision)
                    hashes.append(after_restart.hash)
                    await applied(c, "web/0", after_restart.hash)
                    assert proc.returncode is None, "the agent outlived the restart"
                    assert await stop(proc) == 0

                    # A restarted agent resumes from the file: no second run for it.
                    again = await stack.enter_async_context(
                        agent_process(listen, "web/0", target, "--exec", command, stderr=stderr)
                    )
                    last = await c.set_config("web", {"name": "final"})
                    final = await c.get_config("web/0", min_revision=last.revision)
                    hashes.append(final.hash)
                    report = await applied(c, "web/0", final.hash)
                    assert await stop(again) == 0
                    units = {u.name: u for u in await c.list_units("web")}
    finally:
        log = stderr.read_text() if stderr.exists() else ""
        print(log[-3000:])

    assert len(set(hashes)) == 4
    assert [line.split()[0] for line in ran()] == hashes, "CMD ran once per distinct config"
    assert [line.split()[1:] for line in ran()] == [[], ["canary"], [], []]
    assert json.loads(target.read_text()) == dict(final.config)
    assert dict(final.config) == {"port": 9090, "workers": 8, "name": "final"}
    assert target.stat().st_mode & 0o777 == 0o600
    assert os.listdir(conf) == ["web-0.json"], "no temp file left behind"
    assert report.applied.ok and "exec ok" in report.applied.message
    assert units["web/0"].applied.hash == final.hash and units["web/0"].applied.ok
    assert not units["web/1"].HasField("applied")
    assert "resuming from it" in log


async def test_agent_reports_a_failing_command_with_its_exit_code_and_stderr(
    srv: RunningServer, tmp_path: Path
) -> None:
    target = tmp_path / "web.env"
    async with Client(srv.address, timeout=10) as c:
        created = await c.create_application("web", schema=SCHEMA, units=1)
        config = await c.get_config("web/0", min_revision=created.revision)
        failing = "echo starting; echo 'line 1' >&2; echo 'bad port, refusing' >&2; exit 3"
        async with agent_process(
            srv.address, "web/0", target, "--exec", failing, stderr=tmp_path / "agent.log"
        ) as proc:
            unit = await applied(c, "web/0", config.hash)
            assert await stop(proc) == 0
    log = (tmp_path / "agent.log").read_text()
    assert "web/0: wrote " in log, "not a terminal: plain log lines"
    assert "genconf agent web/0 |" not in log and "\x1b[" not in log, "no status line"
    assert not unit.applied.ok
    assert unit.applied.message.startswith("exec exited with code 3: ")
    assert unit.applied.message.endswith("line 1\nbad port, refusing")
    assert target.read_text() == (
        f"# genconf unit=web/0 hash={config.hash}\nNAME='web'\nPORT='8080'\nWORKERS='2'\n"
    )


async def test_agent_retries_a_failed_command_until_it_succeeds(
    srv: RunningServer, tmp_path: Path
) -> None:
    """The first run fails (reported, marked on the status), the retry after backoff
    succeeds and replaces the report: no new config was needed."""
    target = tmp_path / "web.json"
    marker = tmp_path / "second-run"
    flaky = f"test -f {marker} && echo fine || {{ touch {marker}; echo 'not yet' >&2; exit 1; }}"
    async with Client(srv.address, timeout=10) as c:
        created = await c.create_application("web", schema=SCHEMA, units=1)
        config = await c.get_config("web/0", min_revision=created.revision)
        before_agent = (await c.snapshot()).revision  # every report comes after it
        async with agent_process(
            srv.address, "web/0", target, "--exec", flaky, stderr=tmp_path / "agent.log"
        ) as proc:
            with anyio.fail_after(WAIT):
                async for batch in c.watch_deltas(since_revision=before_agent, kinds=["unit"]):
                    units = [d.unit for d in batch.deltas if d.key == "web/0"]
                    if any(u.applied.hash == config.hash and u.applied.ok for u in units):
                        break
            assert await stop(proc) == 0
    log = (tmp_path / "agent.log").read_text()
    assert "exec exited with code 1: not yet" in log
    assert "exec: retrying (attempt 2" in log and "exec ok" in log


# -- in-process: formats, resume hashes, atomic writes -----------------------------------

CONFIG: dict[str, Any] = {
    "port": 9090,
    "ratio": 1.0,
    "log-level": "it's debug",
    "tags": ["a", "b"],
    "features": {"x": True},
}


@pytest.mark.parametrize("fmt", list(FileFormat))
def test_a_written_file_tells_its_hash_back(fmt: FileFormat, tmp_path: Path) -> None:
    path = tmp_path / f"config.{fmt.value}"
    hash_ = values.config_hash(CONFIG)
    write_atomic(path, render(fmt, "web/0", CONFIG, hash_))
    assert hash_on_disk(path, fmt, "web/0") == hash_
    # YAML and env headers name the unit: another unit's file is not its own. JSON has
    # no header, so its hash is its content's, whoever reads it.
    assert hash_on_disk(path, fmt, "web/1") == (hash_ if fmt is FileFormat.JSON else "")
    path.write_text(path.read_text().replace("9090", "9091"))
    expected = {
        FileFormat.JSON: values.config_hash({**CONFIG, "port": 9091}),  # what it holds now
        FileFormat.YAML: "",  # the header no longer matches the content
        FileFormat.ENV: hash_,  # env values are untyped: the header is trusted
    }[fmt]
    assert hash_on_disk(path, fmt, "web/0") == expected
    assert hash_on_disk(tmp_path / "missing", fmt, "web/0") == ""


def test_env_format_is_shell_sourceable(tmp_path: Path) -> None:
    path = tmp_path / "config.env"
    path.write_bytes(render(FileFormat.ENV, "web/0", CONFIG, "0" * 64))
    out = subprocess.run(
        ["sh", "-c", f'. {path}; printf \'%s|\' "$PORT" "$LOG_LEVEL" "$TAGS" "$FEATURES"'],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out == """9090|it's debug|["a", "b"]|{"x": true}|"""


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.json"
    write_atomic(path, b"old\n")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, b"new\n")
    assert path.read_bytes() == b"old\n"
    assert os.listdir(tmp_path) == ["config.json"]


async def test_a_command_past_its_time_limit_is_killed_and_reported() -> None:
    with anyio.fail_after(10):
        result = await run_command("echo waiting >&2; sleep 30", dict(os.environ), 0.3)
    assert result.returncode is None and not result.ok
    assert result.describe(0.3) == "exec timed out after 0.3s: waiting"


def test_format_follows_the_file_suffix() -> None:
    assert FileFormat.for_path(Path("a/web.yml")) is FileFormat.YAML
    assert FileFormat.for_path(Path("web.env")) is FileFormat.ENV
    assert FileFormat.for_path(Path("web")) is FileFormat.JSON
    assert FileFormat.for_path(Path("web.JSON")) is FileFormat.JSON
    for name in ("web.toml", "web.conf"):
        with pytest.raises(UsageError, match="pass --format json\\|yaml\\|env"):
            FileFormat.for_path(Path(name))


# -- on a terminal: the live status line ----------------------------------------------


class TerminalReader:
    """A real pseudo-terminal for a child's stderr: ``fd`` is its slave end (give it
    to the child, then `close_slave`); a thread reads the master end so the child
    never blocks on a full terminal, and `wait_for` returns once a text arrived."""

    def __init__(self) -> None:
        self._master, self.fd = os.openpty()
        self._chunks: queue.Queue[bytes] = queue.Queue()  # b"": every slave end closed
        self._data = bytearray()
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        chunk = b"-"
        while chunk:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: every slave end is closed and all was read
                chunk = b""
            self._chunks.put(chunk)

    @property
    def text(self) -> str:
        return self._data.decode(errors="replace")

    def close_slave(self) -> None:
        os.close(self.fd)

    def wait_for(self, text: str, limit: float) -> str:
        """Everything read so far, once it holds ``text`` (blocking: run on a thread)."""
        deadline = time.monotonic() + limit
        while text not in self.text:
            try:
                chunk = self._chunks.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} within {limit}s: {self.text!r}") from None
            if not chunk:
                raise AssertionError(f"the terminal closed without {text!r}: {self.text!r}")
            self._data += chunk
        return self.text

    def close(self) -> str:
        """Everything the child wrote, once it has closed the terminal (blocking)."""
        while chunk := self._chunks.get(timeout=WAIT):
            self._data += chunk
        self._thread.join()
        os.close(self._master)
        return self.text


async def test_agent_on_a_terminal_draws_a_status_line_and_writes_the_format_asked(
    srv: RunningServer, tmp_path: Path
) -> None:
    """`--format env` for a file whose name says nothing (no suffix), and stderr on a
    real pseudo-terminal: a live line with the unit, connection, applied hash and
    count, redrawn in place (carriage return, erase line) under stamped events."""
    target = tmp_path / "web-0"
    tty = TerminalReader()
    argv = [sys.executable, "-m", "genconf.cli.main", "agent", "--server", srv.address]
    argv += ["--unit", "web/0", "--write", str(target), "--format", "env"]
    async with Client(srv.address, timeout=10) as c:
        created = await c.create_application("web", schema=SCHEMA, units=1)
        config = await c.get_config("web/0", min_revision=created.revision)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=tty.fd,
                env={**os.environ, "TERM": "xterm-256color"},
            )
        finally:
            tty.close_slave()
        try:
            await applied(c, "web/0", config.hash)
            live = (
                f"genconf agent web/0 | connected | applied {config.hash[:12]} "
                "| 1 config(s) written | last at "
            )
            await anyio.to_thread.run_sync(tty.wait_for, live, WAIT)
            assert await stop(proc) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    text = await anyio.to_thread.run_sync(tty.close)
    assert "\r\x1b[K" in text, "the line is redrawn in place"
    assert re.search(rf"\d\d:\d\d:\d\d wrote {target}: config {config.hash[:12]} ", text), text
    assert "received SIGTERM; stopping" in text
    assert text.endswith("\r\n"), "the last status line is left in place, then a new line"
    assert " INFO " not in text, "on a terminal: the status line, not log records"
    assert target.read_text() == (
        f"# genconf unit=web/0 hash={config.hash}\nNAME='web'\nPORT='8080'\nWORKERS='2'\n"
    )


def test_status_is_live_only_on_a_capable_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    master, slave = os.openpty()
    r, w = os.pipe()
    try:
        with open(slave, "w") as tty, open(w, "w") as pipe:
            assert wants_live_status(tty)
            assert not wants_live_status(pipe)
            monkeypatch.setenv("TERM", "dumb")
            assert not wants_live_status(tty), "TERM=dumb cannot erase a line"
        assert not wants_live_status(tty), "a closed stream is not a terminal"
    finally:
        os.close(master)
        os.close(r)


def test_status_not_live_logs_and_writes_nothing_to_its_stream(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="genconf.agent.runner")
    stream = io.StringIO()
    status = Status("web/0", stream=stream, live=False)
    status.draw()
    status.event("wrote /etc/web.json")
    status.event("exec exited with code 3", error=True)
    status.close()
    assert stream.getvalue() == ""
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "web/0: wrote /etc/web.json"),
        ("ERROR", "web/0: exec exited with code 3"),
    ]
