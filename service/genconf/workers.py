"""Several server processes on one address: `genconf serve --workers N`.

One parent supervises N workers, each a whole server (its own change stream and
cache) started from an argv the caller gives (`supervise`). The parent:

- holds the address for its whole life (`hold_address`): it checks it free, then
  binds a socket with SO_REUSEPORT that never listens. Workers bind beside it with
  SO_REUSEPORT; a server without SO_REUSEPORT (another `genconf serve`) gets
  EADDRINUSE, even while every worker is restarting. The kernel hands connections
  only to listening sockets, so the parent's socket never gets one;
- restarts a worker that exits while the fleet runs (1 s doubling to 30 s while it
  keeps dying), and stops every worker on the way out (SIGTERM, a grace, SIGKILL);
- tells every worker whether the whole fleet is serving, so that each answers
  health for all of them.

A worker talks to its parent over two pipes (`WorkerLink` is the worker's end)::

    parent -> worker   the worker's stdin: "serving" or "not-serving" (is every worker
                       serving?) at each change; end of file: the parent is gone, so
                       the worker stops as on SIGTERM (even after a kill -9 of the parent)
    worker -> parent   the worker's stdout: "serving" or "not-serving", its own
                       whole-server health at each change (the worker's other output
                       goes to stderr: that pipe carries nothing else)

Workers run in a session of their own: a Ctrl-C at the terminal reaches the parent
only, which decides when and how they stop. Nothing here knows gRPC or MongoDB;
it imports only leaf modules, so another server (the bench's) can run N workers
the same way.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Final

import anyio

from genconf.backoff import Backoff
from genconf.errors import GenconfError
from genconf.signals import StopSignals

log = logging.getLogger("genconf.workers")

SERVING: Final = b"serving"
NOT_SERVING: Final = b"not-serving"
# A worker that dies again and again waits longer each time; one that lived this
# long starts the schedule afresh.
RESTART_BACKOFF: Final = Backoff(initial=1.0, maximum=30.0)
STABLE_AFTER: Final = 30.0
# SIGTERM, then this long for a worker's own shutdown (its grace and a margin), then SIGKILL.
DEFAULT_STOP_GRACE: Final = 10.0


def _line(serving: bool) -> bytes:
    return (SERVING if serving else NOT_SERVING) + b"\n"


def _parse(line: bytes) -> bool | None:
    """A protocol line's state; None: not a protocol line."""
    word = line.strip()
    return True if word == SERVING else False if word == NOT_SERVING else None


def exit_status(returncode: int) -> str:
    """``signal SIGKILL`` or ``status 1``, for log lines."""
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"status {returncode}"


# -- the address -------------------------------------------------------------------


class AddressInUse(GenconfError):
    """Another process listens on the address (or holds it)."""


@contextmanager
def hold_address(listen: str) -> Iterator[str]:
    """Hold ``listen`` (HOST:PORT) for the block: SO_REUSEPORT sockets bound, never
    listening, on every address it names; yields HOST:PORT with the port bound (a
    port of 0 picks a free one, the same on every address).

    The held socket has no SO_REUSEADDR: a probe or a server with SO_REUSEADDR alone
    (`genconf.api.server.check_listen_free`, a one-process `genconf serve`) is then
    refused. Only connections an earlier server left in TIME_WAIT (a one-process
    server stopped a moment ago) can stop that bind: then the socket takes
    SO_REUSEADDR too, and the port is held only once the workers listen."""
    host, _, port_text = listen.rpartition(":")
    try:
        port = int(port_text)
        infos = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (ValueError, OSError) as exc:
        detail = "expected HOST:PORT" if isinstance(exc, ValueError) else str(exc)
        raise GenconfError(f"cannot listen on {listen}: {detail}") from None
    for _ in range(5):  # port 0: a port free on the first address may be taken on the next
        held: list[socket.socket] = []
        try:
            chosen = _bind_all(infos, port, held)
        except AddressInUse:
            if port == 0 and held:
                continue
            raise AddressInUse(f"{listen} is already in use") from None
        if not held:
            raise GenconfError(f"cannot listen on {listen}: not an address of this machine")
        try:
            yield f"{host}:{chosen}"
        finally:
            for sock in held:
                sock.close()
        return
    raise GenconfError(f"cannot listen on {listen}: no port is free on each of its addresses")


def _bind_all(infos: list[tuple], port: int, held: list[socket.socket]) -> int:
    """Bind one holding socket per address into ``held``: the port they share. On a
    failure, ``held`` is closed."""
    try:
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                _bind_holding(sock, (address[0], port, *address[2:]))
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise AddressInUse(str(exc)) from None
                continue  # no IPv6 here, say: the workers' bind judges that address
            held.append(sock)
            port = sock.getsockname()[1]
    except BaseException:
        for sock in held:
            sock.close()
        raise
    return port


def _bind_holding(sock: socket.socket, target: tuple) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(target)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE or target[1] == 0 or not _only_time_wait(sock, target):
            raise
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(target)
        log.info(
            "port %d has connections of an earlier server in TIME_WAIT: held for other "
            "servers only once the workers listen",
            target[1],
        )


def _only_time_wait(sock: socket.socket, target: tuple) -> bool:
    """Nobody listens on ``target`` (a bind with SO_REUSEADDR succeeds): only
    connections in TIME_WAIT stopped the stricter one."""
    try:
        with socket.socket(sock.family, sock.type, sock.proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(target)
    except OSError:
        return False
    return True


# -- the parent ----------------------------------------------------------------------


@dataclass
class _Slot:
    """One worker's place: the process in it now (None between two lives)."""

    index: int
    process: asyncio.subprocess.Process | None = None
    serving: bool = False


class Supervisor:
    """N workers started from ``command(index)``, kept running, told the fleet's state."""

    def __init__(
        self,
        command: Callable[[int], Sequence[str]],
        count: int,
        *,
        stop_grace: float = DEFAULT_STOP_GRACE,
        backoff: Backoff = RESTART_BACKOFF,
        stable_after: float = STABLE_AFTER,
        env: dict[str, str] | None = None,
    ) -> None:
        if count < 1:
            raise ValueError(f"a fleet needs a worker at least, got {count}")
        self._command = command
        self._slots = [_Slot(i) for i in range(count)]
        self.stop_grace = stop_grace
        self._backoff = backoff
        self._stable_after = stable_after
        self._env = env
        self._all_serving = False
        self._stopping = False
        self._was_ready = False  # every worker served at once, at least once
        self._ready = anyio.Event()  # that, or a worker failed before it
        self._failure: str | None = None

    @property
    def count(self) -> int:
        return len(self._slots)

    @property
    def pids(self) -> list[int]:
        """The workers' process ids, by index (live ones only)."""
        return [
            s.process.pid
            for s in self._slots
            if s.process is not None and s.process.returncode is None
        ]

    @property
    def all_serving(self) -> bool:
        return self._all_serving

    async def wait_ready(self) -> None:
        """Until every worker is serving at once for the first time; a worker that
        exits before then fails the whole fleet (its own error is on stderr)."""
        await self._ready.wait()
        if self._failure is not None:
            raise GenconfError(self._failure)

    async def _keep_all(self) -> None:
        async with anyio.create_task_group() as tg:
            for slot in self._slots:
                tg.start_soon(self._keep, slot)

    async def _keep(self, slot: _Slot) -> None:
        """Run the slot's worker, again after each unexpected exit."""
        delays = self._backoff.delays()
        while not self._stopping:
            started = time.monotonic()
            try:
                pid, returncode = await self._run_once(slot)
                what = f"worker {slot.index} (pid {pid}) exited with {exit_status(returncode)}"
            except OSError as exc:  # no such program, no memory, no file descriptor...
                what = f"worker {slot.index} could not start: {exc}"
            if self._stopping:
                return
            if not self._was_ready:
                self._failure = f"{what} before it was ready"
                self._ready.set()
                return
            if time.monotonic() - started >= self._stable_after:
                delays = self._backoff.delays()
            delay = next(delays)
            log.warning("%s; starting it again in %.1fs", what, delay)
            await anyio.sleep(delay)

    async def _run_once(self, slot: _Slot) -> tuple[int, int]:
        """Start the slot's worker and follow its reports until it exits: (pid, returncode)."""
        argv = list(self._command(slot.index))
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self._env,
            start_new_session=True,  # a terminal's Ctrl-C is the parent's to handle
        )
        slot.process = proc
        log.info("worker %d started (pid %d)", slot.index, proc.pid)
        self._tell(slot)
        assert proc.stdout is not None
        try:
            async for line in proc.stdout:
                serving = _parse(line)
                if serving is not None and serving != slot.serving:
                    slot.serving = serving
                    log.info(
                        "worker %d (pid %d) %s",
                        slot.index,
                        proc.pid,
                        "is serving" if serving else "is not serving",
                    )
                    self._update()
            return proc.pid, await proc.wait()
        finally:
            if not self._stopping:
                slot.serving = False
                self._update()

    def _update(self) -> None:
        """Recount; at a change of the fleet's state, tell every worker."""
        serving = all(s.serving for s in self._slots)
        if serving and not self._was_ready:
            self._was_ready = True
            self._ready.set()
        if serving == self._all_serving:
            return
        self._all_serving = serving
        if serving:
            log.info("all %d workers serving (pids %s)", self.count, _listed(self.pids))
        else:
            up = sum(s.serving for s in self._slots)
            log.warning(
                "%d of %d workers serving: every worker reports NOT_SERVING until all are",
                up,
                self.count,
            )
        for slot in self._slots:
            self._tell(slot)

    def _tell(self, slot: _Slot) -> None:
        proc = slot.process
        if proc is None or proc.returncode is not None or proc.stdin is None:
            return
        try:
            proc.stdin.write(_line(self._all_serving))
        except (ConnectionError, RuntimeError):
            pass  # it is exiting: `_run_once` notices

    async def _stop_workers(self) -> None:
        """SIGTERM every worker, ``stop_grace`` seconds for them to finish, SIGKILL."""
        self._stopping = True
        procs = [s.process for s in self._slots if s.process is not None]
        live = [p for p in procs if p.returncode is None]
        for proc in live:
            _signal(proc, signal.SIGTERM)
        with anyio.move_on_after(self.stop_grace):
            for proc in live:
                await proc.wait()
        for proc in live:
            if proc.returncode is None:
                log.warning("worker pid %d outlived %.0fs; killing it", proc.pid, self.stop_grace)
                _signal(proc, signal.SIGKILL)
        for proc in live:
            await proc.wait()


def _signal(proc: asyncio.subprocess.Process, signum: signal.Signals) -> None:
    try:
        proc.send_signal(signum)
    except ProcessLookupError:
        pass


def _listed(pids: Sequence[int]) -> str:
    return ", ".join(str(p) for p in pids)


@asynccontextmanager
async def supervise(
    command: Callable[[int], Sequence[str]],
    count: int,
    *,
    stop_grace: float = DEFAULT_STOP_GRACE,
    backoff: Backoff = RESTART_BACKOFF,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Supervisor]:
    """Run ``count`` workers, worker ``i`` as the process ``command(i)`` (a server that
    takes a `WorkerLink`), for the block; every one of them is stopped when it ends.
    Wait for them with `Supervisor.wait_ready`."""
    supervisor = Supervisor(command, count, stop_grace=stop_grace, backoff=backoff, env=env)
    async with anyio.create_task_group() as tg:
        tg.start_soon(supervisor._keep_all)
        try:
            yield supervisor
        finally:
            with anyio.CancelScope(shield=True):
                supervisor._stopping = True
                tg.cancel_scope.cancel()  # no more restarts
                await supervisor._stop_workers()


# -- a worker ------------------------------------------------------------------------


class WorkerLink:
    """A worker's end of the pipes to its parent (see the module's docstring); the
    `genconf.api.server.Fleet` its health follows. Make it first thing in the worker,
    inside its event loop: it takes stdout over."""

    def __init__(self) -> None:
        # The report pipe is stdout as the worker starts: keep it apart and send
        # whatever else this process prints to stderr, so nothing else reaches it.
        sys.stdout.flush()
        self._reports = os.dup(1)
        os.dup2(2, 1)
        self._fleet_serving = False
        self._changed = anyio.Event()
        self.parent_gone = anyio.Event()

    def report(self, serving: bool) -> None:
        try:
            os.write(self._reports, _line(serving))
        except OSError:
            pass  # the parent is gone: the end of stdin says so too

    async def changes(self) -> AsyncIterator[bool]:
        while True:
            changed = self._changed
            yield self._fleet_serving
            await changed.wait()

    async def until_stopped(self, stop: StopSignals) -> None:
        """Return on a stop signal or once the parent is gone: a worker's life."""
        async with anyio.create_task_group() as waits:

            async def on_signal() -> None:
                signum = await stop.wait()
                log.info("received %s; shutting down", signum.name)
                waits.cancel_scope.cancel()

            async def on_parent_gone() -> None:
                await self.parent_gone.wait()
                log.warning("the parent process is gone; shutting down")
                waits.cancel_scope.cancel()

            waits.start_soon(on_signal)
            waits.start_soon(on_parent_gone)

    async def run(self) -> None:
        """Follow the parent's lines until stdin ends, then set `parent_gone`."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer
        )
        try:
            async for line in reader:
                serving = _parse(line)
                if serving is not None and serving != self._fleet_serving:
                    self._fleet_serving = serving
                    self._changed.set()
                    self._changed = anyio.Event()
        finally:
            transport.close()
            self.parent_gone.set()


def tag_logs(prefix: str) -> None:
    """Start each log line of this process with ``prefix``: a fleet's workers share
    the parent's stderr."""

    def tag(record: logging.LogRecord) -> bool:
        record.msg = f"{prefix}{record.msg}"
        return True

    for handler in logging.getLogger().handlers:
        handler.addFilter(tag)
