"""The CLI speaks its own language: flags instead of request fields, a TLS server
named as such, a default port, `--version`; a wrong token gets a plain answer."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import grpc
import pytest
from support.cli_runner import Genconf, clean_env
from support.servers import BOOTSTRAP, auth_server, server_config, wait_serving
from support.tls_certs import CertificateAuthority

from genconf.addresses import with_default_port
from genconf.api.server import RunningServer, serve
from genconf.cli.messages import in_cli_words
from genconf.client import Client

FIELD_TO_FLAG = [
    (
        "re-read it and retry with expected_version set to the current version",
        "re-read it and retry with --expected-version set to the current version",
    ),
    ("or pass force to overwrite", "or pass --force to overwrite"),
    ("or commit without require_applied", "or commit without --require-applied"),
    ("OUT_OF_RANGE, take a new Snapshot)", "OUT_OF_RANGE, start again without --since)"),
    ("--expected-version, expected_versions", "--expected-version, expected_versions"),
]


@pytest.mark.parametrize(("api", "cli"), FIELD_TO_FLAG)
def test_request_fields_become_flags(api: str, cli: str) -> None:
    assert in_cli_words(api) == cli


@pytest.mark.parametrize(
    ("given", "target"),
    [("127.0.0.1", "127.0.0.1:50051"), ("127.0.0.1:7", "127.0.0.1:7"),
     ("db.example", "db.example:50051"), ("::1", "[::1]:50051"), ("[::1]", "[::1]:50051"),
     ("[::1]:9", "[::1]:9"), ("dns:///a.example:1", "dns:///a.example:1")],
)  # fmt: skip
def test_a_server_without_a_port_means_50051(given: str, target: str) -> None:
    assert with_default_port(given) == target


async def test_version_and_default_port(tmp_path: Path) -> None:
    genconf = Genconf(None, clean_env(tmp_path))
    assert (await genconf("--version")).ok().out == f"genconf {version('genconf')}\n"
    # Nothing listens on 50051 here: the hint names the address the port was added to.
    run = await genconf("app", "list", "--server", "127.0.0.2")
    assert "is a genconf server running at 127.0.0.2:50051?" in run.err


async def test_messages_in_flag_language(
    client: Client, srv: RunningServer, tmp_path: Path
) -> None:
    genconf = Genconf(srv.address, clean_env(tmp_path))
    await client.create_application("web", schema={"port": {"type": "int"}}, units=1)
    stale = await genconf("config", "set", "web", "port=1", "--expected-version", "7")
    assert (
        "retry with --expected-version set to" in stale.err and "expected_version" not in stale.err
    )
    (await genconf("branch", "add", "b")).ok()
    (await genconf("config", "set", "web", "port=2", "--branch", "b")).ok()
    await client.set_config("web", {"port": 3})
    conflict = await genconf("branch", "commit", "b")
    assert "pass --force to overwrite" in conflict.err
    removing = await genconf("app", "remove", "web")
    assert "pass --force to remove it with its units" in removing.err


async def test_a_tls_server_reached_without_tls_ca_says_so(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    ca = CertificateAuthority(tmp_path, "main")
    cert = ca.server()
    config = server_config(mongo_uri, db_name, tls_cert=cert.cert_path, tls_key=cert.key_path)
    async with serve(config) as srv:
        address = f"127.0.0.1:{srv.address.rsplit(':', 1)[1]}"
        await wait_serving(address, credentials=grpc.ssl_channel_credentials(ca.cert))
        run = await Genconf(address, clean_env(tmp_path))("app", "list")
    assert run.rc == 1
    assert f"hint: the server at {address} speaks TLS: pass --tls-ca" in run.err


async def test_a_wrong_bootstrap_token_gets_a_plain_answer(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    async with auth_server(mongo_uri, db_name) as srv:
        genconf = Genconf(srv.address, clean_env(tmp_path))
        wrong = await genconf("app", "list", "--token", BOOTSTRAP + "x")
    assert wrong.rc == 1 and "UNAUTHENTICATED: invalid or unknown token" in wrong.err
