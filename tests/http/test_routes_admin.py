"""The whole model over HTTP: health, who the caller is, the snapshot, tokens,
export and import; and what the server serves besides the API: its OpenAPI
document, the interactive docs from the package (nothing from the internet), the
console at ``/``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from grpc_health.v1 import health_pb2
from pymongo import MongoClient
from support.servers import BOOTSTRAP, admin_session, running_server
from web_support import API, HTTP_TIMEOUT, bearer, refused, web_client

from genconf import shapes
from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.http import app as http_app

SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 80},
    "password": {"type": "string", "secret": True},
}


async def test_health_whoami_and_snapshot(web: httpx.AsyncClient, grpc_client: Client) -> None:
    assert (await web.get(f"{API}/health")).json() == {"status": "SERVING"}
    me = await web.get(f"{API}/whoami", headers={"X-Genconf-User": "ann"})
    assert me.json() == {
        "role": "admin",
        "name": "ann",
        "token_id": None,
        "unit": None,
        "auth": False,
    }
    await grpc_client.create_application("web", schema=SCHEMA, units=2)
    await grpc_client.add_branch("b")
    done = await grpc_client.track_branch("b", units=["web/1"])
    await grpc_client.list_units(min_revision=done.revision)
    snapshot = (await web.get(f"{API}/snapshot")).json()
    grpc = await grpc_client.snapshot()
    assert snapshot == {
        "applications": [shapes.application_view(a) for a in grpc.applications],
        "units": [shapes.unit_view(u) for u in grpc.units],
        "branches": [shapes.branch_view(b) for b in grpc.branches],
        "last_generation": grpc.last_generation,
        "revision": grpc.revision,
    }
    assert [u["branch"] for u in snapshot["units"]] == [None, "b"]


async def test_whoami_and_tokens_with_authentication(mongo_uri: str, db_name: str) -> None:
    async with (
        admin_session(mongo_uri, db_name, http_listen="127.0.0.1:0") as (srv, admin),
        web_client(srv, BOOTSTRAP) as web,
    ):
        me = (await web.get(f"{API}/whoami")).json()
        assert me == {
            "role": "admin",
            "name": "bootstrap admin",
            "token_id": "bootstrap",
            "unit": None,
            "auth": True,
        }
        minted = await web.post(
            f"{API}/tokens", json={"role": "controller", "name": "ci", "expires_in_seconds": 3600}
        )
        assert minted.status_code == 200, minted.text
        token = minted.json()
        assert token["token"].startswith("gct_") and token["role"] == "controller"
        assert token["name"] == "ci" and token["expires_at"] is not None
        listed = (await web.get(f"{API}/tokens")).json()
        assert listed == [shapes.token_view(t) for t in await admin.list_tokens()]
        assert all("token" not in t for t in listed)  # a secret is shown once only
        # The new token works at once, on this very server.
        async with web_client(srv, token["token"]) as ci:
            assert (await ci.get(f"{API}/whoami")).json()["token_id"] == token["id"]
            refused(await ci.get(f"{API}/tokens"), 403, "PERMISSION_DENIED")
            revoked = await web.delete(f"{API}/tokens/{token['id']}")
            assert revoked.status_code == 200, revoked.text
            gone = refused(await ci.get(f"{API}/whoami"), 401, "UNAUTHENTICATED")
            assert "revoked" in gone["message"]
        refused(await web.post(f"{API}/tokens", json={"role": "boss"}), 400, "INVALID_ARGUMENT")
        agent = refused(
            await web.post(f"{API}/tokens", json={"role": "agent"}), 400, "INVALID_ARGUMENT"
        )
        assert "--unit" in agent["message"]
        refused(await web.delete(f"{API}/tokens/0123456789abcdef"), 404, "NOT_FOUND")
        nobody = refused(
            await web.get(f"{API}/whoami", headers=bearer("nope")), 401, "UNAUTHENTICATED"
        )
        assert "gct_" in nobody["message"]


async def test_export_then_import_into_another_model(
    mongo_uri: str,
    db_name: str,
    mongo_client: MongoClient[dict[str, Any]],
    web: httpx.AsyncClient,
    grpc_client: Client,
) -> None:
    await grpc_client.create_application("web", schema=SCHEMA, units=2)
    await grpc_client.set_config("web", {"port": 8080, "password": "s3cret"})
    await grpc_client.tag_version("web", "1.0.0")
    exported = await web.get(f"{API}/export")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    assert "attachment" in exported.headers["content-disposition"]
    lines = exported.text.splitlines()
    assert json.loads(lines[0])["record"] == "genconf-export"
    assert json.loads(lines[-1])["record"] == "end"
    assert lines[1:] == [t for t in (await _texts(grpc_client))[1:]]
    only = (await web.get(f"{API}/export", params={"application": "web"})).text.splitlines()
    assert json.loads(only[-1])["record"] == "end"

    second = db_name + "_b"
    try:
        async with (
            running_server(mongo_uri, second, http_listen="127.0.0.1:0") as other,
            web_client(other) as target,
            Client(other.address, timeout=HTTP_TIMEOUT) as other_client,
        ):
            imported = await target.post(
                f"{API}/import",
                content=exported.content,
                headers={"Content-Type": "application/x-ndjson"},
            )
            assert imported.status_code == 200, imported.text
            summary = imported.json()
            assert summary["records"] == len(lines)
            assert summary["applications"] == ["web"] and summary["units"] == 2
            assert summary["versions"] == 2 and summary["transactions"] == 1
            # Read-your-writes: the import is in this server's cache when it answers.
            assert (await target.get(f"{API}/applications/web")).json()["settings"] == {
                "port": 8080,
                "password": "s3cret",
            }
            again = (await _texts(other_client))[1:]
            assert again == lines[1:]
            collision = refused(
                await target.post(f"{API}/import", content=exported.content), 409, "ALREADY_EXISTS"
            )
            assert "web" in collision["message"]
            yaml = refused(
                await target.post(f"{API}/import", content=b"---\nrecord: genconf-export\n"),
                400,
                "INVALID_ARGUMENT",
            )
            assert "JSON Lines" in yaml["message"]
    finally:
        mongo_client.drop_database(second)


async def _texts(client: Client) -> list[str]:
    return [text async for text in client.export_model()]


async def test_openapi_docs_and_console(web: httpx.AsyncClient) -> None:
    document = (await web.get(f"{API}/openapi.json")).json()
    assert document["info"]["title"] == "genconf"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    operation = document["paths"]["/api/v1/applications/{app}/versions/compare"]["post"]
    assert operation["x-genconf-rpc"] == "HistoryService/DiffVersions"
    assert document["paths"]["/api/v1/health"]["get"]["security"] == []
    assert "/api/v1/_bench/empty" not in document["paths"]

    docs = await web.get(f"{API}/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    # Every asset comes from this server: nothing from the internet.
    urls = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert urls and all(u.startswith("/api/v1/") or u.startswith("data:") for u in urls), urls
    assert "https://" not in docs.text and "http://" not in docs.text
    for url in urls:
        if url.startswith("/"):
            asset = await web.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
    licence = http_app.ASSETS_DIR / "LICENSE"
    assert "Apache License" in licence.read_text()

    console = await web.get("/")
    assert console.status_code == 200
    assert console.headers["content-type"].startswith("text/html")
    refused(await web.get(f"{API}/_bench/empty"), 404, "NOT_FOUND")


async def test_a_package_without_console_serves_a_one_line_page(tmp_path: Path) -> None:
    app = FastAPI()
    http_app.mount_console(app, tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        page = await client.get("/")
    assert page.status_code == 200 and "/api/v1/docs" in page.text


async def test_health_follows_grpc_health(
    http_server: RunningServer, web: httpx.AsyncClient
) -> None:
    """GET /api/v1/health answers the whole server's gRPC health: 503 when not serving."""
    await http_server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    reply = await web.get(f"{API}/health")
    assert reply.status_code == 503 and reply.json() == {"status": "NOT_SERVING"}
    await http_server.health.set("", health_pb2.HealthCheckResponse.SERVING)
    assert (await web.get(f"{API}/health")).status_code == 200
