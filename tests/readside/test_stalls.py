"""No caller stalls another: thousands of parked reads expiring together, a caller
parking more reads than its share, a revision no write can have returned.

Real servers on loopback. The 8,000 parked reads come from a child process (one
gRPC connection), so the work in this process is the server's and the probes'.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import grpc
import pytest
from support.servers import assert_code, background_server, running_server

from genconf.api.reads import MAX_AHEAD_SECONDS, parked_reads
from genconf.api.server import RunningServer
from genconf.client import Client, ClientError
from genconf.v1 import agent_pb2, agent_pb2_grpc

PARKED = 8000
# Ten minutes of cluster time ahead: accepted (not absurd), yet never reached,
# since nothing writes while the reads wait.
AHEAD = 600 << 32
# From the child's start to the deadline all its reads share: time to start and
# park 8,000 reads (~4 s here), then the lead the server takes to answer them all
# in time (1 ms per parked read, genconf.readside.waiters).
EXPIRE_AFTER = 20.0
MAX_STALL = 0.100
SCHEMA = {"port": {"type": "int", "default": 80}}

# The child: N GetConfig calls on one connection, all with the same absolute
# deadline; prints the status codes it got, as JSON.
PARKER = """
import asyncio, collections, json, sys, time
import grpc
from genconf.v1 import agent_pb2, agent_pb2_grpc

async def main() -> None:
    address, revision = sys.argv[1], int(sys.argv[2])
    deadline, n = float(sys.argv[3]), int(sys.argv[4])
    async with grpc.aio.insecure_channel(address) as channel:
        stub = agent_pb2_grpc.AgentServiceStub(channel)
        request = agent_pb2.GetConfigRequest(unit="web/0", min_revision=revision)
        calls = [stub.GetConfig(request, timeout=deadline - time.time()) for _ in range(n)]
        codes = collections.Counter([(await call.code()).name for call in calls])
    print(json.dumps({"codes": codes, "done": time.time()}), flush=True)

asyncio.run(main())
"""


class LoopLag:
    """The event loop's lateness: a timer asked for every ``tick`` s, how late it ran."""

    def __init__(self, tick: float = 0.002) -> None:
        self.tick = tick
        self.samples: list[tuple[float, float]] = []  # (wall time, how late)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(self.tick)
            self.samples.append((time.time(), loop.time() - asked - self.tick))

    def worst(self, start: float, end: float) -> float:
        return max((lag for when, lag in self.samples if start <= when <= end), default=0.0)


async def probe(client: Client, stop: asyncio.Event, out: list[tuple[float, float]]) -> None:
    """GetConfig of an existing unit, back to back, until ``stop``: (began, took)."""
    while not stop.is_set():
        began, clock = time.time(), time.perf_counter()
        await client.get_config("web/0")
        out.append((began, time.perf_counter() - clock))


@pytest.fixture
async def crowded(mongo_uri: str, db_name: str) -> AsyncIterator[RunningServer]:
    """A server that lets one connection park all of the crowd's reads."""
    async with background_server(mongo_uri, db_name, waits_per_caller=PARKED) as srv:
        yield srv


async def test_reads_expiring_together_stall_no_one(crowded: RunningServer) -> None:
    """8,000 GetConfig parked on a revision that never comes, with one deadline:
    the server answers every one UNAVAILABLE before that deadline, a few per turn
    of the event loop, so the loop never stalls and a probe never waits.

    Automatic garbage collection is off while the reads are parked: a full
    collection over their ~500,000 objects is a stall of its own (printed), which
    any 8,000 calls in flight cause, expiring or not; this test is about expiry."""
    cache = crowded.read.cache
    book = parked_reads(cache)
    async with Client(crowded.address, timeout=10) as client:
        created = await client.create_application("web", schema=SCHEMA, units=1)
        await client.get_config("web/0", min_revision=created.revision)
        target = cache.revision + AHEAD
        started = time.time()
        deadline = started + EXPIRE_AFTER
        lag, probes, stop = LoopLag(), [], asyncio.Event()
        most, all_parked, first_expiry, all_left, full_gc = 0, 0.0, 0.0, 0.0, 0.0
        gc.disable()
        try:
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                PARKER,
                crowded.address,
                str(target),
                str(deadline),
                str(PARKED),
                stdout=asyncio.subprocess.PIPE,
            )
            async with asyncio.TaskGroup() as tg:
                ticker = tg.create_task(lag.run())
                prober = tg.create_task(probe(client, stop, probes))
                # Sample the counts (nothing to await: no event says "8,000 parked").
                with anyio.fail_after(EXPIRE_AFTER + 10):
                    while not all_left:
                        most = max(most, len(cache._waiters))
                        if not all_parked and most == PARKED:
                            all_parked = time.time()
                            began = time.perf_counter()
                            gc.collect()
                            full_gc = time.perf_counter() - began
                        left = cache._waiters.statistics()
                        if not first_expiry and left.expired + left.abandoned:
                            first_expiry = time.time()
                        if first_expiry and not len(book):
                            all_left = time.time()
                        await asyncio.sleep(0.01)
                out, _ = await child.communicate()
                # A moment more, to see any stall the last answers leave behind.
                await asyncio.sleep(0.3)
                stop.set()
                await prober
                ticker.cancel()
        finally:
            gc.enable()
    result: dict[str, Any] = json.loads(out)
    stats = cache._waiters.statistics()
    window = (first_expiry - 0.05, all_left + 0.3)
    worst_lag = lag.worst(*window)
    # Every probe that overlapped the window, however long it took.
    during = [took for began, took in probes if began <= window[1] and began + took >= window[0]]
    before = sorted(took for began, took in probes if began + took < window[0] - 0.5)
    print(
        f"\n{PARKED} GetConfig parked on one connection, one deadline: all parked "
        f"{all_parked - started:.2f} s after the child started; answered from "
        f"{first_expiry - deadline:+.2f} s to {all_left - deadline:+.2f} s of the "
        f"deadline in {cache._expiry.turns} turns; child done {result['done'] - deadline:+.2f} s; "
        f"codes {dict(result['codes'])}\n"
        f"while they expired: event loop lag max {worst_lag * 1000:.1f} ms; "
        f"{len(during)} probe GetConfig, max {max(during, default=0) * 1000:.1f} ms "
        f"(median before {before[len(before) // 2] * 1000 if before else 0:.1f} ms); "
        f"one full GC with all parked took {full_gc * 1000:.0f} ms"
    )
    assert most == PARKED, f"only {most} of {PARKED} reads were parked at once"
    assert all_parked < first_expiry, "expiry began before the crowd had parked"
    assert result["codes"] == {"UNAVAILABLE": PARKED}, "some reads outlived their deadline"
    assert (stats.live, stats.expired) == (0, PARKED) and len(book) == 0
    assert during, "no probe completed while the reads expired"
    assert worst_lag < MAX_STALL, f"the event loop stalled {worst_lag * 1000:.0f} ms"
    assert max(during) < MAX_STALL, f"a probe took {max(during) * 1000:.0f} ms"


def own_connection(address: str) -> grpc.aio.Channel:
    """A channel with a connection of its own (channels to one address share one
    by default): another caller, as far as the server can tell without tokens."""
    return grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])


async def wait_parked(srv: RunningServer, count: int) -> None:
    """Until ``count`` reads are parked on ``srv`` (sampled: no event says so)."""
    book = parked_reads(srv.read.cache)
    with anyio.fail_after(10):
        while len(book) != count:  # noqa: ASYNC110 (no event to wait on: see above)
            await asyncio.sleep(0.01)


async def test_a_caller_past_its_parked_reads_is_refused_and_no_one_else(
    mongo_uri: str, db_name: str
) -> None:
    async with (
        running_server(mongo_uri, db_name, waits_per_caller=3) as srv,
        Client(srv.address, timeout=10) as writer,
        Client(srv.address, timeout=30, channel=own_connection(srv.address)) as greedy,
        Client(srv.address, timeout=30, channel=own_connection(srv.address)) as other,
    ):
        await writer.create_application("web", schema=SCHEMA, units=1)
        never = srv.read.cache.revision + AHEAD
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(functools.partial(greedy.get_config, "web/0", min_revision=never))
            await wait_parked(srv, 3)
            with pytest.raises(ClientError) as caught:
                await greedy.get_config("web/0", min_revision=never)
            error = assert_code(caught.value, grpc.StatusCode.RESOURCE_EXHAUSTED)
            assert "waits_per_caller=3" in error.message and "3 reads waiting" in error.message

            # Another connection parks, and gets its read once the revision comes.
            nxt = srv.read.cache.revision + 1
            answer: list[Any] = []
            answered = asyncio.Event()

            async def read_next() -> None:
                answer.append(await other.get_config("web/0", min_revision=nxt))
                answered.set()

            tg.start_soon(read_next)
            await wait_parked(srv, 4)
            written = await writer.set_config("web", {"port": 8080})
            assert written.revision >= nxt
            with anyio.fail_after(10):
                await answered.wait()
            assert answer[0].config["port"] == 8080
            tg.cancel_scope.cancel()
        # The greedy caller's reads ended (cancelled): its share is free again.
        await wait_parked(srv, 0)
        assert parked_reads(srv.read.cache).refused == 1


async def test_with_tokens_the_share_is_the_tokens_over_every_connection(
    mongo_uri: str, db_name: str
) -> None:
    token = "stall-test-bootstrap-token-0123456789abcdef"
    async with running_server(mongo_uri, db_name, admin_token=token, waits_per_caller=1) as srv:
        async with (
            Client(srv.address, timeout=10, token=token) as admin,
            own_connection(srv.address) as other_connection,
        ):
            await admin.create_application("web", schema=SCHEMA, units=1)
            observer = (await admin.create_token("observer")).token
            never = srv.read.cache.revision + AHEAD
            async with (
                Client(srv.address, timeout=2, token=observer) as watcher,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(functools.partial(admin.get_config, "web/0", min_revision=never))
                await wait_parked(srv, 1)
                # The same token over another connection: the same share.
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await agent_pb2_grpc.AgentServiceStub(other_connection).GetConfig(
                        agent_pb2.GetConfigRequest(unit="web/0", min_revision=never),
                        metadata=(("authorization", f"Bearer {token}"),),
                        timeout=10,
                    )
                assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                message = refused.value.details() or ""
                assert "waits_per_caller=1" in message
                assert "token " in message and token not in message
                # Another token has a share of its own: it parks, and its deadline ends it.
                with pytest.raises(ClientError) as caught:
                    await watcher.get_config("web/0", min_revision=never)
                assert_code(caught.value, grpc.StatusCode.UNAVAILABLE)
                tg.cancel_scope.cancel()


async def test_a_revision_no_write_can_have_returned_is_refused_at_once(
    srv: RunningServer, client: Client
) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    now = srv.read.cache.revision
    absurd = now + ((MAX_AHEAD_SECONDS + 3600) << 32)
    with anyio.fail_after(2):  # at once: not parked until the deadline
        with pytest.raises(ClientError) as caught:
            await client.get_config("web/0", min_revision=absurd)
    error = assert_code(caught.value, grpc.StatusCode.INVALID_ARGUMENT)
    assert str(absurd) in error.message and "ahead of this server" in error.message
    for far in (2**64 - 1, 2**63):  # the largest uint64 too
        with pytest.raises(ClientError) as caught:
            await client.list_applications(min_revision=far)
        assert_code(caught.value, grpc.StatusCode.INVALID_ARGUMENT)
    assert parked_reads(srv.read.cache).refused == 0 and len(srv.read.cache._waiters) == 0
    # An hour ahead is still a revision a client may wait for (until its deadline).
    async with Client(srv.address, timeout=0.5) as impatient:
        with pytest.raises(ClientError) as caught:
            await impatient.get_config("web/0", min_revision=now + (3600 << 32))
    assert_code(caught.value, grpc.StatusCode.UNAVAILABLE)
