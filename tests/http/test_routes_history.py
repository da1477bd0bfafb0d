"""History over HTTP, in the shape of a dataset-versioning API: versions listed,
latest, one by number or label, compared, rolled back, incremented, tagged; key
history; generations listed, shown and reverted. Each route's errors too."""

from __future__ import annotations

from typing import Any

import httpx
from web_support import API, refused

from genconf import shapes
from genconf.client import Client

SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 80},
    "ratio": {"type": "float", "default": 1.0},
    "motd": {"type": "string"},
}


async def three_versions(web: httpx.AsyncClient) -> None:
    """web at version 3: created, port 8080 (with a ratio), port 9090 (motd)."""
    created = await web.post(f"{API}/applications", json={"name": "web", "schema": SCHEMA})
    assert created.status_code == 200, created.text
    for values in ({"port": 8080, "ratio": 2.0}, {"port": 9090, "motd": "hi"}):
        reply = await web.put(
            f"{API}/applications/web/config", json={"set": values, "reason": "step"}
        )
        assert reply.status_code == 200, reply.text


async def test_versions_listed_latest_and_one(web: httpx.AsyncClient, grpc_client: Client) -> None:
    await three_versions(web)
    page = (await web.get(f"{API}/applications/web/versions")).json()
    assert set(page) == {"versions", "more", "current_version"}
    assert [v["version"] for v in page["versions"]] == [3, 2, 1]
    assert page["more"] is False and page["current_version"] == 3
    schema = (await grpc_client.get_application("web")).schema
    listed = await grpc_client.list_versions("web")
    assert page["versions"] == [shapes.version_view(v, schema) for v in listed.versions]
    assert page["versions"][1]["settings"] == {"port": 8080, "ratio": 2.0}
    assert isinstance(page["versions"][1]["settings"]["ratio"], float)

    first = (await web.get(f"{API}/applications/web/versions", params={"limit": 1})).json()
    assert [v["version"] for v in first["versions"]] == [3] and first["more"] is True
    older = await web.get(f"{API}/applications/web/versions", params={"limit": 1, "before": 3})
    assert [v["version"] for v in older.json()["versions"]] == [2]
    newer = await web.get(f"{API}/applications/web/versions", params={"since": 1})
    assert [v["version"] for v in newer.json()["versions"]] == [3, 2]

    assert (await web.get(f"{API}/applications/web/versions/latest")).json() == {
        "application": "web",
        "version": 3,
        "label": None,
        "label_version": None,
    }
    two = (await web.get(f"{API}/applications/web/versions/2")).json()
    assert two == page["versions"][1]
    current = (await web.get(f"{API}/applications/web/versions/0")).json()
    assert current["version"] == 3

    refused(await web.get(f"{API}/applications/web/versions/9"), 404, "NOT_FOUND")
    refused(await web.get(f"{API}/applications/nope/versions"), 404, "NOT_FOUND")
    refused(await web.get(f"{API}/applications/nope/versions/latest"), 404, "NOT_FOUND")
    bad = refused(await web.get(f"{API}/applications/web/versions/one"), 400, "INVALID_ARGUMENT")
    assert "one" in bad["message"] and "version number" in bad["message"]
    limit = refused(
        await web.get(f"{API}/applications/web/versions", params={"limit": -1}),
        400,
        "INVALID_ARGUMENT",
    )
    assert limit["details"]["fields"][0] == {
        "field": "limit",
        "in": "query",
        "problem": limit["details"]["fields"][0]["problem"],
    }


async def test_labels_compare_rollback(web: httpx.AsyncClient, grpc_client: Client) -> None:
    await three_versions(web)
    tagged = await web.post(f"{API}/applications/web/versions/1/tags", json={"label": "1.0.0"})
    assert tagged.status_code == 200, tagged.text
    assert set(tagged.json()) == {"application", "version", "label", "revision"}
    assert tagged.json()["version"] == 1 and tagged.json()["label"] == "1.0.0"
    bumped = await web.post(f"{API}/applications/web/versions/increment", json={"part": "minor"})
    assert bumped.json()["label"] == "1.1.0" and bumped.json()["version"] == 3
    by_label = (await web.get(f"{API}/applications/web/versions/v1.0.0")).json()
    assert by_label["version"] == 1 and by_label["tags"] == ["1.0.0"]
    assert (await web.get(f"{API}/applications/web/versions/latest")).json()["label"] == "1.1.0"

    compared = (
        await web.post(f"{API}/applications/web/versions/compare", json={"from": "1.0.0", "to": 3})
    ).json()
    schema = (await grpc_client.get_application("web")).schema
    assert compared == shapes.version_diff_view(
        await grpc_client.diff_versions("web", 1, 3), schema
    )
    assert (compared["added"], compared["removed"], compared["changed"]) == (1, 0, 2)
    assert compared["from_label"] == "1.0.0" and compared["to_label"] == "1.1.0"
    assert compared["summary"].startswith("web 1.0.0 -> 1.1.0")
    to_current = await web.post(f"{API}/applications/web/versions/compare", json={"from": 2})
    assert to_current.json()["to_version"] == 3

    rolled = await web.post(
        f"{API}/applications/web/versions/rollback",
        json={"to": "1.0.0", "expected_version": 3, "reason": "undo", "metadata": {"i": "INC-1"}},
    )
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["versions"] == {"web": 4}
    four = (await web.get(f"{API}/applications/web/versions/4")).json()
    assert four["settings"] == {} and four["metadata"]["i"] == "INC-1"
    assert four["metadata"]["rollback_to"] == 1

    refused(
        await web.post(
            f"{API}/applications/web/versions/rollback", json={"to": 2, "expected_version": 3}
        ),
        409,
        "ABORTED",
    )
    refused(
        await web.post(f"{API}/applications/web/versions/2/tags", json={"label": "1.0.0"}),
        409,
        "ALREADY_EXISTS",
    )
    refused(
        await web.post(f"{API}/applications/web/versions/1/tags", json={"label": "one"}),
        400,
        "INVALID_ARGUMENT",
    )
    refused(
        await web.post(f"{API}/applications/web/versions/increment", json={"part": "huge"}),
        400,
        "INVALID_ARGUMENT",
    )
    refused(
        await web.post(f"{API}/applications/web/versions/compare", json={"from": 9}),
        404,
        "NOT_FOUND",
    )
    missing = refused(
        await web.post(f"{API}/applications/web/versions/compare", json={}), 400, "INVALID_ARGUMENT"
    )
    assert missing["details"]["fields"][0]["field"] == "from"
    typed = refused(
        await web.post(f"{API}/applications/web/versions/compare", json={"from": True}),
        400,
        "INVALID_ARGUMENT",
    )
    assert typed["details"]["fields"]


async def test_key_history(web: httpx.AsyncClient, grpc_client: Client) -> None:
    await three_versions(web)
    page = (await web.get(f"{API}/applications/web/keys/port/history")).json()
    assert set(page) == {"application", "key", "entries", "more"}
    schema = (await grpc_client.get_application("web")).schema
    assert page["entries"] == shapes.key_history_view(
        await grpc_client.key_history("web", "port"), schema
    )
    assert [(e["version"], e["value"]) for e in page["entries"]] == [(3, 9090), (2, 8080), (1, 80)]
    older = (
        await web.get(f"{API}/applications/web/keys/port/history", params={"before": 3, "limit": 1})
    ).json()
    assert [e["version"] for e in older["entries"]] == [2] and older["more"] is True
    refused(await web.get(f"{API}/applications/nope/keys/port/history"), 404, "NOT_FOUND")


async def test_generations(web: httpx.AsyncClient, grpc_client: Client) -> None:
    await three_versions(web)
    page = (await web.get(f"{API}/generations")).json()
    assert set(page) == {"generations", "more"}
    ids = [g["id"] for g in page["generations"]]
    assert len(ids) == 2 and ids == sorted(ids, reverse=True)
    schemas = {a.name: a.schema for a in await grpc_client.list_applications()}
    listed = await grpc_client.list_generations()
    assert page["generations"] == [shapes.generation_view(g, schemas) for g in listed.generations]
    only = (await web.get(f"{API}/generations", params={"application": "web", "limit": 1})).json()
    assert [g["id"] for g in only["generations"]] == ids[:1] and only["more"] is True
    shown = (await web.get(f"{API}/generations/{ids[0]}")).json()
    assert shown == page["generations"][0]
    assert shown["changes"]["web"]["port"] == {"from": 8080, "to": 9090}

    # The first generation's port changed since (8080 -> 9090): a conflict, unless forced.
    conflict = refused(
        await web.post(f"{API}/generations/{ids[1]}/revert"), 412, "FAILED_PRECONDITION"
    )
    assert [c["key"] for c in conflict["details"]["conflicts"]] == ["port"]
    reverted = await web.post(f"{API}/generations/{ids[0]}/revert", json={"reason": "back"})
    assert reverted.status_code == 200, reverted.text
    assert (await web.get(f"{API}/applications/web")).json()["settings"] == {
        "port": 8080,
        "ratio": 2.0,
    }
    forced = await web.post(f"{API}/generations/{ids[1]}/revert", json={"force": True})
    assert forced.status_code == 200, forced.text
    assert (await web.get(f"{API}/applications/web")).json()["settings"] == {}
    refused(await web.get(f"{API}/generations/999"), 404, "NOT_FOUND")
    bad = refused(await web.get(f"{API}/generations/x"), 400, "INVALID_ARGUMENT")
    assert bad["details"]["fields"][0]["in"] == "path"
