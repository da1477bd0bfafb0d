"""Helpers for tests that run genconf as a child process and check what it leaves.

A plain module (not a conftest): tests import it as ``from procs import ...``.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

import anyio

from genconf.cli.serve import READY_LINE


def processes_mentioning(text: str) -> dict[int, str]:
    """Live PIDs (other than ours) whose command line contains ``text``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found[int(entry.name)] = cmdline
    return found


def lines_of(stream: IO[str]) -> queue.Queue[str | None]:
    """The stream's lines on a queue (None at EOF), read by a daemon thread."""
    out: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            out.put(line)
        out.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return out


async def stop_process(proc: asyncio.subprocess.Process, grace: float = 10) -> None:
    """SIGTERM a child we started, then SIGKILL it if it outlives ``grace`` seconds."""
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def first_line(proc: asyncio.subprocess.Process, limit: float) -> str:
    """The first line a child we started with ``stdout=PIPE`` prints, within ``limit``
    seconds."""
    assert proc.stdout is not None
    with anyio.fail_after(limit):
        return (await proc.stdout.readline()).decode()


def tail(log: Path) -> str:
    """The end of a child's log, for an assertion message."""
    return log.read_text()[-3000:]


@asynccontextmanager
async def ready_serve(
    argv: list[str], env: dict[str, str], log: Path
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """``genconf <argv>`` (a `serve`) as a child process, its stderr to ``log``: yields
    the address of its ready line and the process; afterwards SIGINT must stop it with
    exit 0."""
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "genconf.cli.main", *argv,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, env=env,
        )  # fmt: skip
    try:
        line = await first_line(proc, 60)
        assert line.startswith(READY_LINE), f"{line!r}: {tail(log)}"
        yield line.removeprefix(READY_LINE).strip(), proc
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 30) == 0, tail(log)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
