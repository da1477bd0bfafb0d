"""When a server asks for tokens: off loopback it must, it says so when it does not,
and a bad admin token or limit stops it before it starts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from support.rpcs import CALL_TIMEOUT, UNAUTHENTICATED
from support.servers import (
    BOOTSTRAP,
    assert_code,
    auth_server,
    running_server,
    server_config,
    wait_serving,
)

from genconf.api.server import serve
from genconf.client import Client
from genconf.errors import ClientError, InvalidArgument
from genconf.security import auth


async def test_a_non_loopback_listen_needs_an_admin_token(mongo_uri: str, db_name: str) -> None:
    for listen in ("0.0.0.0:0", "[::]:0", "192.0.2.1:0", "example.com:0"):
        with pytest.raises(InvalidArgument, match="--admin-token-file") as caught:
            async with serve(server_config(mongo_uri, db_name, listen=listen)):
                raise AssertionError(f"{listen}: started without authentication")
        assert listen in caught.value.message
    # With authentication it starts; without TLS only when told the network is
    # trusted (tests/api/test_transport.py has the refusal).
    async with serve(
        server_config(
            mongo_uri, db_name, listen="0.0.0.0:0", admin_token=BOOTSTRAP, insecure_plaintext=True
        )
    ) as srv:
        port = srv.address.rsplit(":", 1)[1]
        local = f"127.0.0.1:{port}"
        await wait_serving(local)
        async with Client(local, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin:
            assert await admin.health() == "SERVING"
            await admin.create_application("web")
        async with Client(local, timeout=CALL_TIMEOUT) as anonymous:
            with pytest.raises(ClientError) as caught_call:
                await anonymous.list_applications()
            assert_code(caught_call.value, UNAUTHENTICATED)
    # Loopback without a token is fine (and open to anyone on the machine).
    async with running_server(mongo_uri, db_name, listen="localhost:0") as srv:
        async with Client(srv.address, timeout=CALL_TIMEOUT) as anonymous:
            assert [a.name for a in await anonymous.list_applications()] == ["web"]


async def test_a_server_without_auth_logs_that_it_is_open(
    mongo_uri: str, db_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="genconf.api.server")

    def said(text: str) -> list[logging.LogRecord]:
        return [
            r for r in caplog.records if r.name == "genconf.api.server" and text in r.getMessage()
        ]

    async with running_server(mongo_uri, db_name):
        pass
    [warning] = said("without authentication")
    assert warning.levelno == logging.WARNING
    assert "--admin-token-file" in warning.getMessage()  # how to turn it on
    assert not said("authentication on")
    caplog.clear()
    async with auth_server(mongo_uri, db_name):
        pass
    assert said("authentication on") and not said("without authentication")


async def test_a_server_given_a_token_file_requires_that_token(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    path = tmp_path / "admin-token"
    path.write_text(f"{BOOTSTRAP}\n")
    token = auth.read_bootstrap_token(path, {})
    async with running_server(mongo_uri, db_name, admin_token=token) as srv:
        async with Client(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin:
            created = await admin.create_application("web")
            apps = await admin.list_applications(min_revision=created.revision)
            assert [a.name for a in apps] == ["web"]
        for other in (None, BOOTSTRAP + "x", BOOTSTRAP[:-1]):
            async with Client(srv.address, token=other, timeout=CALL_TIMEOUT) as c:
                with pytest.raises(ClientError) as caught:
                    await c.list_applications()
                assert_code(caught.value, UNAUTHENTICATED)


async def test_serve_refuses_an_empty_admin_token_and_limits_that_are_not_positive(
    mongo_uri: str, db_name: str
) -> None:
    """An empty token (say, from an empty file) is an error, never "authentication off"."""
    for token in ("", " \n"):
        with pytest.raises(InvalidArgument, match="is empty"):
            async with serve(server_config(mongo_uri, db_name, admin_token=token)):
                raise AssertionError(f"started with admin token {token!r}")
    for field, value in (
        ("feed_buffer", 0),
        ("feed_buffer", -5),
        ("streams_per_token", 0),
        ("streams_per_peer", 0),
        ("max_streams", -1),
        ("max_request_bytes", 0),
    ):
        option = "--" + field.replace("_", "-")
        with pytest.raises(InvalidArgument, match=f"{option} must be a positive") as caught:
            async with serve(server_config(mongo_uri, db_name, **{field: value})):
                raise AssertionError(f"started with {field}={value}")
        assert str(value) in caught.value.message
