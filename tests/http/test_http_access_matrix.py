"""Every HTTP route as every kind of caller, against the same policy as the gRPC
access matrix (`support.policy`): a route performs the RPC it names (its
``x-genconf-rpc`` in the served OpenAPI document), so it must allow exactly the
roles that RPC allows, and refuse the rest having written nothing.

The routes come from the server itself: a route without an RPC, with an RPC that
has no rule, or without a request here fails `test_http_access_matrix`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from support.access_seed import REFUSED, ROLES, Seeded, role_of, seed_matrix
from support.policy import policy_roles
from support.rpcs import RPCS, Rpc
from support.servers import admin_session, digest
from web_support import API, bearer, error_of

from genconf.security import auth

VALID_HASH = "0" * 64
CALLERS = (*ROLES, *REFUSED)
FORGED_AUTHOR = "mallory"  # what every request claims as its author (X-Genconf-User)
UNIT_OF = {"admin": "web/3", "controller": "web/4"}
REMOVED_UNIT_OF = {"admin": "6", "controller": "7"}
LABEL_OF = {"admin": "1.0.0", "controller": "1.0.1"}
# Routes that perform no RPC: health (public, as gRPC health is) and whoami (any
# valid token: it only says whose it is).
NO_RPC = {"GET /api/v1/health", "GET /api/v1/whoami"}
RPC_BY_NAME = {rpc.short: rpc for rpc in RPCS}
EMPTY_IMPORT = (
    '{"record":"genconf-export","format":1,"exported_at":"2024-01-01T00:00:00.000Z",'
    '"applications":null}\n'
    '{"record":"end","applications":0,"units":0,"versions":0,"branches":0,"generations":0}\n'
)


@dataclass(frozen=True)
class Call:
    """One request: JSON ``body``, or raw ``content``; ``stream`` reads its first event."""

    method: str
    path: str
    body: Any = None
    content: bytes | None = None
    params: dict[str, Any] | None = None
    stream: bool = False


Request = Callable[[str, Seeded], Call]

# Every route with an RPC, in the order the matrix calls them (each writer's
# requests build on its earlier ones: its branch is added, tracked, then committed).
MATRIX: dict[str, Request] = {
    "GET /api/v1/snapshot": lambda c, s: Call("GET", "/snapshot"),
    "GET /api/v1/applications": lambda c, s: Call("GET", "/applications"),
    "POST /api/v1/applications": lambda c, s: Call("POST", "/applications", {"name": f"new-{c}"}),
    "GET /api/v1/applications/{app}": lambda c, s: Call("GET", "/applications/web"),
    "PATCH /api/v1/applications/{app}": lambda c, s: Call(
        "PATCH", "/applications/db", {"charm": f"db-{c}"}
    ),
    "DELETE /api/v1/applications/{app}": lambda c, s: Call("DELETE", f"/applications/rm-{c}"),
    "PUT /api/v1/applications/{app}/config": lambda c, s: Call(
        "PUT", "/applications/web/config", {"set": {"port": 8081}, "reason": c}
    ),
    "POST /api/v1/applications/{app}/config/patch": lambda c, s: Call(
        "POST", "/applications/web/config/patch", {"key": "motd", "diff": f"@@ -0,0 +1 @@\n+{c}\n"}
    ),
    "GET /api/v1/applications/{app}/units": lambda c, s: Call("GET", "/applications/web/units"),
    "POST /api/v1/applications/{app}/units": lambda c, s: Call(
        "POST", "/applications/db/units", {"count": 1}
    ),
    "GET /api/v1/units": lambda c, s: Call("GET", "/units"),
    "DELETE /api/v1/units/{app}/{n}": lambda c, s: Call(
        "DELETE", f"/units/web/{REMOVED_UNIT_OF.get(c, '5')}"
    ),
    "PATCH /api/v1/units/{app}/{n}/labels": lambda c, s: Call(
        "PATCH", "/units/web/1/labels", {"set": {"by": c}}
    ),
    "GET /api/v1/units/{app}/{n}/config": lambda c, s: Call("GET", "/units/web/0/config"),
    "GET /api/v1/units/{app}/{n}/watch": lambda c, s: Call(
        "GET", "/units/web/0/watch", stream=True
    ),
    "POST /api/v1/units/{app}/{n}/applied": lambda c, s: Call(
        "POST", "/units/web/0/applied", {"hash": VALID_HASH, "ok": True, "message": c}
    ),
    "GET /api/v1/branches": lambda c, s: Call("GET", "/branches"),
    "POST /api/v1/branches": lambda c, s: Call("POST", "/branches", {"name": f"nb-{c}"}),
    "GET /api/v1/branches/{b}": lambda c, s: Call("GET", "/branches/feature"),
    "GET /api/v1/branches/{b}/diff": lambda c, s: Call("GET", "/branches/feature/diff"),
    "GET /api/v1/status": lambda c, s: Call("GET", "/status"),
    "GET /api/v1/status/{app}": lambda c, s: Call("GET", "/status/web"),
    "POST /api/v1/branches/{b}/track": lambda c, s: Call(
        "POST", f"/branches/tb-{c}/track", {"units": [UNIT_OF.get(c, "web/5")]}
    ),
    "POST /api/v1/branches/{b}/untrack": lambda c, s: Call(
        "POST", f"/branches/tb-{c}/untrack", {"units": [UNIT_OF.get(c, "web/5")]}
    ),
    "PUT /api/v1/branches/{b}/config/{app}": lambda c, s: Call(
        "PUT", f"/branches/tb-{c}/config/web", {"set": {"port": 9000}}
    ),
    "POST /api/v1/branches/{b}/commit": lambda c, s: Call(
        "POST", f"/branches/tb-{c}/commit", {"force": True}
    ),
    "POST /api/v1/branches/{b}/abort": lambda c, s: Call("POST", f"/branches/nb-{c}/abort", {}),
    "POST /api/v1/branches/{b}/rebase": lambda c, s: Call("POST", f"/branches/hb-{c}/rebase", {}),
    "DELETE /api/v1/branches/{b}/changes/{app}/{key}": lambda c, s: Call(
        "DELETE", f"/branches/hb-{c}/changes/web/motd"
    ),
    "GET /api/v1/applications/{app}/versions": lambda c, s: Call(
        "GET", "/applications/web/versions"
    ),
    "GET /api/v1/applications/{app}/versions/latest": lambda c, s: Call(
        "GET", "/applications/web/versions/latest"
    ),
    "GET /api/v1/applications/{app}/versions/{ref}": lambda c, s: Call(
        "GET", "/applications/web/versions/1"
    ),
    "POST /api/v1/applications/{app}/versions/compare": lambda c, s: Call(
        "POST", "/applications/web/versions/compare", {"from": 1, "to": 2}
    ),
    "POST /api/v1/applications/{app}/versions/rollback": lambda c, s: Call(
        "POST", "/applications/web/versions/rollback", {"to": 2}
    ),
    "POST /api/v1/applications/{app}/versions/{ref}/tags": lambda c, s: Call(
        "POST", "/applications/web/versions/1/tags", {"label": LABEL_OF.get(c, "9.9.9")}
    ),
    "POST /api/v1/applications/{app}/versions/increment": lambda c, s: Call(
        "POST", "/applications/web/versions/increment", {"part": "patch"}
    ),
    "GET /api/v1/applications/{app}/keys/{key}/history": lambda c, s: Call(
        "GET", "/applications/web/keys/port/history"
    ),
    "GET /api/v1/generations": lambda c, s: Call("GET", "/generations"),
    "GET /api/v1/generations/{id}": lambda c, s: Call("GET", "/generations/1"),
    "POST /api/v1/generations/{id}/revert": lambda c, s: Call(
        "POST", f"/generations/{s.generation_of.get(c, 1)}/revert", {}
    ),
    "GET /api/v1/watch": lambda c, s: Call(
        "GET", "/watch", params={"since": s.start_revision}, stream=True
    ),
    "GET /api/v1/tokens": lambda c, s: Call("GET", "/tokens"),
    "POST /api/v1/tokens": lambda c, s: Call(
        "POST", "/tokens", {"role": "observer", "description": c, "name": f"minted by {c}"}
    ),
    "DELETE /api/v1/tokens/{id}": lambda c, s: Call("DELETE", f"/tokens/{s.spare_token_id}"),
    "GET /api/v1/export": lambda c, s: Call("GET", "/export", stream=True),
    # Rollouts (the server drives none: --rollout-tick 0)
    "POST /api/v1/rollouts": lambda c, s: Call(
        "POST", "/rollouts", {"branch": f"ro-{c}", "application": "db", "steps": ["1"]}
    ),
    "GET /api/v1/rollouts": lambda c, s: Call("GET", "/rollouts"),
    "GET /api/v1/rollouts/{b}": lambda c, s: Call("GET", "/rollouts/ro-admin"),
    "POST /api/v1/rollouts/{b}/pause": lambda c, s: Call(
        "POST", f"/rollouts/ro-{c}/pause", {"reason": c}
    ),
    "POST /api/v1/rollouts/{b}/resume": lambda c, s: Call("POST", f"/rollouts/ro-{c}/resume", {}),
    "POST /api/v1/rollouts/{b}/abort": lambda c, s: Call("POST", f"/rollouts/ro-{c}/abort"),
    "POST /api/v1/import": lambda c, s: Call("POST", "/import", content=EMPTY_IMPORT.encode()),
}


def expected_status(rpc: Rpc, caller: str) -> int:
    if caller in REFUSED:
        return 401
    role = role_of(caller)
    assert role is not None
    if role not in policy_roles(rpc):  # the policy, not the table under test
        return 403
    if caller == "other-agent":  # bound to web/1; every agent request names web/0
        return 403
    return 200


async def served_routes(web: httpx.AsyncClient) -> dict[str, str | None]:
    """Each route of the served OpenAPI document -> the RPC it names (None: none)."""
    document = (await web.get(f"{API}/openapi.json")).json()
    return {
        f"{verb.upper()} {path}": operation.get("x-genconf-rpc")
        for path, operations in document["paths"].items()
        for verb, operation in operations.items()
    }


async def perform(web: httpx.AsyncClient, call: Call, token: str | None) -> tuple[int, str]:
    """The status of ``call`` (a stream: once its first event, or its refusal, is in)."""
    headers = {**bearer(token), "X-Genconf-User": FORGED_AUTHOR}
    url = API + call.path
    if call.stream:
        async with web.stream(call.method, url, params=call.params, headers=headers) as reply:
            if reply.status_code == 200:
                async for line in reply.aiter_lines():
                    if line:
                        break
                return 200, ""
            await reply.aread()
            return reply.status_code, error_of(reply)["message"]
    if call.content is not None:
        reply = await web.request(call.method, url, content=call.content, headers=headers)
    else:
        reply = await web.request(
            call.method, url, json=call.body, params=call.params, headers=headers
        )
    if reply.status_code == 200:
        return 200, ""
    if reply.status_code == 401:
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    return reply.status_code, error_of(reply)["message"]


async def test_http_access_matrix(
    mongo_uri: str,
    db_name: str,
    mongo_client: MongoClient[dict[str, Any]],
    subtests: pytest.Subtests,
) -> None:
    # No rollout driver: a refused call is judged by what it wrote, and a driver's
    # steps would write meanwhile.
    session = admin_session(mongo_uri, db_name, http_listen="127.0.0.1:0", rollout_tick=0)
    async with session as (srv, admin):
        seeded = await seed_matrix(admin, mongo_client, db_name)
        async with httpx.AsyncClient(base_url=f"http://{srv.http_address}", timeout=10) as web:
            routes = await served_routes(web)
            for route, rpc_name in routes.items():
                if route in NO_RPC:
                    assert rpc_name is None, route
                    continue
                assert rpc_name in RPC_BY_NAME, f"{route} names no RPC of genconf.v1: {rpc_name}"
                assert f"/genconf.v1.{rpc_name}" in auth.RULES, f"{route}: {rpc_name} has no rule"
            assert set(MATRIX) == set(routes) - NO_RPC, "a route without a matrix request"
            for route, request in MATRIX.items():
                rpc = RPC_BY_NAME[str(routes[route])]
                for caller in CALLERS:
                    expected = expected_status(rpc, caller)
                    with subtests.test(f"{route} as {caller}"):
                        call = request(caller, seeded)
                        before = digest(mongo_client, db_name) if expected != 200 else ""
                        status, message = await perform(web, call, seeded.tokens[caller])
                        assert status == expected, (
                            f"{route} ({rpc.short}) as {caller}: expected {expected}, "
                            f"got {status}: {message}"
                        )
                        if expected != 200:
                            assert message, "a refusal must say why"
                            assert digest(mongo_client, db_name) == before, (
                                f"{route} as {caller} was refused but wrote something"
                            )
                        if caller == "other-agent" and rpc.service == "AgentService":
                            assert "bound to unit web/1" in message
                        if caller == "stale-agent":
                            assert "earlier incarnation of web/0" in message
            with subtests.test("whoami: any valid token; health: none"):
                for caller in CALLERS:
                    reply = await web.get(f"{API}/whoami", headers=bearer(seeded.tokens[caller]))
                    assert reply.status_code == (401 if caller in REFUSED else 200), caller
                assert (await web.get(f"{API}/health")).status_code == 200
            with subtests.test("writes record the caller's token; the claimed name aside"):
                db = mongo_client[db_name]
                labels = set()
                for writer in ("admin", "controller"):
                    match = auth.TOKEN_RE.match(seeded.tokens[writer] or "")
                    assert match is not None
                    labels.add(f"{writer} (token {match[1]})")
                claimed = [
                    doc
                    for name in ("versions", "generations", "branches", "rollouts")
                    for doc in db[name].find({"on_behalf_of": FORGED_AUTHOR})
                ]
                assert {d["created_by"] for d in claimed} == labels
                assert all(d["authenticated"] is True for d in claimed)
                for name in ("versions", "generations", "branches", "rollouts"):
                    assert db[name].find_one({"created_by": FORGED_AUTHOR}) is None, name
                minted = db["tokens"].find({"name": {"$regex": "^minted by "}})
                assert [d["name"] for d in minted] == ["minted by admin"]
            with subtests.test("the export holds every secret, and only an admin gets it"):
                reply = await web.get(f"{API}/export", headers=bearer(seeded.tokens["admin"]))
                records = [json.loads(line) for line in reply.text.splitlines()]
                web_app = next(r for r in records if r.get("name") == "web")
                assert web_app["settings"]["password"] == "s3cret"
