"""The child processes of an agent-facing workload, all ours and all on loopback,
each stopped by its PID: the server (`ServerProcess`) and the agent processes
(`Worker`), which answer one JSON command per line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Final

from genconf.bench.server import READY_LINE, parse_ready
from genconf.errors import BenchError

AGENTS_MODULE: Final = "genconf.bench.agents"
SERVER_START_TIMEOUT: Final = 120.0
STOP_TIMEOUT: Final = 20.0


def _append(path: Path) -> IO[bytes]:
    """A log file for a child process's stderr (closed when the process is stopped)."""
    return open(path, "ab")


def _log_tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


async def _stop_process(proc: asyncio.subprocess.Process, *, graceful: bool = True) -> None:
    """Stop one process we started, by its PID: SIGTERM, then SIGKILL after a while."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        if graceful:
            proc.send_signal(signal.SIGTERM)
        else:
            proc.kill()
    try:
        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


class ServerProcess:
    """``python -m genconf.bench.server`` as a child process: one process, or with
    ``--workers N`` a parent and N workers, each also on an address of its own
    (`worker_addresses`, in order; empty for one process)."""

    # What to run (a seam: compare another build of the server by changing it).
    command: tuple[str, ...] = (sys.executable, "-m", "genconf.bench.server")

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.address = ""
        self.worker_addresses: list[str] = []
        self._log: IO[bytes] | None = None

    async def start(
        self,
        mongo_uri: str,
        database: str,
        bookmark_interval: float,
        extra_args: Sequence[str] = (),
    ) -> str:
        self._log = _append(self.log_path)
        self.proc = await asyncio.create_subprocess_exec(
            *self.command,
            "--mongo-uri",
            mongo_uri,
            "--database",
            database,
            "--listen",
            "127.0.0.1:0",
            "--bookmark-interval",
            str(bookmark_interval),
            *extra_args,
            "--exit-with-stdin",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
        )
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(SERVER_START_TIMEOUT):
                while line := (await self.proc.stdout.readline()).decode():
                    if line.startswith(READY_LINE):
                        self.address, self.worker_addresses = parse_ready(line)
                        return self.address
        except TimeoutError:
            pass
        await self.stop()
        raise BenchError(
            f"the bench server did not start; its log ends:\n{_log_tail(self.log_path)}"
        )

    async def stop(self) -> None:
        if self.proc is not None:
            await _stop_process(self.proc)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


class Worker:
    """One ``python -m genconf.bench.agents`` process and its command pipe."""

    def __init__(self, index: int, log_path: Path, module: str = AGENTS_MODULE) -> None:
        self.index = index
        self.log_path = log_path
        self.module = module  # the command loop to run (soak's adds commands of its own)
        self.proc: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._log = _append(self.log_path)
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            limit=1 << 28,
        )

    async def request(self, limit: float, **cmd: Any) -> dict[str, Any]:
        """Send one command and return its answer (BenchError if it failed); ``limit``
        bounds the wait beyond the command's own timeout."""
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        async with self._lock:
            proc.stdin.write(json.dumps(cmd).encode() + b"\n")
            await proc.stdin.drain()
            try:
                async with asyncio.timeout(limit + 30):
                    line = await proc.stdout.readline()
            except TimeoutError:
                raise BenchError(f"agent process {self.index}: no answer to {cmd['op']}") from None
        if not line:
            raise BenchError(
                f"agent process {self.index} exited; its log ends:\n{_log_tail(self.log_path)}"
            )
        reply: dict[str, Any] = json.loads(line)
        if not reply.pop("ok"):
            raise BenchError(f"agent process {self.index}: {cmd['op']}: {reply.get('error')}")
        return reply

    async def stop(self) -> None:
        proc = self.proc
        if proc is not None:
            if proc.returncode is None and proc.stdin is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    proc.stdin.write(b'{"op": "exit"}\n')
                    await proc.stdin.drain()
                    proc.stdin.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            await _stop_process(proc)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
