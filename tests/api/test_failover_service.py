"""The whole service across a primary crash: a genconf server on the 3-node
replica set, a fleet of watching agents and a steady write load through the API.

Killing the primary must cost the fleet nothing but time: the server's whole
health goes NOT_SERVING while its change stream is cut off and SERVING again
after, writes resume on the new primary, and every agent ends holding exactly
the config MongoDB says it should. The time to recover is printed
(``pytest tests/api/test_failover_service.py -s``; ``GENCONF_TEST_AGENTS=1000`` for
the issue's fleet size).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import anyio
import anyio.to_thread
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pymongo import MongoClient
from support.fleet import AGENTS, Fleet
from support.model_check import expected_hashes
from support.servers import running_server
from support.writer import Writer

from genconf.client import Client
from genconf.dev.replicaset import EmbeddedReplicaSet
from genconf.errors import ClientError
from genconf.readside.multiwatcher import Tuning

SCHEMA: dict[str, Any] = {"k": {"type": "int", "default": 0}, "s": {"type": "string"}}
CLIENTS = 4  # channels the fleet's streams are spread over
WRITE_PACE = 0.2  # seconds between writes: a steady load, not a flood
# The stream is answered every 100 ms when idle; a second of silence is an outage.
STALE_AFTER = 1.0
TUNING = Tuning(max_await_ms=100, backoff_initial=0.05, backoff_max=1.0)
SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture
def rs_db(replica_set: EmbeddedReplicaSet) -> Iterator[tuple[str, MongoClient[Any]]]:
    replica_set.wait_healthy(60)
    client: MongoClient[dict[str, Any]] = MongoClient(
        replica_set.uri, serverSelectionTimeoutMS=30_000
    )
    name = "t_" + uuid4().hex[:12]
    try:
        yield name, client
    finally:
        try:
            client.drop_database(name)
        finally:
            client.close()


def api_writer(client: Client) -> Writer:
    """set_config through the API at a steady pace; refusals while there is no primary
    (UNAVAILABLE, or a deadline) are counted and retried."""
    return Writer(
        lambda k: client.set_config("web", {"k": k}),
        lambda exc: (
            isinstance(exc, ClientError)
            and exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        ),
        pace=WRITE_PACE,
        retry_pace=WRITE_PACE,
    )


class HealthLog:
    """Every whole-server health status the server reports, with when (Health.Watch)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = health_pb2_grpc.HealthStub(channel)
        self.changes: list[tuple[float, int]] = []
        self._changed = anyio.Condition()

    async def run(self) -> None:
        call = self.stub.Watch(health_pb2.HealthCheckRequest(service=""))
        try:
            async for reply in call:
                async with self._changed:
                    self.changes.append((time.monotonic(), reply.status))
                    self._changed.notify_all()
        finally:
            call.cancel()

    async def serving_after(self, since: float) -> float:
        """When the status went SERVING again after having left it after ``since``."""
        async with self._changed:
            while True:
                after = [(t, s) for t, s in self.changes if t >= since]
                left = next((i for i, (_, s) in enumerate(after) if s != SERVING), None)
                if left is not None:
                    back = next((t for t, s in after[left:] if s == SERVING), None)
                    if back is not None:
                        return back
                await self._changed.wait()


async def test_agents_hold_their_config_after_the_primary_is_killed(
    replica_set: EmbeddedReplicaSet, rs_db: tuple[str, MongoClient[Any]]
) -> None:
    rs = replica_set
    db_name, mongo = rs_db
    async with (
        running_server(rs.uri, db_name, tuning=TUNING, stale_after=STALE_AFTER) as srv,
        Client(srv.address, timeout=30) as admin,
    ):
        await admin.create_application("web", schema=SCHEMA, units=AGENTS)
        await admin.add_branch("canary")
        await admin.set_branch_config("canary", "web", {"s": "canary"})
        units = [f"web/{n}" for n in range(AGENTS)]
        seeded = await admin.track_branch("canary", units=units[::10])
        clients = [Client(srv.address, timeout=None) for _ in range(CLIENTS)]
        fleet = Fleet()
        health = HealthLog(admin.channel)
        writer = api_writer(admin)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(health.run)
                with anyio.fail_after(120):
                    await fleet.start(tg, clients, units, seeded.revision)
                tg.start_soon(writer.run)
                with anyio.fail_after(30):
                    k, _ = await writer.ack(10)
                    await fleet.wait_all(lambda c, k=k: c.config["k"] >= k)

                victim = await anyio.to_thread.run_sync(rs.primary_index)
                try:
                    killed = time.monotonic()
                    await anyio.to_thread.run_sync(rs.kill, victim)
                    before = len(writer.acked)
                    with anyio.fail_after(90):
                        # Write before+1 may have committed before the kill took effect;
                        # write before+2 was sent after before+1 was acknowledged.
                        k, _ = await writer.ack(before + 2)
                        acked = time.monotonic() - killed
                        await fleet.wait_all(lambda c, k=k: c.config["k"] >= k)
                        fleet_has_it = time.monotonic() - killed
                        healthy = await health.serving_after(killed) - killed
                    primary = await anyio.to_thread.run_sync(rs.primary_index)
                    print(
                        f"\nfailover with {AGENTS} agents: primary (member {victim}) killed; "
                        f"health SERVING again after {healthy:.2f}s, first write acknowledged "
                        f"after {acked:.2f}s, every agent had it after {fleet_has_it:.2f}s "
                        f"(new primary member {primary}; writes refused meanwhile "
                        f"{writer.refused})"
                    )
                finally:
                    # The old primary rejoins as a secondary; the load goes on meanwhile.
                    # Restarted even if the test fails on the way: the replica set is
                    # shared by the session.
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(rs.restart, victim, 60)
                await anyio.to_thread.run_sync(rs.wait_healthy, 60)
                with anyio.fail_after(30):
                    await writer.ack(len(writer.acked) + 5)
                writer.stopping = True  # not cancelled: no write is cut off mid-way
                final = await admin.set_config("web", {"k": 1_000_000, "s": "final"})
                expected = await anyio.to_thread.run_sync(expected_hashes, mongo, db_name)
                with anyio.fail_after(60):
                    await fleet.wait_all(lambda c: c.revision >= final.revision)
                tg.cancel_scope.cancel()
        finally:
            for client in clients:
                await client.aclose()

        # Every agent holds what MongoDB says, and so does the server's cache.
        assert len(expected) == AGENTS
        assert fleet.hashes() == expected
        for unit, want in expected.items():
            assert (await admin.get_config(unit, min_revision=final.revision)).hash == want
        assert await admin.health() == "SERVING"
        assert fleet.latest["web/0"].config == {"k": 1_000_000, "s": "canary"}
        assert fleet.latest["web/1"].config == {"k": 1_000_000, "s": "final"}
        assert primary != victim
        assert healthy < 60 and fleet_has_it < 60
