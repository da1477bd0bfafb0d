"""Branches over HTTP: stage, track, diff (conflicts shown before a commit),
commit (force, require_applied), abort; each route's errors."""

from __future__ import annotations

import httpx
from web_support import API, refused

from genconf import shapes
from genconf.client import Client


async def setup_web(web: httpx.AsyncClient) -> None:
    reply = await web.post(
        f"{API}/applications",
        json={"name": "web", "schema": {"port": {"type": "int", "default": 80}}, "units": 3},
    )
    assert reply.status_code == 200, reply.text


async def test_a_branch_from_start_to_commit(web: httpx.AsyncClient, grpc_client: Client) -> None:
    await setup_web(web)
    added = await web.post(
        f"{API}/branches", json={"name": "canary"}, headers={"X-Genconf-User": "ann"}
    )
    assert added.status_code == 200, added.text
    tracked = await web.post(f"{API}/branches/canary/track", json={"units": ["web/0", "web/1"]})
    assert tracked.json()["units"] == ["web/0", "web/1"]
    untracked = await web.post(f"{API}/branches/canary/untrack", json={"units": ["web/1"]})
    assert untracked.status_code == 200, untracked.text
    staged = await web.put(f"{API}/branches/canary/config/web", json={"set": {"port": 9090}})
    assert staged.status_code == 200, staged.text

    branch = (await web.get(f"{API}/branches/canary")).json()
    grpc_branch = await grpc_client.get_branch("canary")
    assert {k: v for k, v in branch.items() if k != "applied"} == shapes.branch_view(grpc_branch)
    assert branch["created_by"] == "ann" and branch["authenticated"] is False
    assert branch["units"] == ["web/0"]
    assert branch["changes"] == {"web": {"port": {"op": "set", "value": 9090, "from": None}}}
    [unit] = branch["applied"]
    assert unit["unit"] == "web/0" and unit["applied"] is False and unit["report"] is None
    assert unit["hash"] == (await web.get(f"{API}/units/web/0/config")).json()["hash"]
    assert (await web.get(f"{API}/branches")).json() == [shapes.branch_view(grpc_branch)]

    diff = (await web.get(f"{API}/branches/canary/diff")).json()
    assert diff == shapes.diff_view(await grpc_client.diff_branch("canary"))
    [app] = diff["applications"]
    assert app["entries"] == [
        {"path": "port", "kind": "changed", "old": 80, "new": 9090, "text_diff": ""}
    ]
    assert app["conflicts"] == []

    # Master moves under the branch: the diff shows the conflict, the commit refuses it.
    await web.put(f"{API}/applications/web/config", json={"set": {"port": 81}})
    conflicts = (await web.get(f"{API}/branches/canary/diff")).json()["applications"][0]
    assert conflicts["conflicts"] == [
        {"application": "web", "key": "port", "from": "absent", "current": "81", "proposed": "9090"}
    ]
    refusal = refused(
        await web.post(f"{API}/branches/canary/commit", json={}), 412, "FAILED_PRECONDITION"
    )
    assert refusal["details"]["code"] == "Conflict"
    assert refusal["details"]["conflicts"] == conflicts["conflicts"]

    # Every tracking unit must have applied the branch's config first, when asked.
    waiting = refused(
        await web.post(
            f"{API}/branches/canary/commit", json={"force": True, "require_applied": True}
        ),
        412,
        "FAILED_PRECONDITION",
    )
    assert waiting["details"]["units"] == ["web/0"]
    committed = await web.post(
        f"{API}/branches/canary/commit",
        json={"force": True, "reason": "ship", "metadata": {"k": 1}},
    )
    assert committed.status_code == 200, committed.text
    assert committed.json()["versions"] == {"web": 3}
    assert (await web.get(f"{API}/branches")).json() == []
    assert (await web.get(f"{API}/units/web/2/config")).json()["config"] == {"port": 9090}
    refused(await web.get(f"{API}/branches/canary"), 404, "NOT_FOUND")


async def test_abort_and_branch_errors(web: httpx.AsyncClient) -> None:
    await setup_web(web)
    await web.post(f"{API}/branches", json={"name": "b1"})
    refused(await web.post(f"{API}/branches", json={"name": "b1"}), 409, "ALREADY_EXISTS")
    refused(await web.post(f"{API}/branches", json={"name": "B 1"}), 400, "INVALID_ARGUMENT")
    refused(await web.post(f"{API}/branches", json={}), 400, "INVALID_ARGUMENT")
    await web.post(f"{API}/branches/b1/track", json={"applications": ["web"]})
    other = await web.post(f"{API}/branches", json={"name": "b2"})
    assert other.status_code == 200
    busy = refused(
        await web.post(f"{API}/branches/b2/track", json={"units": ["web/0"]}),
        412,
        "FAILED_PRECONDITION",
    )
    assert "b1" in busy["message"]
    refused(
        await web.post(f"{API}/branches/nope/track", json={"units": ["web/0"]}), 404, "NOT_FOUND"
    )
    refused(
        await web.put(f"{API}/branches/b1/config/web", json={"set": {"port": "x"}}),
        400,
        "INVALID_ARGUMENT",
    )
    refused(await web.get(f"{API}/branches/nope/diff"), 404, "NOT_FOUND")
    tracked = refused(await web.post(f"{API}/branches/b1/abort"), 412, "FAILED_PRECONDITION")
    assert "force" in tracked["message"]
    empty = refused(await web.post(f"{API}/branches/b2/commit"), 412, "FAILED_PRECONDITION")
    assert "nothing" in empty["message"]
    aborted = await web.post(f"{API}/branches/b1/abort", json={"force": True})
    assert aborted.status_code == 200, aborted.text
    assert (await web.post(f"{API}/branches/b2/abort")).status_code == 200  # no body: defaults
    assert (await web.get(f"{API}/branches")).json() == []
    assert (await web.get(f"{API}/units/web/0/config")).json()["branch"] is None
    refused(await web.post(f"{API}/branches/b1/abort"), 404, "NOT_FOUND")


async def test_track_a_count_of_an_application(web: httpx.AsyncClient) -> None:
    await setup_web(web)
    await web.post(f"{API}/branches", json={"name": "two"})
    tracked = await web.post(f"{API}/branches/two/track", json={"count": 2, "application": "web"})
    assert tracked.status_code == 200, tracked.text
    assert len(tracked.json()["units"]) == 2
    assert len((await web.get(f"{API}/branches/two")).json()["units"]) == 2
