"""Live streams over HTTP (server-sent events): a unit's config watch and the admin
feed see writes made over gRPC as they happen; the feed resumes with Last-Event-ID
and ends with a clear event when the revision is too old; the gRPC feed's limits
(slow readers, streams per token or peer, revocation, shutdown) hold here too."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from support.servers import BOOTSTRAP, admin_session, background_server, eventually
from web_support import (
    API,
    HTTP_TIMEOUT,
    Event,
    bearer,
    events,
    next_event,
    refused,
    until,
    web_client,
)

from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.http import sse

SCHEMA: dict[str, Any] = {"port": {"type": "int", "default": 80}}


async def fleet(client: Client, units: int = 2) -> int:
    """web with ``units`` units; the revision its cache has reached."""
    written = await client.create_application("web", schema=SCHEMA, units=units)
    await client.list_units(min_revision=written.revision)
    return written.revision


async def test_a_unit_watch_sees_a_commit_made_over_grpc(
    web: httpx.AsyncClient, grpc_client: Client
) -> None:
    await fleet(grpc_client)
    async with web.stream("GET", f"{API}/units/web/0/watch") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-cache"
        feed = events(stream)
        first = await next_event(feed)
        assert first.kind == "config" and first.data["config"] == {"port": 80}
        assert first.id == str(first.data["revision"])
        await grpc_client.add_branch("b")
        await grpc_client.set_branch_config("b", "web", {"port": 9090})
        committed = await grpc_client.commit_branch("b")
        # Bookmarks (revision marks for resuming) may come first: the unit's config
        # did not change with the branch's add and staging, which it does not track.
        changed = await next_event(feed)
        while changed.kind == "bookmark":
            assert changed.data["hash"] == first.data["hash"]
            changed = await next_event(feed)
        assert changed.kind == "config" and changed.data["config"] == {"port": 9090}
        assert changed.data["unit"] == "web/0" and changed.data["app_version"] == 2
        assert int(changed.id or 0) >= committed.revision
        assert changed.data["hash"] != first.data["hash"]


async def test_a_known_hash_gets_a_bookmark_instead(
    web: httpx.AsyncClient, grpc_client: Client
) -> None:
    await fleet(grpc_client)
    config = (await web.get(f"{API}/units/web/1/config")).json()
    url = f"{API}/units/web/1/watch"
    async with web.stream("GET", url, params={"known_hash": config["hash"]}) as stream:
        mark = await next_event(events(stream))
        assert mark.kind == "bookmark" and mark.data["hash"] == config["hash"]
        assert mark.id == str(mark.data["revision"])
    refused(await web.get(f"{API}/units/web/9/watch"), 404, "NOT_FOUND")
    refused(await web.get(f"{API}/units/Web/x/watch"), 400, "INVALID_ARGUMENT")


async def test_the_admin_feed_sees_a_commit_made_over_grpc(
    web: httpx.AsyncClient, grpc_client: Client
) -> None:
    await fleet(grpc_client)
    # The stream is subscribed once its headers are in: what follows is seen live.
    async with web.stream("GET", f"{API}/watch") as stream:
        assert stream.status_code == 200
        feed = events(stream)
        await grpc_client.add_branch("b")
        await grpc_client.set_branch_config("b", "web", {"port": 9090})
        committed = await grpc_client.commit_branch("b", reason="ship")
        seen = await read_until_revision(feed, committed.revision)
    commit = {e.kind: e.data for e in seen if e.data["revision"] == committed.revision}
    assert set(commit) == {"application", "generation", "branch"}
    assert commit["generation"]["value"]["reason"] == "ship"
    assert commit["generation"]["value"]["changes"] == {"web": {"port": {"from": None, "to": 9090}}}
    assert commit["application"]["value"]["settings"] == {"port": 9090}
    assert commit["branch"]["removed"] is True and commit["branch"]["value"] is None


async def read_until_revision(feed: AsyncIterator[Event], revision: int) -> list[Event]:
    out = []
    async for event in feed:
        if event.kind is None:
            continue
        out.append(event)
        if event.id is not None and int(event.id) >= revision:
            return out
    raise AssertionError("the feed ended")


async def test_the_feed_resumes_after_last_event_id(
    http_server: RunningServer, web: httpx.AsyncClient, grpc_client: Client
) -> None:
    start = (await grpc_client.snapshot()).revision
    created = await fleet(grpc_client)
    async with web.stream("GET", f"{API}/watch", params={"since": start}) as stream:
        seen = await read_until_revision(events(stream), created)
    # The id comes with a revision's last event only: cut off inside one, a client
    # resumes from the revision before and misses none of it.
    by_revision: dict[int, list[Event]] = {}
    for event in seen:
        by_revision.setdefault(event.data["revision"], []).append(event)
    for batch in by_revision.values():
        assert [e.id for e in batch[:-1]] == [None] * (len(batch) - 1)
        assert batch[-1].id == str(batch[-1].data["revision"])
    assert {e.kind for e in seen} >= {"application", "unit"}
    last = seen[-1].id
    assert last is not None

    await grpc_client.set_config("web", {"port": 1})
    later = await grpc_client.set_config("web", {"port": 2})
    headers = {"Last-Event-ID": last}
    async with web.stream("GET", f"{API}/watch", headers=headers) as stream:
        resumed = await read_until_revision(events(stream), later.revision)
    assert all(e.data["revision"] > int(last) for e in resumed)
    ports = [e.data["value"]["settings"]["port"] for e in resumed if e.kind == "application"]
    assert ports == [1, 2]
    # ?since= is the same, for clients that cannot set a header.
    async with web.stream("GET", f"{API}/watch", params={"since": last}) as stream:
        again = await read_until_revision(events(stream), later.revision)
    assert [(e.kind, e.data) for e in again] == [(e.kind, e.data) for e in resumed]


async def test_filters_of_the_feed(web: httpx.AsyncClient, grpc_client: Client) -> None:
    start = (await grpc_client.snapshot()).revision
    await grpc_client.create_application("db", units=1)
    last = await fleet(grpc_client)
    params: dict[str, Any] = {"since": start, "kind": ["unit"], "application": ["web"]}
    async with web.stream("GET", f"{API}/watch", params=params) as stream:
        seen = await read_until_revision(events(stream), last)
    assert {(e.kind, e.data["key"]) for e in seen} == {("unit", "web/0"), ("unit", "web/1")}
    bad = refused(await web.get(f"{API}/watch", params={"kind": "units"}), 400, "INVALID_ARGUMENT")
    assert "unknown kind" in bad["message"]


async def test_a_revision_too_old_ends_with_a_too_old_event(
    web: httpx.AsyncClient, grpc_client: Client
) -> None:
    await fleet(grpc_client)
    async with web.stream("GET", f"{API}/watch", headers={"Last-Event-ID": "1"}) as stream:
        assert stream.status_code == 410
        assert stream.headers["content-type"].startswith("text/event-stream")
        got = [e async for e in events(stream)]
    [too_old] = got
    assert too_old.kind == "too-old"
    assert too_old.data["code"] == "OUT_OF_RANGE"
    assert too_old.data["details"]["code"] == "RevisionTooOld"
    assert "Snapshot" in too_old.data["message"]
    ahead = (await grpc_client.snapshot()).revision + (1 << 33)
    future = refused(await web.get(f"{API}/watch", params={"since": ahead}), 400, "OUT_OF_RANGE")
    assert "ahead of this server" in future["message"]
    refused(await web.get(f"{API}/watch", headers={"Last-Event-ID": "x"}), 400, "INVALID_ARGUMENT")


async def test_a_quiet_stream_gets_keep_alive_comments(
    monkeypatch: pytest.MonkeyPatch, web: httpx.AsyncClient, grpc_client: Client
) -> None:
    monkeypatch.setattr(sse, "HEARTBEAT", 0.05)
    async with web.stream("GET", f"{API}/watch") as stream:
        async for event in events(stream):
            assert event.kind is None, "nothing was written: only comments"
            assert event.comment == "keep-alive"
            break


async def test_a_reader_too_slow_for_the_feed_buffer_is_ended(mongo_uri: str, db_name: str) -> None:
    """As over gRPC: a feed that falls --feed-buffer batches behind its reader ends
    RESOURCE_EXHAUSTED naming the revision to resume from; the HTTP side holds at
    most one batch of its own."""
    async with (
        background_server(mongo_uri, db_name, http_listen="127.0.0.1:0", feed_buffer=2) as srv,
        Client(srv.address, timeout=HTTP_TIMEOUT) as client,
    ):
        await client.create_application("notes", schema={"*": {"type": "any"}})
        host, _, port = (srv.http_address or "").rpartition(":")
        reader = socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a reader that lags
        reader.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_connect(reader, (host, int(port)))
            request = f"GET {API}/watch HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
            await loop.sock_sendall(reader, request.encode())
            head = await loop.sock_recv(reader, 200)
            assert head.startswith(b"HTTP/1.1 200"), head
            stats = srv.read.cache.statistics
            value = "x" * 60_000
            for i in range(400):
                if stats().feed_overflows:
                    break
                await client.set_config("notes", {"text": f"{i}{value}"})
            assert stats().feed_overflows == 1
            received = bytearray()
            with pytest.raises(TimeoutError):
                while b"event: closed" not in received or not received.endswith(b"\n\n"):
                    async with asyncio.timeout(HTTP_TIMEOUT):
                        chunk = await loop.sock_recv(reader, 1 << 20)
                    if not chunk:
                        break
                    received += chunk
                raise TimeoutError  # the stream ended as expected
        finally:
            reader.close()
    tail = bytes(received[received.rindex(b"event: closed") :]).decode()
    assert '"code":"RESOURCE_EXHAUSTED"' in tail
    assert "since_revision=" in tail


async def test_streams_count_against_the_token_and_end_when_it_is_revoked(
    mongo_uri: str, db_name: str
) -> None:
    async with admin_session(
        mongo_uri, db_name, http_listen="127.0.0.1:0", streams_per_token=1
    ) as (srv, admin):
        await fleet(admin)
        observer = await admin.create_token("observer", name="eyes")
        async with web_client(srv, observer.token) as web:
            async with web.stream("GET", f"{API}/watch") as stream:
                assert stream.status_code == 200
                second = refused(
                    await web.get(f"{API}/units/web/0/watch"), 429, "RESOURCE_EXHAUSTED"
                )
                assert "streams_per_token=1" in second["message"]
                await admin.revoke_token(observer.info.id)
                ended = await until(events(stream), lambda e: e.kind == "closed", "the end")
            assert ended.data["code"] == "UNAUTHENTICATED"
            assert "revoked" in ended.data["message"]
        async with web_client(srv, BOOTSTRAP) as admin_web:

            async def released() -> bool:
                reply = await admin_web.get(f"{API}/units/web/0/config")
                return reply.status_code == 200 and srv.read.cache.statistics().feeds == 0

            await eventually(released, "the revoked stream's feed is gone")


async def test_streams_without_a_token_count_against_the_peer(mongo_uri: str, db_name: str) -> None:
    async with (
        background_server(mongo_uri, db_name, http_listen="127.0.0.1:0", streams_per_peer=1) as srv,
        Client(srv.address, timeout=HTTP_TIMEOUT) as client,
        web_client(srv) as web,
    ):
        await fleet(client)
        async with web.stream("GET", f"{API}/units/web/0/watch") as stream:
            assert stream.status_code == 200
            second = refused(await web.get(f"{API}/watch"), 429, "RESOURCE_EXHAUSTED")
            assert "--streams-per-peer=1" in second["message"]


async def test_streams_end_unavailable_when_the_server_stops(mongo_uri: str, db_name: str) -> None:
    ended: list[Event] = []
    async with background_server(mongo_uri, db_name, http_listen="127.0.0.1:0") as srv:
        async with Client(srv.address, timeout=HTTP_TIMEOUT) as client:
            await fleet(client)
        web = httpx.AsyncClient(base_url=f"http://{srv.http_address}", timeout=HTTP_TIMEOUT)
        stream_cm = web.stream("GET", f"{API}/units/web/0/watch")
        stream = await stream_cm.__aenter__()
        feed = events(stream)
        assert (await next_event(feed)).kind == "config"
    try:
        ended.append(await next_event(feed))
    finally:
        await stream_cm.__aexit__(None, None, None)
        await web.aclose()
    assert ended[0].kind == "closed" and ended[0].data["code"] == "UNAVAILABLE"
    assert "shutting down" in ended[0].data["message"]


async def test_a_refusal_before_the_stream_starts_is_a_status(mongo_uri: str, db_name: str) -> None:
    async with admin_session(mongo_uri, db_name, http_listen="127.0.0.1:0") as (srv, admin):
        await fleet(admin)
        agent = await admin.create_token("agent", unit="web/1")
        async with web_client(srv) as web:
            refused(await web.get(f"{API}/watch"), 401, "UNAUTHENTICATED")
            other = refused(
                await web.get(f"{API}/units/web/0/watch", headers=bearer(agent.token)),
                403,
                "PERMISSION_DENIED",
            )
            assert "bound to unit web/1" in other["message"]
            own = await web.get(f"{API}/units/web/1/config", headers=bearer(agent.token))
            assert own.status_code == 200
