"""Hostile requests to every write RPC: each is refused with a clear status.

One server (authentication on, a minted admin token on every call, a small
``max_request_bytes``) runs in a thread of its own for the whole module, over a
small seeded model; hypothesis drives the requests from plain synchronous gRPC.
Every generated request is invalid by construction, so after each one the
database must be exactly as it was (a digest of every document), the status
must be one that names the problem (never INTERNAL or UNKNOWN) and the server
must still be SERVING. The hostile pieces are in `support.hostile`.

(Over 450 lines: `CASES`, the hostile requests of every write RPC, is one table.)
"""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import grpc
import pytest
from google.protobuf import struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import MongoClient
from support.hostile import (
    BAD_APP,
    BAD_BRANCH,
    BAD_KEY,
    BAD_UNIT,
    MAX_REQUEST,
    MISSING_APP,
    MISSING_BRANCH,
    MISSING_UNIT,
    SCHEMA,
    hostile_metadata,
    hostile_schema,
    hostile_settings,
)
from support.policy import WRITE_RPC_NAMES
from support.rpcs import RPCS, Rpc, bearer
from support.servers import BOOTSTRAP, digest
from support.threaded_server import ThreadedServer
from support.wire_bytes import length_delimited, struct, wire

from genconf.client import SyncClient
from genconf.domain.semver import SEMVER_RE
from genconf.v1 import agent_pb2, controller_pb2, history_pb2, tokens_pb2, types_pb2
from genconf.v1 import rollout_pb2 as R

Code = grpc.StatusCode
INVALID = frozenset({Code.INVALID_ARGUMENT})
NOT_FOUND = frozenset({Code.NOT_FOUND})
EXISTS = frozenset({Code.ALREADY_EXISTS})
PRECONDITION = frozenset({Code.FAILED_PRECONDITION})
ABORTED = frozenset({Code.ABORTED})
TOO_LARGE = frozenset({Code.RESOURCE_EXHAUSTED})
# Statuses that name the problem; INTERNAL and UNKNOWN never do.
CLEAR = INVALID | NOT_FOUND | EXISTS | PRECONDITION | ABORTED | TOO_LARGE

CALL_TIMEOUT = 15.0
EXAMPLES = 40

WRITES: dict[str, Rpc] = {rpc.name: rpc for rpc in RPCS if rpc.name in WRITE_RPC_NAMES}

CURRENT_VERSION = 2  # of "web" after seeding
LAST_GENERATION = 1


# -- the fuzz server and its seeded model --------------------------------------------------


@dataclass
class Fuzz:
    channel: grpc.Channel
    token: str
    mongo_client: MongoClient[dict[str, Any]]
    db_name: str

    def call(self, rpc: Rpc, payload: bytes) -> tuple[Code, str]:
        """One raw call (bytes in, bytes out: no client-side checks)."""
        method = self.channel.unary_unary(rpc.path)
        try:
            method(payload, metadata=bearer(self.token), timeout=CALL_TIMEOUT)
        except grpc.RpcError as exc:
            return exc.code(), exc.details() or ""
        return Code.OK, ""

    def refused(self, rpc: Rpc, request: Message | bytes, codes: frozenset[Code]) -> str:
        payload = request if isinstance(request, bytes) else request.SerializeToString()
        before = digest(self.mongo_client, self.db_name)
        code, details = self.call(rpc, payload)
        shown = details[:300]
        assert code != Code.OK, f"{rpc.name} accepted a hostile request: {request_text(request)}"
        assert code in CLEAR, f"{rpc.name}: {code.name} ({shown}) on {request_text(request)}"
        assert code in codes, (
            f"{rpc.name}: {code.name} ({shown}) not in {sorted(c.name for c in codes)}"
        )
        assert details, f"{rpc.name}: {code.name} without a message"
        assert digest(self.mongo_client, self.db_name) == before, f"{rpc.name} wrote something"
        health = health_pb2_grpc.HealthStub(self.channel).Check(
            health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        return details


def request_text(request: Message | bytes) -> str:
    text = repr(request) if isinstance(request, bytes) else str(request)
    return text if len(text) < 300 else text[:300] + "..."


@pytest.fixture(scope="module")
def fuzz(mongo_uri: str, mongo_client: MongoClient[dict[str, Any]]) -> Iterator[Fuzz]:
    db_name = "fz_" + uuid4().hex[:12]
    try:
        with ThreadedServer(
            mongo_uri, db_name, admin_token=BOOTSTRAP, max_request_bytes=MAX_REQUEST
        ) as srv:
            with SyncClient(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin:
                admin.create_application("web", schema=SCHEMA, units=3)
                admin.create_application("db", units=1)
                admin.set_config("web", {"port": 8080})
                admin.add_branch("b")
                admin.track_branch("b", units=["web/1"])
                admin.set_branch_config("b", "web", {"port": 9090})
                admin.add_branch("empty")
                tagged = admin.tag_version("web", "1.0.0", version=1)
                token = admin.create_token("admin", description="fuzz").token
                web = admin.get_application("web", min_revision=tagged.revision)
                assert web.version == CURRENT_VERSION
                assert admin.list_generations().generations[0].id == LAST_GENERATION
            with grpc.insecure_channel(srv.address) as channel:
                yield Fuzz(channel, token, mongo_client, db_name)
    finally:
        mongo_client.drop_database(db_name)


# -- hostile pieces -------------------------------------------------------------------------

PORT_1 = struct_pb2.Struct(fields={"port": struct_pb2.Value(number_value=1)})
Case = tuple[Message | bytes, frozenset[Code]]


def case(request: Message | bytes, codes: frozenset[Code]) -> Case:
    return request, codes


# Label keys and values Kubernetes would refuse (`genconf.domain.labels`), written out here.
BAD_LABEL_KEY = st.one_of(
    st.sampled_from(["", "-a", "a-", "a b", "a" * 64, "Upper.Case/x", "a/b/c", "/a", "z\u00f6ne"]),
    st.text(max_size=20).filter(  # no "/": "a/b" is a prefix and a name
        lambda k: "/" not in k and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", k) is None
    ),
)
BAD_LABEL_VALUE = st.one_of(
    st.sampled_from(["a b", "-a", "a-", "a" * 64, "a=b", "\u00e9"]),
    st.text(min_size=1, max_size=20).filter(
        lambda v: re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", v) is None
    ),
)


# -- per-RPC hostile requests ---------------------------------------------------------------

C = controller_pb2
H = history_pb2


def unit_list_refusals(request: Callable[..., Message], unit: str) -> list[st.SearchStrategy[Case]]:
    """The refusals TrackBranch and UntrackBranch share: bad or missing branch names
    (``unit`` is one the seed gives), bad unit and application names."""
    return [
        BAD_BRANCH.map(lambda n: case(request(branch=n, units=[unit]), INVALID)),
        MISSING_BRANCH.map(lambda n: case(request(branch=n, units=[unit]), NOT_FOUND)),
        st.lists(BAD_UNIT, min_size=1, max_size=3).map(
            lambda us: case(request(branch="b", units=us), INVALID)
        ),
        st.lists(BAD_APP, min_size=1, max_size=3).map(
            lambda aps: case(request(branch="b", applications=aps), INVALID)
        ),
    ]


def rollout(**fields: Any) -> R.StartRolloutRequest:
    """A StartRollout of branch "b" to "web" in one step of one unit, but for ``fields``."""
    request: dict[str, Any] = {"branch": "b", "application": "web"}
    request["steps"] = [R.RolloutSize(units=1)]
    request.update(fields)
    return R.StartRolloutRequest(**request)


def rollout_action_refusals(cls: Callable[..., Message]) -> list[st.SearchStrategy[Case]]:
    """Pause, resume and abort: a bad branch name, a branch without a rollout, a
    reason too long."""
    return [
        BAD_BRANCH.map(lambda n: case(cls(branch=n), INVALID)),
        MISSING_BRANCH.map(lambda n: case(cls(branch=n), NOT_FOUND)),
        st.just(case(cls(branch="b"), NOT_FOUND)),
        st.just(case(cls(branch="b", reason="x" * 2000), INVALID)),
    ]


CASES: dict[str, st.SearchStrategy[Case]] = {
    "CreateApplication": st.one_of(
        BAD_APP.map(lambda n: case(C.CreateApplicationRequest(name=n), INVALID)),
        st.just(case(C.CreateApplicationRequest(name="web"), EXISTS)),
        hostile_schema().map(
            lambda s: case(wire(C.CreateApplicationRequest(name="fz-new"), *s), INVALID)
        ),
        st.one_of(st.integers(-(2**31), -1), st.integers(1001, 2**31 - 1)).map(
            lambda n: case(C.CreateApplicationRequest(name="fz-new", units=n), INVALID)
        ),
    ),
    "UpdateApplication": st.one_of(
        BAD_APP.map(lambda n: case(C.UpdateApplicationRequest(name=n, charm="c"), INVALID)),
        MISSING_APP.map(lambda n: case(C.UpdateApplicationRequest(name=n, charm="c"), NOT_FOUND)),
        hostile_schema().map(
            lambda s: case(
                wire(C.UpdateApplicationRequest(name="web", replace_schema=True), *s), INVALID
            )
        ),
        # Master sets port=8080 and branch b sets it too: the new schema must keep it an int.
        st.sampled_from(["string", "boolean", "object", "list"]).map(
            lambda t: case(
                C.UpdateApplicationRequest(
                    name="web", schema={"port": types_pb2.OptionSchema(type=t)}, replace_schema=True
                ),
                INVALID | PRECONDITION,
            )
        ),
        st.just(case(C.UpdateApplicationRequest(name="web", charm=""), INVALID)),
        st.just(case(C.UpdateApplicationRequest(name="web"), INVALID)),
    ),
    "RemoveApplication": st.one_of(
        BAD_APP.map(lambda n: case(C.RemoveApplicationRequest(name=n), INVALID)),
        MISSING_APP.map(lambda n: case(C.RemoveApplicationRequest(name=n), NOT_FOUND)),
    ),
    "AddUnits": st.one_of(
        BAD_APP.map(lambda n: case(C.AddUnitsRequest(application=n, count=1), INVALID)),
        MISSING_APP.map(lambda n: case(C.AddUnitsRequest(application=n, count=1), NOT_FOUND)),
        st.one_of(st.integers(-(2**31), -1), st.integers(1001, 2**31 - 1)).map(
            lambda n: case(C.AddUnitsRequest(application="web", count=n), INVALID)
        ),
        st.lists(BAD_UNIT, min_size=1, max_size=3).map(
            lambda ns: case(C.AddUnitsRequest(application="web", names=ns), INVALID)
        ),
        st.sampled_from(["db/5", "nope/0"]).map(
            lambda n: case(C.AddUnitsRequest(application="web", names=[n]), INVALID)
        ),
        st.just(case(C.AddUnitsRequest(application="web", names=["web/0"]), EXISTS)),
        st.just(case(C.AddUnitsRequest(application="web", count=1, names=["web/7"]), INVALID)),
        st.just(case(C.AddUnitsRequest(application="web"), INVALID)),
        BAD_LABEL_KEY.map(
            lambda k: case(C.AddUnitsRequest(application="web", count=1, labels={k: "a"}), INVALID)
        ),
    ),
    "RemoveUnit": st.one_of(
        BAD_UNIT.map(lambda n: case(C.RemoveUnitRequest(name=n), INVALID)),
        MISSING_UNIT.map(lambda n: case(C.RemoveUnitRequest(name=n), NOT_FOUND)),
    ),
    "LabelUnit": st.one_of(
        BAD_UNIT.map(lambda u: case(C.LabelUnitRequest(unit=u, set={"zone": "a"}), INVALID)),
        MISSING_UNIT.map(lambda u: case(C.LabelUnitRequest(unit=u, set={"zone": "a"}), NOT_FOUND)),
        BAD_LABEL_KEY.map(lambda k: case(C.LabelUnitRequest(unit="web/0", set={k: "a"}), INVALID)),
        BAD_LABEL_KEY.map(lambda k: case(C.LabelUnitRequest(unit="web/0", remove=[k]), INVALID)),
        BAD_LABEL_VALUE.map(
            lambda v: case(C.LabelUnitRequest(unit="web/0", set={"zone": v}), INVALID)
        ),
        st.just(case(C.LabelUnitRequest(unit="web/0"), INVALID)),
        st.just(
            case(C.LabelUnitRequest(unit="web/0", set={"zone": "a"}, remove=["zone"]), INVALID)
        ),
        st.just(
            case(C.LabelUnitRequest(unit="web/0", set={f"k{n}": "v" for n in range(65)}), INVALID)
        ),
    ),
    "SetConfig": st.one_of(
        BAD_APP.map(lambda n: case(C.SetConfigRequest(application=n, set=PORT_1), INVALID)),
        MISSING_APP.map(lambda n: case(C.SetConfigRequest(application=n, set=PORT_1), NOT_FOUND)),
        hostile_settings().map(
            lambda v: case(wire(C.SetConfigRequest(application="web"), ("set", struct(v))), INVALID)
        ),
        st.lists(BAD_KEY, min_size=1, max_size=3).map(
            lambda ks: case(C.SetConfigRequest(application="web", unset=ks), INVALID)
        ),
        hostile_metadata().map(
            lambda m: case(
                wire(C.SetConfigRequest(application="web", set=PORT_1), ("metadata", m)),
                INVALID,
            )
        ),
        st.integers(-(2**63), 2**63 - 1)
        .filter(lambda v: v != CURRENT_VERSION)
        .map(
            lambda v: case(
                C.SetConfigRequest(application="web", set=PORT_1, expected_version=v),
                ABORTED | INVALID,
            )
        ),
        st.just(case(C.SetConfigRequest(application="web"), INVALID)),
    ),
    "PatchConfig": st.one_of(
        BAD_APP.map(lambda n: case(C.PatchConfigRequest(application=n, key="name"), INVALID)),
        MISSING_APP.map(lambda n: case(C.PatchConfigRequest(application=n, key="name"), NOT_FOUND)),
        BAD_KEY.map(lambda k: case(C.PatchConfigRequest(application="web", key=k), INVALID)),
        # Not a diff at all, or a diff for text "name" does not hold (it has no value).
        st.text(max_size=200).map(
            lambda d: case(
                C.PatchConfigRequest(application="web", key="name", diff=d),
                INVALID | PRECONDITION,
            )
        ),
        st.just(
            case(
                C.PatchConfigRequest(application="web", key="port", diff="@@ -1 +1 @@\n-a\n+b\n"),
                PRECONDITION,
            )
        ),
        MISSING_BRANCH.map(
            lambda n: case(C.PatchConfigRequest(application="web", key="name", branch=n), NOT_FOUND)
        ),
    ),
    "AddBranch": st.one_of(
        BAD_BRANCH.map(lambda n: case(C.AddBranchRequest(name=n), INVALID)),
        st.sampled_from(["b", "empty"]).map(lambda n: case(C.AddBranchRequest(name=n), EXISTS)),
        st.one_of(st.integers(-(2**63), -1), st.integers(3650 * 86400 + 1, 2**63 - 1)).map(
            lambda s: case(C.AddBranchRequest(name="fz-new", expires_in_seconds=s), INVALID)
        ),
    ),
    "TrackBranch": st.one_of(
        *unit_list_refusals(C.TrackBranchRequest, "web/0"),
        MISSING_UNIT.map(lambda u: case(C.TrackBranchRequest(branch="b", units=[u]), NOT_FOUND)),
        st.integers(-(2**31), -1).map(
            lambda n: case(C.TrackBranchRequest(branch="b", count=n, application="web"), INVALID)
        ),
        st.just(case(C.TrackBranchRequest(branch="b", count=1), INVALID)),
        st.just(case(C.TrackBranchRequest(branch="b"), INVALID)),
        # web/1 tracks b already: it cannot track another branch too.
        st.just(case(C.TrackBranchRequest(branch="empty", units=["web/1"]), PRECONDITION)),
        st.floats(allow_nan=True)
        .filter(lambda p: not 0 < p <= 100 and p != 0)
        .map(
            lambda p: case(C.TrackBranchRequest(branch="b", application="web", percent=p), INVALID)
        ),
        st.just(case(C.TrackBranchRequest(branch="b", percent=10), INVALID)),
        st.just(
            case(C.TrackBranchRequest(branch="b", application="web", percent=10, count=1), INVALID)
        ),
        st.text(max_size=40)
        .filter(lambda t: "=" not in t and t.strip() != "")  # no term is KEY=VALUE
        .map(
            lambda t: case(C.TrackBranchRequest(branch="b", application="web", selector=t), INVALID)
        ),
        MISSING_APP.map(
            lambda n: case(C.TrackBranchRequest(branch="b", application=n, percent=10), NOT_FOUND)
        ),
    ),
    "UntrackBranch": st.one_of(
        *unit_list_refusals(C.UntrackBranchRequest, "web/1"),
        st.just(case(C.UntrackBranchRequest(branch="b", units=["web/0"]), PRECONDITION)),
        st.just(case(C.UntrackBranchRequest(branch="b"), INVALID)),
    ),
    "SetBranchConfig": st.one_of(
        BAD_BRANCH.map(
            lambda n: case(
                C.SetBranchConfigRequest(branch=n, application="web", set=PORT_1),
                INVALID,
            )
        ),
        MISSING_BRANCH.map(
            lambda n: case(
                C.SetBranchConfigRequest(branch=n, application="web", set=PORT_1),
                NOT_FOUND,
            )
        ),
        BAD_APP.map(
            lambda n: case(
                C.SetBranchConfigRequest(branch="b", application=n, set=PORT_1),
                INVALID,
            )
        ),
        MISSING_APP.map(
            lambda n: case(
                C.SetBranchConfigRequest(branch="b", application=n, set=PORT_1),
                NOT_FOUND,
            )
        ),
        hostile_settings().map(
            lambda v: case(
                wire(C.SetBranchConfigRequest(branch="b", application="web"), ("set", struct(v))),
                INVALID,
            )
        ),
        st.lists(BAD_KEY, min_size=1, max_size=3).map(
            lambda ks: case(
                C.SetBranchConfigRequest(branch="b", application="web", unset=ks), INVALID
            )
        ),
    ),
    "CommitBranch": st.one_of(
        BAD_BRANCH.map(lambda n: case(C.CommitBranchRequest(branch=n), INVALID)),
        MISSING_BRANCH.map(lambda n: case(C.CommitBranchRequest(branch=n), NOT_FOUND)),
        hostile_metadata().map(
            lambda m: case(
                wire(C.CommitBranchRequest(branch="b", force=True), ("metadata", m)), INVALID
            )
        ),
        # web/1 never reported b's config as applied.
        st.just(case(C.CommitBranchRequest(branch="b", require_applied=True), PRECONDITION)),
    ),
    "AbortBranch": st.one_of(
        BAD_BRANCH.map(lambda n: case(C.AbortBranchRequest(branch=n), INVALID)),
        MISSING_BRANCH.map(lambda n: case(C.AbortBranchRequest(branch=n), NOT_FOUND)),
        st.just(case(C.AbortBranchRequest(branch="b"), PRECONDITION)),  # web/1 tracks it
    ),
    # b stages web.port only; empty stages nothing.
    "RebaseBranch": st.one_of(
        BAD_BRANCH.map(lambda n: case(C.RebaseBranchRequest(name=n), INVALID)),
        MISSING_BRANCH.map(lambda n: case(C.RebaseBranchRequest(name=n), NOT_FOUND)),
        st.just(case(C.RebaseBranchRequest(name="empty"), PRECONDITION)),
        st.lists(st.text(max_size=20).filter(lambda k: k != "port"), min_size=1, max_size=3).map(
            lambda ks: case(C.RebaseBranchRequest(name="b", keys=ks), NOT_FOUND)
        ),
        st.lists(BAD_APP, min_size=1, max_size=3).map(
            lambda aps: case(C.RebaseBranchRequest(name="b", applications=aps), INVALID)
        ),
        st.one_of(MISSING_APP, st.just("db")).map(
            lambda n: case(C.RebaseBranchRequest(name="b", applications=[n]), NOT_FOUND)
        ),
    ),
    "DropBranchKey": st.one_of(
        BAD_BRANCH.map(
            lambda n: case(C.DropBranchKeyRequest(name=n, application="web", key="port"), INVALID)
        ),
        MISSING_BRANCH.map(
            lambda n: case(C.DropBranchKeyRequest(name=n, application="web", key="port"), NOT_FOUND)
        ),
        BAD_APP.map(
            lambda n: case(C.DropBranchKeyRequest(name="b", application=n, key="port"), INVALID)
        ),
        st.one_of(MISSING_APP, st.just("db")).map(
            lambda n: case(C.DropBranchKeyRequest(name="b", application=n, key="port"), NOT_FOUND)
        ),
        st.text(max_size=20)
        .filter(lambda k: k != "port")
        .map(
            lambda k: case(
                C.DropBranchKeyRequest(name="b", application="web", key=k), INVALID | NOT_FOUND
            )
        ),
    ),
    "ReportApplied": st.one_of(
        BAD_UNIT.map(
            lambda u: case(agent_pb2.ReportAppliedRequest(unit=u, hash="0" * 64), INVALID)
        ),
        MISSING_UNIT.map(
            lambda u: case(agent_pb2.ReportAppliedRequest(unit=u, hash="0" * 64), NOT_FOUND)
        ),
        st.text(max_size=80)
        .filter(lambda h: not (len(h) == 64 and set(h) <= set(string.hexdigits.lower())))
        .map(lambda h: case(agent_pb2.ReportAppliedRequest(unit="web/0", hash=h), INVALID)),
    ),
    "Rollback": st.one_of(
        BAD_APP.map(lambda n: case(H.RollbackRequest(application=n, to_version=1), INVALID)),
        MISSING_APP.map(lambda n: case(H.RollbackRequest(application=n, to_version=1), NOT_FOUND)),
        st.integers(-(2**63), 0).map(
            lambda v: case(H.RollbackRequest(application="web", to_version=v), INVALID)
        ),
        st.integers(CURRENT_VERSION + 1, 2**63 - 1).map(
            lambda v: case(H.RollbackRequest(application="web", to_version=v), NOT_FOUND)
        ),
        st.integers(-(2**63), 2**63 - 1)
        .filter(lambda v: v != CURRENT_VERSION)
        .map(
            lambda v: case(
                H.RollbackRequest(application="web", to_version=1, expected_version=v),
                ABORTED | INVALID,
            )
        ),
    ),
    "TagVersion": st.one_of(
        st.text(max_size=40)
        .filter(lambda t: SEMVER_RE.match(t) is None)
        .map(lambda t: case(H.TagVersionRequest(application="web", label=t), INVALID)),
        st.integers(CURRENT_VERSION + 1, 2**63 - 1).map(
            lambda v: case(
                H.TagVersionRequest(application="web", version=v, label="2.0.0"), NOT_FOUND
            )
        ),
        st.integers(-(2**63), -1).map(
            lambda v: case(
                H.TagVersionRequest(application="web", version=v, label="2.0.0"),
                INVALID | NOT_FOUND,
            )
        ),
        st.just(case(H.TagVersionRequest(application="web", version=2, label="1.0.0"), EXISTS)),
        BAD_APP.map(lambda n: case(H.TagVersionRequest(application=n, label="2.0.0"), INVALID)),
        MISSING_APP.map(
            lambda n: case(H.TagVersionRequest(application=n, label="2.0.0"), NOT_FOUND)
        ),
    ),
    "BumpVersion": st.one_of(
        st.text(max_size=20)
        .filter(lambda p: p not in {"major", "minor", "patch"})
        .map(lambda p: case(H.BumpVersionRequest(application="web", part=p), INVALID)),
        BAD_APP.map(lambda n: case(H.BumpVersionRequest(application=n, part="patch"), INVALID)),
        MISSING_APP.map(
            lambda n: case(H.BumpVersionRequest(application=n, part="patch"), NOT_FOUND)
        ),
        st.integers(CURRENT_VERSION + 1, 2**63 - 1).map(
            lambda v: case(
                H.BumpVersionRequest(application="web", part="patch", version=v), NOT_FOUND
            )
        ),
    ),
    "RevertGeneration": st.one_of(
        st.integers(-(2**63), 0).map(
            lambda g: case(H.RevertGenerationRequest(id=g), INVALID | NOT_FOUND)
        ),
        st.integers(LAST_GENERATION + 1, 2**63 - 1).map(
            lambda g: case(H.RevertGenerationRequest(id=g), NOT_FOUND)
        ),
    ),
    "CreateToken": st.one_of(
        st.text(max_size=20)
        .filter(lambda r: r not in {"admin", "controller", "observer", "agent"})
        .map(lambda r: case(tokens_pb2.CreateTokenRequest(role=r), INVALID)),
        st.just(case(tokens_pb2.CreateTokenRequest(role="agent"), INVALID)),
        BAD_UNIT.filter(bool).map(
            lambda u: case(tokens_pb2.CreateTokenRequest(role="agent", unit=u), INVALID)
        ),
        st.sampled_from(["admin", "controller", "observer"]).map(
            lambda r: case(tokens_pb2.CreateTokenRequest(role=r, unit="web/0"), INVALID)
        ),
        st.one_of(st.integers(-(2**63), -1), st.integers(3650 * 86400 + 1, 2**63 - 1)).map(
            lambda s: case(
                tokens_pb2.CreateTokenRequest(role="observer", expires_in_seconds=s), INVALID
            )
        ),
    ),
    "RevokeToken": st.one_of(
        st.text(max_size=40)
        .filter(lambda t: re.fullmatch(r"[0-9a-f]{16}", t) is None)
        .map(lambda t: case(tokens_pb2.RevokeTokenRequest(id=t), INVALID)),
        st.text(alphabet="0123456789abcdef", min_size=16, max_size=16).map(
            lambda t: case(tokens_pb2.RevokeTokenRequest(id=t), NOT_FOUND)
        ),
    ),
    "StartRollout": st.one_of(
        BAD_BRANCH.map(lambda n: case(rollout(branch=n), INVALID)),
        MISSING_BRANCH.map(lambda n: case(rollout(branch=n), NOT_FOUND)),
        BAD_APP.map(lambda n: case(rollout(application=n), INVALID)),
        MISSING_APP.map(lambda n: case(rollout(application=n), NOT_FOUND)),
        st.just(case(rollout(steps=[]), INVALID)),
        st.integers(-(2**63), 0).map(
            lambda u: case(rollout(steps=[R.RolloutSize(units=u)]), INVALID)
        ),
        st.floats(allow_nan=True)
        .filter(lambda p: not 0 < p <= 100)
        .map(lambda p: case(rollout(steps=[R.RolloutSize(percent=p)]), INVALID)),
        # Steps that do not grow.
        st.lists(st.integers(1, 50), min_size=2, max_size=5)
        .filter(lambda xs: any(b <= a for a, b in itertools.pairwise(xs)))
        .map(lambda xs: case(rollout(steps=[R.RolloutSize(units=x) for x in xs]), INVALID)),
        st.integers(51, 120).map(
            lambda n: case(
                rollout(steps=[R.RolloutSize(units=i) for i in range(1, n + 1)]), INVALID
            )
        ),
        st.floats(allow_nan=True)
        .filter(lambda b: not 0 <= b <= 7 * 86400)
        .map(lambda b: case(rollout(bake_seconds=b), INVALID)),
        st.text(max_size=20)
        .filter(lambda t: t not in ("", "pause", "rollback"))
        .map(lambda t: case(rollout(on_failure=t), INVALID)),
        st.text(max_size=40)
        .filter(lambda t: "=" not in t and t.strip() != "")
        .map(lambda t: case(rollout(selector=t), INVALID)),
        st.integers(-(2**63), -1).map(
            lambda u: case(rollout(max_failed=R.RolloutSize(units=u)), INVALID)
        ),
        st.just(case(rollout(reason="x" * 2000), INVALID)),
        # "empty" stages no change to web: nothing to roll out.
        st.just(case(rollout(branch="empty"), PRECONDITION)),
    ),
    "PauseRollout": st.one_of(*rollout_action_refusals(R.PauseRolloutRequest)),
    "ResumeRollout": st.one_of(*rollout_action_refusals(R.ResumeRolloutRequest)),
    "AbortRollout": st.one_of(*rollout_action_refusals(R.AbortRolloutRequest)),
}


def test_every_write_rpc_is_fuzzed() -> None:
    assert set(WRITES) == set(WRITE_RPC_NAMES), "a write RPC is missing from genconf.v1"
    assert set(CASES) == set(WRITE_RPC_NAMES)
    for rpc in WRITES.values():  # the raw-bytes tests poison a string field of each
        assert string_fields(rpc), f"{rpc.name} has no string field"


@pytest.mark.parametrize("name", WRITE_RPC_NAMES)
@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hostile_requests_are_refused(fuzz: Fuzz, name: str, data: st.DataObject) -> None:
    request, codes = data.draw(CASES[name], label="request")
    fuzz.refused(WRITES[name], request, codes)


# -- bytes no well-behaved client sends ----------------------------------------------------


def string_fields(rpc: Rpc) -> list[FieldDescriptor]:
    return [f for f in rpc.request_type.DESCRIPTOR.fields if f.type == FieldDescriptor.TYPE_STRING]


INVALID_UTF8 = st.one_of(
    st.sampled_from([b"\xff", b"\xc0\xaf", b"web\x80/0", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]),
    st.binary(min_size=1, max_size=40).filter(lambda b: not _utf8(b)),
)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


STRING_FIELDS = [(name, f.name) for name in WRITE_RPC_NAMES for f in string_fields(WRITES[name])]


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(target=st.sampled_from(STRING_FIELDS), bad=INVALID_UTF8, valid_first=st.booleans())
def test_invalid_utf8_in_any_string_field_is_invalid_argument(
    fuzz: Fuzz, target: tuple[str, str], bad: bytes, valid_first: bool
) -> None:
    name, field_name = target
    rpc = WRITES[name]
    number = rpc.request_type.DESCRIPTOR.fields_by_name[field_name].number
    payload = length_delimited(number, bad)
    if valid_first:  # after a valid value of the same field: the last one wins in protobuf
        payload = length_delimited(number, b"web") + payload
    details = fuzz.refused(rpc, payload, INVALID)
    assert "is not valid" in details  # refused while decoding, by the guard


@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow])
@given(
    target=st.sampled_from(["SetConfig", "SetBranchConfig", "CommitBranch", "CreateApplication"]),
    bad=INVALID_UTF8,
    in_key=st.booleans(),
)
def test_invalid_utf8_inside_nested_messages_is_invalid_argument(
    fuzz: Fuzz, target: str, bad: bytes, in_key: bool
) -> None:
    """In a Struct's key or string value (config, metadata), or a schema's key or type."""
    if target == "CreateApplication":  # map<string, OptionSchema>
        key, type_ = (bad, b"int") if in_key else (b"k", bad)
        field = "schema"
        entry = length_delimited(1, key) + length_delimited(2, length_delimited(1, type_))
    else:  # Struct: map<string, Value> as field 1; Value.string_value is field 3
        key, text = (bad, b"ok") if in_key else (b"name", bad)
        field = "metadata" if target == "CommitBranch" else "set"
        entry = length_delimited(
            1, length_delimited(1, key) + length_delimited(2, length_delimited(3, text))
        )
    details = fuzz.refused(WRITES[target], wire(NESTED_BASE[target], (field, entry)), INVALID)
    assert "is not valid" in details  # refused while decoding, by the guard


NESTED_BASE: dict[str, Message] = {
    "SetConfig": C.SetConfigRequest(application="web"),
    "SetBranchConfig": C.SetBranchConfigRequest(branch="b", application="web"),
    "CommitBranch": C.CommitBranchRequest(branch="b"),
    "CreateApplication": C.CreateApplicationRequest(name="fz-new"),
}


def test_protobuf_garbage_is_invalid_argument(fuzz: Fuzz) -> None:
    for name in WRITE_RPC_NAMES:
        for payload in (b"\xff\xff\xff\xff", b"\x0a\x05ab", b"\x08" + b"\xff" * 11):
            fuzz.refused(WRITES[name], payload, INVALID)


@pytest.mark.parametrize("name", WRITE_RPC_NAMES)
def test_requests_over_max_request_bytes_are_resource_exhausted(fuzz: Fuzz, name: str) -> None:
    rpc = WRITES[name]
    field = string_fields(rpc)[0]
    payload = length_delimited(field.number, b"a" * (MAX_REQUEST + 1))
    fuzz.refused(rpc, payload, TOO_LARGE)
