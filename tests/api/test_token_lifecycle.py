"""A token's life on a running server: it works as soon as it is created, and
revocation or expiry ends its calls and its open streams, on every replica."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import anyio
import pytest
from support.rpcs import CALL_TIMEOUT, UNAUTHENTICATED
from support.servers import BOOTSTRAP, admin_session, assert_code, auth_server, eventually

from genconf.client import Client
from genconf.errors import ClientError
from genconf.security import auth


async def test_a_new_token_works_and_a_revoked_one_fails_as_soon_as_the_call_returns(
    mongo_uri: str, db_name: str
) -> None:
    """No waiting for the change stream on the server that handled the call."""
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        app = await admin.create_application("web", units=1)
        for _ in range(3):
            created = await admin.create_token("controller")
            async with Client(srv.address, token=created.token, timeout=CALL_TIMEOUT) as c:
                apps = await c.list_applications(min_revision=app.revision)
                assert [a.name for a in apps] == ["web"]
                revoked = await admin.revoke_token(created.info.id)
                await refused(c.list_applications(), "revoked")
        infos = await admin.list_tokens(min_revision=revoked.revision)
        assert len(infos) == 3 and all(t.revoked for t in infos)
        assert {t.created_by for t in infos} == {auth.BOOTSTRAP_ID}


async def refused(call: Awaitable[Any], why: str) -> None:
    """``call`` fails UNAUTHENTICATED saying ``why`` (revoked, expired)."""
    with pytest.raises(ClientError) as caught:
        await call
    assert why in assert_code(caught.value, UNAUTHENTICATED).message


async def ends_unauthenticated(stream: AsyncIterator[Any], why: str) -> None:
    """``stream`` ends, within 10 s, UNAUTHENTICATED saying ``why``."""
    with anyio.fail_after(10), pytest.raises(ClientError) as caught:
        async for _ in stream:
            pass
    assert why in assert_code(caught.value, UNAUTHENTICATED).message


async def first_config(stream: AsyncIterator[Any]) -> Any:
    with anyio.fail_after(CALL_TIMEOUT):
        return await anext(stream)


async def test_revoking_a_token_ends_its_open_streams(mongo_uri: str, db_name: str) -> None:
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        created = await admin.create_application("web", units=2)
        agent = await admin.create_token("agent", unit="web/0")
        other = await admin.create_token("agent", unit="web/1")
        async with (
            Client(srv.address, token=agent.token, timeout=None) as agent_client,
            Client(srv.address, token=other.token, timeout=None) as other_client,
        ):
            since = created.revision
            watch = agent_client.watch_config("web/0", reconnect=False, min_revision=since)
            bystander = other_client.watch_config("web/1", reconnect=False, min_revision=since)
            try:
                assert (await first_config(watch)).unit == "web/0"
                assert (await first_config(bystander)).unit == "web/1"
                await admin.revoke_token(agent.info.id)
                await ends_unauthenticated(watch, "revoked")
                # The other agent's stream lives on and still gets changes.
                await admin.update_application("web", schema={"k": {"type": "int", "default": 1}})
                assert dict((await first_config(bystander)).config) == {"k": 1}
            finally:
                await watch.aclose()
                await bystander.aclose()

            async def no_watchers() -> bool:
                return srv.read.cache.statistics().watchers == 0

            await eventually(no_watchers, "the ended streams leave no watch behind")


async def test_revoking_a_token_on_one_replica_ends_its_stream_on_another(
    mongo_uri: str, db_name: str
) -> None:
    """Two replicas on one database: the revocation reaches B through its change
    stream, and B ends the agent's open stream UNAUTHENTICATED."""
    async with (
        auth_server(mongo_uri, db_name) as a,
        auth_server(mongo_uri, db_name) as b,
        Client(a.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin_a,
        Client(b.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin_b,
    ):
        created = await admin_a.create_application("web", units=1)
        agent = await admin_a.create_token("agent", unit="web/0")
        # B authenticates from its own token book: wait until it has A's write.
        known = await admin_b.list_tokens(min_revision=agent.revision)
        assert agent.info.id in {t.id for t in known}
        async with Client(b.address, token=agent.token, timeout=None) as agent_b:
            watch = agent_b.watch_config("web/0", reconnect=False, min_revision=created.revision)
            try:
                assert (await first_config(watch)).unit == "web/0"
                assert b.read.cache.statistics().watchers == 1
                await admin_a.revoke_token(agent.info.id)
                await ends_unauthenticated(watch, "revoked")
            finally:
                await watch.aclose()
            await refused(agent_b.get_config("web/0"), "revoked")


async def test_an_expiring_token_ends_its_open_stream(mongo_uri: str, db_name: str) -> None:
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        created = await admin.create_application("web", units=1)
        agent = await admin.create_token("agent", unit="web/0", expires_in_seconds=2)
        expires_at = agent.info.expires_at.ToDatetime(dt.UTC)
        assert dt.timedelta(seconds=1) < expires_at - agent.info.created_at.ToDatetime(dt.UTC)
        async with Client(srv.address, token=agent.token, timeout=None) as agent_client:
            watch = agent_client.watch_config(
                "web/0", reconnect=False, min_revision=created.revision
            )
            try:
                assert (await first_config(watch)).unit == "web/0"
                # Bookmarks keep flowing meanwhile (every 0.2 s): the stream ends
                # because the token expired, not because it went quiet.
                await ends_unauthenticated(watch, "expired")
            finally:
                await watch.aclose()
            assert dt.datetime.now(dt.UTC) >= expires_at
            await refused(agent_client.get_config("web/0"), "expired")
