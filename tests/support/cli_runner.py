"""Runs the `genconf` command as a subprocess, for the CLI tests.

A plain module (not a conftest): tests import it as ``from cli_runner import ...``.
Commands run as asyncio subprocesses, so a server on the test's own event loop
keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PARALLEL = 4  # concurrent commands: enough to overlap Python start-up on 2 cores


@dataclass(frozen=True)
class Run:
    argv: Sequence[str]
    rc: int
    out: str
    err: str

    def ok(self) -> Run:
        assert self.rc == 0, f"genconf {' '.join(self.argv)} exited {self.rc}: {self.err}"
        return self

    def json(self) -> Any:
        return json.loads(self.ok().out)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Our environment without GENCONF_* settings or a user config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENCONF_") and k != "NO_COLOR"}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env.update(extra)
    return env


class Genconf:
    """Runs `genconf` (``python -m genconf.cli.main``) with ``--server`` set to ``server``."""

    def __init__(self, server: str | None, env: dict[str, str]) -> None:
        self.server = server
        self.env = env
        self._slots = asyncio.Semaphore(PARALLEL)

    async def __call__(self, *args: str, env: dict[str, str] | None = None) -> Run:
        argv = list(args)
        if self.server and "--server" not in args:
            argv += ["--server", self.server]
        async with self._slots:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "genconf.cli.main",
                *argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env or self.env,
            )
            try:
                out, err = await asyncio.wait_for(proc.communicate(), 60)
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        return Run(argv, proc.returncode, out.decode(), err.decode())

    async def all(self, *commands: Sequence[str]) -> list[Run]:
        return list(await asyncio.gather(*(self(*c) for c in commands)))
