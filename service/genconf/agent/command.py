"""The command an agent runs after each write (``--exec``): ``sh -c`` in a session
of its own, bounded in time, its stderr kept for the report."""

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
    stderr: str  # the last STDERR_KEEP_BYTES of it

    @property
    def stderr_tail(self) -> str:
        return self.stderr.strip()[-STDERR_TAIL_CHARS:]

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self, limit: float) -> str:
        if self.returncode is None:
            what = f"exec timed out after {limit:g}s"
        elif self.returncode < 0:
            what = f"exec killed by signal {-self.returncode}"
        else:
            what = f"exec exited with code {self.returncode}"
        return f"{what}: {self.stderr_tail}" if self.stderr_tail else what


def _kill_group(pid: int, sig: int) -> None:
    """Signal the command's own process group (it runs in a session of its own), so
    whatever the shell started goes too."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def run_command(command: str, env: Mapping[str, str], limit: float) -> CommandResult:
    """Run ``command`` with ``sh -c`` for at most ``limit`` seconds; its stdout is
    ours, its stderr is collected for the report."""
    process = await anyio.open_process(
        ["/bin/sh", "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=None,  # inherited: the command may print for the operator
        stderr=subprocess.PIPE,
        env=dict(env),
        start_new_session=True,
    )
    collected = bytearray()
    drained = anyio.Event()

    async def drain() -> None:
        assert process.stderr is not None
        try:
            async for chunk in process.stderr:
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
    stderr = collected.decode(errors="replace")
    return CommandResult(None if timed_out else process.returncode, stderr)
