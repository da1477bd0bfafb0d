"""The HTTP server's lifecycle: started by `serve` beside gRPC on its own port (0:
any free one), off unless asked for, held to the rules of the gRPC listen, and
stopped with the server."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import grpc
import httpx
import pytest
from support.servers import BOOTSTRAP, free_port, running_server, server_config, wait_serving
from support.tls_certs import CertificateAuthority
from web_support import API, web_client

from genconf.api.server import ServerConfig, serve
from genconf.cli.main import build_parser
from genconf.errors import GenconfError, InvalidArgument


async def test_port_zero_binds_a_free_port_and_the_server_stops_it(
    mongo_uri: str, db_name: str
) -> None:
    async with running_server(mongo_uri, db_name, http_listen="127.0.0.1:0") as srv:
        assert srv.http_address is not None
        host, _, port = srv.http_address.rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
        assert srv.http_address != srv.address
        async with web_client(srv) as web:
            reply = await web.get(f"{API}/health")
            assert reply.json() == {"status": "SERVING"}
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as after:
            await after.get(f"http://{srv.http_address}{API}/health")


async def test_off_unless_asked_for(mongo_uri: str, db_name: str) -> None:
    async with running_server(mongo_uri, db_name) as srv:
        assert srv.config.http_listen is None
        assert srv.http_address is None


async def test_a_given_port_is_the_one_bound(mongo_uri: str, db_name: str) -> None:
    port = free_port()
    async with running_server(mongo_uri, db_name, http_listen=f"127.0.0.1:{port}") as srv:
        assert srv.http_address == f"127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"http_listen": "0.0.0.0:0"},
            "refusing to serve HTTP on 0.0.0.0:0 without authentication",
        ),
        (
            {"http_listen": "0.0.0.0:0", "admin_token": BOOTSTRAP},
            "refusing to take bearer tokens in clear on 0.0.0.0:0",
        ),
        ({"http_listen": "localhost"}, "--http-listen must be HOST:PORT"),
    ],
)
async def test_refused_before_anything_starts(
    mongo_uri: str, db_name: str, overrides: dict[str, str], message: str
) -> None:
    config = server_config(mongo_uri, db_name, **overrides)
    with pytest.raises(InvalidArgument) as caught:
        async with serve(config):
            pass
    assert message in caught.value.message


async def test_the_same_address_as_grpc_is_refused(mongo_uri: str, db_name: str) -> None:
    port = free_port()
    config = server_config(
        mongo_uri, db_name, listen=f"127.0.0.1:{port}", http_listen=f"127.0.0.1:{port}"
    )
    with pytest.raises(InvalidArgument, match="give each its own"):
        async with serve(config):
            pass


async def test_an_address_in_use_is_named(mongo_uri: str, db_name: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = server_config(mongo_uri, db_name, http_listen=f"127.0.0.1:{port}")
        with pytest.raises(GenconfError) as caught:
            async with serve(config):
                pass
    assert f"127.0.0.1:{port} is already in use" in caught.value.message


def test_the_serve_flag_sets_the_config() -> None:
    args = build_parser().parse_args(["serve", "--http-listen", "127.0.0.1:8080"])
    assert ServerConfig.from_flags(args).http_listen == "127.0.0.1:8080"
    default = build_parser().parse_args(["serve"])
    assert ServerConfig.from_flags(default).http_listen is None


async def test_tls_covers_http_too(mongo_uri: str, db_name: str, tmp_path: Path) -> None:
    """The HTTP side takes the gRPC side's certificate and key, and its client CA."""
    ca = CertificateAuthority(tmp_path, "main")
    cert, client = ca.server(), ca.client()
    config = server_config(
        mongo_uri,
        db_name,
        http_listen="127.0.0.1:0",
        tls_cert=cert.cert_path,
        tls_key=cert.key_path,
        tls_client_ca=ca.cert_path,
    )
    async with serve(config) as srv:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca.cert, private_key=client.key, certificate_chain=client.cert
        )
        await wait_serving(f"127.0.0.1:{srv.address.rsplit(':', 1)[1]}", credentials=credentials)
        url = f"https://{srv.http_address}{API}/health"
        trusted = ssl.create_default_context(cafile=str(ca.cert_path))
        trusted.load_cert_chain(client.cert_path, client.key_path)
        async with httpx.AsyncClient(verify=trusted) as web:
            assert (await web.get(url)).json() == {"status": "SERVING"}
        anonymous = ssl.create_default_context(cafile=str(ca.cert_path))
        async with httpx.AsyncClient(verify=anonymous) as web:
            with pytest.raises(httpx.TransportError):
                await web.get(url)
        async with httpx.AsyncClient() as web:
            with pytest.raises(httpx.TransportError):
                await web.get(f"http://{srv.http_address}{API}/health")
