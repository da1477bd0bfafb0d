"""Shared fixtures: one real mongod for the session, a fresh database per test.

Tests run against a real single-node replica set (change streams and transactions
need one). Set GENCONF_TEST_MONGO_URI to use an existing MongoDB 6.0+ replica set
instead of the embedded one for the `mongo_uri`-based fixtures.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any, TypeVar
from uuid import uuid4

import anyio
import pytest
from hypothesis import settings
from pymongo import MongoClient
from support.servers import background_server

from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.dev.embedded import EmbeddedMongo
from genconf.dev.replicaset import EmbeddedReplicaSet
from genconf.store.store import Store

# Real I/O makes timings noisy; a deadline would only produce flaky failures.
settings.register_profile("ci", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


Embedded = TypeVar("Embedded", EmbeddedMongo, EmbeddedReplicaSet)


def started(server: Embedded) -> Iterator[Embedded]:
    """``server`` started for a session fixture's life, stopped at its end (a half
    start included)."""
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMongo]:
    """A single-node replica set shared by the whole session, stopped at the end."""
    yield from started(EmbeddedMongo(tmp_path_factory.mktemp("mongo")))


@pytest.fixture(scope="session")
def mongo_uri(request: pytest.FixtureRequest) -> str:
    """URI of the session's replica set (the embedded one unless overridden)."""
    external = os.environ.get("GENCONF_TEST_MONGO_URI")
    if external:
        return external
    server: EmbeddedMongo = request.getfixturevalue("mongo")
    return server.uri


@pytest.fixture(scope="session")
def mongo_client(mongo_uri: str) -> Iterator[MongoClient[dict[str, Any]]]:
    """A sync client for test setup and assertions (the service uses its own)."""
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, serverSelectionTimeoutMS=10_000)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def db_name(mongo_client: MongoClient[dict[str, Any]]) -> Iterator[str]:
    """A database name no other test uses; the database is dropped afterwards."""
    name = "t_" + uuid4().hex[:12]
    try:
        yield name
    finally:
        mongo_client.drop_database(name)


@pytest.fixture(scope="session")
def replica_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedReplicaSet]:
    """A three-node replica set for failover tests; only started if a test asks."""
    yield from started(EmbeddedReplicaSet(tmp_path_factory.mktemp("replset")))


@pytest.fixture
async def store(mongo_uri: str, db_name: str) -> AsyncIterator[Store]:
    """A `Store` on this test's database, schema ensured, closed afterwards."""
    store = Store.connect(mongo_uri, db_name)
    try:
        await store.ensure_schema()
        yield store
    finally:
        await store.aclose()


@pytest.fixture
async def replica_store(replica_set: EmbeddedReplicaSet) -> AsyncIterator[Store]:
    """A `Store` on a fresh database of the three-node replica set, dropped afterwards."""
    await anyio.to_thread.run_sync(replica_set.wait_healthy, 60)
    store = Store.connect(replica_set.uri, "t_" + uuid4().hex[:12])
    await store.ensure_schema()
    try:
        yield store
    finally:
        try:
            await store.client.drop_database(store.db.name)
        finally:
            await store.aclose()


@pytest.fixture
async def srv(mongo_uri: str, db_name: str) -> AsyncIterator[RunningServer]:
    """A genconf server on loopback over this test's database, stopped afterwards."""
    async with background_server(mongo_uri, db_name) as server:
        yield server


@pytest.fixture
async def client(srv: RunningServer) -> AsyncIterator[Client]:
    async with Client(srv.address, timeout=10) as c:
        yield c


# Fixtures that start or reach a mongod; a test using any of them (directly or through
# another fixture) is marked `mongo`, so `pytest -m "not mongo"` (`make test-fast`) runs
# the pure and cache-core tests alone, in seconds. Modules that start their own mongod
# or server processes say so with ``pytestmark = pytest.mark.mongo``.
MONGO_FIXTURES = frozenset({"mongo", "mongo_uri", "mongo_client", "replica_set"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if MONGO_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.mongo)
