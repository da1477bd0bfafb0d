"""The reference unit agent: ``genconf agent --unit APP/N --write PATH [--exec CMD]``.

What it promises, and how:

- **PATH always holds one complete config.** Every write goes to a temp file in
  the same directory (mode 0600), is fsynced and renamed over PATH (atomic on
  POSIX); a failure or a stop removes the temp file. Writes are synchronous
  with no await in between, so cancellation cannot stop one half-way.
- **CMD runs once per distinct config.** `Client.watch_config` yields a config
  only when its hash changes and, across reconnects, resumes with the last
  hash it saw; across agent restarts the agent resumes with the hash of the
  file on disk (JSON: the hash of its content; YAML and env: a header line,
  checked against the content for YAML). CMD runs after each write, never
  for a config the file already held.
- **The server hears about every apply.** After each write (and CMD) the
  agent reports ``(hash, ok, message)``; a report that cannot be sent (server
  down) is retried with jittered backoff until it is sent or a newer one
  replaces it.
- **It outlives server restarts.** The watch reconnects with jittered backoff.

The pieces: `files` (formats, render, the atomic write), `command` (``--exec``),
`status` (the live line or log lines); here, the watch loop and the reports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio

from genconf.agent.command import run_command
from genconf.agent.files import FileFormat, hash_on_disk, render, write_atomic
from genconf.agent.status import CONNECTION_NAMES, Status
from genconf.backoff import Backoff
from genconf.client import Client, ClientError, Config
from genconf.client.status import RETRYABLE
from genconf.domain import names
from genconf.signals import run_until_signal

FLUSH_TIMEOUT: Final = 2.0  # seconds a stopping agent tries to send its last report


# -- reports -------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    hash: str
    ok: bool
    message: str


class Reporter:
    """Sends the latest report, retrying while the server is unreachable; a newer
    report replaces one not yet sent (only the latest state matters)."""

    def __init__(self, client: Client, unit: str, backoff: Backoff, status: Status) -> None:
        self.client = client
        self.unit = unit
        self.backoff = backoff
        self.status = status
        self._pending: Report | None = None
        self._changed = anyio.Event()

    def submit(self, report: Report) -> None:
        self._pending = report
        self._changed.set()

    async def run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()
            delays = self.backoff.delays()
            while (report := self._pending) is not None:
                try:
                    await self.client.report_applied(
                        self.unit, report.hash, ok=report.ok, message=report.message
                    )
                except ClientError as exc:
                    if exc.code in RETRYABLE:
                        with anyio.move_on_after(next(delays)):
                            await self._changed.wait()  # a newer report: send that now
                        continue
                    self.status.event(f"the server refused the report: {exc.message}", error=True)
                if self._pending is report:
                    self._pending = None

    async def flush(self) -> None:
        """One last try at the report not sent yet (on the way out)."""
        report = self._pending
        if report is not None:
            with contextlib.suppress(ClientError):
                await self.client.report_applied(
                    self.unit, report.hash, ok=report.ok, message=report.message
                )
                self._pending = None


# -- the agent -------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentOptions:
    unit: str
    path: Path
    format: FileFormat
    command: str | None = None
    exec_timeout: float = 300.0


class Agent:
    """Watch one unit's config and apply every distinct one to a file."""

    def __init__(self, client: Client, options: AgentOptions, status: Status) -> None:
        self.client = client
        self.options = options
        self.status = status
        self.reporter = Reporter(client, options.unit, client.backoff, status)
        self._tg: anyio.abc.TaskGroup | None = None
        # The retries of the newest config's failed --exec; a newer config cancels them.
        self._retrying: anyio.CancelScope | None = None

    async def run(self) -> None:
        """Until cancelled; a ClientError that reconnecting cannot fix propagates."""
        opts = self.options
        known = hash_on_disk(opts.path, opts.format, opts.unit)
        if known:
            self.status.applied = known[:12]
            self.status.event(f"{opts.path} holds config {known[:12]}; resuming from it")
        self.status.draw()
        failure: Exception | None = None
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self.reporter.run)
            if self.status.live:
                tg.start_soon(self._watch_connection)
            try:
                async for config in self.client.watch_config(opts.unit, known_hash=known):
                    await self.apply(config)
            except Exception as exc:  # re-raised below, not as an ExceptionGroup
                failure = exc
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def apply(self, config: Config) -> None:
        opts = self.options
        if self._retrying is not None:
            self._retrying.cancel()  # the failed command was for an older config
            self._retrying = None
        data = render(opts.format, opts.unit, config.config, config.hash)
        where = f"(app version {config.app_version}, branch {config.branch or 'master'})"
        try:
            write_atomic(opts.path, data)
        except OSError as exc:
            message = f"cannot write {opts.path}: {exc.strerror or exc}"
            self.status.event(message, error=True)
            self.reporter.submit(Report(config.hash, False, message))
            return
        self.status.configs += 1
        self.status.applied = config.hash[:12]
        self.status.when = f" | last at {dt.datetime.now().strftime('%H:%M:%S')}"
        self.status.event(f"wrote {opts.path}: config {config.hash[:12]} {where}")
        report = Report(config.hash, True, f"wrote {opts.path}")
        if opts.command:
            report = await self._exec(config)
            if not report.ok and self._tg is not None:
                self._retrying = anyio.CancelScope()
                self._tg.start_soon(self._retry_exec, config, self._retrying)
        self.reporter.submit(report)

    async def _exec(self, config: Config) -> Report:
        """Run --exec for ``config``; the report says how it went, and so does the
        status line (a failed command is marked on it until one succeeds)."""
        opts = self.options
        assert opts.command is not None
        env = {
            **os.environ,
            "GENCONF_UNIT": opts.unit,
            "GENCONF_FILE": str(opts.path),
            "GENCONF_HASH": config.hash,
            "GENCONF_BRANCH": config.branch,
            "GENCONF_APP_VERSION": str(config.app_version),
        }
        self.status.suspend()
        result = await run_command(opts.command, env, opts.exec_timeout)
        self.status.draw()
        for line in result.stderr.splitlines():
            self.status.event(f"exec: {line}")
        if result.ok:
            self.status.applied = config.hash[:12]
            self.status.event("exec ok")
            return Report(config.hash, True, f"wrote {opts.path}; exec ok")
        message = result.describe(opts.exec_timeout)
        self.status.applied = f"{config.hash[:12]} (exec failed)"
        self.status.event(message, error=True)
        return Report(config.hash, False, message)

    async def _retry_exec(self, config: Config, scope: anyio.CancelScope) -> None:
        """Run the failed command again with jittered backoff until it succeeds or a
        newer config arrives (which cancels ``scope``); each outcome is reported."""
        with scope:
            for attempt, delay in enumerate(self.client.backoff.delays(), start=2):
                await anyio.sleep(delay)
                self.status.event(f"exec: retrying (attempt {attempt}, after {delay:.1f} s)")
                report = await self._exec(config)
                self.reporter.submit(report)
                if report.ok:
                    return

    async def _watch_connection(self) -> None:
        """Keep the status line's connection state current (terminal only)."""
        channel = self.client.channel
        while True:
            state = channel.get_state(try_to_connect=False)
            name = CONNECTION_NAMES.get(state, state.name.lower())
            if name != self.status.connection:
                self.status.connection = name
                self.status.draw()
            await channel.wait_for_state_change(state)


async def run_agent(client: Client, options: AgentOptions, *, live: bool) -> int:
    """Run until SIGINT/SIGTERM (exit 0) or an error reconnecting cannot fix."""
    names.parse_unit_name(options.unit)
    status = Status(options.unit, live=live)
    agent = Agent(client, options, status)

    try:
        # The signal receiver is open before anything runs: a stop signal never
        # kills the process half-way through a write.
        await run_until_signal(
            agent.run, on_signal=lambda s: status.event(f"received {s.name}; stopping")
        )
        with anyio.move_on_after(FLUSH_TIMEOUT, shield=True):
            await agent.reporter.flush()
    finally:
        status.close()
    return 0
