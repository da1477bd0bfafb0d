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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

import anyio
import grpc
import yaml

from genconf.client.core import RETRYABLE, Backoff, Client, Config
from genconf.domain import model
from genconf.errors import ClientError

log = logging.getLogger("genconf.agent.runner")

HEADER_RE: Final = re.compile(r"^# genconf unit=(\S+) hash=([0-9a-f]{64})$")
STDERR_TAIL_CHARS: Final = 1000  # of a failed command's stderr, in its report
STDERR_KEEP_BYTES: Final = 64 * 1024
DRAIN_GRACE: Final = 1.0  # seconds to finish reading stderr after the command exits
FLUSH_TIMEOUT: Final = 2.0  # seconds a stopping agent tries to send its last report


class FileFormat(enum.StrEnum):
    JSON = "json"
    YAML = "yaml"
    ENV = "env"

    @classmethod
    def for_path(cls, path: Path) -> FileFormat:
        """The format a file name suggests (``.yaml``/``.yml``, ``.env``), else JSON."""
        suffix = path.suffix.lower()
        if suffix in (".yaml", ".yml"):
            return cls.YAML
        if suffix == ".env":
            return cls.ENV
        return cls.JSON


# -- the file -------------------------------------------------------------------


def env_name(key: str) -> str:
    """A config key as an environment variable name: ``log-level`` -> ``LOG_LEVEL``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", key).upper()


def render(fmt: FileFormat, unit: str, config: Mapping[str, Any], hash_: str) -> bytes:
    """The file's bytes. YAML and env files start with a header naming the unit and
    the config's hash, so a restarted agent knows what the file holds."""
    if fmt is FileFormat.JSON:
        return (json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    header = f"# genconf unit={unit} hash={hash_}\n"
    if fmt is FileFormat.YAML:
        body = yaml.safe_dump(
            dict(config), sort_keys=True, allow_unicode=True, default_flow_style=False
        )
        return (header + body).encode()
    lines = []
    for key in sorted(config):
        value = config[key]
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        lines.append(f"{env_name(key)}={shlex.quote(text)}\n")
    return (header + "".join(lines)).encode()


def hash_on_disk(path: Path, fmt: FileFormat, unit: str) -> str:
    """The hash of the config the file holds, or "" when that cannot be told."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return ""
    try:
        if fmt is FileFormat.JSON:
            data = json.loads(text)
            return model.config_hash(data) if isinstance(data, dict) else ""
        match = HEADER_RE.match(text.split("\n", 1)[0])
        if match is None or match[1] != unit:
            return ""
        if fmt is FileFormat.YAML:
            data = yaml.safe_load(text) or {}
            if not isinstance(data, dict) or model.config_hash(data) != match[2]:
                return ""
        return match[2]
    except (ValueError, TypeError, yaml.YAMLError):
        return ""


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once: readers see the old file or the new
    one, never a mix, and no temp file survives a failure."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # The rename itself is durable only once the directory is synced.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# -- the command ------------------------------------------------------------------


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


# -- status ------------------------------------------------------------------------


def wants_live_status(stream: TextIO) -> bool:
    """A redrawn status line only for a person at a terminal that can clear a line
    (not TERM=dumb); logs and pipes get plain log lines instead."""
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or already closed
        return False
    return terminal and os.environ.get("TERM") != "dumb"


@dataclass
class Status:
    """What the agent shows: a live status line on a terminal, log lines otherwise."""

    unit: str
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    live: bool = False
    connection: str = "connecting"
    applied: str = "-"
    configs: int = 0
    when: str = ""
    _drawn: bool = False

    def event(self, text: str, *, error: bool = False) -> None:
        """A line that stays (above the live line on a terminal)."""
        if not self.live:
            (log.error if error else log.info)("%s: %s", self.unit, text)
            return
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        self._clear()
        self.stream.write(f"{stamp} {text}\n")
        self.draw()

    def draw(self) -> None:
        if not self.live:
            return
        line = (
            f"genconf agent {self.unit} | {self.connection} | applied {self.applied} "
            f"| {self.configs} config(s) written{self.when}"
        )
        self._clear()
        self.stream.write(line)
        self.stream.flush()
        self._drawn = True

    def suspend(self) -> None:
        """Take the live line away while a command may print to the terminal."""
        self._clear()
        self.stream.flush()

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self._drawn = False

    def close(self) -> None:
        if self.live and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


CONNECTION_NAMES: Final = {
    grpc.ChannelConnectivity.READY: "connected",
    grpc.ChannelConnectivity.CONNECTING: "connecting",
    grpc.ChannelConnectivity.TRANSIENT_FAILURE: "reconnecting",
    grpc.ChannelConnectivity.IDLE: "connecting",  # only before the watch's first call
    grpc.ChannelConnectivity.SHUTDOWN: "closed",
}


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
                report = Report(config.hash, True, f"wrote {opts.path}; exec ok")
                self.status.event("exec ok")
            else:
                message = result.describe(opts.exec_timeout)
                report = Report(config.hash, False, message)
                self.status.event(message, error=True)
        self.reporter.submit(report)

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
    model.parse_unit_name(options.unit)
    status = Status(options.unit, live=live)
    agent = Agent(client, options, status)

    async def stop_on_signal(signals: Any, scope: anyio.CancelScope) -> None:
        async for signum in signals:
            status.event(f"received {signal.Signals(signum).name}; stopping")
            scope.cancel()
            return

    try:
        # The receiver is open before anything else runs: a stop signal never
        # kills the process half-way through a write.
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with anyio.create_task_group() as tg:
                tg.start_soon(stop_on_signal, signals, tg.cancel_scope)
                await agent.run()
                tg.cancel_scope.cancel()
            with anyio.move_on_after(FLUSH_TIMEOUT, shield=True):
                await agent.reporter.flush()
    finally:
        status.close()
    return 0
