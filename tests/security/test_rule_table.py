"""The rule table (`auth.RULES`) against the policy of issue 7 (`support.policy`)
and the service descriptors of ``genconf.v1``: a new RPC without a rule, or without
a place in the policy, fails here. Pure: no mongod, no server."""

from __future__ import annotations

import pytest
from support.policy import (
    ADMIN_RPC_NAMES,
    ADMIN_SERVICES,
    READ_RPC_NAMES,
    WRITE_RPC_NAMES,
    policy_roles,
)
from support.rpcs import RPCS, genconf_services
from support.tables import rows

from genconf.security import auth
from genconf.v1 import agent_pb2


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


def test_every_rpc_is_classified_as_a_read_or_a_write() -> None:
    names = {rpc.name for rpc in RPCS}
    reads, writes, admin = set(READ_RPC_NAMES), set(WRITE_RPC_NAMES), set(ADMIN_RPC_NAMES)
    assert not reads & writes, sorted(reads & writes)
    assert not admin & (reads | writes), sorted(admin & (reads | writes))
    assert len(reads) == len(READ_RPC_NAMES) and len(writes) == len(WRITE_RPC_NAMES)
    known = reads | writes | admin
    assert names == known, f"unclassified: {sorted(names - known)}; stale: {sorted(known - names)}"


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
    assert by_role[auth.Role.CONTROLLER] == {
        r.name for r in RPCS if r.service not in ADMIN_SERVICES
    }
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


# -- lookups in the rule table, as a table -------------------------------------------------

ADMIN, CONTROLLER, OBSERVER, AGENT = (
    auth.Role.ADMIN,
    auth.Role.CONTROLLER,
    auth.Role.OBSERVER,
    auth.Role.AGENT,
)
AGENT_SVC = "/genconf.v1.AgentService/"
CONTROLLER_SVC = "/genconf.v1.ControllerService/"
# (role, method, the unit a request names or None for no request, the refusal or None)
AUTHORIZE = {
    "admin creates tokens": (ADMIN, "/genconf.v1.TokenService/CreateToken", None, None),
    "controller may not create tokens": (
        CONTROLLER,
        "/genconf.v1.TokenService/CreateToken",
        None,
        "role controller may not call TokenService/CreateToken (allowed: admin)",
    ),
    "controller writes": (CONTROLLER, CONTROLLER_SVC + "SetConfig", None, None),
    "observer reads": (OBSERVER, CONTROLLER_SVC + "ListApplications", None, None),
    "observer reads the admin feed": (OBSERVER, "/genconf.v1.AdminService/WatchDeltas", None, None),
    "observer may not write": (
        OBSERVER,
        CONTROLLER_SVC + "SetConfig",
        None,
        "(allowed: admin, controller)",
    ),
    "agent gets its own unit's config": (AGENT, AGENT_SVC + "GetConfig", "web/0", None),
    "agent reports its own unit": (AGENT, AGENT_SVC + "ReportApplied", "web/0", None),
    "agent, role only (no request yet)": (AGENT, AGENT_SVC + "WatchConfig", None, None),
    "agent asks for another unit": (
        AGENT,
        AGENT_SVC + "GetConfig",
        "web/1",
        "bound to unit web/0, not 'web/1'",
    ),
    "agent names no unit": (AGENT, AGENT_SVC + "GetConfig", "", "bound to unit web/0, not ''"),
    "agent may not list applications": (
        AGENT,
        CONTROLLER_SVC + "ListApplications",
        None,
        "role agent may not call ControllerService/ListApplications",
    ),
    "agent checks health": (AGENT, "/grpc.health.v1.Health/Check", None, None),
    "agent uses reflection": (
        AGENT,
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        None,
        None,
    ),
    "admin, a method with no rule": (
        ADMIN,
        CONTROLLER_SVC + "DropEverything",
        None,
        "ControllerService/DropEverything has no access rule",
    ),
    "admin, another package's method with no rule": (
        ADMIN,
        "/genconf.bench.Baseline/Empty",
        None,
        "Baseline/Empty has no access rule",
    ),
}


@pytest.mark.parametrize(("role", "method", "unit", "refusal"), rows(AUTHORIZE))
def test_authorize(role: auth.Role, method: str, unit: str | None, refusal: str | None) -> None:
    principal = auth.Principal("t", role, "web/0" if role is AGENT else None)
    request = None if unit is None else agent_pb2.GetConfigRequest(unit=unit)
    if refusal is None:
        assert auth.authorize(principal, method, request) is auth.RULES[method]
        return
    with pytest.raises(auth.PermissionDenied) as caught:
        auth.authorize(principal, method, request)
    assert refusal in caught.value.message


PUBLIC = {
    "health check": ("/grpc.health.v1.Health/Check", True),
    "health list": ("/grpc.health.v1.Health/List", True),
    "health watch": ("/grpc.health.v1.Health/Watch", True),
    "reflection needs a token": (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        False,
    ),
    "a read needs a token": (CONTROLLER_SVC + "ListApplications", False),
}


@pytest.mark.parametrize(("method", "public"), rows(PUBLIC))
def test_which_methods_need_no_token(method: str, public: bool) -> None:
    assert auth.RULES[method].public is public


SHORT_METHODS = {
    "a genconf method": (CONTROLLER_SVC + "SetConfig", "ControllerService/SetConfig"),
    "a genconf method of another package": ("/genconf.bench.Baseline/Empty", "Baseline/Empty"),
    "grpc health": ("/grpc.health.v1.Health/Check", "grpc.health.v1.Health/Check"),
    "empty": ("", ""),
}


@pytest.mark.parametrize(("method", "short"), rows(SHORT_METHODS))
def test_short_method(method: str, short: str) -> None:
    assert auth.short_method(method) == short
