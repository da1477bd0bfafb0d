"""A real `genconf agent` subprocess against a real server, what it logs, how often a
command it runs has run, and the unit's reports as the server records them: shared
by the agent's health and template tests.

A plain module (not a test): the tests next to it import it as ``agent_harness``.
Every wait here is on an event (a line read, a report on the admin feed, a pipe
turning readable), bounded by WAIT; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from support.procs import stop_process

from genconf.client import Client
from genconf.v1 import types_pb2

WAIT = 30  # seconds: generous bounds on events, not sleeps


class RunningAgent:
    """The agent process and its log: every stderr line, also appended to a file
    (printed by the test on failure)."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc = proc
        self.log = log
        self.text = ""
        self._line = asyncio.Event()

    async def pump(self) -> None:
        assert self.proc.stderr is not None
        with self.log.open("a") as out:
            async for raw in self.proc.stderr:
                line = raw.decode(errors="replace")
                out.write(line)
                out.flush()
                self.text += line
                self._line.set()
                self._line = asyncio.Event()

    async def logged(self, text: str) -> None:
        """Until the agent has logged ``text``."""
        with anyio.fail_after(WAIT):
            while text not in self.text:
                await self._line.wait()

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)


@asynccontextmanager
async def agent_process(
    server: str, unit: str, path: Path, *extra: str, log: Path
) -> AsyncIterator[RunningAgent]:
    """`genconf agent` as a subprocess; stopped (SIGTERM, then SIGKILL) afterwards."""
    argv = [sys.executable, "-m", "genconf.cli.main", "agent", "--server", server, "--unit", unit]
    argv += ["--write", str(path), "--max-backoff", "0.3", *extra]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    agent = RunningAgent(proc, log)
    pump = asyncio.create_task(agent.pump())
    try:
        yield agent
    finally:
        await stop_process(proc)
        await asyncio.wait_for(pump, WAIT)  # the rest of its log, to EOF


class Ticks:
    """A named pipe a command writes a line to each time it runs (``echo >> FIFO``),
    counted as they come. The test keeps a write end open itself, so the command's
    open never blocks and the read end never sees end-of-file."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.count = 0
        self._read = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._keep = os.open(path, os.O_WRONLY)

    async def reach(self, count: int) -> None:
        """Until the command has run ``count`` times in all."""
        with anyio.fail_after(WAIT):
            while self.count < count:
                await anyio.wait_readable(self._read)
                try:
                    self.count += os.read(self._read, 65536).count(b"\n")
                except BlockingIOError:
                    pass

    def close(self) -> None:
        os.close(self._read)
        os.close(self._keep)


async def reports(client: Client, unit: str, since: int) -> AsyncIterator[types_pb2.AppliedReport]:
    """Every report of ``unit`` the server records after revision ``since``, in
    order (from the admin feed: nothing is missed between two reads)."""
    async for batch in client.watch_deltas(since_revision=since, kinds=["unit"]):
        for delta in batch.deltas:
            if delta.key == unit and delta.unit.HasField("applied"):
                yield delta.unit.applied


async def report_where(
    client: Client,
    unit: str,
    since: int,
    wanted: Callable[[types_pb2.AppliedReport], bool],
    seen: list[types_pb2.AppliedReport] | None = None,
) -> types_pb2.AppliedReport:
    """The first report after ``since`` that is ``wanted``; every report read on the
    way (that one included) is appended to ``seen``."""
    with anyio.fail_after(WAIT):
        async for report in reports(client, unit, since):
            if seen is not None:
                seen.append(report)
            if wanted(report):
                return report
    raise AssertionError("the admin feed ended")
