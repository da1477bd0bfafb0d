"""Applications, master config and units over HTTP: each route's happy path, its
errors, and answers in the shapes ``genconf -o json`` prints (`genconf.shapes`
over the same server's gRPC replies)."""

from __future__ import annotations

from typing import Any

import httpx
from support.servers import BOOTSTRAP, admin_session
from web_support import API, refused, web_client

from genconf import shapes
from genconf.client import Client

SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 80, "description": "where to listen"},
    "ratio": {"type": "float", "default": 2.0},
    "motd": {"type": "string"},
}


async def create_web(web: httpx.AsyncClient, units: int = 2) -> dict[str, Any]:
    reply = await web.post(
        f"{API}/applications",
        json={"name": "web", "schema": SCHEMA, "units": units, "settings": {"motd": "hi"}},
    )
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


async def test_create_get_list_update_remove(web: httpx.AsyncClient, grpc_client: Client) -> None:
    written = await create_web(web)
    assert set(written) == {"revision", "generation", "versions", "units"}
    assert written["versions"] == {"web": 1}
    assert written["units"] == ["web/0", "web/1"]
    assert written["revision"] > 0

    shown = (await web.get(f"{API}/applications/web")).json()
    assert shown == shapes.application_view(await grpc_client.get_application("web"))
    assert shown["effective"] == {"port": 80, "ratio": 2.0, "motd": "hi"}
    assert isinstance(shown["effective"]["ratio"], float)  # typed by the schema
    listed = (await web.get(f"{API}/applications")).json()
    assert listed == [shown]

    changed = await web.patch(f"{API}/applications/web", json={"charm": "nginx"})
    assert changed.status_code == 200, changed.text
    assert (await web.get(f"{API}/applications/web")).json()["charm"] == "nginx"
    reschema = await web.patch(
        f"{API}/applications/web", json={"schema": {**SCHEMA, "extra": {"type": "boolean"}}}
    )
    assert reschema.status_code == 200, reschema.text
    assert "extra" in (await web.get(f"{API}/applications/web")).json()["schema"]

    with_units = refused(await web.delete(f"{API}/applications/web"), 412, "FAILED_PRECONDITION")
    assert "force" in with_units["message"]
    removed = await web.delete(f"{API}/applications/web", params={"force": True})
    assert removed.status_code == 200, removed.text
    assert (await web.get(f"{API}/applications")).json() == []
    refused(await web.get(f"{API}/applications/web"), 404, "NOT_FOUND")


async def test_application_errors(web: httpx.AsyncClient) -> None:
    await create_web(web)
    again = refused(
        await web.post(f"{API}/applications", json={"name": "web"}), 409, "ALREADY_EXISTS"
    )
    assert "web" in again["message"]
    bad_name = refused(
        await web.post(f"{API}/applications", json={"name": "Web!"}), 400, "INVALID_ARGUMENT"
    )
    assert "Web!" in bad_name["message"]
    bad_type = refused(
        await web.post(f"{API}/applications", json={"name": "x", "units": "2"}),
        400,
        "INVALID_ARGUMENT",
    )
    assert bad_type["details"]["fields"][0]["field"] == "units"
    assert "units" in bad_type["message"]
    nothing = refused(await web.patch(f"{API}/applications/web", json={}), 400, "INVALID_ARGUMENT")
    assert "nothing to update" in nothing["message"]
    refused(await web.patch(f"{API}/applications/nope", json={"charm": "c"}), 404, "NOT_FOUND")
    refused(await web.delete(f"{API}/applications/nope"), 404, "NOT_FOUND")
    unfit = refused(
        await web.post(
            f"{API}/applications",
            json={"name": "db", "schema": {"n": {"type": "int", "default": "x"}}},
        ),
        400,
        "INVALID_ARGUMENT",
    )
    assert "n" in unfit["message"]


async def test_set_config_with_expectations_and_versions(
    web: httpx.AsyncClient, grpc_client: Client
) -> None:
    await create_web(web)
    url = f"{API}/applications/web/config"
    written = await web.put(
        url,
        json={
            "set": {"port": 8080},
            "unset": ["motd"],
            "expect": {"port": 80, "ratio": 2.0},
            "expected_version": 1,
            "reason": "move",
            "metadata": {"ticket": "T-1"},
        },
    )
    assert written.status_code == 200, written.text
    assert written.json()["versions"] == {"web": 2}
    assert written.json()["generation"] is not None
    # Read-your-writes: the answer comes once this server's cache has the write.
    config = (await web.get(f"{API}/units/web/0/config")).json()
    assert config["config"] == {"port": 8080, "ratio": 2.0}
    assert config["app_version"] == 2

    stale = refused(
        await web.put(url, json={"set": {"port": 1}, "expected_version": 1}), 409, "ABORTED"
    )
    assert stale["details"]["code"] == "VersionMismatch"
    assert (stale["details"]["expected_version"], stale["details"]["actual_version"]) == (1, 2)

    mismatch = refused(
        await web.put(
            url, json={"set": {"port": 2}, "expect": {"port": 80, "motd": {"absent": True}}}
        ),
        409,
        "ABORTED",
    )
    assert mismatch["details"]["mismatches"] == [
        {"application": "web", "key": "port", "expected": "80", "actual": "8080", "branch": None}
    ]
    absent_ok = await web.put(
        url, json={"set": {"motd": "back"}, "expect": {"motd": {"absent": True}}}
    )
    assert absent_ok.status_code == 200, absent_ok.text

    replaced = await web.put(url, json={"set": {"ratio": 3.5}, "replace": True})
    assert replaced.status_code == 200
    assert (await web.get(f"{API}/applications/web")).json()["settings"] == {"ratio": 3.5}

    wrong = refused(await web.put(url, json={"set": {"port": "x"}}), 400, "INVALID_ARGUMENT")
    assert "port" in wrong["message"]
    unknown = refused(await web.put(url, json={"set": {"nope": 1}}), 400, "INVALID_ARGUMENT")
    assert "nope" in unknown["message"]
    huge = refused(await web.put(url, json={"set": {"port": 2**60}}), 400, "INVALID_ARGUMENT")
    assert "port" in huge["message"]
    extra = refused(await web.put(url, json={"sett": {}}), 400, "INVALID_ARGUMENT")
    assert extra["details"]["fields"] == [
        {"field": "sett", "in": "body", "problem": "Extra inputs are not permitted"}
    ]
    refused(
        await web.put(f"{API}/applications/nope/config", json={"set": {"a": 1}}), 404, "NOT_FOUND"
    )
    version = (await grpc_client.get_application("web")).version
    assert version == 4  # the refused writes wrote nothing


async def test_patch_a_text_value(web: httpx.AsyncClient) -> None:
    await create_web(web)
    url = f"{API}/applications/web/config/patch"
    patched = await web.post(
        url,
        json={
            "key": "motd",
            "diff": "@@ -1 +1 @@\n-hi\n\\ No newline at end of file\n+hello\n"
            "\\ No newline at end of file\n",
            "reason": "greet",
        },
    )
    assert patched.status_code == 200, patched.text
    assert (await web.get(f"{API}/applications/web")).json()["settings"]["motd"] == "hello"
    failed = refused(
        await web.post(url, json={"key": "motd", "diff": "@@ -1 +1 @@\n-nope\n+x\n"}),
        412,
        "FAILED_PRECONDITION",
    )
    assert "hunk" in failed["message"]


async def test_units(web: httpx.AsyncClient, grpc_client: Client) -> None:
    await create_web(web, units=1)
    added = await web.post(f"{API}/applications/web/units", json={"count": 2})
    assert added.json()["units"] == ["web/1", "web/2"]
    named = await web.post(f"{API}/applications/web/units", json={"names": ["web/7"]})
    assert named.json()["units"] == ["web/7"]
    units = (await web.get(f"{API}/applications/web/units")).json()
    assert [u["name"] for u in units] == ["web/0", "web/1", "web/2", "web/7"]
    assert units == [shapes.unit_view(u) for u in await grpc_client.list_units("web")]
    assert units[0] == {
        "name": "web/0", "application": "web", "branch": None, "applied": None, "labels": {}
    }  # fmt: skip
    everything = (await web.get(f"{API}/units")).json()
    assert everything == units
    assert (await web.get(f"{API}/units", params={"application": "web"})).json() == units
    refused(await web.get(f"{API}/units", params={"application": "nope"}), 404, "NOT_FOUND")

    removed = await web.delete(f"{API}/units/web/7")
    assert removed.status_code == 200, removed.text
    refused(await web.delete(f"{API}/units/web/7"), 404, "NOT_FOUND")
    refused(
        await web.post(f"{API}/applications/web/units", json={"names": ["web/1"]}),
        409,
        "ALREADY_EXISTS",
    )
    refused(await web.post(f"{API}/applications/nope/units", json={"count": 1}), 404, "NOT_FOUND")


async def test_unit_config_and_applied_reports(web: httpx.AsyncClient, grpc_client: Client) -> None:
    await create_web(web, units=1)
    config = (await web.get(f"{API}/units/web/0/config")).json()
    assert config == shapes.config_view(await grpc_client.get_config("web/0"))
    assert list(config) == sorted(config)

    reported = await web.post(
        f"{API}/units/web/0/applied",
        json={"hash": config["hash"], "ok": False, "message": "exit 3"},
    )
    assert reported.status_code == 200, reported.text
    applied = (await web.get(f"{API}/units")).json()[0]["applied"]
    assert applied["hash"] == config["hash"] and applied["ok"] is False
    assert applied["message"] == "exit 3" and applied["at"].endswith("Z")

    bad = refused(
        await web.post(f"{API}/units/web/0/applied", json={"hash": "abc", "ok": True}),
        400,
        "INVALID_ARGUMENT",
    )
    assert "sha256" in bad["message"]
    refused(await web.get(f"{API}/units/web/9/config"), 404, "NOT_FOUND")
    refused(await web.get(f"{API}/units/Web/x/config"), 400, "INVALID_ARGUMENT")
    missing = refused(
        await web.post(f"{API}/units/web/0/applied", json={"ok": True}), 400, "INVALID_ARGUMENT"
    )
    assert missing["details"]["fields"][0]["field"] == "hash"


async def test_an_authenticated_write_names_no_one_it_was_not_told_of(
    mongo_uri: str, db_name: str
) -> None:
    """With a token, the token is the author; "on behalf of" only when the client
    says so (X-Genconf-User), never a made-up "http"."""
    async with (
        admin_session(mongo_uri, db_name, http_listen="127.0.0.1:0") as (srv, admin),
        web_client(srv, BOOTSTRAP) as web,
    ):
        plain = await web.post(f"{API}/applications", json={"name": "web"})
        assert plain.status_code == 200, plain.text
        said = await web.post(
            f"{API}/applications", json={"name": "db"}, headers={"X-Genconf-User": "ann"}
        )
        assert said.status_code == 200, said.text
        first = await admin.get_version("web", 1)
        assert (first.created_by, first.on_behalf_of) == ("bootstrap admin (token bootstrap)", "")
        assert (await admin.get_version("db", 1)).on_behalf_of == "ann"
