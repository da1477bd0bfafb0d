"""The security policy of issue 7, written independently of the rule table it checks
(`genconf.security.auth.RULES`): every RPC is classified here by hand, so a new one
fails the rule-table tests until someone decides.

Tuples: test_fuzz parametrizes over the writes, in this order.
"""

from __future__ import annotations

from genconf.security import auth
from support.rpcs import Rpc

WRITE_RPC_NAMES = (
    "CreateApplication",
    "UpdateApplication",
    "RemoveApplication",
    "AddUnits",
    "RemoveUnit",
    "LabelUnit",
    "SetConfig",
    "PatchConfig",
    "AddBranch",
    "TrackBranch",
    "UntrackBranch",
    "SetBranchConfig",
    "CommitBranch",
    "AbortBranch",
    "RebaseBranch",
    "DropBranchKey",
    "ReportApplied",
    "Rollback",
    "TagVersion",
    "BumpVersion",
    "RevertGeneration",
    "CreateToken",
    "RevokeToken",
    "StartRollout",
    "PauseRollout",
    "ResumeRollout",
    "AbortRollout",
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
    "GetStatus",
    "ListVersions",
    "GetVersion",
    "LatestVersion",
    "DiffVersions",
    "KeyHistory",
    "ListGenerations",
    "GetGeneration",
    "Snapshot",
    "WatchDeltas",  # the admin feed
    "GetRollout",
    "ListRollouts",
    "ListTokens",
)
AGENT_RPC_NAMES = frozenset({"GetConfig", "WatchConfig", "ReportApplied"})
# The whole model out and in (issue 17): an export holds every secret value in clear.
ADMIN_RPC_NAMES = ("Export", "Import")
# Services only the admin may call.
ADMIN_SERVICES = frozenset({"TokenService", "TransferService"})


def policy_roles(rpc: Rpc) -> frozenset[auth.Role]:
    """Who may call ``rpc``, in the issue's words: admin everything; controller writes
    and reads; observer reads and the admin feed, no writes; agent bound to one unit,
    only GetConfig, WatchConfig and ReportApplied. Tokens are the admin's alone, and
    so are export and import (issue 17)."""
    roles = {auth.Role.ADMIN}
    if rpc.service not in ADMIN_SERVICES:
        roles.add(auth.Role.CONTROLLER)
        if rpc.name in READ_RPC_NAMES:
            roles.add(auth.Role.OBSERVER)
        if rpc.service == "AgentService" and rpc.name in AGENT_RPC_NAMES:
            roles.add(auth.Role.AGENT)
    return frozenset(roles)
