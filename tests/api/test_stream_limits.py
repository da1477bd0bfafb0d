"""What open streams may cost a server: the per-token and per-peer stream budgets,
and the bounded buffers of a slow admin feed or config watcher.

(The per-peer health watch and the global cap: tests/api/test_transport.py.)
"""

from __future__ import annotations

from typing import Any

import anyio
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from support.rpcs import CALL_TIMEOUT, EXHAUSTED, OK, UNAUTHENTICATED, bearer
from support.servers import BOOTSTRAP, admin_session, eventually, running_server
from support.streams import first_reply, until_admitted

from genconf.client import Client
from genconf.domain.schema import MAX_VALUE_BYTES
from genconf.v1 import admin_pb2, admin_pb2_grpc, agent_pb2, agent_pb2_grpc


async def test_streams_per_token_limit(mongo_uri: str, db_name: str) -> None:
    async with admin_session(mongo_uri, db_name, streams_per_token=2) as (srv, admin):
        created = await admin.create_application("web", units=2)
        agent = (await admin.create_token("agent", unit="web/0")).token
        observer = (await admin.create_token("observer")).token
        async with grpc.aio.insecure_channel(srv.address) as channel:
            stub = agent_pb2_grpc.AgentServiceStub(channel)

            def open_watch(token: str, unit: str = "web/0") -> Any:
                request = agent_pb2.WatchConfigRequest(unit=unit, min_revision=created.revision)
                return stub.WatchConfig(request, metadata=bearer(token))

            first, second = open_watch(agent), open_watch(agent)
            opened = [first, second]
            try:
                for call in (first, second):
                    assert (await call.read()).HasField("config")
                third = open_watch(agent)
                opened.append(third)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await third.read()
                assert caught.value.code() == EXHAUSTED
                assert "streams_per_token=2" in (caught.value.details() or "")
                # The limit is per token: others stream, and unary calls are not counted.
                for unit in ("web/0", "web/1"):
                    call = open_watch(observer, unit)
                    opened.append(call)
                    assert (await call.read()).HasField("config")
                async with Client(srv.address, token=agent, timeout=CALL_TIMEOUT) as c:
                    config = await c.get_config("web/0", min_revision=created.revision)
                    assert config.unit == "web/0"

                first.cancel()
                fourth: list[Any] = []

                async def slot_is_free() -> bool:
                    call = open_watch(agent)
                    opened.append(call)
                    try:
                        assert (await call.read()).HasField("config")
                    except grpc.aio.AioRpcError as exc:
                        assert exc.code() == EXHAUSTED
                        return False
                    fourth.append(call)
                    return True

                await eventually(slot_is_free, "a cancelled stream frees its slot")
                assert len(fourth) == 1
                # And the slot was the only one: the limit still holds.
                extra = open_watch(agent)
                opened.append(extra)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await extra.read()
                assert caught.value.code() == EXHAUSTED
            finally:
                for call in opened:
                    call.cancel()

            async def all_closed() -> bool:
                return srv.read.cache.statistics().watchers == 0

            await eventually(all_closed, "cancelled streams leave no watch behind")


# -- stream limits: which budget each stream kind spends ----------------------------------

LISTING = reflection_pb2.ServerReflectionRequest(list_services="")


def open_stream(channel: grpc.aio.Channel, kind: str, token: str | None, since: int) -> Any:
    """A stream of ``kind`` (left open: the caller cancels it)."""
    md, timeout = bearer(token), 6 * CALL_TIMEOUT
    if kind == "Health.Watch":
        return health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(), metadata=md, timeout=timeout
        )
    if kind == "ServerReflectionInfo":
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        return stub.ServerReflectionInfo(metadata=md, timeout=timeout)
    if kind == "WatchConfig":
        request = agent_pb2.WatchConfigRequest(unit="web/0", min_revision=since)
        return agent_pb2_grpc.AgentServiceStub(channel).WatchConfig(
            request, metadata=md, timeout=timeout
        )
    assert kind == "WatchDeltas", kind
    return admin_pb2_grpc.AdminServiceStub(channel).WatchDeltas(
        admin_pb2.WatchDeltasRequest(since_revision=since), metadata=md, timeout=timeout
    )


async def try_stream(
    channel: grpc.aio.Channel,
    kind: str,
    token: str | None,
    since: int,
    opened: list[Any],
    *,
    retry: bool,
) -> tuple[grpc.StatusCode, str]:
    """Open a stream of ``kind`` and return how its first reply went; with ``retry``,
    again while refused RESOURCE_EXHAUSTED (`support.streams.until_admitted`)."""
    request = LISTING if kind == "ServerReflectionInfo" else None
    if retry:
        _, code, details = await until_admitted(
            lambda: open_stream(channel, kind, token, since), opened, request=request
        )
        return code, details
    call = open_stream(channel, kind, token, since)
    opened.append(call)
    return await first_reply(call, request)


# (caller, stream kind, expected code, what the refusal names), in order: each row
# leaves its stream open. Streams no token answers for (the health watch, reflection,
# and every stream without authentication) spend their peer's budget; the others
# their token's.
STREAM_BUDGETS_WITH_AUTH = (
    ("none", "Health.Watch", OK, ""),  # the peer's one stream
    ("none", "Health.Watch", EXHAUSTED, "--streams-per-peer=1"),
    ("observer", "ServerReflectionInfo", EXHAUSTED, "--streams-per-peer=1"),
    ("none", "ServerReflectionInfo", UNAUTHENTICATED, ""),  # the token first
    ("agent", "WatchConfig", OK, ""),  # the agent token's one stream
    ("observer", "WatchDeltas", OK, ""),
    ("observer", "WatchDeltas", EXHAUSTED, "streams_per_token=1"),
    ("agent", "WatchConfig", EXHAUSTED, "streams_per_token=1"),
    ("admin", "WatchDeltas", OK, ""),
)
STREAM_BUDGETS_WITHOUT_AUTH = (
    ("none", "Health.Watch", OK, ""),
    ("none", "WatchConfig", OK, ""),  # the peer's two streams
    ("none", "WatchDeltas", EXHAUSTED, "--streams-per-peer=2"),
    ("none", "ServerReflectionInfo", EXHAUSTED, "--streams-per-peer=2"),
    ("none", "Health.Watch", EXHAUSTED, "--streams-per-peer=2"),
)


@pytest.mark.parametrize("auth_on", [True, False], ids=["auth", "no-auth"])
async def test_stream_limit_matrix(
    mongo_uri: str, db_name: str, auth_on: bool, subtests: pytest.Subtests
) -> None:
    overrides: dict[str, Any] = (
        {"admin_token": BOOTSTRAP, "streams_per_peer": 1, "streams_per_token": 1}
        if auth_on
        else {"streams_per_peer": 2}
    )
    rows = STREAM_BUDGETS_WITH_AUTH if auth_on else STREAM_BUDGETS_WITHOUT_AUTH
    async with (
        running_server(mongo_uri, db_name, **overrides) as srv,
        Client(srv.address, token=BOOTSTRAP if auth_on else None, timeout=CALL_TIMEOUT) as admin,
        grpc.aio.insecure_channel(srv.address) as channel,
    ):
        start = (await admin.snapshot()).revision
        await admin.create_application("web", units=1)
        tokens: dict[str, str | None] = {"none": None, "admin": BOOTSTRAP}
        if auth_on:
            tokens["agent"] = (await admin.create_token("agent", unit="web/0")).token
            tokens["observer"] = (await admin.create_token("observer")).token
        opened: list[Any] = []
        try:
            for caller, kind, expected, names in rows:
                with subtests.test(f"{kind} as {caller}"):
                    code, details = await try_stream(
                        channel, kind, tokens[caller], start, opened, retry=expected == OK
                    )
                    assert code == expected, f"{kind} as {caller}: {code.name}: {details}"
                    assert names in details
            with subtests.test("unary calls are not streams"):
                assert await admin.health() == "SERVING"
                assert (await admin.get_config("web/0")).unit == "web/0"
        finally:
            for call in opened:
                call.cancel()


# -- limits: the per-stream send buffer of the admin feed ---------------------------------


async def test_a_slow_admin_feed_ends_resource_exhausted_naming_its_buffer_and_resumes(
    mongo_uri: str, db_name: str
) -> None:
    """A WatchDeltas client that stops reading: once more than ``feed_buffer`` batches
    wait for it, its stream ends RESOURCE_EXHAUSTED naming the limit and the revision
    to resume from, and resuming from there misses nothing."""
    limit = 3
    async with admin_session(mongo_uri, db_name, feed_buffer=limit) as (srv, admin):
        start = (await admin.snapshot()).revision
        await admin.create_application("web", schema={"blob": {"type": "string"}})
        # No BDP probing: the stream's flow-control window stays at its initial 64 KiB,
        # so a client that does not read stops the server's sends after one big batch.
        options = [("grpc.http2.bdp_probe", 0)]
        async with grpc.aio.insecure_channel(srv.address, options=options) as channel:
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            call = stub.WatchDeltas(
                admin_pb2.WatchDeltasRequest(since_revision=start), metadata=bearer(BOOTSTRAP)
            )
            with anyio.fail_after(CALL_TIMEOUT):
                first = await call.read()  # replayed: the server has subscribed by now
            assert first is not grpc.aio.EOF
            received = [first.revision]
            # Big batches (each write's value is in its application and generation
            # deltas) while nobody reads; the cache applies each write before the
            # next, and the feed's buffer overflows in that same step.
            big = "x" * (MAX_VALUE_BYTES - 100)
            writes: list[int] = []
            cache = srv.read.cache
            while cache.statistics().feed_overflows == 0:
                assert len(writes) < 100, "the unread feed never overflowed"
                done = await admin.set_config("web", {"blob": f"{len(writes)}{big}"})
                writes.append(done.revision)
                with anyio.fail_after(CALL_TIMEOUT):
                    await cache.wait_for(done.revision)
            assert len(writes) > limit
            with anyio.fail_after(CALL_TIMEOUT), pytest.raises(grpc.aio.AioRpcError) as caught:
                while (batch := await call.read()) is not grpc.aio.EOF:
                    received.append(batch.revision)
            assert caught.value.code() == EXHAUSTED
            details = caught.value.details() or ""
            assert f"feed_buffer={limit}" in details
            assert f"since_revision={received[-1]}" in details
            assert received[1:] == writes[: len(received) - 1], "a gap before the overflow"
            assert received[-1] < writes[-1], "the stream overflowed after the last write?"

            # Resuming from the last revision received replays the rest from the ring.
            resumed = stub.WatchDeltas(
                admin_pb2.WatchDeltasRequest(since_revision=received[-1]),
                metadata=bearer(BOOTSTRAP),
            )
            rest: list[int] = []
            try:
                with anyio.fail_after(CALL_TIMEOUT):
                    async for batch in resumed:
                        rest.append(batch.revision)
                        if batch.revision >= writes[-1]:
                            break
            finally:
                resumed.cancel()
            assert received[1:] + rest == writes


async def test_a_slow_config_watcher_holds_at_most_one_pending_config(
    mongo_uri: str, db_name: str
) -> None:
    """WatchConfig's bound: latest-state. A client that stops reading costs the server
    at most one pending config however many changes come; reading again, it gets
    what was already on the wire, then the newest config, nothing in between."""
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        created = await admin.create_application(
            "web", schema={"blob": {"type": "string"}}, units=1
        )
        options = [("grpc.http2.bdp_probe", 0)]  # as in the admin feed test above
        async with grpc.aio.insecure_channel(srv.address, options=options) as channel:
            stub = agent_pb2_grpc.AgentServiceStub(channel)
            call = stub.WatchConfig(
                agent_pb2.WatchConfigRequest(unit="web/0", min_revision=created.revision),
                metadata=bearer(BOOTSTRAP),
            )
            try:
                with anyio.fail_after(CALL_TIMEOUT):
                    first = await call.read()
                assert first is not grpc.aio.EOF and first.HasField("config")
                cache = srv.read.cache
                coalesced_before = cache.statistics().coalesced
                big = "x" * (MAX_VALUE_BYTES - 100)
                writes = 20
                for i in range(writes):
                    done = await admin.set_config("web", {"blob": f"{i}:{big}"})
                    with anyio.fail_after(CALL_TIMEOUT):
                        await cache.wait_for(done.revision)
                coalesced = cache.statistics().coalesced - coalesced_before
                seen: list[str] = []
                with anyio.fail_after(CALL_TIMEOUT):
                    while not seen or not seen[-1].startswith(f"{writes - 1}:"):
                        reply = await call.read()
                        assert reply is not grpc.aio.EOF
                        if reply.HasField("config"):
                            seen.append(reply.config.config["blob"])
            finally:
                call.cancel()
        # Every change was either sent or replaced by a newer one while pending.
        assert len(seen) + coalesced == writes
        assert len(seen) <= 3, f"{len(seen)} configs queued for a client that did not read"
        assert [int(blob.split(":", 1)[0]) for blob in seen] == sorted(
            int(blob.split(":", 1)[0]) for blob in seen
        )
