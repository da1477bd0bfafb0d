"""Hostile requests to every write RPC: each is refused with a clear status.

One server (authentication on, a minted admin token on every call, a small
``max_request_bytes``) runs in a thread of its own for the whole module, over a
small seeded model; hypothesis drives the requests from plain synchronous gRPC.
Every generated request is invalid by construction, so after each one the
database must be exactly as it was (a digest of every document), the status
must be one that names the problem (never INTERNAL or UNKNOWN) and the server
must still be SERVING.
"""

from __future__ import annotations

import asyncio
import math
import re
import string
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from struct import pack
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
from support.servers import digest, running_server
from test_security import BOOTSTRAP, RPCS, WRITE_RPC_NAMES, Rpc, bearer

from genconf.api.server import RunningServer
from genconf.client import SyncClient
from genconf.domain import model
from genconf.v1 import agent_pb2, controller_pb2, history_pb2, tokens_pb2, types_pb2

Code = grpc.StatusCode
INVALID = frozenset({Code.INVALID_ARGUMENT})
NOT_FOUND = frozenset({Code.NOT_FOUND})
EXISTS = frozenset({Code.ALREADY_EXISTS})
PRECONDITION = frozenset({Code.FAILED_PRECONDITION})
ABORTED = frozenset({Code.ABORTED})
TOO_LARGE = frozenset({Code.RESOURCE_EXHAUSTED})
# Statuses that name the problem; INTERNAL and UNKNOWN never do.
CLEAR = INVALID | NOT_FOUND | EXISTS | PRECONDITION | ABORTED | TOO_LARGE

MAX_REQUEST = 256 * 1024  # the fuzz server's max_request_bytes
CALL_TIMEOUT = 15.0
EXAMPLES = 40

WRITES: dict[str, Rpc] = {rpc.name: rpc for rpc in RPCS if rpc.name in WRITE_RPC_NAMES}

SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 80},
    "ratio": {"type": "float"},
    "flag": {"type": "boolean"},
    "name": {"type": "string"},
    "obj": {"type": "object"},
    "items": {"type": "list"},
    "password": {"type": "string", "secret": True},
}
CURRENT_VERSION = 2  # of "web" after seeding
LAST_GENERATION = 1


# -- the server, in a thread of its own --------------------------------------------------


class ThreadedServer:
    """`servers.running_server` on an event loop in a background thread, so that
    synchronous hypothesis tests can call it while it keeps serving."""

    def __init__(self, mongo_uri: str, db_name: str, **overrides: Any) -> None:
        self.args = (mongo_uri, db_name)
        self.overrides = overrides
        self.ready = threading.Event()
        self.server: RunningServer | None = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()  # guards the three below
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self._thread = threading.Thread(target=self._run, name="fuzz-server", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        stop = asyncio.Event()
        with self._lock:
            self._loop, self._stop = asyncio.get_running_loop(), stop
            if self._stop_requested:
                stop.set()
        async with running_server(*self.args, **self.overrides) as srv:
            self.server = srv
            self.ready.set()
            await stop.wait()

    def _request_stop(self) -> None:
        """Stop the server whenever it gets to serving (now, if it is)."""
        with self._lock:
            self._stop_requested = True
            if self._loop is not None and self._stop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._stop.set)
                except RuntimeError:  # the loop is closed: the thread has ended
                    pass

    def _stop_thread(self) -> None:
        self._request_stop()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the fuzz server did not stop"

    def __enter__(self) -> RunningServer:
        self._thread.start()
        try:
            assert self.ready.wait(60), "the fuzz server did not start in time"
            if self.server is None:
                raise RuntimeError("the fuzz server failed to start") from self.error
        except BaseException:
            self._stop_thread()
            raise
        return self.server

    def __exit__(self, *exc: object) -> None:
        self._stop_thread()
        if self.error is not None:
            raise self.error


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

PATH_LIKE = [
    "../web/0",
    "web/0/../1",
    "web/-1",
    "./web/0",
    "/web/0",
    "web//0",
    "web/0/",
    "web/01",
    "web/+1",
    "web/0x1",
    "web\\0",
    "web/0\x00",
    "web/1e3",
    "web/ 0",
    "web/\u0663",  # an Arabic-Indic digit three
    "web/9999999999",
    "WEB/0",
    "web/0\n",
    "%2e%2e/web/0",
    "web/0;drop",
    "..",
    ".",
    "",
    " ",
    "$where",
    "web.0",
    "a" * 64,
    "web\u202e0/",  # right-to-left override
    "we\u0000b",
    "web\t",
    "\u00e9t\u00e9",
    "\U0001f600",
]
CONTROL = st.characters(min_codepoint=0, max_codepoint=31) | st.sampled_from(
    ["\x7f", "\u2028", "\ufeff", "\u200b"]
)


def bad_text(valid: Callable[[str], bool]) -> st.SearchStrategy[str]:
    """Text that ``valid`` refuses: path-like names, control characters, anything."""
    with_control = st.tuples(st.text(max_size=10), CONTROL, st.text(max_size=10)).map("".join)
    return st.one_of(st.sampled_from(PATH_LIKE), with_control, st.text(max_size=80)).filter(
        lambda s: not valid(s)
    )


def matches(pattern: Any) -> Callable[[str], bool]:
    return lambda s: pattern.match(s) is not None


BAD_APP = bad_text(matches(model.APP_NAME_RE))
BAD_UNIT = bad_text(matches(model.UNIT_NAME_RE))
BAD_BRANCH = bad_text(matches(model.BRANCH_NAME_RE))
BAD_KEY = bad_text(matches(model.KEY_RE))
MISSING_APP = st.sampled_from(["nope", "web2", "x", "db-0", "a" * 63])
MISSING_UNIT = st.sampled_from(["web/3", "web/999999999", "nope/0", "db/1"])
MISSING_BRANCH = st.sampled_from(["nope", "0", "b.1", "b_", "a" * 63])
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def nested(depth: int, leaf: Any, as_list: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if as_list else {"k": value}
    return value


# Deeper than the model allows; past ~33 levels also deeper than protobuf parses.
DEEP = st.builds(
    nested,
    st.one_of(st.integers(model.MAX_DEPTH + 1, 40), st.integers(41, 300)),
    st.sampled_from([1, "x", None]),
    st.booleans(),
)
HUGE_TEXT = st.integers(model.MAX_VALUE_BYTES + 1, MAX_REQUEST - 4096).map(lambda n: "x" * n)
BAD_OBJECT = st.one_of(
    DEEP.map(lambda v: {"deep": v}),
    NON_FINITE.map(lambda v: {"n": v}),
    st.sampled_from(["$set", "a.b", "", "\x00", "$"]).map(lambda k: {k: 1}),
    HUGE_TEXT.map(lambda v: {"big": v}),
)

# A value of the wrong type for each key of SCHEMA.
WRONG_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "port": st.one_of(
        st.text(max_size=5), st.booleans(), st.sampled_from([1.5, -0.25, 2.0**70, [], {}])
    ),
    "ratio": st.one_of(st.text(max_size=5), st.booleans(), st.sampled_from([[], {}])),
    "flag": st.one_of(st.text(max_size=5), st.sampled_from([0, 1, 0.5, [], {}])),
    "name": st.one_of(st.integers(-5, 5), st.booleans(), st.sampled_from([[], {}, 1.5])),
    "obj": st.one_of(st.text(max_size=5), st.integers(-5, 5), st.booleans(), st.just([])),
    "items": st.one_of(st.text(max_size=5), st.integers(-5, 5), st.booleans(), st.just({})),
    "password": st.one_of(st.integers(-5, 5), st.booleans(), st.just([])),
}
HOSTILE_ENTRY: st.SearchStrategy[tuple[str, Any]] = st.one_of(
    st.sampled_from(sorted(WRONG_TYPE)).flatmap(lambda k: st.tuples(st.just(k), WRONG_TYPE[k])),
    st.tuples(st.sampled_from(["port", "ratio"]), NON_FINITE),
    st.tuples(st.sampled_from(["name", "password"]), HUGE_TEXT),
    st.tuples(st.just("obj"), BAD_OBJECT),
    st.tuples(st.just("items"), st.one_of(DEEP.map(lambda v: [v]), NON_FINITE.map(lambda v: [v]))),
    st.tuples(BAD_KEY, st.integers(0, 5)),
    st.tuples(st.sampled_from(["unknown", "Port", "port_", "_"]), st.integers(0, 5)),
)
VALID_ENTRY = st.sampled_from(
    [("port", 8081), ("ratio", 0.5), ("flag", True), ("name", "n"), ("items", [1])]
)


@st.composite
def hostile_settings(draw: st.DrawFn) -> dict[str, Any]:
    """A set of config values with at least one that must be refused."""
    if draw(st.integers(0, 9)) == 0:  # too many keys
        return {f"k{i}": i for i in range(model.MAX_KEYS + 1 + draw(st.integers(0, 50)))}
    values = dict(draw(st.lists(VALID_ENTRY, max_size=3)))
    key, value = draw(HOSTILE_ENTRY)
    values[key] = value
    return values


# Requests are built as protobuf wire bytes where they hold hostile JSON values:
# protobuf's own builders refuse to nest deeper than the parser's limit, and the
# usual converters refuse NaN; a hostile client does neither.


def wire(request: Message, *fields: tuple[str, bytes]) -> bytes:
    """``request`` serialized, with length-delimited ``fields`` (by name) appended."""
    out = request.SerializeToString()
    for name, payload in fields:
        out += length_delimited(request.DESCRIPTOR.fields_by_name[name].number, payload)
    return out


def struct(values: Mapping[str, Any]) -> bytes:
    """A google.protobuf.Struct's wire bytes."""
    return b"".join(
        length_delimited(1, length_delimited(1, key.encode()) + length_delimited(2, value(v)))
        for key, v in values.items()
    )


def value(v: Any) -> bytes:
    """A google.protobuf.Value's wire bytes (NaN, Infinity and any depth included)."""
    if v is None:
        return varint(1 << 3) + varint(0)
    if isinstance(v, bool):
        return varint(4 << 3) + varint(int(v))
    if isinstance(v, (int, float)):
        return varint(2 << 3 | 1) + pack("<d", float(v))
    if isinstance(v, str):
        return length_delimited(3, v.encode())
    if isinstance(v, Mapping):
        return length_delimited(5, struct(v))
    return length_delimited(6, b"".join(length_delimited(1, value(x)) for x in v))


def option(type_: str, *default: Any) -> bytes:
    """An OptionSchema's wire bytes (with a default when one is given)."""
    return length_delimited(1, type_.encode()) + b"".join(
        length_delimited(2, value(d)) for d in default
    )


@st.composite
def hostile_schema(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    """A schema (map entries for `wire`) with at least one option that must be refused."""
    schema = {"ok": option("int", 1)} if draw(st.booleans()) else {}
    kind = draw(st.integers(0, 7))
    if kind == 0:
        schema[draw(BAD_KEY)] = option("int")
    elif kind == 1:
        bad_type = draw(
            st.text(max_size=12).filter(
                lambda t: (
                    t not in {v.value for v in model.ValueType} | {"str", "integer", "bool", "dict"}
                )
            )
        )
        schema["k"] = option(bad_type)
    elif kind == 2:
        type_ = draw(st.sampled_from(sorted(WRONG_TYPE)))
        spec = SCHEMA[type_]["type"]
        schema["k"] = option(spec, draw(WRONG_TYPE[type_]))
    elif kind == 3:
        schema["k"] = option(draw(st.sampled_from(["int", "float"])), draw(NON_FINITE))
    elif kind == 4:
        schema["k"] = option("string", draw(HUGE_TEXT))
    elif kind == 5:
        schema["k"] = option("object", draw(BAD_OBJECT))
    elif kind == 6:
        schema["k"] = option("list", [draw(DEEP)])
    else:
        for i in range(model.MAX_KEYS + 1):
            schema[f"k{i}"] = option("int")
    return [
        ("schema", length_delimited(1, key.encode()) + length_delimited(2, spec))
        for key, spec in schema.items()
    ]


@st.composite
def hostile_metadata(draw: st.DrawFn) -> bytes:
    return struct({"m": draw(BAD_OBJECT)} if draw(st.booleans()) else draw(BAD_OBJECT))


PORT_1 = struct_pb2.Struct(fields={"port": struct_pb2.Value(number_value=1)})
Case = tuple[Message | bytes, frozenset[Code]]


def case(request: Message | bytes, codes: frozenset[Code]) -> Case:
    return request, codes


# -- per-RPC hostile requests ---------------------------------------------------------------

C = controller_pb2
H = history_pb2

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
    ),
    "RemoveUnit": st.one_of(
        BAD_UNIT.map(lambda n: case(C.RemoveUnitRequest(name=n), INVALID)),
        MISSING_UNIT.map(lambda n: case(C.RemoveUnitRequest(name=n), NOT_FOUND)),
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
    "AddBranch": st.one_of(
        BAD_BRANCH.map(lambda n: case(C.AddBranchRequest(name=n), INVALID)),
        st.sampled_from(["b", "empty"]).map(lambda n: case(C.AddBranchRequest(name=n), EXISTS)),
    ),
    "TrackBranch": st.one_of(
        BAD_BRANCH.map(lambda n: case(C.TrackBranchRequest(branch=n, units=["web/0"]), INVALID)),
        MISSING_BRANCH.map(
            lambda n: case(C.TrackBranchRequest(branch=n, units=["web/0"]), NOT_FOUND)
        ),
        st.lists(BAD_UNIT, min_size=1, max_size=3).map(
            lambda us: case(C.TrackBranchRequest(branch="b", units=us), INVALID)
        ),
        MISSING_UNIT.map(lambda u: case(C.TrackBranchRequest(branch="b", units=[u]), NOT_FOUND)),
        st.lists(BAD_APP, min_size=1, max_size=3).map(
            lambda aps: case(C.TrackBranchRequest(branch="b", applications=aps), INVALID)
        ),
        st.integers(-(2**31), -1).map(
            lambda n: case(C.TrackBranchRequest(branch="b", count=n, application="web"), INVALID)
        ),
        st.just(case(C.TrackBranchRequest(branch="b", count=1), INVALID)),
        st.just(case(C.TrackBranchRequest(branch="b"), INVALID)),
        # web/1 tracks b already: it cannot track another branch too.
        st.just(case(C.TrackBranchRequest(branch="empty", units=["web/1"]), PRECONDITION)),
    ),
    "UntrackBranch": st.one_of(
        BAD_BRANCH.map(lambda n: case(C.UntrackBranchRequest(branch=n, units=["web/1"]), INVALID)),
        MISSING_BRANCH.map(
            lambda n: case(C.UntrackBranchRequest(branch=n, units=["web/1"]), NOT_FOUND)
        ),
        st.lists(BAD_UNIT, min_size=1, max_size=3).map(
            lambda us: case(C.UntrackBranchRequest(branch="b", units=us), INVALID)
        ),
        st.lists(BAD_APP, min_size=1, max_size=3).map(
            lambda aps: case(C.UntrackBranchRequest(branch="b", applications=aps), INVALID)
        ),
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
        .filter(lambda t: model.SEMVER_RE.match(t) is None)
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


def length_delimited(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


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
