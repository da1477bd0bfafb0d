"""`--tls-server-name` / `Client(tls_server_name=...)`: reach a TLS server through an
address its certificate does not name (a `kubectl port-forward` to 127.0.0.1 of a
server whose certificate names genconf.genconf.svc) and still check that certificate.

The server here is real (TLS, over the test's MongoDB) and its certificate names only
``genconf.genconf.svc``: dialling 127.0.0.1 must be refused without the override and
work with it, through the Python client and through the real `genconf` command.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from support.cli_runner import Genconf, clean_env
from support.rpcs import CALL_TIMEOUT, UNAVAILABLE
from support.servers import assert_code, server_config, wait_serving_as
from support.tls_certs import CertificateAuthority

from genconf.api.server import serve
from genconf.client import Client
from genconf.client.channel import server_name_options
from genconf.errors import ClientError, GenconfError

NAME = "genconf.genconf.svc"  # what the certificate names; never 127.0.0.1


@dataclass(frozen=True)
class NamedServer:
    address: str  # 127.0.0.1:PORT, which the certificate does not cover
    ca: Path


@asynccontextmanager
async def named_server(mongo_uri: str, db_name: str, tmp_path: Path) -> AsyncIterator[NamedServer]:
    """A TLS server whose certificate names only NAME (no IP address, no localhost),
    SERVING when the block starts. (Not a fixture: anyio's cancel scopes must be left
    in the task that entered them.)"""
    ca = CertificateAuthority(tmp_path, "port-forward")
    issued = ca._issue("named-server", NAME, ExtendedKeyUsageOID.SERVER_AUTH, [x509.DNSName(NAME)])
    config = server_config(mongo_uri, db_name, tls_cert=issued.cert_path, tls_key=issued.key_path)
    async with serve(config) as srv:
        address = f"127.0.0.1:{srv.address.rsplit(':', 1)[1]}"
        await wait_serving_as(address, ca.cert, NAME)
        yield NamedServer(address, ca.cert_path)


# -- the Python client --------------------------------------------------------------------


async def test_client_checks_the_certificate_against_the_given_name(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    async with named_server(mongo_uri, db_name, tmp_path) as named:
        await client_session(named)


async def client_session(named: NamedServer) -> None:
    ca = str(named.ca)
    async with Client(named.address, tls_ca=ca, timeout=CALL_TIMEOUT) as c:
        with pytest.raises(ClientError) as refused:
            await c.health()
    assert_code(refused.value, UNAVAILABLE)  # the certificate does not name 127.0.0.1
    async with Client(named.address, tls_ca=ca, tls_server_name=NAME, timeout=CALL_TIMEOUT) as c:
        assert await c.health() == "SERVING"
        created = await c.create_application("web", units=1)
        assert [a.name for a in await c.list_applications(min_revision=created.revision)] == ["web"]
    async with Client(
        named.address, tls_ca=ca, tls_server_name="elsewhere.example", timeout=CALL_TIMEOUT
    ) as c:
        with pytest.raises(ClientError) as wrong:
            await c.health()
    assert_code(wrong.value, UNAVAILABLE)  # the override is checked, not a bypass


def test_a_server_name_needs_a_ca_and_must_be_a_bare_name() -> None:
    with pytest.raises(GenconfError, match=re.escape(f"--tls-server-name {NAME} needs --tls-ca")):
        Client("127.0.0.1:1", tls_server_name=NAME)
    for bad in ("genconf.genconf.svc:50051", "https://genconf.example", "two words", " "):
        with pytest.raises(GenconfError, match="invalid TLS server name"):
            server_name_options(bad)
    assert server_name_options(NAME) == [
        ("grpc.ssl_target_name_override", NAME),
        ("grpc.default_authority", NAME),
    ]


# -- the real CLI -------------------------------------------------------------------------


async def test_cli_flag_env_and_config_file(mongo_uri: str, db_name: str, tmp_path: Path) -> None:
    async with named_server(mongo_uri, db_name, tmp_path) as named:
        await cli_session(named, tmp_path)


async def cli_session(named: NamedServer, tmp_path: Path) -> None:
    run = Genconf(named.address, clean_env(tmp_path))
    ca = str(named.ca)
    config_file = tmp_path / "genconf.yaml"
    config_file.write_text(f"tls_ca: {ca}\ntls_server_name: {NAME}\n")
    with_env = clean_env(tmp_path, GENCONF_TLS_CA=ca, GENCONF_TLS_SERVER_NAME=NAME)
    refused, flag, wrong, from_file = await run.all(
        ["app", "list", "--tls-ca", ca],
        ["--tls-server-name", NAME, "app", "list", "--tls-ca", ca, "-o", "json"],
        ["app", "list", "--tls-ca", ca, "--tls-server-name", "elsewhere.example"],
        ["app", "list", "--config", str(config_file), "-o", "json"],
    )
    from_env = await run("app", "list", "-o", "json", env=with_env)
    assert refused.rc == 1 and "UNAVAILABLE" in refused.err, refused
    assert wrong.rc == 1 and "UNAVAILABLE" in wrong.err, wrong
    assert from_env.json() == from_file.json() == []
    assert flag.json() == []


async def test_cli_without_a_ca_says_what_is_missing(tmp_path: Path) -> None:
    run = Genconf("127.0.0.1:1", clean_env(tmp_path))
    missing, bad = await run.all(
        ["app", "list", "--tls-server-name", NAME],
        ["app", "list", "--tls-ca", str(tmp_path / "ca.pem"), "--tls-server-name", "a:1"],
    )
    assert missing.rc == 1
    assert missing.err.strip() == (
        f"error: --tls-server-name {NAME} needs --tls-ca: the server name is checked "
        "against the certificate of a TLS server"
    )
    assert bad.rc == 1 and "invalid TLS server name 'a:1'" in bad.err, bad
