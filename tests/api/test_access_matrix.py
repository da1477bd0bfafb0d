"""Every RPC as every kind of caller, end to end: tokens, roles, refusals that write
nothing, reflection and health, and methods served without a rule.

Real mongod, real servers on loopback. The matrix is built from the service
descriptors of ``genconf.v1`` (`support.rpcs`): a new RPC without a request in
`MATRIX_REQUESTS` fails `test_access_matrix`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, struct_pb2
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pymongo import MongoClient
from support.access_seed import REFUSED, ROLES, Seeded, role_of, seed_matrix
from support.policy import policy_roles
from support.rpcs import (
    CALL_TIMEOUT,
    DENIED,
    INVALID,
    OK,
    RPCS,
    UNAUTHENTICATED,
    Rpc,
    bearer,
    invoke,
    invoke_bidi,
    invoke_raw,
)
from support.servers import BOOTSTRAP, SERVING, admin_session, auth_server, digest, running_server

from genconf.client import Client
from genconf.security import auth
from genconf.v1 import (
    admin_pb2,
    agent_pb2,
    controller_pb2,
    history_pb2,
    rollout_pb2,
    tokens_pb2,
    transfer_pb2,
)

VALID_HASH = "0" * 64
CALLERS = (*ROLES, *REFUSED)
FORGED_AUTHOR = "mallory"  # what every write request claims as its created_by
UNIT_OF = {"admin": "web/3", "controller": "web/4"}  # TrackBranch / UntrackBranch
REMOVED_UNIT_OF = {"admin": "web/6", "controller": "web/7"}
LABEL_OF = {"admin": "1.0.0", "controller": "1.0.1"}


Request = Callable[[str, Seeded], Message | list[Message]]

# An import of nothing (a header and an end record): allowed, it writes nothing.
EMPTY_IMPORT = [
    transfer_pb2.ImportRequest(record=transfer_pb2.ExportRecord(json=text))
    for text in (
        '{"record":"genconf-export","format":1,"exported_at":"2024-01-01T00:00:00.000Z",'
        '"applications":null}',
        '{"record":"end","applications":0,"units":0,"versions":0,"branches":0,"generations":0}',
    )
]

MATRIX_REQUESTS: dict[str, Request] = {
    # AgentService
    "GetConfig": lambda c, s: agent_pb2.GetConfigRequest(unit="web/0"),
    "WatchConfig": lambda c, s: agent_pb2.WatchConfigRequest(unit="web/0"),
    "ReportApplied": lambda c, s: agent_pb2.ReportAppliedRequest(
        unit="web/0", hash=VALID_HASH, ok=True, message=c
    ),
    # ControllerService
    "CreateApplication": lambda c, s: controller_pb2.CreateApplicationRequest(
        name=f"new-{c}", created_by=FORGED_AUTHOR
    ),
    "UpdateApplication": lambda c, s: controller_pb2.UpdateApplicationRequest(
        name="db", charm=f"db-{c}"
    ),
    "RemoveApplication": lambda c, s: controller_pb2.RemoveApplicationRequest(
        name=f"rm-{c}", force=True
    ),
    "GetApplication": lambda c, s: controller_pb2.GetApplicationRequest(name="web"),
    "ListApplications": lambda c, s: controller_pb2.ListApplicationsRequest(),
    "AddUnits": lambda c, s: controller_pb2.AddUnitsRequest(application="db", count=1),
    "RemoveUnit": lambda c, s: controller_pb2.RemoveUnitRequest(
        name=REMOVED_UNIT_OF.get(c, "web/5")
    ),
    "ListUnits": lambda c, s: controller_pb2.ListUnitsRequest(application="web"),
    "LabelUnit": lambda c, s: controller_pb2.LabelUnitRequest(unit="web/1", set={"by": c}),
    "SetConfig": lambda c, s: controller_pb2.SetConfigRequest(
        application="web", set=struct({"port": 8081}), reason=c, created_by=FORGED_AUTHOR
    ),
    # Each caller adds one line at the top of web's motd: every patch applies.
    "PatchConfig": lambda c, s: controller_pb2.PatchConfigRequest(
        application="web", key="motd", diff=f"@@ -0,0 +1 @@\n+{c}\n", created_by=FORGED_AUTHOR
    ),
    "AddBranch": lambda c, s: controller_pb2.AddBranchRequest(
        name=f"nb-{c}", created_by=FORGED_AUTHOR
    ),
    "TrackBranch": lambda c, s: controller_pb2.TrackBranchRequest(
        branch=f"tb-{c}", units=[UNIT_OF.get(c, "web/5")]
    ),
    "UntrackBranch": lambda c, s: controller_pb2.UntrackBranchRequest(
        branch=f"tb-{c}", units=[UNIT_OF.get(c, "web/5")]
    ),
    "SetBranchConfig": lambda c, s: controller_pb2.SetBranchConfigRequest(
        branch=f"tb-{c}", application="web", set=struct({"port": 9000})
    ),
    "DiffBranch": lambda c, s: controller_pb2.DiffBranchRequest(branch="feature"),
    "CommitBranch": lambda c, s: controller_pb2.CommitBranchRequest(
        branch=f"tb-{c}", force=True, created_by=FORGED_AUTHOR
    ),
    "AbortBranch": lambda c, s: controller_pb2.AbortBranchRequest(branch=f"nb-{c}"),
    "RebaseBranch": lambda c, s: controller_pb2.RebaseBranchRequest(name=f"hb-{c}"),
    "DropBranchKey": lambda c, s: controller_pb2.DropBranchKeyRequest(
        name=f"hb-{c}", application="web", key="motd"
    ),
    "ListBranches": lambda c, s: controller_pb2.ListBranchesRequest(),
    "GetBranch": lambda c, s: controller_pb2.GetBranchRequest(name="feature"),
    "GetStatus": lambda c, s: controller_pb2.GetStatusRequest(application="web"),
    # HistoryService
    "ListVersions": lambda c, s: history_pb2.ListVersionsRequest(application="web"),
    "GetVersion": lambda c, s: history_pb2.GetVersionRequest(application="web", version=1),
    "LatestVersion": lambda c, s: history_pb2.LatestVersionRequest(application="web"),
    "DiffVersions": lambda c, s: history_pb2.DiffVersionsRequest(
        application="web", from_version=1, to_version=2
    ),
    "Rollback": lambda c, s: history_pb2.RollbackRequest(
        application="web", to_version=2, created_by=FORGED_AUTHOR
    ),
    "TagVersion": lambda c, s: history_pb2.TagVersionRequest(
        application="web", version=1, label=LABEL_OF.get(c, "9.9.9")
    ),
    "BumpVersion": lambda c, s: history_pb2.BumpVersionRequest(application="web", part="patch"),
    "KeyHistory": lambda c, s: history_pb2.KeyHistoryRequest(application="web", key="port"),
    "ListGenerations": lambda c, s: history_pb2.ListGenerationsRequest(),
    "GetGeneration": lambda c, s: history_pb2.GetGenerationRequest(id=1),
    "RevertGeneration": lambda c, s: history_pb2.RevertGenerationRequest(
        id=s.generation_of.get(c, 1), created_by=FORGED_AUTHOR
    ),
    # AdminService
    "Snapshot": lambda c, s: admin_pb2.SnapshotRequest(),
    "WatchDeltas": lambda c, s: admin_pb2.WatchDeltasRequest(since_revision=s.start_revision),
    # RolloutService (the server drives none: --rollout-tick 0)
    "StartRollout": lambda c, s: rollout_pb2.StartRolloutRequest(
        branch=f"ro-{c}",
        application="db",
        steps=[rollout_pb2.RolloutSize(units=1)],
        created_by=FORGED_AUTHOR,
    ),
    "GetRollout": lambda c, s: rollout_pb2.GetRolloutRequest(branch="ro-admin"),
    "ListRollouts": lambda c, s: rollout_pb2.ListRolloutsRequest(),
    "PauseRollout": lambda c, s: rollout_pb2.PauseRolloutRequest(
        branch=f"ro-{c}", reason=c, created_by=FORGED_AUTHOR
    ),
    "ResumeRollout": lambda c, s: rollout_pb2.ResumeRolloutRequest(branch=f"ro-{c}"),
    "AbortRollout": lambda c, s: rollout_pb2.AbortRolloutRequest(branch=f"ro-{c}"),
    # TokenService
    "CreateToken": lambda c, s: tokens_pb2.CreateTokenRequest(
        role="observer", description=c, name=f"minted by {c}"
    ),
    "ListTokens": lambda c, s: tokens_pb2.ListTokensRequest(),
    "RevokeToken": lambda c, s: tokens_pb2.RevokeTokenRequest(id=s.spare_token_id),
    # TransferService (admin only: an export holds every secret)
    "Export": lambda c, s: transfer_pb2.ExportRequest(),
    "Import": lambda c, s: EMPTY_IMPORT,
}


def struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(values)
    return out


def expected_status(rpc: Rpc, caller: str) -> grpc.StatusCode:
    if caller in REFUSED:
        return UNAUTHENTICATED
    role = role_of(caller)
    assert role is not None
    if role not in policy_roles(rpc):  # the policy, not the table under test
        return DENIED
    if caller == "other-agent":  # bound to web/1; every agent request names web/0
        return DENIED
    return OK


async def test_access_matrix(
    mongo_uri: str,
    db_name: str,
    mongo_client: MongoClient[dict[str, Any]],
    subtests: pytest.Subtests,
) -> None:
    assert set(MATRIX_REQUESTS) == {rpc.name for rpc in RPCS}, "an RPC has no matrix request"
    # No rollout driver: a refused call is judged by what it wrote, and a driver's
    # steps would write meanwhile.
    async with admin_session(mongo_uri, db_name, rollout_tick=0) as (srv, admin):
        seeded = await seed_matrix(admin, mongo_client, db_name)
        async with grpc.aio.insecure_channel(srv.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            with subtests.test("health without a token"):
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)
                assert reply.status == SERVING
            for rpc in RPCS:
                for caller in CALLERS:
                    expected = expected_status(rpc, caller)
                    with subtests.test(f"{rpc.short} as {caller}"):
                        request = MATRIX_REQUESTS[rpc.name](caller, seeded)
                        before = digest(mongo_client, db_name) if expected != OK else ""
                        code, details = await invoke(channel, rpc, request, seeded.tokens[caller])
                        assert code == expected, (
                            f"{rpc.short} as {caller}: expected {expected.name}, "
                            f"got {code.name}: {details}"
                        )
                        if expected != OK:
                            assert details, "a refusal must say why"
                            assert digest(mongo_client, db_name) == before, (
                                f"{rpc.short} as {caller} was refused but wrote something"
                            )
                        if caller == "other-agent" and rpc.service == "AgentService":
                            assert "bound to unit web/1" in details
                        if caller == "stale-agent":
                            assert "earlier incarnation of web/0" in details
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
                # A pause's transition names the token too, the claimed name aside.
                for writer in ("admin", "controller"):
                    doc = db["rollouts"].find_one({"_id": f"ro-{writer}"})
                    assert doc is not None and doc["state"] == "aborted"
                    paused = [t for t in doc["transitions"] if t["to"] == "paused"]
                    assert [t["by"] for t in paused] == [
                        next(label for label in labels if label.startswith(writer))
                        + f" (on behalf of {FORGED_AUTHOR})"
                    ]
                for name in ("versions", "generations", "branches", "rollouts"):
                    assert db[name].find_one({"created_by": FORGED_AUTHOR}) is None, name
                minted = db["tokens"].find({"name": {"$regex": "^minted by "}})
                assert [d["name"] for d in minted] == ["minted by admin"]
            # An undecodable request (field 1 claims 5 bytes, 2 follow): the token is
            # checked first, then the role, then the request.
            garbage = b"\x0a\x05ab"
            for rpc in RPCS:
                for caller in ("none", "observer", "admin"):
                    with subtests.test(f"{rpc.short} undecodable as {caller}"):
                        expected = expected_status(rpc, caller)
                        if expected == OK:
                            expected = INVALID
                        raw = channel.unary_unary(rpc.path)
                        if rpc.streaming:
                            raw = channel.unary_stream(rpc.path)  # type: ignore[assignment]
                        if rpc.client_streaming:
                            code, details = await invoke_bidi(
                                channel.stream_stream(rpc.path), [garbage], seeded.tokens[caller]
                            )
                        else:
                            code, details = await invoke_raw(raw, garbage, seeded.tokens[caller])
                        assert code == expected, f"{code.name}: {details}"


async def test_reflection_needs_a_token_and_health_does_not(mongo_uri: str, db_name: str) -> None:
    async with (
        auth_server(mongo_uri, db_name) as srv,
        Client(srv.address, token=BOOTSTRAP) as admin,
        grpc.aio.insecure_channel(srv.address) as channel,
    ):
        observer = (await admin.create_token("observer")).token
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        listing = reflection_pb2.ServerReflectionRequest(list_services="")

        async def services(token: str | None) -> list[str]:
            call = stub.ServerReflectionInfo(metadata=bearer(token), timeout=CALL_TIMEOUT)
            try:
                await call.write(listing)
                reply = await call.read()
                assert reply is not grpc.aio.EOF
                return [s.name for s in reply.list_services_response.service]
            finally:
                call.cancel()

        served = await services(observer)
        assert "genconf.v1.TokenService" in served
        # Every method the server serves has a rule (deny by default would refuse it).
        pool = descriptor_pool.Default()
        for name in served:
            for method in pool.FindServiceByName(name).methods:
                assert f"/{name}/{method.name}" in auth.RULES, f"{name}/{method.name}"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await services(None)
        assert caught.value.code() == UNAUTHENTICATED
        health = health_pb2_grpc.HealthStub(channel)
        # Health/List passes the guard without a token like Check and Watch (this
        # grpcio's async HealthServicer does not implement it: UNIMPLEMENTED).
        try:
            await health.List(health_pb2.HealthListRequest(), timeout=CALL_TIMEOUT)
            code = OK
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
        assert code not in (UNAUTHENTICATED, DENIED)
        watch = health.Watch(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)
        try:
            assert (await watch.read()).status == SERVING
        finally:
            watch.cancel()


async def test_a_served_method_without_a_rule_is_refused_even_to_the_admin(
    mongo_uri: str, db_name: str
) -> None:
    """Deny by default at runtime: the bench's baseline service is served (with
    ``extra_handlers``) but has no rule, so with authentication on nobody may call it."""
    from genconf.bench import baseline

    async with (
        auth_server(mongo_uri, db_name, extra_handlers=baseline.add_baseline_handlers) as srv,
        grpc.aio.insecure_channel(srv.address) as channel,
    ):
        calls = {
            baseline.EMPTY: channel.unary_unary(baseline.EMPTY),
            baseline.STATS: channel.unary_unary(baseline.STATS),
            baseline.WATCH: channel.unary_stream(baseline.WATCH),
        }
        for path, call in calls.items():
            assert path not in auth.RULES
            code, details = await invoke_raw(call, b"", BOOTSTRAP)
            assert code == DENIED, f"{path} as admin: {code.name}: {details}"
            assert "has no access rule" in details
            code, _ = await invoke_raw(call, b"", None)  # the token is checked first
            assert code == UNAUTHENTICATED, path
    # Without authentication the same methods answer: they are there to be refused.
    async with (
        running_server(mongo_uri, db_name, extra_handlers=baseline.add_baseline_handlers) as srv,
        grpc.aio.insecure_channel(srv.address) as channel,
    ):
        assert await invoke_raw(channel.unary_unary(baseline.EMPTY), b"", None) == (OK, "")
