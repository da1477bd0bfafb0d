"""A replica set of several loopback mongods, with tools to provoke failover (tests)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

from pymongo.errors import ConnectionFailure

from genconf.dev.mongod import (
    POLL,
    TRANSACTION_LIFETIME_LIMIT,
    EmbeddedDatabase,
    Mongod,
    ensure_replset,
    hello_of,
    member_configs,
    poll_until,
)
from genconf.dev.mongod_binary import HOST, distinct_free_ports, find_mongod
from genconf.errors import Unavailable

log = logging.getLogger("genconf.dev.embedded")  # the name its log lines have always had


class EmbeddedReplicaSet(EmbeddedDatabase):
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
        self._ports = list(ports) if ports is not None else distinct_free_ports(size)
        self._members: list[Mongod] = []

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
            Mongod(
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
                "members": member_configs(self.hosts),
                "settings": {
                    "electionTimeoutMillis": self.election_timeout_ms,
                    "heartbeatIntervalMillis": self.heartbeat_interval_ms,
                },
            }
            ensure_replset(self._members[0], self._members, config, deadline)
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
            hello = hello_of(member)
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
            time.sleep(POLL)

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
            poll_until([member], deadline, "rejoin the replica set", lambda: member.role() != "")
        except BaseException:
            member.stop(timeout=5.0)
            raise

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Wait until there is a PRIMARY and every other member is SECONDARY."""
        self._wait_healthy(time.monotonic() + timeout)

    def _wait_healthy(self, deadline: float) -> None:
        def healthy() -> bool:
            roles = [member.role() for member in self._members]
            return "" not in roles and roles.count("primary") == 1

        poll_until(
            self._members,
            deadline,
            "reach a healthy replica set (one PRIMARY, the rest SECONDARY)",
            healthy,
        )

    def __repr__(self) -> str:
        return f"EmbeddedReplicaSet({str(self.base_dir)!r}, hosts={self.hosts}, pids={self.pids})"
