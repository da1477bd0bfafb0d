"""Security end to end: tokens, roles, revocation, stream limits, TLS, redaction.

Real mongod, real servers on loopback. The access matrix is built from the
service descriptors of ``genconf.v1``: a new RPC without a rule in `auth.RULES`
or a request in `MATRIX_REQUESTS` fails `test_access_matrix`.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import bson
import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory, struct_pb2
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pymongo import MongoClient
from support.servers import assert_code, digest, running_server, server_config, wait_serving
from support.tls_certs import CertificateAuthority, Issued

import genconf.v1
from genconf.api.guard import Guard
from genconf.api.server import RunningServer, serve
from genconf.client import Client
from genconf.domain import model
from genconf.errors import ClientError, InvalidArgument
from genconf.security import auth
from genconf.security.redact import REDACTED
from genconf.security.tokenbook import TokenBook
from genconf.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    controller_pb2,
    history_pb2,
    tokens_pb2,
    types_pb2,
)
from genconf.wire import to_value

OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
INVALID = grpc.StatusCode.INVALID_ARGUMENT

# The bootstrap admin token the test servers start with (kept in memory only).
BOOTSTRAP = "bootstrap-admin-token-for-tests-0123456789"
CALL_TIMEOUT = 10.0
SERVING = health_pb2.HealthCheckResponse.SERVING


# -- shared helpers ------------------------------------------------------------------


def bearer(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


@asynccontextmanager
async def auth_server(
    mongo_uri: str, db_name: str, **overrides: Any
) -> AsyncIterator[RunningServer]:
    async with running_server(mongo_uri, db_name, admin_token=BOOTSTRAP, **overrides) as srv:
        yield srv


async def eventually(check: Callable[[], Awaitable[bool]], what: str, limit: float = 10.0) -> None:
    """Until ``check()`` holds, for state the server changes with no event a client can
    wait on (a stream's cleanup after the client cancels it)."""
    try:
        with anyio.fail_after(limit):
            while not await check():  # noqa: ASYNC110 (no event to wait on: see above)
                await anyio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"still not so after {limit}s: {what}") from None


# -- RPCs from the descriptors -------------------------------------------------------


@dataclass(frozen=True)
class Rpc:
    path: str  # /genconf.v1.Service/Method
    service: str
    name: str
    request_type: type[Message]
    response_type: type[Message]
    streaming: bool

    @property
    def short(self) -> str:
        return f"{self.service}/{self.name}"


def genconf_services() -> list[ServiceDescriptor]:
    """Every service declared in any module of ``genconf.v1``."""
    services: dict[str, ServiceDescriptor] = {}
    for info in pkgutil.iter_modules(genconf.v1.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"genconf.v1.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            services[service.full_name] = service
    return [services[name] for name in sorted(services)]


def all_rpcs() -> list[Rpc]:
    rpcs = []
    for service in genconf_services():
        for method in service.methods:
            assert not method.client_streaming, f"{method.full_name}: client streams are new here"
            rpcs.append(
                Rpc(
                    f"/{service.full_name}/{method.name}",
                    service.name,
                    method.name,
                    message_factory.GetMessageClass(method.input_type),
                    message_factory.GetMessageClass(method.output_type),
                    method.server_streaming,
                )
            )
    return rpcs


RPCS = all_rpcs()


async def invoke(
    channel: grpc.aio.Channel, rpc: Rpc, request: Message, token: str | None
) -> tuple[grpc.StatusCode, str]:
    """Call ``rpc`` once (a stream: its first message) and return its status."""
    if rpc.streaming:
        stream = channel.unary_stream(
            rpc.path,
            request_serializer=rpc.request_type.SerializeToString,
            response_deserializer=rpc.response_type.FromString,
        )(request, metadata=bearer(token), timeout=CALL_TIMEOUT)
        try:
            first = await stream.read()
            if first is grpc.aio.EOF:
                return await stream.code(), await stream.details() or ""
            return OK, ""
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or ""
        finally:
            stream.cancel()
    unary = channel.unary_unary(
        rpc.path,
        request_serializer=rpc.request_type.SerializeToString,
        response_deserializer=rpc.response_type.FromString,
    )
    try:
        await unary(request, metadata=bearer(token), timeout=CALL_TIMEOUT)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return OK, ""


async def invoke_raw(
    callable_: Any, payload: bytes, token: str | None
) -> tuple[grpc.StatusCode, str]:
    """Send ``payload`` as the request bytes, with no client-side encoding."""
    try:
        call = callable_(payload, metadata=bearer(token), timeout=CALL_TIMEOUT)
        if isinstance(call, grpc.aio.UnaryStreamCall):
            try:
                await call.read()
            finally:
                call.cancel()
        else:
            await call
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return OK, ""


def test_every_rpc_has_an_access_rule_and_no_rule_is_stale() -> None:
    paths = {rpc.path for rpc in RPCS}
    assert {s.name for s in genconf_services()} >= {
        "AgentService",
        "ControllerService",
        "HistoryService",
        "AdminService",
        "TokenService",
    }
    missing = sorted(paths - set(auth.RULES))
    assert not missing, f"RPCs without an access rule (refused to all): {missing}"
    stale = sorted(p for p in auth.RULES if p.startswith("/genconf.") and p not in paths)
    assert not stale, f"rules for RPCs that do not exist: {stale}"


# The security policy of issue 7, written independently of the rule table it checks:
# every RPC is classified here by hand, so a new one fails until someone decides
# (tuples: test_fuzz parametrizes over the writes, in this order).
WRITE_RPC_NAMES = (
    "CreateApplication",
    "UpdateApplication",
    "RemoveApplication",
    "AddUnits",
    "RemoveUnit",
    "SetConfig",
    "AddBranch",
    "TrackBranch",
    "UntrackBranch",
    "SetBranchConfig",
    "CommitBranch",
    "AbortBranch",
    "ReportApplied",
    "Rollback",
    "TagVersion",
    "BumpVersion",
    "RevertGeneration",
    "CreateToken",
    "RevokeToken",
)
READ_RPC_NAMES = (
    "GetConfig",
    "WatchConfig",
    "GetApplication",
    "ListApplications",
    "ListUnits",
    "DiffBranch",
    "ListBranches",
    "GetBranch",
    "ListVersions",
    "GetVersion",
    "LatestVersion",
    "DiffVersions",
    "KeyHistory",
    "ListGenerations",
    "GetGeneration",
    "Snapshot",
    "WatchDeltas",  # the admin feed
    "ListTokens",
)
AGENT_RPC_NAMES = frozenset({"GetConfig", "WatchConfig", "ReportApplied"})


def policy_roles(rpc: Rpc) -> frozenset[auth.Role]:
    """Who may call ``rpc``, in the issue's words: admin everything; controller writes
    and reads; observer reads and the admin feed, no writes; agent bound to one unit,
    only GetConfig, WatchConfig and ReportApplied. Tokens are the admin's alone."""
    roles = {auth.Role.ADMIN}
    if rpc.service != "TokenService":
        roles.add(auth.Role.CONTROLLER)
        if rpc.name in READ_RPC_NAMES:
            roles.add(auth.Role.OBSERVER)
        if rpc.service == "AgentService" and rpc.name in AGENT_RPC_NAMES:
            roles.add(auth.Role.AGENT)
    return frozenset(roles)


def test_every_rpc_is_classified_as_a_read_or_a_write() -> None:
    names = {rpc.name for rpc in RPCS}
    reads, writes = set(READ_RPC_NAMES), set(WRITE_RPC_NAMES)
    assert not reads & writes, sorted(reads & writes)
    assert len(reads) == len(READ_RPC_NAMES) and len(writes) == len(WRITE_RPC_NAMES)
    assert names == reads | writes, (
        f"unclassified: {sorted(names - reads - writes)}; stale: {sorted(reads | writes - names)}"
    )


def test_rule_table_follows_the_policy() -> None:
    """Every role of every RPC as the policy says, and no more: the table is checked,
    not trusted; every agent RPC binds the token to the request's unit."""
    for rpc in RPCS:
        access = auth.RULES[rpc.path]
        assert access.roles == policy_roles(rpc), (
            f"{rpc.short}: the rule allows {sorted(access.roles)}, "
            f"the policy {sorted(policy_roles(rpc))}"
        )
        assert not access.public, f"{rpc.short} must need a token"
        if auth.Role.AGENT in access.roles:
            assert access.unit_field == "unit", f"{rpc.short} does not bind agents to a unit"
            assert access.unit_field in rpc.request_type.DESCRIPTOR.fields_by_name
    by_role = {
        role: {r.name for r in RPCS if role in auth.RULES[r.path].roles} for role in auth.Role
    }
    assert by_role[auth.Role.ADMIN] == {r.name for r in RPCS}
    assert by_role[auth.Role.CONTROLLER] == {r.name for r in RPCS if r.service != "TokenService"}
    assert by_role[auth.Role.OBSERVER] == set(READ_RPC_NAMES) - {"ListTokens"}
    assert by_role[auth.Role.AGENT] == {"GetConfig", "WatchConfig", "ReportApplied"}


def test_an_rpc_without_a_rule_is_refused_to_every_role() -> None:
    """Deny by default: no role, not even admin, may call a method the table lacks."""
    for method in (
        "/genconf.v1.ControllerService/DropEverything",
        "/genconf.v1.NewService/Get",
        "/genconf.bench.Baseline/Empty",
        "/grpc.health.v1.Health/Unknown",
        "",
    ):
        assert method not in auth.RULES
        for role in auth.Role:
            principal = auth.Principal("t", role, "web/0" if role is auth.Role.AGENT else None)
            with pytest.raises(auth.PermissionDenied, match="has no access rule"):
                auth.authorize(principal, method)
            with pytest.raises(auth.PermissionDenied, match="has no access rule"):
                auth.authorize(principal, method, agent_pb2.GetConfigRequest(unit="web/0"))


def test_minted_times_are_what_mongodb_stores() -> None:
    """CreateToken answers with the minted record; ListTokens with what MongoDB gave
    back (milliseconds): they must be the same token, timestamps included."""
    now = dt.datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
    minted = auth.mint(
        auth.Role.OBSERVER,
        unit=None,
        expires_at=now + dt.timedelta(hours=1),
        created_by="",
        description="",
        now=now,
    )
    options = bson.CodecOptions(tz_aware=True)
    stored = bson.decode(bson.encode(minted.doc), codec_options=options)
    assert auth.TokenRecord.from_doc(stored) == auth.TokenRecord.from_doc(minted.doc)
    assert minted.doc["created_at"].microsecond == 123000


def test_token_format_and_authentication_rules() -> None:
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    minted = auth.mint(
        auth.Role.AGENT,
        unit="web/0",
        expires_at=now + dt.timedelta(hours=1),
        created_by="t",
        description="d",
        now=now,
    )
    assert auth.TOKEN_RE.match(minted.plaintext)
    token_id, secret = minted.plaintext.split("_", 2)[1:]
    assert minted.doc["_id"] == token_id
    stored = bson.encode(minted.doc)
    assert secret.encode() not in stored and minted.plaintext.encode() not in stored
    record = auth.TokenRecord.from_doc(minted.doc)
    lookup = {record.id: record}
    principal = auth.authenticate(minted.plaintext, lookup, None, now)
    assert (principal.role, principal.unit) == (auth.Role.AGENT, "web/0")
    forged = f"gct_{token_id}_{'A' * 43}"
    for token, why in [
        (forged, "not valid"),
        ("gct_0000000000000000_" + secret, "not valid"),
        ("something else", "not a genconf token"),
    ]:
        with pytest.raises(auth.Unauthenticated, match=why) as caught:
            auth.authenticate(token, lookup, None, now)
        assert secret not in caught.value.message
    with pytest.raises(auth.Unauthenticated, match="expired"):
        auth.authenticate(minted.plaintext, lookup, None, now + dt.timedelta(hours=1))
    with pytest.raises(InvalidArgument, match="--unit"):
        auth.mint(
            auth.Role.AGENT, unit=None, expires_at=None, created_by="", description="", now=now
        )
    with pytest.raises(InvalidArgument, match="only agent tokens"):
        auth.mint(
            auth.Role.OBSERVER,
            unit="web/0",
            expires_at=None,
            created_by="",
            description="",
            now=now,
        )
    with pytest.raises(InvalidArgument, match="at least"):
        auth.bootstrap_record("short")
    # A bootstrap token that happens to look like a genconf token still works.
    lookalike = auth.mint(
        auth.Role.ADMIN, unit=None, expires_at=None, created_by="", description="", now=now
    ).plaintext
    boot = auth.bootstrap_record(lookalike)
    assert auth.authenticate(lookalike, lookup, boot, now).token_id == auth.BOOTSTRAP_ID
    assert auth.authenticate(BOOTSTRAP, lookup, auth.bootstrap_record(BOOTSTRAP), now).role == (
        auth.Role.ADMIN
    )


def test_every_token_gets_a_salt_of_its_own() -> None:
    """Equal secrets must not hash alike: the salt is drawn per token, bootstrap too."""
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    minted = [
        auth.mint(
            auth.Role.OBSERVER, unit=None, expires_at=None, created_by="", description="", now=now
        )
        for _ in range(50)
    ]
    salts = [m.doc["salt"] for m in minted]
    assert len(set(salts)) == len(salts) and all(len(salt) == 16 for salt in salts)
    assert auth.digest(salts[0], "same secret") != auth.digest(salts[1], "same secret")
    first, second = auth.bootstrap_record(BOOTSTRAP), auth.bootstrap_record(BOOTSTRAP)
    assert first.salt != second.salt and first.hash != second.hash


def test_the_bootstrap_token_comes_from_the_file_else_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "admin-token"
    path.write_text(f"{BOOTSTRAP}\n")  # as `echo ... > file` writes it
    env = {auth.BOOTSTRAP_ENV: "another-admin-token-0123456789"}
    assert auth.read_bootstrap_token(path, {}) == BOOTSTRAP
    assert auth.read_bootstrap_token(str(path), env) == BOOTSTRAP  # the file wins
    assert auth.read_bootstrap_token(None, {auth.BOOTSTRAP_ENV: f" {BOOTSTRAP}\n"}) == BOOTSTRAP
    assert auth.read_bootstrap_token(None, {}) is None  # neither: authentication off


def test_an_empty_or_unreadable_bootstrap_token_is_an_error_not_auth_off(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n  \n")
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xff\xfe" * 20)
    short = tmp_path / "short"
    short.write_text("admin\n")
    spaced = tmp_path / "spaced"
    spaced.write_text("an admin token with spaces in it\n")
    env = auth.BOOTSTRAP_ENV
    cases: dict[str, tuple[Path | None, dict[str, str], str]] = {
        "an empty file": (empty, {}, "is empty"),
        "an empty file, though the environment has one": (empty, {env: BOOTSTRAP}, "is empty"),
        "a missing file": (tmp_path / "missing", {}, "cannot read"),
        "a directory": (tmp_path, {}, "cannot read"),
        "a file that is not text": (binary, {}, "not UTF-8"),
        "a short token": (short, {}, f"at least {auth.MIN_BOOTSTRAP_LENGTH} characters"),
        "a token with spaces": (spaced, {}, "cannot travel in a gRPC header"),
        "a blank variable": (None, {env: "  \n"}, "is empty"),
        "a short variable": (None, {env: "admin"}, "at least"),
    }
    for what, (path, environ, why) in cases.items():
        with pytest.raises(InvalidArgument, match=why) as caught:
            auth.read_bootstrap_token(path, environ)
        message = caught.value.message
        assert (str(path) if path is not None else env) in message, f"{what}: {message}"
        assert "admin\n" not in message and "spaces in it" not in message, "echoes the token"
    with pytest.raises(InvalidArgument, match="needs the name of a file"):
        auth.read_bootstrap_token("", {env: BOOTSTRAP})  # `--admin-token-file ""`


# -- the access matrix ------------------------------------------------------------------

WEB_SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 80},
    "motd": {"type": "string"},
    "password": {"type": "string", "secret": True},
}
DB_SCHEMA: dict[str, Any] = {"motd": {"type": "string"}, "level": {"type": "int"}}
VALID_HASH = "0" * 64

# The callers of the matrix. Writers get requests of their own (names, units), so
# that every allowed call can succeed; the others never get past the guard.
ROLES = ("admin", "controller", "observer", "agent", "other-agent")
# "stale-agent": an agent token of web/0 in an application "web" since removed and
# re-created (it names a live unit of another incarnation: refused like a revoked one).
REFUSED = ("none", "garbage", "forged", "expired", "revoked", "stale-agent")
CALLERS = (*ROLES, *REFUSED)
FORGED_AUTHOR = "mallory"  # what every write request claims as its created_by
UNIT_OF = {"admin": "web/3", "controller": "web/4"}  # TrackBranch / UntrackBranch
REMOVED_UNIT_OF = {"admin": "web/6", "controller": "web/7"}
LABEL_OF = {"admin": "1.0.0", "controller": "1.0.1"}


@dataclass
class Seeded:
    start_revision: int  # before any seeding: WatchDeltas replays from here
    tokens: dict[str, str | None]  # caller -> bearer token
    generation_of: dict[str, int]  # writer -> a generation it may revert
    spare_token_id: str  # for RevokeToken


def role_of(caller: str) -> auth.Role | None:
    """The role a caller's token carries (None: it never gets authenticated)."""
    if caller in ("agent", "other-agent"):
        return auth.Role.AGENT
    if caller in ROLES:
        return auth.Role(caller)
    return None


Request = Callable[[str, Seeded], Message]

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
    "RemoveApplication": lambda c, s: controller_pb2.RemoveApplicationRequest(name=f"rm-{c}"),
    "GetApplication": lambda c, s: controller_pb2.GetApplicationRequest(name="web"),
    "ListApplications": lambda c, s: controller_pb2.ListApplicationsRequest(),
    "AddUnits": lambda c, s: controller_pb2.AddUnitsRequest(application="db", count=1),
    "RemoveUnit": lambda c, s: controller_pb2.RemoveUnitRequest(
        name=REMOVED_UNIT_OF.get(c, "web/5")
    ),
    "ListUnits": lambda c, s: controller_pb2.ListUnitsRequest(application="web"),
    "SetConfig": lambda c, s: controller_pb2.SetConfigRequest(
        application="web", set=struct({"port": 8081}), reason=c, created_by=FORGED_AUTHOR
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
    "ListBranches": lambda c, s: controller_pb2.ListBranchesRequest(),
    "GetBranch": lambda c, s: controller_pb2.GetBranchRequest(name="feature"),
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
    # TokenService
    "CreateToken": lambda c, s: tokens_pb2.CreateTokenRequest(
        role="observer", description=c, name=f"minted by {c}"
    ),
    "ListTokens": lambda c, s: tokens_pb2.ListTokensRequest(),
    "RevokeToken": lambda c, s: tokens_pb2.RevokeTokenRequest(id=s.spare_token_id),
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


async def seed_matrix(
    admin: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> Seeded:
    start = (await admin.snapshot()).revision
    # An agent token of web/0 in an earlier "web", removed before the one used here.
    await admin.create_application("web", units=1)
    stale = await admin.create_token("agent", unit="web/0", name="stale")
    await admin.remove_application("web")
    await admin.create_application("web", schema=WEB_SCHEMA, units=8)
    await admin.create_application("db", schema=DB_SCHEMA, units=1)
    for writer in ("admin", "controller"):
        await admin.create_application(f"rm-{writer}")
        await admin.add_branch(f"tb-{writer}")
    await admin.set_config("web", {"port": 8080, "password": "s3cret"})
    await admin.add_branch("feature")
    await admin.track_branch("feature", units=["web/2"])
    await admin.set_branch_config("feature", "web", {"port": 9090})
    generation_of = {}
    for writer, values in (("admin", {"motd": "hi"}), ("controller", {"level": 3})):
        generation_of[writer] = (await admin.set_config("db", values)).generation

    tokens: dict[str, str | None] = {
        "none": None,
        "garbage": "not-a-token-at-all",
        "stale-agent": stale.token,
    }
    for caller in ROLES:
        role = role_of(caller)
        assert role is not None
        unit = {"agent": "web/0", "other-agent": "web/1"}.get(caller, "")
        tokens[caller] = (
            await admin.create_token(role.value, unit=unit, description=caller, name=caller)
        ).token
    admin_token = tokens["admin"]
    assert admin_token is not None
    tokens["forged"] = (
        admin_token[:-43] + ("B" if admin_token[-43] == "A" else "A") + (admin_token[-42:])
    )
    revoked = await admin.create_token("controller", description="revoked")
    await admin.revoke_token(revoked.info.id)
    tokens["revoked"] = revoked.token
    spare = await admin.create_token("observer", description="spare")

    # An expired token cannot be minted through the API: store one directly.
    now = dt.datetime.now(dt.UTC)
    expired = auth.mint(
        auth.Role.ADMIN,
        unit=None,
        expires_at=now - dt.timedelta(minutes=1),
        created_by="test",
        description="expired",
        now=now - dt.timedelta(hours=1),
    )
    mongo_client[db_name]["tokens"].insert_one(expired.doc)
    tokens["expired"] = expired.plaintext
    # A write after the insert: once the server has it, it has the token too.
    barrier = await admin.add_branch("barrier")
    known = {t.id: t for t in await admin.list_tokens(min_revision=barrier.revision)}
    assert known[expired.doc["_id"]].expires_at.ToDatetime(dt.UTC) < now
    assert known[revoked.info.id].revoked
    await admin.abort_branch("barrier")
    return Seeded(start, tokens, generation_of, spare.info.id)


async def test_access_matrix(
    mongo_uri: str,
    db_name: str,
    mongo_client: MongoClient[dict[str, Any]],
    subtests: pytest.Subtests,
) -> None:
    assert set(MATRIX_REQUESTS) == {rpc.name for rpc in RPCS}, "an RPC has no matrix request"
    async with (
        auth_server(mongo_uri, db_name) as srv,
        Client(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin,
    ):
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
                    for name in ("versions", "generations", "branches")
                    for doc in db[name].find({"on_behalf_of": FORGED_AUTHOR})
                ]
                assert {d["created_by"] for d in claimed} == labels
                assert all(d["authenticated"] is True for d in claimed)
                for name in ("versions", "generations", "branches"):
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


async def test_a_new_token_works_and_a_revoked_one_fails_as_soon_as_the_call_returns(
    mongo_uri: str, db_name: str
) -> None:
    """No waiting for the change stream on the server that handled the call."""
    async with (
        auth_server(mongo_uri, db_name) as srv,
        Client(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin,
    ):
        app = await admin.create_application("web", units=1)
        for _ in range(3):
            created = await admin.create_token("controller")
            async with Client(srv.address, token=created.token, timeout=CALL_TIMEOUT) as c:
                apps = await c.list_applications(min_revision=app.revision)
                assert [a.name for a in apps] == ["web"]
                revoked = await admin.revoke_token(created.info.id)
                with pytest.raises(ClientError) as caught:
                    await c.list_applications()
                assert "revoked" in assert_code(caught.value, UNAUTHENTICATED).message
        infos = await admin.list_tokens(min_revision=revoked.revision)
        assert len(infos) == 3 and all(t.revoked for t in infos)
        assert {t.created_by for t in infos} == {auth.BOOTSTRAP_ID}


async def first_config(stream: AsyncIterator[Any]) -> Any:
    with anyio.fail_after(CALL_TIMEOUT):
        return await anext(stream)


async def test_revoking_a_token_ends_its_open_streams(mongo_uri: str, db_name: str) -> None:
    async with (
        auth_server(mongo_uri, db_name) as srv,
        Client(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin,
    ):
        created = await admin.create_application("web", units=2)
        agent = await admin.create_token("agent", unit="web/0")
        other = await admin.create_token("agent", unit="web/1")
        async with (
            Client(srv.address, token=agent.token, timeout=None) as agent_client,
            Client(srv.address, token=other.token, timeout=None) as other_client,
        ):
            since = created.revision
            watch = agent_client.watch_config("web/0", reconnect=False, min_revision=since)
            bystander = other_client.watch_config("web/1", reconnect=False, min_revision=since)
            try:
                assert (await first_config(watch)).unit == "web/0"
                assert (await first_config(bystander)).unit == "web/1"
                await admin.revoke_token(agent.info.id)
                with anyio.fail_after(10), pytest.raises(ClientError) as caught:
                    async for _ in watch:
                        pass
                assert "revoked" in assert_code(caught.value, UNAUTHENTICATED).message
                # The other agent's stream lives on and still gets changes.
                await admin.update_application("web", schema={"k": {"type": "int", "default": 1}})
                assert dict((await first_config(bystander)).config) == {"k": 1}
            finally:
                await watch.aclose()
                await bystander.aclose()

            async def no_watchers() -> bool:
                return srv.read.cache.statistics().watchers == 0

            await eventually(no_watchers, "the ended streams leave no watch behind")


async def test_revoking_a_token_on_one_replica_ends_its_stream_on_another(
    mongo_uri: str, db_name: str
) -> None:
    """Two replicas on one database: the revocation reaches B through its change
    stream, and B ends the agent's open stream UNAUTHENTICATED."""
    async with (
        auth_server(mongo_uri, db_name) as a,
        auth_server(mongo_uri, db_name) as b,
        Client(a.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin_a,
        Client(b.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin_b,
    ):
        created = await admin_a.create_application("web", units=1)
        agent = await admin_a.create_token("agent", unit="web/0")
        # B authenticates from its own token book: wait until it has A's write.
        known = await admin_b.list_tokens(min_revision=agent.revision)
        assert agent.info.id in {t.id for t in known}
        async with Client(b.address, token=agent.token, timeout=None) as agent_b:
            watch = agent_b.watch_config("web/0", reconnect=False, min_revision=created.revision)
            try:
                assert (await first_config(watch)).unit == "web/0"
                assert b.read.cache.statistics().watchers == 1
                await admin_a.revoke_token(agent.info.id)
                with anyio.fail_after(10), pytest.raises(ClientError) as caught:
                    async for _ in watch:
                        pass
            finally:
                await watch.aclose()
            assert "revoked" in assert_code(caught.value, UNAUTHENTICATED).message
            with pytest.raises(ClientError) as caught:
                await agent_b.get_config("web/0")
            assert "revoked" in assert_code(caught.value, UNAUTHENTICATED).message


async def test_an_expiring_token_ends_its_open_stream(mongo_uri: str, db_name: str) -> None:
    async with (
        auth_server(mongo_uri, db_name) as srv,
        Client(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin,
    ):
        created = await admin.create_application("web", units=1)
        agent = await admin.create_token("agent", unit="web/0", expires_in_seconds=2)
        expires_at = agent.info.expires_at.ToDatetime(dt.UTC)
        assert dt.timedelta(seconds=1) < expires_at - agent.info.created_at.ToDatetime(dt.UTC)
        async with Client(srv.address, token=agent.token, timeout=None) as agent_client:
            watch = agent_client.watch_config(
                "web/0", reconnect=False, min_revision=created.revision
            )
            try:
                assert (await first_config(watch)).unit == "web/0"
                # Bookmarks keep flowing meanwhile (every 0.2 s): the stream ends
                # because the token expired, not because it went quiet.
                with anyio.fail_after(10), pytest.raises(ClientError) as caught:
                    async for _ in watch:
                        pass
            finally:
                await watch.aclose()
            assert "expired" in assert_code(caught.value, UNAUTHENTICATED).message
            assert dt.datetime.now(dt.UTC) >= expires_at
            with pytest.raises(ClientError) as caught:
                await agent_client.get_config("web/0")
            assert "expired" in assert_code(caught.value, UNAUTHENTICATED).message


async def test_streams_per_token_limit(mongo_uri: str, db_name: str) -> None:
    async with (
        auth_server(mongo_uri, db_name, streams_per_token=2) as srv,
        Client(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin,
    ):
        created = await admin.create_application("web", units=2)
        agent = (await admin.create_token("agent", unit="web/0")).token
        observer = (await admin.create_token("observer")).token
        async with grpc.aio.insecure_channel(srv.address) as channel:
            stub = agent_pb2_grpc.AgentServiceStub(channel)

            def open_watch(token: str, unit: str = "web/0") -> Any:
                request = agent_pb2.WatchConfigRequest(unit=unit, min_revision=created.revision)
                return stub.WatchConfig(request, metadata=bearer(token))

            first, second = open_watch(agent), open_watch(agent)
            opened = [first, second]
            try:
                for call in (first, second):
                    assert (await call.read()).HasField("config")
                third = open_watch(agent)
                opened.append(third)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await third.read()
                assert caught.value.code() == EXHAUSTED
                assert "streams_per_token=2" in (caught.value.details() or "")
                # The limit is per token: others stream, and unary calls are not counted.
                for unit in ("web/0", "web/1"):
                    call = open_watch(observer, unit)
                    opened.append(call)
                    assert (await call.read()).HasField("config")
                async with Client(srv.address, token=agent, timeout=CALL_TIMEOUT) as c:
                    config = await c.get_config("web/0", min_revision=created.revision)
                    assert config.unit == "web/0"

                first.cancel()
                fourth: list[Any] = []

                async def slot_is_free() -> bool:
                    call = open_watch(agent)
                    opened.append(call)
                    try:
                        assert (await call.read()).HasField("config")
                    except grpc.aio.AioRpcError as exc:
                        assert exc.code() == EXHAUSTED
                        return False
                    fourth.append(call)
                    return True

                await eventually(slot_is_free, "a cancelled stream frees its slot")
                assert len(fourth) == 1
                # And the slot was the only one: the limit still holds.
                extra = open_watch(agent)
                opened.append(extra)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await extra.read()
                assert caught.value.code() == EXHAUSTED
            finally:
                for call in opened:
                    call.cancel()

            async def all_closed() -> bool:
                return srv.read.cache.statistics().watchers == 0

            await eventually(all_closed, "cancelled streams leave no watch behind")


# -- stream limits: which budget each stream kind spends ----------------------------------

LISTING = reflection_pb2.ServerReflectionRequest(list_services="")


def open_stream(channel: grpc.aio.Channel, kind: str, token: str | None, since: int) -> Any:
    """A stream of ``kind`` (left open: the caller cancels it)."""
    md, timeout = bearer(token), 6 * CALL_TIMEOUT
    if kind == "Health.Watch":
        return health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(), metadata=md, timeout=timeout
        )
    if kind == "ServerReflectionInfo":
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        return stub.ServerReflectionInfo(metadata=md, timeout=timeout)
    if kind == "WatchConfig":
        request = agent_pb2.WatchConfigRequest(unit="web/0", min_revision=since)
        return agent_pb2_grpc.AgentServiceStub(channel).WatchConfig(
            request, metadata=md, timeout=timeout
        )
    assert kind == "WatchDeltas", kind
    return admin_pb2_grpc.AdminServiceStub(channel).WatchDeltas(
        admin_pb2.WatchDeltasRequest(since_revision=since), metadata=md, timeout=timeout
    )


async def first_reply(call: Any, kind: str) -> tuple[grpc.StatusCode, str]:
    """OK once the first message arrives: the server has admitted the stream."""
    try:
        if kind == "ServerReflectionInfo":
            await call.write(LISTING)
        reply = await call.read()
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    assert reply is not grpc.aio.EOF, kind
    return OK, ""


async def try_stream(
    channel: grpc.aio.Channel,
    kind: str,
    token: str | None,
    since: int,
    opened: list[Any],
    *,
    retry: bool,
) -> tuple[grpc.StatusCode, str]:
    """Open a stream of ``kind`` and return how its first reply went; with ``retry``,
    again while refused RESOURCE_EXHAUSTED: `running_server`'s own health watch,
    cancelled, holds a slot until the server has unwound it (no event tells)."""
    replies: list[tuple[grpc.StatusCode, str]] = []

    async def admitted() -> bool:
        call = open_stream(channel, kind, token, since)
        opened.append(call)
        replies.append(await first_reply(call, kind))
        return not retry or replies[-1][0] != EXHAUSTED

    await eventually(admitted, f"{kind} admitted")
    return replies[-1]


# (caller, stream kind, expected code, what the refusal names), in order: each row
# leaves its stream open. Streams no token answers for (the health watch, reflection,
# and every stream without authentication) spend their peer's budget; the others
# their token's.
STREAM_BUDGETS_WITH_AUTH = (
    ("none", "Health.Watch", OK, ""),  # the peer's one stream
    ("none", "Health.Watch", EXHAUSTED, "--streams-per-peer=1"),
    ("observer", "ServerReflectionInfo", EXHAUSTED, "--streams-per-peer=1"),
    ("none", "ServerReflectionInfo", UNAUTHENTICATED, ""),  # the token first
    ("agent", "WatchConfig", OK, ""),  # the agent token's one stream
    ("observer", "WatchDeltas", OK, ""),
    ("observer", "WatchDeltas", EXHAUSTED, "streams_per_token=1"),
    ("agent", "WatchConfig", EXHAUSTED, "streams_per_token=1"),
    ("admin", "WatchDeltas", OK, ""),
)
STREAM_BUDGETS_WITHOUT_AUTH = (
    ("none", "Health.Watch", OK, ""),
    ("none", "WatchConfig", OK, ""),  # the peer's two streams
    ("none", "WatchDeltas", EXHAUSTED, "--streams-per-peer=2"),
    ("none", "ServerReflectionInfo", EXHAUSTED, "--streams-per-peer=2"),
    ("none", "Health.Watch", EXHAUSTED, "--streams-per-peer=2"),
)


@pytest.mark.parametrize("auth_on", [True, False], ids=["auth", "no-auth"])
async def test_stream_limit_matrix(
    mongo_uri: str, db_name: str, auth_on: bool, subtests: pytest.Subtests
) -> None:
    overrides: dict[str, Any] = (
        {"admin_token": BOOTSTRAP, "streams_per_peer": 1, "streams_per_token": 1}
        if auth_on
        else {"streams_per_peer": 2}
    )
    rows = STREAM_BUDGETS_WITH_AUTH if auth_on else STREAM_BUDGETS_WITHOUT_AUTH
    async with (
        running_server(mongo_uri, db_name, **overrides) as srv,
        Client(srv.address, token=BOOTSTRAP if auth_on else None, timeout=CALL_TIMEOUT) as admin,
        grpc.aio.insecure_channel(srv.address) as channel,
    ):
        start = (await admin.snapshot()).revision
        await admin.create_application("web", units=1)
        tokens: dict[str, str | None] = {"none": None, "admin": BOOTSTRAP}
        if auth_on:
            tokens["agent"] = (await admin.create_token("agent", unit="web/0")).token
            tokens["observer"] = (await admin.create_token("observer")).token
        opened: list[Any] = []
        try:
            for caller, kind, expected, names in rows:
                with subtests.test(f"{kind} as {caller}"):
                    code, details = await try_stream(
                        channel, kind, tokens[caller], start, opened, retry=expected == OK
                    )
                    assert code == expected, f"{kind} as {caller}: {code.name}: {details}"
                    assert names in details
            with subtests.test("unary calls are not streams"):
                assert await admin.health() == "SERVING"
                assert (await admin.get_config("web/0")).unit == "web/0"
        finally:
            for call in opened:
                call.cancel()


# -- secrets stay secret ----------------------------------------------------------------

VAULT_SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 80},
    "password": {"type": "string", "secret": True, "default": "hunter2-default"},
    "api_key": {"type": "string", "secret": True},
}
SECRET_MARK = b"hunter2"


def everything_stored(mongo_client: MongoClient[dict[str, Any]], db_name: str) -> bytes:
    db = mongo_client[db_name]
    return b"".join(
        bson.encode(doc) for name in db.list_collection_names() for doc in db[name].find({})
    )


async def test_tokens_are_never_stored_or_logged_in_plain_text(
    mongo_uri: str,
    db_name: str,
    mongo_client: MongoClient[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="genconf")
    caplog.set_level(logging.DEBUG, logger="grpc")
    async with (
        auth_server(mongo_uri, db_name) as srv,
        Client(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin,
    ):
        await admin.create_application("vault", schema=VAULT_SCHEMA, units=1)
        seeded = await admin.set_config("vault", {"api_key": "hunter2-master"}, reason="rotate")
        plaintexts = [BOOTSTRAP]
        for role, unit in [
            ("admin", ""),
            ("controller", ""),
            ("observer", ""),
            ("agent", "vault/0"),
        ]:
            created = await admin.create_token(role, unit=unit, description=f"a {role}")
            plaintexts.append(created.token)
            async with Client(srv.address, token=created.token, timeout=CALL_TIMEOUT) as c:
                assert (await c.get_config("vault/0", min_revision=seeded.revision)).hash
                with pytest.raises(ClientError) as caught:  # wrong secret, same id
                    async with Client(
                        srv.address, token=created.token[:-1] + "x", timeout=CALL_TIMEOUT
                    ) as forged:
                        await forged.get_config("vault/0")
                assert_code(caught.value, UNAUTHENTICATED)
                assert created.token[-43:] not in caught.value.message
        with pytest.raises(ClientError) as caught:  # an error that echoes the value
            await admin.set_config("vault", {"port": "hunter2-wrong-type"})
        assert "hunter2-wrong-type" in assert_code(caught.value, INVALID).message
        await admin.revoke_token((await admin.list_tokens(min_revision=created.revision))[0].id)
        stored = everything_stored(mongo_client, db_name)
        docs = list(mongo_client[db_name]["tokens"].find({}))
        assert len(docs) == len(plaintexts) - 1  # every minted token; never the bootstrap
        assert all(len(d["hash"]) == 32 and len(d["salt"]) == 16 for d in docs)
        assert len({d["salt"] for d in docs}) == len(docs), "two tokens share a salt"
        assert sum(d["revoked_at"] is not None for d in docs) == 1
    logged = (
        "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
        + caplog.text
    )
    assert caplog.records, "nothing was logged: the log check would prove nothing"
    for plaintext in plaintexts:
        for part in {plaintext, plaintext.split("_", 2)[-1]}:
            assert part.encode() not in stored, "a token is stored in plain text"
            assert part not in logged, "a token was logged"
    assert "hunter2" not in logged, "a secret config value was logged"


async def test_observers_see_secrets_redacted_and_admins_see_them(
    mongo_uri: str, db_name: str
) -> None:
    async with (
        auth_server(mongo_uri, db_name) as srv,
        Client(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin,
    ):
        start = (await admin.snapshot()).revision
        await admin.create_application("vault", schema=VAULT_SCHEMA, units=2)
        await admin.set_config("vault", {"password": "hunter2-v1", "port": 81})
        await admin.add_branch("rotate")
        await admin.track_branch("rotate", units=["vault/1"])
        await admin.set_branch_config(
            "rotate", "vault", {"password": "hunter2-branch", "api_key": "hunter2-key"}
        )
        # Master moves on: the branch now conflicts, and the conflict names values.
        last = await admin.set_config("vault", {"password": "hunter2-v2"})
        multiline = "hunter2\nline two\nline three\n" * 3
        last = await admin.set_config("vault", {"api_key": multiline})
        observer = (await admin.create_token("observer")).token

        reads: dict[str, Callable[[Client], Awaitable[Message]]] = {
            "GetApplication": lambda c: c.get_application("vault", min_revision=last.revision),
            "ListApplications": lambda c: _list_apps(c),
            "GetConfig master": lambda c: _config(c, "vault/0"),
            "GetConfig branch": lambda c: _config(c, "vault/1"),
            "DiffBranch": lambda c: c.diff_branch("rotate"),
            "GetBranch": lambda c: c.get_branch("rotate"),
            "DiffVersions": lambda c: c.diff_versions("vault", 1, 4),
            "GetVersion": lambda c: c.get_version("vault", 3),
            "ListVersions": lambda c: c.list_versions("vault"),
            "KeyHistory password": lambda c: c.key_history("vault", "password"),
            "KeyHistory api_key": lambda c: c.key_history("vault", "api_key"),
            "GetGeneration": lambda c: c.get_generation(2),
            "ListGenerations": lambda c: c.list_generations(),
            "Snapshot": lambda c: c.snapshot(),
            "WatchDeltas": lambda c: _first_deltas(c, start),
            "WatchConfig": lambda c: _first_watch_config(c, "vault/1"),
        }
        async with Client(srv.address, token=observer, timeout=CALL_TIMEOUT) as obs:
            for name, read in reads.items():
                shown = (await read(obs)).SerializeToString()
                assert SECRET_MARK not in shown, f"{name} shows a secret to an observer"
                assert REDACTED.encode() in shown, f"{name}: nothing redacted, nothing checked"
                in_full = (await read(admin)).SerializeToString()
                assert SECRET_MARK in in_full, f"{name} hides the secret from an admin"
            # Hashes are keyed (tests/api/test_redaction.py): never the sha256 a guess at
            # the secret could reproduce, the same for the same config.
            seen = await obs.get_config("vault/0")
            real = await admin.get_config("vault/0")
            assert seen.hash != real.hash and len(seen.hash) == len(real.hash)
            assert (await obs.get_config("vault/0")).hash == seen.hash
            assert seen.config["password"] == REDACTED
            assert seen.config["port"] == 81  # other values are as they are
            app = await obs.get_application("vault")
            assert app.schema["password"].default.string_value == REDACTED


async def test_observers_do_not_see_values_of_options_dropped_from_the_schema(
    mongo_uri: str, db_name: str
) -> None:
    """History outlives the schema: once ``password`` is dropped, its old values in
    versions and generations stay hidden from observers (redaction fails closed).
    Version diffs and key history read through the current schema, so they no
    longer show the dropped key at all."""
    async with (
        auth_server(mongo_uri, db_name) as srv,
        Client(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin,
    ):
        await admin.create_application("vault", schema=VAULT_SCHEMA, units=1)
        await admin.set_config("vault", {"password": "hunter2-old", "port": 81})
        await admin.set_config("vault", unset=["password"])
        dropped = {k: v for k, v in VAULT_SCHEMA.items() if k != "password"}
        last = await admin.update_application("vault", schema=dropped)
        observer = (await admin.create_token("observer")).token
        reads: dict[str, Callable[[Client], Awaitable[Message]]] = {
            "GetVersion": lambda c: c.get_version("vault", 2),
            "ListGenerations": lambda c: c.list_generations(),
        }
        async with Client(srv.address, token=observer, timeout=CALL_TIMEOUT) as obs:
            await obs.get_application("vault", min_revision=last.revision)
            for name, read in reads.items():
                assert SECRET_MARK in (await read(admin)).SerializeToString(), name
                shown = (await read(obs)).SerializeToString()
                assert SECRET_MARK not in shown, f"{name} shows a dropped secret"
                assert REDACTED.encode() in shown, name
            # What the schema still describes as public is shown as it is.
            version = await obs.get_version("vault", 2)
            assert json_format.MessageToDict(version)["settings"]["port"] == 81


async def _list_apps(c: Client) -> Message:
    return admin_pb2.SnapshotResponse(applications=await c.list_applications())


async def _config(c: Client, unit: str) -> Message:
    """GetConfig as the message (`Client.get_config` decodes it)."""
    stub = agent_pb2_grpc.AgentServiceStub(c.channel)
    return await stub.GetConfig(agent_pb2.GetConfigRequest(unit=unit), timeout=CALL_TIMEOUT)


async def _first_deltas(c: Client, since: int) -> Message:
    stream = c.watch_deltas(since_revision=since)
    batches = admin_pb2.SnapshotResponse()
    try:
        with anyio.fail_after(CALL_TIMEOUT):
            async for batch in stream:
                for delta in batch.deltas:
                    if delta.HasField("application"):
                        batches.applications.append(delta.application)
                # Replayed: every application upsert, including the last one.
                if len(batches.applications) >= 4:
                    return batches
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    raise AssertionError("the feed ended")


async def _first_watch_config(c: Client, unit: str) -> Message:
    stub = agent_pb2_grpc.AgentServiceStub(c.channel)
    call = stub.WatchConfig(agent_pb2.WatchConfigRequest(unit=unit), timeout=CALL_TIMEOUT)
    try:
        reply = await call.read()
        assert reply is not grpc.aio.EOF and reply.HasField("config")
        return reply
    finally:
        call.cancel()


# -- listening: loopback without auth only ------------------------------------------------


async def test_a_non_loopback_listen_needs_an_admin_token(mongo_uri: str, db_name: str) -> None:
    for listen in ("0.0.0.0:0", "[::]:0", "192.0.2.1:0", "example.com:0"):
        with pytest.raises(InvalidArgument, match="--admin-token-file") as caught:
            async with serve(server_config(mongo_uri, db_name, listen=listen)):
                raise AssertionError(f"{listen}: started without authentication")
        assert listen in caught.value.message
    # With authentication it starts; without TLS only when told the network is
    # trusted (tests/api/test_transport.py has the refusal).
    async with serve(
        server_config(
            mongo_uri, db_name, listen="0.0.0.0:0", admin_token=BOOTSTRAP, insecure_plaintext=True
        )
    ) as srv:
        port = srv.address.rsplit(":", 1)[1]
        local = f"127.0.0.1:{port}"
        await wait_serving(local)
        async with Client(local, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin:
            assert await admin.health() == "SERVING"
            await admin.create_application("web")
        async with Client(local, timeout=CALL_TIMEOUT) as anonymous:
            with pytest.raises(ClientError) as caught_call:
                await anonymous.list_applications()
            assert_code(caught_call.value, UNAUTHENTICATED)
    # Loopback without a token is fine (and open to anyone on the machine).
    async with running_server(mongo_uri, db_name, listen="localhost:0") as srv:
        async with Client(srv.address, timeout=CALL_TIMEOUT) as anonymous:
            assert [a.name for a in await anonymous.list_applications()] == ["web"]


async def test_a_server_without_auth_logs_that_it_is_open(
    mongo_uri: str, db_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="genconf.api.server")

    def said(text: str) -> list[logging.LogRecord]:
        return [
            r for r in caplog.records if r.name == "genconf.api.server" and text in r.getMessage()
        ]

    async with running_server(mongo_uri, db_name):
        pass
    [warning] = said("without authentication")
    assert warning.levelno == logging.WARNING
    assert "--admin-token-file" in warning.getMessage()  # how to turn it on
    assert not said("authentication on")
    caplog.clear()
    async with auth_server(mongo_uri, db_name):
        pass
    assert said("authentication on") and not said("without authentication")


async def test_a_server_given_a_token_file_requires_that_token(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    path = tmp_path / "admin-token"
    path.write_text(f"{BOOTSTRAP}\n")
    token = auth.read_bootstrap_token(path, {})
    async with running_server(mongo_uri, db_name, admin_token=token) as srv:
        async with Client(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin:
            created = await admin.create_application("web")
            apps = await admin.list_applications(min_revision=created.revision)
            assert [a.name for a in apps] == ["web"]
        for other in (None, BOOTSTRAP + "x", BOOTSTRAP[:-1]):
            async with Client(srv.address, token=other, timeout=CALL_TIMEOUT) as c:
                with pytest.raises(ClientError) as caught:
                    await c.list_applications()
                assert_code(caught.value, UNAUTHENTICATED)


async def test_serve_refuses_an_empty_admin_token_and_limits_that_are_not_positive(
    mongo_uri: str, db_name: str
) -> None:
    """An empty token (say, from an empty file) is an error, never "authentication off"."""
    for token in ("", " \n"):
        with pytest.raises(InvalidArgument, match="is empty"):
            async with serve(server_config(mongo_uri, db_name, admin_token=token)):
                raise AssertionError(f"started with admin token {token!r}")
    for field, value in (
        ("feed_buffer", 0),
        ("feed_buffer", -5),
        ("streams_per_token", 0),
        ("streams_per_peer", 0),
        ("max_streams", -1),
        ("max_request_bytes", 0),
    ):
        option = "--" + field.replace("_", "-")
        with pytest.raises(InvalidArgument, match=f"{option} must be a positive") as caught:
            async with serve(server_config(mongo_uri, db_name, **{field: value})):
                raise AssertionError(f"started with {field}={value}")
        assert str(value) in caught.value.message


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


# -- TLS ------------------------------------------------------------------------------------


@asynccontextmanager
async def tls_server(
    mongo_uri: str, db_name: str, credentials: grpc.ChannelCredentials, **overrides: Any
) -> AsyncIterator[str]:
    """A TLS server (`servers.running_server` waits over plaintext) and its address,
    SERVING as seen over a channel with ``credentials``."""
    async with serve(server_config(mongo_uri, db_name, **overrides)) as srv:
        address = f"127.0.0.1:{srv.address.rsplit(':', 1)[1]}"
        await wait_serving(address, credentials=credentials)
        yield address


def tls_credentials(
    ca: CertificateAuthority, client: Issued | None, token: str | None = None
) -> grpc.ChannelCredentials:
    """Trusting ``ca``, presenting ``client``'s certificate when given, and sending
    ``token`` with gRPC's standard access-token call credentials."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.cert,
        private_key=client.key if client else None,
        certificate_chain=client.cert if client else None,
    )
    if token is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    return credentials


def tls_channel(
    address: str, ca: CertificateAuthority, client: Issued | None, token: str | None = None
) -> grpc.aio.Channel:
    """A TLS channel with `tls_credentials`."""
    return grpc.aio.secure_channel(address, tls_credentials(ca, client, token))


async def test_tls_with_client_certificates(mongo_uri: str, db_name: str, tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path, "main")
    rogue = CertificateAuthority(tmp_path, "rogue")
    server_cert = ca.server()
    good = ca.client()
    async with tls_server(
        mongo_uri,
        db_name,
        tls_credentials(ca, good),
        tls_cert=server_cert.cert_path,
        tls_key=server_cert.key_path,
        tls_client_ca=ca.cert_path,
        admin_token=BOOTSTRAP,
    ) as address:
        async with Client(channel=tls_channel(address, ca, good), timeout=CALL_TIMEOUT) as c:
            assert await c.health() == "SERVING"
            # TLS authenticates the connection; the bearer token still decides the rest.
            with pytest.raises(ClientError) as caught:
                await c.list_applications()
            assert_code(caught.value, UNAUTHENTICATED)
        authorized = tls_channel(address, ca, good, token=BOOTSTRAP)
        async with Client(channel=authorized, timeout=CALL_TIMEOUT) as c:
            created = await c.create_application("web")
            apps = await c.list_applications(min_revision=created.revision)
            assert [a.name for a in apps] == ["web"]
        refused: dict[str, grpc.aio.Channel] = {
            "no client certificate": tls_channel(address, ca, None),
            "a client certificate from another CA": tls_channel(address, ca, rogue.client()),
            "plaintext": grpc.aio.insecure_channel(address),
        }
        for what, channel in refused.items():
            async with Client(channel=channel, timeout=CALL_TIMEOUT) as c:
                with pytest.raises(ClientError) as caught:
                    await c.health()
                assert caught.value.code == UNAVAILABLE, f"{what}: {caught.value}"
        # A client that does not trust the server's CA does not connect either.
        rogue_trust = tls_channel(address, rogue, rogue.client())
        async with Client(channel=rogue_trust, timeout=CALL_TIMEOUT) as c:
            with pytest.raises(ClientError) as caught:
                await c.health()
            assert caught.value.code == UNAVAILABLE


async def test_tls_without_client_certificates(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    ca = CertificateAuthority(tmp_path, "main")
    server_cert = ca.server()
    async with tls_server(
        mongo_uri,
        db_name,
        tls_credentials(ca, None),
        tls_cert=server_cert.cert_path,
        tls_key=server_cert.key_path,
    ) as address:
        async with Client(address, tls_ca=str(ca.cert_path), timeout=CALL_TIMEOUT) as c:
            assert await c.health() == "SERVING"
            created = await c.create_application("web")
            apps = await c.list_applications(min_revision=created.revision)
            assert [a.name for a in apps] == ["web"]
        async with Client(address, timeout=CALL_TIMEOUT) as plaintext:
            with pytest.raises(ClientError) as caught:
                await plaintext.health()
            assert caught.value.code == UNAVAILABLE


def test_redaction_can_fail_closed_for_history_the_schema_no_longer_describes() -> None:
    """With ``public_keys``, values of keys dropped from the schema, and of removed
    applications, are hidden from observers too (history outlives the schema)."""
    public = {"vault": frozenset({"port"})}  # "password" was dropped; "gone" was removed
    guard = Guard(
        TokenBook(),
        None,
        public_keys=public.get,
    )
    generation = types_pb2.Generation(id=1)
    for app in ("vault", "gone"):
        changes = generation.changes.add(application=app)
        for key, value in (("port", 81), ("password", "hunter2")):
            change = changes.changes.add(key=key, has_from=True, has_to=True)
            getattr(change, "from").CopyFrom(struct_pb2.Value(string_value="old"))
            change.to.CopyFrom(to_value(value))
    history = history_pb2.KeyHistoryResponse(application="gone", key="port")
    history.entries.add(version=1, has_value=True, value=to_value(80))
    observer = auth.Principal("o", auth.Role.OBSERVER)
    shown = guard.shown_to(observer, generation)
    visible = {
        (c.application, k.key): json_format.MessageToDict(k.to)
        for c in shown.changes
        for k in c.changes
    }
    assert visible == {
        ("vault", "port"): 81,
        ("vault", "password"): REDACTED,
        ("gone", "port"): REDACTED,
        ("gone", "password"): REDACTED,
    }
    assert guard.shown_to(observer, history).entries[0].value.string_value == REDACTED
    # Other roles see everything; the original message is never changed.
    controller = auth.Principal("c", auth.Role.CONTROLLER)
    assert guard.shown_to(controller, generation) is generation
    assert generation.changes[1].changes[1].to.string_value == "hunter2"


# -- limits: keys per write, nesting depth -------------------------------------------------


async def test_a_write_over_the_key_limit_is_refused_naming_it_and_writes_nothing(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    """One write names at most MAX_KEYS keys, those it sets and those it unsets together."""
    limit = model.MAX_KEYS
    keys = [f"k{i}" for i in range(limit)]
    async with (
        running_server(mongo_uri, db_name) as srv,
        Client(srv.address, timeout=CALL_TIMEOUT) as c,
    ):
        await c.create_application("web", schema={k: {"type": "int"} for k in keys}, units=1)
        await c.add_branch("b")
        half = limit // 2
        too_many: dict[str, dict[str, Any]] = {
            "set": {"set": {k: 1 for k in keys} | {"one-more": 1}},
            "set and unset": {"set": {k: 1 for k in keys[: half + 1]}, "unset": keys[half:]},
            "unset": {"unset": [*keys, keys[0]]},  # a repeated key counts again
        }
        for what, change in too_many.items():
            writes: dict[str, Callable[[], Awaitable[Any]]] = {
                "SetConfig": lambda change=change: c.set_config("web", **change),
                "SetBranchConfig": lambda change=change: c.set_branch_config("b", "web", **change),
            }
            for rpc, write in writes.items():
                before = digest(mongo_client, db_name)
                with pytest.raises(ClientError) as caught:
                    await write()
                message = assert_code(caught.value, INVALID).message
                assert f"{limit + 1} keys in one write" in message, f"{rpc} {what}: {message}"
                assert f"the limit is {limit} keys per write" in message
                assert digest(mongo_client, db_name) == before, f"{rpc} {what} wrote something"
        # Exactly the limit is fine, split between set and unset.
        done = await c.set_config("web", set={k: 7 for k in keys[:half]}, unset=keys[half:])
        config = await c.get_config("web/0", min_revision=done.revision)
        assert dict(config.config) == {k: 7 for k in keys[:half]}


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def deep_value(levels: int, *, as_list: bool) -> bytes:
    """A `google.protobuf.Value` nesting ``levels`` objects (or lists) around a number,
    as wire bytes: protobuf's own builders refuse past its parser's depth."""
    value = struct_pb2.Value(number_value=1).SerializeToString()
    for _ in range(levels):
        if as_list:
            value = _field(6, _field(1, value))  # list_value { values: value }
        else:
            value = _field(5, _field(1, _field(1, b"k") + _field(2, value)))  # {"k": value}
    return value


async def test_values_nested_past_the_depth_limit_are_refused_naming_it(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    """Objects past MAX_DEPTH also pass protobuf's own decoding limit: the guard
    names ours either way (lists reach the model's check, which names it too)."""
    depth = model.MAX_DEPTH
    async with (
        running_server(mongo_uri, db_name) as srv,
        Client(srv.address, timeout=CALL_TIMEOUT) as c,
        grpc.aio.insecure_channel(srv.address) as channel,
    ):
        schema = {"obj": {"type": "object"}, "items": {"type": "list"}}
        await c.create_application("web", schema=schema, units=1)
        set_config = channel.unary_unary("/genconf.v1.ControllerService/SetConfig")

        def request(key: str, value: bytes) -> bytes:
            entry = _field(1, key.encode()) + _field(2, value)
            return _field(1, b"web") + _field(2, _field(1, entry))

        # The deepest accepted value: so the requests below are well formed.
        code, details = await invoke_raw(
            set_config, request("obj", deep_value(depth, as_list=False)), None
        )
        assert code == OK, details
        for key, as_list in (("obj", False), ("items", True)):
            for levels in (depth + 1, depth + 10, 300):
                before = digest(mongo_client, db_name)
                payload = request(key, deep_value(levels, as_list=as_list))
                code, details = await invoke_raw(set_config, payload, None)
                assert code == INVALID, f"{key} {levels}: {code.name}: {details}"
                assert f"{depth} levels" in details, details
                assert digest(mongo_client, db_name) == before


# -- limits: the per-stream send buffer of the admin feed ---------------------------------


async def test_a_slow_admin_feed_ends_resource_exhausted_naming_its_buffer_and_resumes(
    mongo_uri: str, db_name: str
) -> None:
    """A WatchDeltas client that stops reading: once more than ``feed_buffer`` batches
    wait for it, its stream ends RESOURCE_EXHAUSTED naming the limit and the revision
    to resume from, and resuming from there misses nothing."""
    limit = 3
    async with (
        auth_server(mongo_uri, db_name, feed_buffer=limit) as srv,
        Client(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin,
    ):
        start = (await admin.snapshot()).revision
        await admin.create_application("web", schema={"blob": {"type": "string"}})
        # No BDP probing: the stream's flow-control window stays at its initial 64 KiB,
        # so a client that does not read stops the server's sends after one big batch.
        options = [("grpc.http2.bdp_probe", 0)]
        async with grpc.aio.insecure_channel(srv.address, options=options) as channel:
            stub = admin_pb2_grpc.AdminServiceStub(channel)
            call = stub.WatchDeltas(
                admin_pb2.WatchDeltasRequest(since_revision=start), metadata=bearer(BOOTSTRAP)
            )
            with anyio.fail_after(CALL_TIMEOUT):
                first = await call.read()  # replayed: the server has subscribed by now
            assert first is not grpc.aio.EOF
            received = [first.revision]
            # Big batches (each write's value is in its application and generation
            # deltas) while nobody reads; the cache applies each write before the
            # next, and the feed's buffer overflows in that same step.
            big = "x" * (model.MAX_VALUE_BYTES - 100)
            writes: list[int] = []
            cache = srv.read.cache
            while cache.statistics().feed_overflows == 0:
                assert len(writes) < 100, "the unread feed never overflowed"
                done = await admin.set_config("web", {"blob": f"{len(writes)}{big}"})
                writes.append(done.revision)
                with anyio.fail_after(CALL_TIMEOUT):
                    await cache.wait_for(done.revision)
            assert len(writes) > limit
            with anyio.fail_after(CALL_TIMEOUT), pytest.raises(grpc.aio.AioRpcError) as caught:
                while (batch := await call.read()) is not grpc.aio.EOF:
                    received.append(batch.revision)
            assert caught.value.code() == EXHAUSTED
            details = caught.value.details() or ""
            assert f"feed_buffer={limit}" in details
            assert f"since_revision={received[-1]}" in details
            assert received[1:] == writes[: len(received) - 1], "a gap before the overflow"
            assert received[-1] < writes[-1], "the stream overflowed after the last write?"

            # Resuming from the last revision received replays the rest from the ring.
            resumed = stub.WatchDeltas(
                admin_pb2.WatchDeltasRequest(since_revision=received[-1]),
                metadata=bearer(BOOTSTRAP),
            )
            rest: list[int] = []
            try:
                with anyio.fail_after(CALL_TIMEOUT):
                    async for batch in resumed:
                        rest.append(batch.revision)
                        if batch.revision >= writes[-1]:
                            break
            finally:
                resumed.cancel()
            assert received[1:] + rest == writes


async def test_a_slow_config_watcher_holds_at_most_one_pending_config(
    mongo_uri: str, db_name: str
) -> None:
    """WatchConfig's bound: latest-state. A client that stops reading costs the server
    at most one pending config however many changes come; reading again, it gets
    what was already on the wire, then the newest config, nothing in between."""
    async with (
        auth_server(mongo_uri, db_name) as srv,
        Client(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin,
    ):
        created = await admin.create_application(
            "web", schema={"blob": {"type": "string"}}, units=1
        )
        options = [("grpc.http2.bdp_probe", 0)]  # as in the admin feed test above
        async with grpc.aio.insecure_channel(srv.address, options=options) as channel:
            stub = agent_pb2_grpc.AgentServiceStub(channel)
            call = stub.WatchConfig(
                agent_pb2.WatchConfigRequest(unit="web/0", min_revision=created.revision),
                metadata=bearer(BOOTSTRAP),
            )
            try:
                with anyio.fail_after(CALL_TIMEOUT):
                    first = await call.read()
                assert first is not grpc.aio.EOF and first.HasField("config")
                cache = srv.read.cache
                coalesced_before = cache.statistics().coalesced
                big = "x" * (model.MAX_VALUE_BYTES - 100)
                writes = 20
                for i in range(writes):
                    done = await admin.set_config("web", {"blob": f"{i}:{big}"})
                    with anyio.fail_after(CALL_TIMEOUT):
                        await cache.wait_for(done.revision)
                coalesced = cache.statistics().coalesced - coalesced_before
                seen: list[str] = []
                with anyio.fail_after(CALL_TIMEOUT):
                    while not seen or not seen[-1].startswith(f"{writes - 1}:"):
                        reply = await call.read()
                        assert reply is not grpc.aio.EOF
                        if reply.HasField("config"):
                            seen.append(reply.config.config["blob"])
            finally:
                call.cancel()
        # Every change was either sent or replaced by a newer one while pending.
        assert len(seen) + coalesced == writes
        assert len(seen) <= 3, f"{len(seen)} configs queued for a client that did not read"
        assert [int(blob.split(":", 1)[0]) for blob in seen] == sorted(
            int(blob.split(":", 1)[0]) for blob in seen
        )
