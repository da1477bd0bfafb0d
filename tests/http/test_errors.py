"""Errors over HTTP: one body shape, gRPC's status names and messages, the status
map, and what every request passes before it is routed (the size limit, same-origin
browsers, loopback Host names without authentication)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from pymongo import MongoClient
from support.servers import BOOTSTRAP, auth_server, background_server, digest
from web_support import API, error_of, refused, web_client

from genconf import errors
from genconf.client import Client
from genconf.domain import schema
from genconf.errors import ClientError
from genconf.http import errors as http_errors
from genconf.http.calls import Aborted
from genconf.v1 import types_pb2

LIMIT = 2048  # the servers' --max-request-bytes here


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
        (grpc.StatusCode.PERMISSION_DENIED, 403),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.ABORTED, 409),
        (grpc.StatusCode.FAILED_PRECONDITION, 412),
        (grpc.StatusCode.OUT_OF_RANGE, 400),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.INTERNAL, 500),
        (grpc.StatusCode.UNKNOWN, 500),
    ],
)
def test_the_status_map(code: grpc.StatusCode, status: int) -> None:
    got, body = http_errors.body_of(Aborted(code, "why"))
    assert got == status
    assert body["code"] == code.name and body["message"] == "why"


def test_too_old_is_410_and_a_genconf_error_maps_as_over_grpc() -> None:
    detail = types_pb2.ErrorDetail(code="RevisionTooOld")
    assert http_errors.body_of(Aborted(grpc.StatusCode.OUT_OF_RANGE, "old", detail))[0] == 410
    status, body = http_errors.body_of(errors.VersionMismatch("application 'web'", 3, 4))
    assert status == 409 and body["code"] == "ABORTED"
    assert (body["details"]["expected_version"], body["details"]["actual_version"]) == (3, 4)
    status, body = http_errors.body_of(RuntimeError("a bug's text"))
    assert status == 500 and body["code"] == "INTERNAL"
    assert "a bug's text" not in body["message"]
    assert http_errors.headers_for(401) == {"WWW-Authenticate": 'Bearer realm="genconf"'}


async def test_the_message_is_grpcs(web: httpx.AsyncClient, grpc_client: Client) -> None:
    with pytest.raises(ClientError) as caught:
        await grpc_client.get_application("nope")
    body = refused(await web.get(f"{API}/applications/nope"), 404, "NOT_FOUND")
    assert body["message"] == caught.value.message
    assert body["details"]["code"] == "NotFound"


async def test_malformed_requests_name_what_is_wrong(web: httpx.AsyncClient) -> None:
    url = f"{API}/applications"
    unknown = refused(await web.get(f"{API}/nope"), 404, "NOT_FOUND")
    assert "GET /api/v1/nope" in unknown["message"]
    method = refused(await web.put(url, json={}), 405, "UNIMPLEMENTED")
    assert "PUT" in method["message"]
    broken = refused(
        await web.post(url, content=b'{"name": ', headers={"Content-Type": "application/json"}),
        400,
        "INVALID_ARGUMENT",
    )
    assert "not valid JSON" in broken["message"]
    plain = refused(await web.post(url, content=b'{"name": "x"}'), 400, "INVALID_ARGUMENT")
    assert "Content-Type: application/json" in plain["message"]
    empty = refused(await web.post(url), 400, "INVALID_ARGUMENT")
    assert "needs a JSON body" in empty["message"]
    listed = refused(await web.post(url, json=["web"]), 400, "INVALID_ARGUMENT")
    assert listed["details"]["fields"]
    # NaN is not JSON, though Python's parser reads it: refused as gRPC refuses it.
    await web.post(url, json={"name": "web", "schema": {"*": {"type": "any"}}})
    nan = refused(
        await web.put(
            f"{API}/applications/web/config",
            content=b'{"set": {"x": NaN}}',
            headers={"Content-Type": "application/json"},
        ),
        400,
        "INVALID_ARGUMENT",
    )
    assert "nan" in nan["message"].lower()
    many = {f"k{i}": i for i in range(schema.MAX_KEYS + 1)}
    too_many = refused(
        await web.put(f"{API}/applications/web/config", json={"set": many}), 400, "INVALID_ARGUMENT"
    )
    assert str(schema.MAX_KEYS) in too_many["message"]


@pytest.fixture
async def small(mongo_uri: str, db_name: str) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        background_server(
            mongo_uri, db_name, http_listen="127.0.0.1:0", max_request_bytes=LIMIT
        ) as srv,
        web_client(srv) as web,
    ):
        yield web


async def test_a_body_past_the_request_limit_is_413(
    small: httpx.AsyncClient, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    url = f"{API}/applications"
    created = await small.post(url, json={"name": "web", "schema": {"*": {"type": "any"}}})
    assert created.status_code == 200
    before = digest(mongo_client, db_name)
    big = {"set": {"text": "x" * LIMIT}}
    whole = refused(
        await small.put(f"{API}/applications/web/config", json=big), 413, "RESOURCE_EXHAUSTED"
    )
    assert f"--max-request-bytes={LIMIT:,}" in whole["message"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        text = json.dumps(big).encode()
        for start in range(0, len(text), 500):
            yield text[start : start + 500]

    streamed = refused(
        await small.put(
            f"{API}/applications/web/config",
            content=chunks(),
            headers={"Content-Type": "application/json"},
        ),
        413,
        "RESOURCE_EXHAUSTED",
    )
    assert "--max-request-bytes" in streamed["message"]
    line = refused(
        await small.post(f"{API}/import", content=b'{"record": "' + b"x" * LIMIT + b'"}\n'),
        413,
        "RESOURCE_EXHAUSTED",
    )
    assert "line 1" in line["message"]
    assert digest(mongo_client, db_name) == before
    fits = await small.put(f"{API}/applications/web/config", json={"set": {"text": "x" * 100}})
    assert fits.status_code == 200, fits.text


async def test_browsers_of_other_sites_are_refused(
    http_server: Any, web: httpx.AsyncClient
) -> None:
    own = f"http://{http_server.http_address}"
    assert (await web.get(f"{API}/applications", headers={"Origin": own})).status_code == 200
    other = refused(
        await web.post(
            f"{API}/branches", json={"name": "evil"}, headers={"Origin": "http://evil.example"}
        ),
        403,
        "PERMISSION_DENIED",
    )
    assert "evil.example" in other["message"]
    assert (await web.get(f"{API}/branches")).json() == []


async def test_without_authentication_only_loopback_names_are_answered(
    web: httpx.AsyncClient,
) -> None:
    rebound = refused(
        await web.get(f"{API}/applications", headers={"Host": "evil.example:8080"}),
        403,
        "PERMISSION_DENIED",
    )
    assert "evil.example" in rebound["message"]
    for host in ("localhost:1", "127.0.0.1", "[::1]:8080"):
        assert (await web.get(f"{API}/applications", headers={"Host": host})).status_code == 200


async def test_with_authentication_401_says_bearer_and_any_host_is_answered(
    mongo_uri: str, db_name: str
) -> None:
    async with (
        auth_server(mongo_uri, db_name, http_listen="127.0.0.1:0") as srv,
        web_client(srv) as web,
    ):
        missing = await web.get(f"{API}/applications")
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == 'Bearer realm="genconf"'
        assert "bearer token" in error_of(missing)["message"]
        named = await web.get(
            f"{API}/applications",
            headers={"Host": "genconf.example:443", "Authorization": f"Bearer {BOOTSTRAP}"},
        )
        assert named.status_code == 200, named.text
        assert (await web.get(f"{API}/health")).status_code == 200  # public
