"""One mongod child process that we own by PID, and the waits around it.

Every mongod is our child process (never ``--fork``), so we know its PID, can wait
for it, and can kill it; an ``atexit`` hook stops whatever is still running, so a
crashed test run leaves no mongod behind. `ensure_replset` initiates (or, on a
reused data dir, re-points) the replica set; `poll_until` waits on a check and
fails fast, with the log's errors, when a process dies.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import json
import logging
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError

from genconf.dev.mongod_binary import HOST
from genconf.errors import MongodStartError

log = logging.getLogger("genconf.dev.embedded")  # the name its log lines have always had

LOG_NAME = "mongod.log"

# Server error codes we branch on (src/mongo/base/error_codes.yml).
_INVALID_REPLICA_SET_CONFIG = 93  # our host is not in the stored config
_NOT_YET_INITIALIZED = 94

TRANSACTION_LIFETIME_LIMIT = 5
"""Seconds before mongod aborts a transaction still open (``transactionLifetimeLimitSeconds``).

MongoDB's default is 60 s: a process killed mid-transaction then holds its documents
(writes to them get WriteConflict) and the collections' exclusive locks for a minute,
plus up to half that again until the server's reaper runs. genconf's transactions last
milliseconds, so 5 s loses nothing and frees them within 5 to 7.5 s."""

POLL = 0.05  # seconds between checks while waiting on a mongod

_T = TypeVar("_T")


_live: dict[int, Mongod] = {}
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


class Mongod:
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

        poll_until([self], deadline, "accept connections", ready)

    def role(self) -> str:
        """ "primary" (writable), "secondary" or "" (any other state), as the node
        itself answers ``hello``; a PyMongoError when it does not answer."""
        hello = self.admin().admin.command("hello")
        if hello.get("isWritablePrimary"):
            return "primary"
        if hello.get("secondary"):
            return "secondary"
        return ""

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


def poll_until(
    procs: Iterable[Mongod],
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
        time.sleep(POLL)


def member_configs(hosts: Sequence[str]) -> list[dict[str, Any]]:
    return [{"_id": i, "host": host} for i, host in enumerate(hosts)]


def ensure_replset(
    node: Mongod, procs: Sequence[Mongod], config: dict[str, Any], deadline: float
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

    poll_until(procs, deadline, "join its replica set", settled)


def hello_of(node: Mongod) -> dict[str, Any] | None:
    if not node.alive:
        return None
    try:
        return node.admin().admin.command("hello")
    except PyMongoError:
        return None


class EmbeddedDatabase(abc.ABC):
    """What the embedded databases share: started on entering, stopped on leaving."""

    @abc.abstractmethod
    def start(self) -> Self: ...

    @abc.abstractmethod
    def stop(self, timeout: float = 30.0) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
