"""AgentService end to end: GetConfig, WatchConfig and ReportApplied over real gRPC.

WatchConfig is read through the raw stub here, so bookmarks are visible; the
client's reconnecting `watch_config` is covered in test_client.py and
test_server.py.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from typing import Any

import anyio
import grpc
import pytest
from google.protobuf import json_format
from support.servers import BOOKMARK_INTERVAL, assert_code, running_server, settled_model

from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.errors import ClientError
from genconf.v1 import agent_pb2, agent_pb2_grpc, types_pb2

SCHEMA: dict[str, Any] = {
    "k": {"type": "int", "default": 1},
    "s": {"type": "string", "default": "x"},
}
HASH = hashlib.sha256(b"applied").hexdigest()
FAR = 3600 << 32  # an hour of cluster time: a revision no server has reached


@pytest.fixture
async def stub(client: Client) -> agent_pb2_grpc.AgentServiceStub:
    return agent_pb2_grpc.AgentServiceStub(client.channel)


class Watch:
    """One raw WatchConfig stream, read a message at a time with a time limit."""

    def __init__(
        self,
        stub: agent_pb2_grpc.AgentServiceStub,
        unit: str,
        *,
        known_hash: str = "",
        min_revision: int = 0,
        timeout: float | None = None,
    ) -> None:
        request = agent_pb2.WatchConfigRequest(
            unit=unit, known_hash=known_hash, min_revision=min_revision
        )
        self.call = stub.WatchConfig(request, timeout=timeout)

    async def next(self, limit: float = 5.0) -> agent_pb2.WatchConfigResponse:
        with anyio.fail_after(limit):
            message = await self.call.read()
        assert message is not grpc.aio.EOF, "the stream ended"
        return message  # type: ignore[return-value]

    async def config(self, after: int | None = None) -> types_pb2.Config:
        """The next config; bookmarks before it must be older than the write at ``after``
        (a bookmark at or after it would claim the old config is current)."""
        while True:
            message = await self.next()
            if message.HasField("config"):
                return message.config
            if after is not None:
                assert message.bookmark.revision < after, "a bookmark past the change"

    async def quiet_until(self, revision: int) -> agent_pb2.Bookmark:
        """Bookmarks only, until one at ``revision`` or later: nothing changed up to it."""
        while True:
            message = await self.next()
            assert not message.HasField("config"), f"unexpected config {message.config}"
            if message.bookmark.revision >= revision:
                return message.bookmark

    async def ends_with(self) -> grpc.StatusCode:
        with anyio.fail_after(5):
            try:
                while await self.call.read() is not grpc.aio.EOF:
                    pass
            except grpc.aio.AioRpcError as exc:
                return exc.code()
        return grpc.StatusCode.OK

    def cancel(self) -> None:
        self.call.cancel()


def values(config: types_pb2.Config) -> dict[str, Any]:
    return json.loads(config.config_json)


# -- GetConfig --------------------------------------------------------------------


async def test_get_config_is_the_effective_config_with_its_hash(client: Client) -> None:
    await client.create_application("web", schema=SCHEMA, units=2)
    await client.add_branch("canary")
    await client.set_branch_config("canary", "web", {"s": "c"})
    tracked = await client.track_branch("canary", units=["web/1"])
    master = await client.set_config("web", {"k": 7})

    stub = agent_pb2_grpc.AgentServiceStub(client.channel)
    raw = await stub.GetConfig(
        agent_pb2.GetConfigRequest(unit="web/0", min_revision=master.revision), timeout=5
    )
    assert (raw.unit, raw.application, raw.branch) == ("web/0", "web", "")
    assert raw.config_json == '{"k":7,"s":"x"}'  # canonical JSON: sorted, no spaces
    assert raw.hash == hashlib.sha256(raw.config_json.encode()).hexdigest()
    assert json_format.MessageToDict(raw.config) == {"k": 7, "s": "x"}
    assert raw.app_version == 2
    assert raw.revision > 0

    on_branch = await client.get_config(
        "web/1", min_revision=max(tracked.revision, master.revision)
    )
    assert (on_branch.branch, dict(on_branch.config)) == ("canary", {"k": 7, "s": "c"})
    assert on_branch.hash != raw.hash


async def test_get_config_errors(srv: RunningServer, client: Client) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    for unit, code in [
        ("web", grpc.StatusCode.INVALID_ARGUMENT),
        ("Web/0", grpc.StatusCode.INVALID_ARGUMENT),
        ("web/01", grpc.StatusCode.INVALID_ARGUMENT),
        ("web/5", grpc.StatusCode.NOT_FOUND),
        ("nope/0", grpc.StatusCode.NOT_FOUND),
    ]:
        with pytest.raises(ClientError) as caught:
            await client.get_config(unit)
        error = assert_code(caught.value, code)
        assert unit in error.message

    # A revision this server has not reached, with a short deadline: UNAVAILABLE
    # (read elsewhere or retry), in time, not DEADLINE_EXCEEDED.
    async with Client(srv.address, timeout=1.0) as impatient:
        with pytest.raises(ClientError) as caught:
            await impatient.get_config("web/0", min_revision=srv.read.cache.revision + FAR)
    error = assert_code(caught.value, grpc.StatusCode.UNAVAILABLE)
    assert "revision" in error.message


async def test_read_your_writes_from_another_connection(srv: RunningServer) -> None:
    """A controller write, then GetConfig(min_revision=write.revision) over another
    connection sees it, every time."""
    other_channel = grpc.aio.insecure_channel(
        srv.address, options=[("grpc.use_local_subchannel_pool", 1)]
    )
    async with (
        Client(srv.address, timeout=10) as writer,
        Client(srv.address, timeout=10, channel=other_channel) as reader,
    ):
        await writer.create_application("web", schema=SCHEMA, units=1)
        for n in range(50):
            write = await writer.set_config("web", {"k": n + 100})
            config = await reader.get_config("web/0", min_revision=write.revision)
            assert config.config["k"] == n + 100, f"write {n} not visible at its revision"
            assert config.app_version == n + 2


# -- ReportApplied ----------------------------------------------------------------


async def test_report_applied_is_kept_on_the_unit(client: Client) -> None:
    created = await client.create_application("web", schema=SCHEMA, units=2)
    config = await client.get_config("web/0", min_revision=created.revision)
    first = await client.report_applied("web/0", config.hash, ok=True, message="applied")
    assert list(first.units) == ["web/0"]
    second = await client.report_applied("web/0", HASH, ok=False, message="restart failed")
    assert second.revision > first.revision
    units = {u.name: u for u in await client.list_units("web", min_revision=second.revision)}
    applied = units["web/0"].applied
    assert (applied.hash, applied.ok, applied.message) == (HASH, False, "restart failed")
    assert applied.at.seconds > 0
    assert not units["web/1"].HasField("applied")


async def test_report_applied_errors_write_nothing(client: Client) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    before = await settled_model(client)
    for unit, hash_, code in [
        ("web/0", "abc", grpc.StatusCode.INVALID_ARGUMENT),
        ("web/0", HASH.upper(), grpc.StatusCode.INVALID_ARGUMENT),
        ("web/0", "g" * 64, grpc.StatusCode.INVALID_ARGUMENT),
        ("web/0", "", grpc.StatusCode.INVALID_ARGUMENT),
        ("web", HASH, grpc.StatusCode.INVALID_ARGUMENT),
        ("web/9", HASH, grpc.StatusCode.NOT_FOUND),
    ]:
        with pytest.raises(ClientError) as caught:
            await client.report_applied(unit, hash_, message="x")
        assert_code(caught.value, code)
        after = await settled_model(client)
        assert after == before, f"rejected report {unit} {hash_!r} changed the model"


# -- WatchConfig ------------------------------------------------------------------


async def test_agent_sees_every_distinct_config_once_in_order(
    client: Client, stub: agent_pb2_grpc.AgentServiceStub
) -> None:
    await client.create_application("web", schema=SCHEMA, units=2)
    await client.create_application("db", schema=SCHEMA, units=1)
    await client.set_config("web", {"s": "m"})
    await client.add_branch("b1")
    staged = await client.set_branch_config("b1", "web", {"k": 10})

    watch = Watch(stub, "web/0", min_revision=staged.revision)
    seen = [values((await watch.next()).config)]
    assert seen == [{"k": 1, "s": "m"}]  # the first message is the current config

    async def b2_staged() -> Any:
        await client.add_branch("b2")
        return await client.set_branch_config("b2", "web", {"s": "y"})

    steps: list[tuple[str, Any, dict[str, Any] | None]] = [
        ("track b1", lambda: client.track_branch("b1", units=["web/0"]), {"k": 10, "s": "m"}),
        ("another app", lambda: client.set_config("db", {"k": 3}), None),
        ("another unit", lambda: client.report_applied("web/1", HASH), None),
        (
            "b1 config",
            lambda: client.set_branch_config("b1", "web", {"k": 20}),
            {"k": 20, "s": "m"},
        ),
        ("master key b1 overrides", lambda: client.set_config("web", {"k": 2}), None),
        ("commit b1", lambda: client.commit_branch("b1", force=True), None),
        ("b2 staged, not tracked", b2_staged, None),
        ("track b2", lambda: client.track_branch("b2", units=["web/0"]), {"k": 20, "s": "y"}),
        ("master key b2 leaves", lambda: client.set_config("web", {"k": 30}), {"k": 30, "s": "y"}),
        ("untrack b2", lambda: client.untrack_branch("b2", units=["web/0"]), {"k": 30, "s": "m"}),
    ]
    try:
        for name, write, expected in steps:
            result = await write()
            if expected is None:
                bookmark = await watch.quiet_until(result.revision)
                current = await client.get_config("web/0", min_revision=result.revision)
                assert bookmark.hash == current.hash, name
            else:
                config = await watch.config(after=result.revision)
                assert values(config) == expected, name
                seen.append(values(config))
        final = await client.get_config("web/0", min_revision=result.revision)
        bookmark = await watch.quiet_until(result.revision)
        assert bookmark.hash == final.hash
    finally:
        watch.cancel()
    assert seen == [
        {"k": 1, "s": "m"},
        {"k": 10, "s": "m"},
        {"k": 20, "s": "m"},
        {"k": 20, "s": "y"},
        {"k": 30, "s": "y"},
        {"k": 30, "s": "m"},
    ]


async def test_a_config_is_never_older_than_the_write_that_made_it(
    client: Client, stub: agent_pb2_grpc.AgentServiceStub
) -> None:
    """Agents resume from the revision of the last config they saw: it must be at least
    the revision of the change that produced it, or a replica behind that change could
    hand an older config back. Moving a unit back to master reuses master's memoized
    config, computed before the move; its message still carries the move's revision."""
    await client.create_application("web", schema=SCHEMA, units=2)
    await client.add_branch("b")
    await client.set_branch_config("b", "web", {"k": 2})
    tracked = await client.track_branch("b", units=["web/0"])
    watch = Watch(stub, "web/0", min_revision=tracked.revision)
    try:
        on_branch = (await watch.next()).config
        assert on_branch.branch == "b" and on_branch.revision >= tracked.revision
        untracked = await client.untrack_branch("b", units=["web/0"])
        back = await watch.config(after=untracked.revision)
        assert back.branch == ""
        assert back.revision >= untracked.revision
    finally:
        watch.cancel()
    read = await client.get_config("web/0", min_revision=untracked.revision)
    assert read.hash == back.hash and read.revision >= untracked.revision


async def test_known_hash_starts_with_a_bookmark(
    client: Client, stub: agent_pb2_grpc.AgentServiceStub
) -> None:
    created = await client.create_application("web", schema=SCHEMA, units=1)
    current = await client.get_config("web/0", min_revision=created.revision)

    watch = Watch(stub, "web/0", known_hash=current.hash)
    try:
        first = await watch.next()
        assert first.HasField("bookmark")
        assert first.bookmark.hash == current.hash
        assert first.bookmark.revision >= created.revision
        write = await client.set_config("web", {"k": 2})
        config = await watch.config(after=write.revision)
        assert values(config) == {"k": 2, "s": "x"}
    finally:
        watch.cancel()

    stale = Watch(stub, "web/0", known_hash=current.hash, min_revision=write.revision)
    try:
        first = await stale.next()
        assert first.HasField("config"), "a stale known_hash gets the current config"
        assert values(first.config) == {"k": 2, "s": "x"}
    finally:
        stale.cancel()


async def test_bookmarks_carry_the_current_revision(
    client: Client, stub: agent_pb2_grpc.AgentServiceStub
) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    created = await client.create_application("db", schema=SCHEMA, units=1)
    watch = Watch(stub, "web/0", min_revision=created.revision)
    try:
        first = (await watch.next()).config
        times, revisions = [], []
        for _ in range(3):
            bookmark = (await watch.next(limit=2)).bookmark
            times.append(time.monotonic())
            revisions.append(bookmark.revision)
            assert bookmark.hash == first.hash
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(BOOKMARK_INTERVAL * 0.5 < g < BOOKMARK_INTERVAL * 5 for g in gaps), gaps
        assert revisions == sorted(revisions)
        # A write that does not touch the unit still moves its bookmarks' revision.
        other = await client.set_config("db", {"k": 9})
        bookmark = await watch.quiet_until(other.revision)
        assert bookmark.hash == first.hash
    finally:
        watch.cancel()


async def test_watch_ends_not_found_when_the_unit_is_removed(
    client: Client, stub: agent_pb2_grpc.AgentServiceStub
) -> None:
    created = await client.create_application("web", schema=SCHEMA, units=2)
    watch = Watch(stub, "web/0", min_revision=created.revision)
    assert (await watch.next()).HasField("config")
    await client.remove_unit("web/0")
    assert await watch.ends_with() == grpc.StatusCode.NOT_FOUND

    # The client does not reconnect on NOT_FOUND: it raises it.
    agent = client.watch_config("web/1")
    assert (await anext(agent)).unit == "web/1"
    await client.remove_unit("web/1")
    with anyio.fail_after(5), pytest.raises(ClientError) as caught:
        await anext(agent)
    assert_code(caught.value, grpc.StatusCode.NOT_FOUND)


async def test_watch_config_errors(srv: RunningServer, client: Client) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    stub = agent_pb2_grpc.AgentServiceStub(client.channel)
    for unit, code in [
        ("web", grpc.StatusCode.INVALID_ARGUMENT),
        ("WEB/0", grpc.StatusCode.INVALID_ARGUMENT),
        ("web/3", grpc.StatusCode.NOT_FOUND),
    ]:
        assert await Watch(stub, unit).ends_with() == code, unit
        with pytest.raises(ClientError) as caught:  # the client raises, no retry
            await anext(client.watch_config(unit))
        assert_code(caught.value, code)

    future = Watch(stub, "web/0", min_revision=srv.read.cache.revision + FAR, timeout=1.0)
    assert await future.ends_with() == grpc.StatusCode.UNAVAILABLE


async def test_slow_reader_gets_the_newest_config(
    client: Client, stub: agent_pb2_grpc.AgentServiceStub
) -> None:
    created = await client.create_application("web", schema=SCHEMA, units=1)
    watch = Watch(stub, "web/0", min_revision=created.revision)
    try:
        assert values((await watch.next()).config) == {"k": 1, "s": "x"}
        for n in range(40):  # nobody reads meanwhile
            last = await client.set_config("web", {"k": n + 100})
        final = await client.get_config("web/0", min_revision=last.revision)
        ks = []
        while True:
            config = await watch.config()
            ks.append(values(config)["k"])
            if config.hash == final.hash:
                break
        assert ks == sorted(set(ks)), "never an older config after a newer one"
        assert ks[-1] == 139
        await watch.quiet_until(last.revision)  # and nothing after the newest
    finally:
        watch.cancel()


async def test_by_default_a_quiet_stream_sends_nothing_and_resumes_exactly(
    mongo_uri: str, db_name: str
) -> None:
    """No periodic bookmarks by default: a stream whose unit is untouched by 30 writes
    sends nothing, its next message is its next config, and resuming from its first
    config's (by then old) revision with its hash is answered by a bookmark."""
    async with (
        running_server(mongo_uri, db_name, bookmark_interval=0) as srv,
        Client(srv.address, timeout=10) as client,
    ):
        stub = agent_pb2_grpc.AgentServiceStub(client.channel)
        created = await client.create_application("web", schema=SCHEMA, units=2)
        await client.create_application("db", schema=SCHEMA, units=1)
        watch = Watch(stub, "web/0", min_revision=created.revision)
        try:
            first = (await watch.next()).config
            assert first.unit == "web/0"
            for k in range(30):
                await client.set_config("db", {"k": k})
            changed = await client.set_config("web", {"k": 7})
            message = await watch.next()
            assert message.HasField("config"), "a quiet stream sent a bookmark"
            assert values(message.config)["k"] == 7 and message.config.unit == "web/0"
            assert message.config.revision == changed.revision
        finally:
            watch.cancel()
        resumed = Watch(stub, "web/0", known_hash=message.config.hash, min_revision=first.revision)
        try:
            mark = (await resumed.next()).bookmark
            assert mark.hash == message.config.hash and mark.revision >= changed.revision
            again = await client.set_config("web", {"k": 8})
            assert (await resumed.config()).revision == again.revision
        finally:
            resumed.cancel()
