"""Helpers for the end-to-end API tests: a real genconf server on loopback.

A plain module (not a conftest): tests import it as ``from servers import ...``;
pytest's rootdir-relative import mode puts ``tests/`` on ``sys.path``.

    async with running_server(mongo_uri, db_name) as srv:
        async with Client(srv.address) as client:
            ...

The server is SERVING (gRPC health) when the block starts, and is stopped, with
everything it started, when the block ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import bson
import grpc
from bson import json_util
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pymongo import MongoClient
from pymongo.asynchronous.database import AsyncDatabase

from genconf.api.server import RunningServer, ServerConfig, serve
from genconf.client import Client
from genconf.client.channel import server_name_options
from genconf.errors import ClientError
from genconf.readside.multiwatcher import Tuning
from genconf.store.documents import BOOKKEEPING
from genconf.v1 import admin_pb2, types_pb2
from support.rpcs import CALL_TIMEOUT

SERVING = health_pb2.HealthCheckResponse.SERVING
BOOKMARK_INTERVAL = 0.2
START_TIMEOUT = 30.0
# The bootstrap admin token `auth_server` starts with (kept in memory only).
BOOTSTRAP = "bootstrap-admin-token-for-tests-0123456789"


def free_port() -> int:
    """A loopback port nobody listens on right now (for restarts on the same port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_serving(
    address: str,
    limit: float = START_TIMEOUT,
    credentials: grpc.ChannelCredentials | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> None:
    """Until the server's overall gRPC health is SERVING (Health.Watch: no polling),
    over TLS with ``credentials`` when given, else over plaintext."""
    channel = (
        grpc.aio.secure_channel(address, credentials, options=list(options))
        if credentials is not None
        else grpc.aio.insecure_channel(address, options=list(options))
    )
    async with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with anyio.fail_after(limit):
            call = stub.Watch(health_pb2.HealthCheckRequest(service=""), wait_for_ready=True)
            try:
                async for reply in call:
                    if reply.status == SERVING:
                        return
            finally:
                call.cancel()
        raise AssertionError(f"health watch on {address} ended before SERVING")


async def wait_serving_as(address: str, ca: bytes, name: str) -> None:
    """`wait_serving` checking the server's certificate against ``name`` instead of
    the address dialled (as `--tls-server-name` does)."""
    credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    await wait_serving(address, credentials=credentials, options=server_name_options(name))


async def applied(client: Client, unit: str, hash_: str, limit: float = 30.0) -> types_pb2.Unit:
    """The unit once its agent reported ``hash_`` applied: from the snapshot if it has
    already, else from the admin feed after the snapshot's revision (no gap)."""
    with anyio.fail_after(limit):
        snapshot = await client.snapshot()
        for u in snapshot.units:
            if u.name == unit and u.applied.hash == hash_:
                return u
        async for batch in client.watch_deltas(since_revision=snapshot.revision, kinds=["unit"]):
            for delta in batch.deltas:
                if delta.key == unit and delta.unit.applied.hash == hash_:
                    return delta.unit
    raise AssertionError("the admin feed ended")


def server_config(mongo_uri: str, db_name: str, **overrides: Any) -> ServerConfig:
    options: dict[str, Any] = {
        "mongo_uri": mongo_uri,
        "database": db_name,
        "listen": "127.0.0.1:0",
        "bookmark_interval": BOOKMARK_INTERVAL,
        "shutdown_grace": 1.0,
        "tuning": Tuning(max_await_ms=100, backoff_initial=0.05, backoff_max=0.5),
    }
    options.update(overrides)
    return ServerConfig(**options)


@asynccontextmanager
async def running_server(
    mongo_uri: str, db_name: str, **overrides: Any
) -> AsyncIterator[RunningServer]:
    """A genconf server on loopback (any free port unless ``listen`` is given),
    SERVING when the block starts; ``overrides`` are `ServerConfig` fields."""
    async with serve(server_config(mongo_uri, db_name, **overrides)) as srv:
        await wait_serving(srv.address)
        yield srv


@asynccontextmanager
async def background_server(
    mongo_uri: str, db_name: str, **overrides: Any
) -> AsyncIterator[RunningServer]:
    """`running_server` in a task of its own, so a pytest fixture may enter it in
    setup and leave it in teardown (anyio cancel scopes must exit in the task
    that entered them; pytest-asyncio runs setup and teardown in different tasks)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[RunningServer] = loop.create_future()
    stop = asyncio.Event()

    async def run() -> None:
        try:
            async with running_server(mongo_uri, db_name, **overrides) as srv:
                ready.set_result(srv)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    task = asyncio.create_task(run(), name=f"genconf-test-server-{db_name}")
    try:
        yield await ready
    finally:
        stop.set()
        await task


@asynccontextmanager
async def auth_server(
    mongo_uri: str, db_name: str, **overrides: Any
) -> AsyncIterator[RunningServer]:
    """`running_server` with authentication on: ``BOOTSTRAP`` is its admin token."""
    async with running_server(mongo_uri, db_name, admin_token=BOOTSTRAP, **overrides) as srv:
        yield srv


@asynccontextmanager
async def admin_session(
    mongo_uri: str, db_name: str, **overrides: Any
) -> AsyncIterator[tuple[RunningServer, Client]]:
    """An `auth_server` and a client of it holding the bootstrap admin token."""
    async with (
        auth_server(mongo_uri, db_name, **overrides) as srv,
        Client(srv.address, token=BOOTSTRAP, timeout=CALL_TIMEOUT) as admin,
    ):
        yield srv, admin


async def eventually(check: Callable[[], Awaitable[bool]], what: str, limit: float = 10.0) -> None:
    """Until ``check()`` holds, for state the server changes with no event a client can
    wait on (a stream's cleanup after the client cancels it)."""
    try:
        with anyio.fail_after(limit):
            while not await check():  # noqa: ASYNC110 (no event to wait on: see above)
                await anyio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"still not so after {limit}s: {what}") from None


# -- model helpers -------------------------------------------------------------


def _plain(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def snapshot_model(snapshot: admin_pb2.SnapshotResponse) -> dict[str, Any]:
    """A Snapshot as plain data keyed by name, without its revision.

    Per-object ``units`` lists are left out: deltas carry objects without them
    (they are derived from the units themselves)."""
    apps = {}
    for app in snapshot.applications:
        d = _plain(app)
        d.pop("units", None)
        apps[app.name] = d
    branches = {}
    for branch in snapshot.branches:
        d = _plain(branch)
        d.pop("units", None)
        branches[branch.name] = d
    return {
        "applications": apps,
        "units": {u.name: _plain(u) for u in snapshot.units},
        "branches": branches,
        "last_generation": snapshot.last_generation,
    }


def apply_batch(state: dict[str, Any], batch: admin_pb2.DeltaBatch) -> None:
    """Apply one DeltaBatch to a `snapshot_model` dict, in place."""
    for delta in batch.deltas:
        if delta.kind == "generation":
            if not delta.removed:
                state["last_generation"] = max(state["last_generation"], delta.generation.id)
            continue
        table = {"application": "applications", "unit": "units", "branch": "branches"}[delta.kind]
        if delta.removed:
            state[table].pop(delta.key, None)
            continue
        d = _plain(getattr(delta, delta.kind))
        d.pop("units", None)
        state[table][delta.key] = d


BARRIER_BRANCH = "zz-test-barrier"


async def collect_until(
    feed: AsyncIterator[admin_pb2.DeltaBatch], revision: int, limit: float = 10
) -> list[admin_pb2.DeltaBatch]:
    """Batches from ``feed`` up to and including the one at ``revision``."""
    out = []
    with anyio.fail_after(limit):
        async for batch in feed:
            out.append(batch)
            if batch.revision >= revision:
                return out
    raise AssertionError("the feed ended early")


async def settled_model(client: Client) -> dict[str, Any]:
    """The model (`snapshot_model`) once the cache has seen every write made so far.

    A barrier: a branch added and aborted again (no net change) whose revision is
    later than any earlier write, so a rejected request that did write something
    would show here."""
    await client.add_branch(BARRIER_BRANCH)
    done = await client.abort_branch(BARRIER_BRANCH)
    await client.list_branches(min_revision=done.revision)
    return snapshot_model(await client.snapshot())


def digest(mongo_client: MongoClient[dict[str, Any]], db_name: str) -> str:
    """Every document of every model collection (not the write side's fences and
    counters), canonically: equal digests, equal models."""
    db = mongo_client[db_name]
    h = hashlib.sha256()
    for name in sorted(set(db.list_collection_names()) - set(BOOKKEEPING)):
        for doc in db[name].find({}, sort=[("_id", 1)]):
            h.update(name.encode() + json_util.dumps(doc, sort_keys=True).encode())
    return h.hexdigest()


async def store_digest(db: AsyncDatabase[dict[str, Any]]) -> str:
    """`digest` through a Store's own database handle: sha256 over every document of
    every model collection, in _id order (a refused write keeps it)."""
    h = hashlib.sha256()
    for name in sorted(set(await db.list_collection_names()) - set(BOOKKEEPING)):
        h.update(name.encode() + b"\0")
        async for doc in db[name].find({}).sort("_id", 1):
            h.update(bson.encode(doc))
    return h.hexdigest()


def assert_code(exc: BaseException, code: grpc.StatusCode) -> ClientError:
    assert isinstance(exc, ClientError), f"expected ClientError, got {exc!r}"
    assert exc.code == code, f"expected {code.name}, got {exc.code.name}: {exc.message}"
    assert exc.message, "an error must carry a message a person can act on"
    return exc
