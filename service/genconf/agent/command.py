"""The commands an agent runs (``--exec`` after each write, ``--health-cmd`` after
it and periodically): ``sh -c`` in a session of their own, bounded in time, their
stderr (the health command's stdout too) kept for the report."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import anyio

STDERR_TAIL_CHARS: Final = 1000  # of a failed command's stderr, in its report
STDERR_KEEP_BYTES: Final = 64 * 1024
DRAIN_GRACE: Final = 1.0  # seconds to finish reading stderr after the command exits


@dataclass(frozen=True)
class CommandResult:
    returncode: int | None  # None: killed after the timeout
    output: str  # the last STDERR_KEEP_BYTES of what was collected (stderr, or both)

    @property
    def stderr_tail(self) -> str:
        return self.output.strip()[-STDERR_TAIL_CHARS:]

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def outcome(self, limit: float, name: str = "exec") -> str:
        """``exec exited with code 3``: how the command ended, without its output."""
        if self.returncode is None:
            return f"{name} timed out after {limit:g}s"
        if self.returncode < 0:
            return f"{name} killed by signal {-self.returncode}"
        return f"{name} exited with code {self.returncode}"

    def describe(self, limit: float) -> str:
        what = self.outcome(limit)
        return f"{what}: {self.stderr_tail}" if self.stderr_tail else what


def _kill_group(pid: int, sig: int) -> None:
    """Signal the command's own process group (it runs in a session of its own), so
    whatever the shell started goes too."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def run_command(
    command: str, env: Mapping[str, str], limit: float, *, merge_stdout: bool = False
) -> CommandResult:
    """Run ``command`` with ``sh -c`` for at most ``limit`` seconds; its stderr is
    collected for the report, and its stdout is ours (the command may print for the
    operator) unless ``merge_stdout``: then both are collected, interleaved as written."""
    process = await anyio.open_process(
        ["/bin/sh", "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if merge_stdout else None,
        stderr=subprocess.STDOUT if merge_stdout else subprocess.PIPE,
        env=dict(env),
        start_new_session=True,
    )
    collected = bytearray()
    drained = anyio.Event()
    stream = process.stdout if merge_stdout else process.stderr

    async def drain() -> None:
        assert stream is not None
        try:
            async for chunk in stream:
                collected.extend(chunk)
                del collected[:-STDERR_KEEP_BYTES]
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            drained.set()

    timed_out = False
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(drain)
            with anyio.move_on_after(limit) as scope:
                await process.wait()
            if scope.cancelled_caught:
                timed_out = True
                _kill_group(process.pid, signal.SIGKILL)
                await process.wait()
            # A background child may keep stderr open: do not wait for it forever.
            with anyio.move_on_after(DRAIN_GRACE):
                await drained.wait()
            tg.cancel_scope.cancel()
    finally:
        if process.returncode is None:  # we are being stopped mid-command
            _kill_group(process.pid, signal.SIGTERM)
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await process.wait()
            if process.returncode is None:
                _kill_group(process.pid, signal.SIGKILL)
        await process.aclose()
    output = collected.decode(errors="replace")
    return CommandResult(None if timed_out else process.returncode, output)
