"""The Python client: `Client` (async), `SyncClient` (blocking) and `ClientError`.

The server runs on the test's event loop, so blocking SyncClient code runs in a
worker thread (`anyio.to_thread.run_sync`) while the loop keeps serving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import grpc
import pytest
from support.servers import running_server

from genconf.api.server import RunningServer
from genconf.backoff import Backoff
from genconf.client import Client, ClientError, Config, SyncClient, TooOld
from genconf.errors import GenconfError

SCHEMA: dict[str, Any] = {
    "k": {"type": "int", "default": 1},
    "s": {"type": "string", "default": "x"},
    "ratio": {"type": "float", "default": 0.5},
}


@pytest.fixture
async def client(srv: RunningServer) -> AsyncIterator[Client]:
    async with Client(srv.address, timeout=10, backoff=Backoff(0.05, 0.5)) as c:
        yield c


async def test_sync_client_calls_and_watch(srv: RunningServer) -> None:
    def session() -> dict[str, Any]:
        out: dict[str, Any] = {}
        with SyncClient(srv.address, timeout=10) as sc:
            out["health"] = sc.health()
            created = sc.create_application("web", schema=SCHEMA, units=2)
            out["created"] = created
            out["apps"] = [a.name for a in sc.list_applications(min_revision=created.revision)]
            written = sc.set_config("web", {"k": 5, "ratio": 2}, reason="tune")
            out["written"] = written
            out["config"] = sc.get_config("web/0", min_revision=written.revision)
            out["units"] = [u.name for u in sc.list_units("web")]

            watch = sc.watch_config("web/1")
            out["first"] = next(watch)
            changed = sc.set_config("web", {"s": "y"})
            out["second"] = next(watch)
            watch.close()  # closes the underlying stream

            deltas = sc.watch_deltas(since_revision=written.revision)
            out["delta_batch"] = next(deltas)
            deltas.close()
            out["changed"] = changed
            try:
                sc.set_config("web", {"k": 6}, expected_version=1)
            except ClientError as exc:
                out["error"] = exc
            with pytest.raises(AttributeError):
                sc._call  # noqa: B018 - private names are not forwarded
        out["thread_alive"] = sc._thread.is_alive()
        return out

    with anyio.fail_after(30):
        out = await anyio.to_thread.run_sync(session)

    assert out["health"] == "SERVING"
    assert list(out["created"].units) == ["web/0", "web/1"]
    assert out["apps"] == ["web"]
    assert dict(out["written"].versions) == {"web": 2} and out["written"].generation == 1
    config: Config = out["config"]
    assert dict(config.config) == {"k": 5, "s": "x", "ratio": 2.0}
    assert isinstance(config.config["k"], int) and isinstance(config.config["ratio"], float)
    assert (config.unit, config.application, config.app_version) == ("web/0", "web", 2)
    assert out["units"] == ["web/0", "web/1"]
    assert out["first"].unit == "web/1" and out["first"].config["s"] == "x"
    assert out["second"].config["s"] == "y" and out["second"].hash != out["first"].hash
    assert out["second"].revision >= out["changed"].revision
    assert out["delta_batch"].revision > out["written"].revision
    error: ClientError = out["error"]
    assert error.code == grpc.StatusCode.ABORTED
    assert (error.expected_version, error.actual_version) == (1, 3)
    assert not out["thread_alive"], "close() stops the client's loop thread"


async def test_client_error_carries_code_message_and_details(client: Client) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    await client.set_config("web", {"s": "m"})
    await client.add_branch("late")
    await client.set_branch_config("late", "web", {"s": "b", "k": 9})
    await client.set_config("web", {"s": "m2", "k": 3})

    with pytest.raises(ClientError) as caught:
        await client.commit_branch("late")
    error = caught.value
    assert isinstance(error, GenconfError)
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert str(error).startswith("FAILED_PRECONDITION: ")
    assert "force" in error.message
    assert error.detail.code == "Conflict"
    found = sorted(
        (c.application, c.key, getattr(c, "from"), c.current, c.proposed) for c in error.conflicts
    )
    assert found == [("web", "k", "absent", "3", "9"), ("web", "s", '"m"', '"m2"', '"b"')]

    with pytest.raises(ClientError) as caught:
        await client.set_config("web", {"k": 4}, expected_version=2)
    error = caught.value
    assert error.code == grpc.StatusCode.ABORTED
    assert (error.expected_version, error.actual_version) == (2, 3)
    assert error.detail.code == "VersionMismatch"
    assert error.conflicts == []

    with pytest.raises(ClientError) as caught:
        await client.get_application("nope")
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert (caught.value.expected_version, caught.value.actual_version) == (0, 0)
    assert caught.value.detail.code == "NotFound"


async def test_watch_config_yields_each_distinct_config_and_resumes_from_a_hash(
    client: Client,
) -> None:
    created = await client.create_application("web", schema=SCHEMA, units=1)
    start = await client.get_config("web/0", min_revision=created.revision)

    # Resuming with the hash we hold: the first config yielded is the next one.
    agent = client.watch_config("web/0", known_hash=start.hash)
    try:
        changed = await client.set_config("web", {"k": 2})
        with anyio.fail_after(5):
            config = await anext(agent)
        assert config.hash != start.hash
        assert dict(config.config) == {"k": 2, "s": "x", "ratio": 0.5}
        assert config.revision >= changed.revision
    finally:
        await agent.aclose()  # type: ignore[attr-defined]

    # Without one, the current config comes first.
    agent = client.watch_config("web/0")
    try:
        with anyio.fail_after(5):
            assert (await anext(agent)).hash == config.hash
    finally:
        await agent.aclose()  # type: ignore[attr-defined]


async def test_a_resume_older_than_the_server_holds_raises_too_old(
    mongo_uri: str, db_name: str
) -> None:
    """OUT_OF_RANGE arrives as its typed subclass, which a caller can catch alone."""
    async with running_server(mongo_uri, db_name, ring_size=2) as srv:
        async with Client(srv.address, timeout=10) as client:
            start = await client.snapshot()
            for n in range(4):
                await client.create_application(f"app{n}", units=1)
            feed = client.watch_deltas(since_revision=start.revision)
            try:
                with pytest.raises(TooOld) as caught, anyio.fail_after(5):
                    await anext(feed)
            finally:
                await feed.aclose()  # type: ignore[attr-defined]
    assert caught.value.code == grpc.StatusCode.OUT_OF_RANGE
    assert "Snapshot" in caught.value.message


async def test_backoff_delays_grow_to_the_maximum() -> None:
    delays = Backoff(initial=0.1, maximum=0.4).delays()
    seen = [next(delays) for _ in range(6)]
    assert 0.05 <= seen[0] <= 0.1
    assert all(d <= 0.4 for d in seen)
    assert seen[-1] >= 0.2  # jitter takes at most half off the capped delay
