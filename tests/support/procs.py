"""Helpers for tests that run genconf as a child process and check what it leaves.

A plain module (not a conftest): tests import it as ``from procs import ...``.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import threading
from pathlib import Path
from typing import IO


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
