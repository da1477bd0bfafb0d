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
  agent reports ``(hash, ok, message, health)``; a report that cannot be sent (server
  down) is retried with jittered backoff until it is sent or a newer one
  replaces it.
- **It outlives server restarts.** The watch reconnects with jittered backoff.
- **Templates** (``--template TPL``): the same rules, with PATH rendered from TPL
  (read at every apply, see `template`). A template that fails is a failed
  report and PATH is not touched. The output carries no hash, so a restarted
  agent compares its first rendering with PATH instead: equal, nothing is
  written and CMD does not run again.
- **Health** (``--health-cmd``): after each apply (after CMD) and every
  ``--health-interval``, the health command says healthy or unhealthy. Every
  report carries the latest health; a periodic check sends a report of its own
  only when the health changed. Commands never overlap: a check waits for an
  apply (whose CMD may be restarting the service) and the other way round.
- **SIGHUP** renders the newest config again and applies it if PATH does not hold
  exactly that (a fixed template, a file edited by hand); otherwise nothing.

The pieces: `files` (formats, render, the atomic write), `template` (Jinja2),
`command` (``--exec``), `health` (``--health-cmd``), `status` (the live line or
log lines); here, the watch loop and the reports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio

from genconf.agent.command import run_command
from genconf.agent.files import FileFormat, RenderError, hash_on_disk, render, write_atomic
from genconf.agent.health import Health, HealthState, check_health
from genconf.agent.status import CONNECTION_NAMES, Status
from genconf.agent.template import render_template
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
    health: Health = Health.UNKNOWN
    health_message: str = ""


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

    async def _send(self, report: Report) -> None:
        await self.client.report_applied(
            self.unit,
            report.hash,
            ok=report.ok,
            message=report.message,
            health=report.health.value,
            health_message=report.health_message,
        )

    async def run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()
            delays = self.backoff.delays()
            while (report := self._pending) is not None:
                try:
                    await self._send(report)
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
                await self._send(report)
                self._pending = None


# -- the agent -------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentOptions:
    unit: str
    path: Path
    format: FileFormat
    command: str | None = None
    exec_timeout: float = 300.0
    template: Path | None = None  # render through this Jinja2 template instead of `format`
    health_command: str | None = None
    health_interval: float = 10.0
    health_timeout: float = 30.0


@dataclass(frozen=True)
class Applied:
    """The outcome of the latest apply: what every report says besides health."""

    hash: str
    ok: bool
    message: str


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
        # One command at a time: a health check never runs while an apply (or a
        # retried --exec) may be restarting the service, and applies never overlap.
        self._busy = anyio.Lock()
        self._config: Config | None = None  # the newest config received
        self._applied: Applied | None = None
        self._health = HealthState()
        self._first = True  # no config received yet since the agent started
        if options.health_command:
            status.health = "health unknown"

    async def run(self) -> None:
        """Until cancelled; a ClientError that reconnecting cannot fix propagates."""
        opts = self.options
        # A template's output carries no hash: the first config is compared instead.
        known = "" if opts.template else hash_on_disk(opts.path, opts.format, opts.unit)
        if known:
            self._applied = Applied(
                known, True, f"{opts.path} holds config {known[:12]} (agent restarted)"
            )
            self.status.applied = known[:12]
            self.status.event(f"{opts.path} holds config {known[:12]}; resuming from it")
        self.status.draw()
        failure: Exception | None = None
        # Open before anything runs: SIGHUP's default would end the process.
        with anyio.open_signal_receiver(signal.SIGHUP) as hangups:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self.reporter.run)
                tg.start_soon(self._reload_on_hangup, hangups)
                if opts.health_command:
                    tg.start_soon(self._health_loop)
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

    async def apply(self, config: Config, *, reload: bool = False) -> None:
        """Write ``config`` to PATH, run --exec, check health, report. ``reload``
        (SIGHUP): only if PATH does not already hold exactly what it renders to."""
        async with self._busy:
            await self._apply(config, reload=reload)

    async def _apply(self, config: Config, *, reload: bool) -> None:
        opts = self.options
        first, self._first = self._first, False
        self._config = config
        short = config.hash[:12]
        try:
            data = self._render(config)
        except RenderError as exc:
            self._stop_retrying()
            message = f"{str(exc).rstrip('.')}; {opts.path} left as it was"
            self.status.applied = f"{short} (failed)"
            self.status.event(message, error=True)
            await self._finish(Applied(config.hash, False, message))
            return
        if (reload or (first and opts.template)) and self._holds(data):
            if reload:  # nothing changed: the last report (and a retried exec) stands
                self.status.event(f"{opts.path} already holds config {short}; nothing to do")
                return
            self._stop_retrying()
            # A restarted agent whose template renders what PATH holds: applied before.
            self.status.applied = short
            self.status.event(f"{opts.path} holds config {short}; resuming from it")
            message = f"{opts.path} holds config {short} (agent restarted)"
            await self._finish(Applied(config.hash, True, message))
            return
        self._stop_retrying()
        where = f"(app version {config.app_version}, branch {config.branch or 'master'})"
        try:
            write_atomic(opts.path, data)
        except OSError as exc:
            message = f"cannot write {opts.path}: {exc.strerror or exc}"
            self.status.event(message, error=True)
            await self._finish(Applied(config.hash, False, message))
            return
        self.status.configs += 1
        self.status.applied = short
        self.status.when = f" | last at {dt.datetime.now().strftime('%H:%M:%S')}"
        self.status.event(f"wrote {opts.path}: config {short} {where}")
        applied = Applied(config.hash, True, f"wrote {opts.path}")
        if opts.command:
            applied = await self._exec(config)
            if not applied.ok and self._tg is not None:
                self._retrying = anyio.CancelScope()
                self._tg.start_soon(self._retry_exec, config, self._retrying)
        await self._finish(applied)

    def _stop_retrying(self) -> None:
        """This apply replaces the one whose failed --exec is being retried."""
        if self._retrying is not None:
            self._retrying.cancel()
            self._retrying = None

    def _render(self, config: Config) -> bytes:
        opts = self.options
        if opts.template is not None:
            return render_template(
                opts.template,
                config.config,
                unit=opts.unit,
                hash_=config.hash,
                branch=config.branch,
            )
        return render(opts.format, opts.unit, config.config, config.hash)

    def _holds(self, data: bytes) -> bool:
        """Whether PATH holds exactly ``data``."""
        try:
            return self.options.path.read_bytes() == data
        except OSError:
            return False

    async def _finish(self, applied: Applied) -> None:
        """An apply is done: check health (after --exec), then report both."""
        self._applied = applied
        if self.options.health_command:
            await self._check_health()
        self.reporter.submit(self._report())

    def _report(self) -> Report:
        assert self._applied is not None
        a = self._applied
        return Report(a.hash, a.ok, a.message, self._health.health, self._health.message)

    def _env(self, config: Config | None) -> dict[str, str]:
        """What --exec and --health-cmd see. Before the first config of a resumed agent,
        only the hash PATH holds is known: branch and app version are empty."""
        opts = self.options
        hash_ = config.hash if config else self._applied.hash if self._applied else ""
        return {
            **os.environ,
            "GENCONF_UNIT": opts.unit,
            "GENCONF_FILE": str(opts.path),
            "GENCONF_HASH": hash_,
            "GENCONF_BRANCH": config.branch if config else "",
            "GENCONF_APP_VERSION": str(config.app_version) if config else "",
        }

    async def _exec(self, config: Config) -> Applied:
        """Run --exec for ``config``; the result says how it went, and so does the
        status line (a failed command is marked on it until one succeeds)."""
        opts = self.options
        assert opts.command is not None
        self.status.suspend()
        result = await run_command(opts.command, self._env(config), opts.exec_timeout)
        self.status.draw()
        for line in result.output.splitlines():
            self.status.event(f"exec: {line}")
        if result.ok:
            self.status.applied = config.hash[:12]
            self.status.event("exec ok")
            return Applied(config.hash, True, f"wrote {opts.path}; exec ok")
        message = result.describe(opts.exec_timeout)
        self.status.applied = f"{config.hash[:12]} (exec failed)"
        self.status.event(message, error=True)
        return Applied(config.hash, False, message)

    async def _retry_exec(self, config: Config, scope: anyio.CancelScope) -> None:
        """Run the failed command again with jittered backoff until it succeeds or a
        newer config arrives (which cancels ``scope``); each outcome is reported."""
        with scope:
            for attempt, delay in enumerate(self.client.backoff.delays(), start=2):
                await anyio.sleep(delay)
                async with self._busy:
                    self.status.event(f"exec: retrying (attempt {attempt}, after {delay:.1f} s)")
                    applied = await self._exec(config)
                    await self._finish(applied)
                if applied.ok:
                    return

    async def _check_health(self) -> bool:
        """Run --health-cmd once (the caller holds ``_busy``); whether the unit's
        health changed. Only a change is logged: a steady state stays quiet."""
        opts = self.options
        assert opts.health_command is not None
        state = await check_health(
            opts.health_command, self._env(self._config), opts.health_timeout
        )
        changed = state.health is not self._health.health
        self._health = state
        if changed:
            self.status.health = state.health.value
            if state.health is Health.HEALTHY:
                self.status.event("health: healthy")
            else:
                self.status.event(f"health: {state.health.value}: {state.message}", error=True)
        return changed

    async def _health_loop(self) -> None:
        """Every --health-interval, check health; report only when it changed (a
        steady unit costs the server no writes). Nothing is checked before there is
        an applied config to report it with."""
        while True:
            async with self._busy:
                if self._applied is not None and await self._check_health():
                    self.reporter.submit(self._report())
            await anyio.sleep(self.options.health_interval)

    async def _reload_on_hangup(self, hangups: AsyncIterator[int]) -> None:
        """SIGHUP: render the newest config again now (a fixed template, a PATH edited
        by hand) and apply it if PATH does not hold exactly that already."""
        async for _ in hangups:
            config = self._config
            if config is None:  # resumed from PATH: ask for the config it holds
                try:
                    config = await self.client.get_config(self.options.unit)
                except ClientError as exc:
                    self.status.event(f"received SIGHUP; cannot read the config: {exc}", error=True)
                    continue
            self.status.event(f"received SIGHUP; rendering config {config.hash[:12]} again")
            await self.apply(config, reload=True)

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
