"""TLS end to end: with and without client certificates; the bearer token still
decides what a TLS-authenticated connection may do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from support.rpcs import CALL_TIMEOUT, UNAUTHENTICATED, UNAVAILABLE
from support.servers import BOOTSTRAP, assert_code, server_config, wait_serving
from support.tls_certs import CertificateAuthority, Issued

from genconf.api.server import serve
from genconf.client import Client
from genconf.errors import ClientError


@asynccontextmanager
async def tls_server(
    mongo_uri: str,
    db_name: str,
    ca: CertificateAuthority,
    client: Issued | None,
    **overrides: Any,
) -> AsyncIterator[str]:
    """A TLS server with a certificate of ``ca`` (`servers.running_server` waits over
    plaintext) and its address, SERVING as seen by a client that trusts ``ca`` and
    presents ``client``'s certificate when given."""
    server_cert = ca.server()
    tls = {"tls_cert": server_cert.cert_path, "tls_key": server_cert.key_path}
    async with serve(server_config(mongo_uri, db_name, **tls, **overrides)) as srv:
        address = f"127.0.0.1:{srv.address.rsplit(':', 1)[1]}"
        await wait_serving(address, credentials=tls_credentials(ca, client))
        yield address


def tls_credentials(
    ca: CertificateAuthority, client: Issued | None, token: str | None = None
) -> grpc.ChannelCredentials:
    """Trusting ``ca``, presenting ``client``'s certificate when given, and sending
    ``token`` with gRPC's standard access-token call credentials."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.cert,
        private_key=client.key if client else None,
        certificate_chain=client.cert if client else None,
    )
    if token is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    return credentials


def tls_channel(
    address: str, ca: CertificateAuthority, client: Issued | None, token: str | None = None
) -> grpc.aio.Channel:
    """A TLS channel with `tls_credentials`."""
    return grpc.aio.secure_channel(address, tls_credentials(ca, client, token))


async def test_tls_with_client_certificates(mongo_uri: str, db_name: str, tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path, "main")
    rogue = CertificateAuthority(tmp_path, "rogue")
    good = ca.client()
    async with tls_server(
        mongo_uri, db_name, ca, good, tls_client_ca=ca.cert_path, admin_token=BOOTSTRAP
    ) as address:
        async with Client(channel=tls_channel(address, ca, good), timeout=CALL_TIMEOUT) as c:
            assert await c.health() == "SERVING"
            # TLS authenticates the connection; the bearer token still decides the rest.
            with pytest.raises(ClientError) as caught:
                await c.list_applications()
            assert_code(caught.value, UNAUTHENTICATED)
        authorized = tls_channel(address, ca, good, token=BOOTSTRAP)
        async with Client(channel=authorized, timeout=CALL_TIMEOUT) as c:
            created = await c.create_application("web")
            apps = await c.list_applications(min_revision=created.revision)
            assert [a.name for a in apps] == ["web"]
        refused: dict[str, grpc.aio.Channel] = {
            "no client certificate": tls_channel(address, ca, None),
            "a client certificate from another CA": tls_channel(address, ca, rogue.client()),
            "plaintext": grpc.aio.insecure_channel(address),
        }
        for what, channel in refused.items():
            async with Client(channel=channel, timeout=CALL_TIMEOUT) as c:
                with pytest.raises(ClientError) as caught:
                    await c.health()
                assert caught.value.code == UNAVAILABLE, f"{what}: {caught.value}"
        # A client that does not trust the server's CA does not connect either.
        rogue_trust = tls_channel(address, rogue, rogue.client())
        async with Client(channel=rogue_trust, timeout=CALL_TIMEOUT) as c:
            with pytest.raises(ClientError) as caught:
                await c.health()
            assert caught.value.code == UNAVAILABLE


async def test_tls_without_client_certificates(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    ca = CertificateAuthority(tmp_path, "main")
    async with tls_server(mongo_uri, db_name, ca, None) as address:
        async with Client(address, tls_ca=str(ca.cert_path), timeout=CALL_TIMEOUT) as c:
            assert await c.health() == "SERVING"
            created = await c.create_application("web")
            apps = await c.list_applications(min_revision=created.revision)
            assert [a.name for a in apps] == ["web"]
        async with Client(address, timeout=CALL_TIMEOUT) as plaintext:
            with pytest.raises(ClientError) as caught:
                await plaintext.health()
            assert caught.value.code == UNAVAILABLE
