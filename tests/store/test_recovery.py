"""Fast recovery after ``kill -9`` mid-write (issue 14, item 4).

A process killed inside a MongoDB transaction leaves it open until the server's
``transactionLifetimeLimitSeconds``: its documents refuse other writers
(WriteConflict) and the collections' exclusive lock (collMod, new indexes) waits
for it. So a restart must not need that lock when there is nothing to change,
and the embedded mongod aborts such transactions after seconds, not a minute.
The figures are printed (``pytest tests/store/test_recovery.py -s``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import anyio.to_thread
import pytest
from bson.binary import Binary
from pymongo import AsyncMongoClient, IndexModel
from pymongo.errors import OperationFailure
from support.cli_runner import clean_env
from support.procs import first_line, tail
from support.servers import free_port, wait_serving

from genconf.client import Client
from genconf.dev.embedded import EmbeddedMongo
from genconf.dev.mongod import TRANSACTION_LIFETIME_LIMIT
from genconf.store.documents import APPLICATIONS, BOOKKEEPING, COLLECTIONS, UNITS, VERSIONS
from genconf.store.store import Store

SCHEMA: dict[str, Any] = {"port": {"type": "int", "default": 8080}}
START_LIMIT = 10.0  # seconds from `genconf serve` to SERVING after a crash
SLACK = 5.0  # seconds on top of MongoDB's own abort deadline, for a loaded machine
SERVE_WAIT = 60.0  # seconds a start may take before the test gives up on it
IN_TRANSACTION = "in transaction"

# A writer that dies mid-transaction: it writes the application and a new unit in
# one transaction, says so with its session id, and blocks until it is killed.
DEAD_WRITER = f"""
import sys, threading
from pymongo import MongoClient

client = MongoClient(sys.argv[1], serverSelectionTimeoutMS=10_000)
db = client[sys.argv[2]]
session = client.start_session()
session.start_transaction()
db.{APPLICATIONS}.update_one(
    {{"_id": "web"}}, {{"$set": {{"settings.port": 1}}, "$inc": {{"revision": 1}}}},
    session=session,
)
db.{UNITS}.insert_one(
    {{"_id": "web/9", "application": "web", "number": 9, "branch": None}}, session=session
)
print("{IN_TRANSACTION}", session.session_id["id"].as_uuid().hex, flush=True)
threading.Event().wait()
"""


async def lifetime_limit(client: AsyncMongoClient[dict[str, Any]]) -> int:
    """The server's transactionLifetimeLimitSeconds."""
    got = await client.admin.command("getParameter", 1, transactionLifetimeLimitSeconds=1)
    return int(got["transactionLifetimeLimitSeconds"])


async def transaction_open(client: AsyncMongoClient[dict[str, Any]], session_id: UUID) -> bool:
    """Whether the server still holds an open transaction of that (dead) session."""
    cursor = await client.admin.aggregate(
        [
            {"$currentOp": {"idleSessions": True, "allUsers": True}},
            {"$match": {"lsid.id": Binary.from_uuid(session_id), "transaction": {"$exists": 1}}},
        ]
    )
    return bool(await cursor.to_list())


def kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL by PID, as a crash would (the process may already be gone)."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGKILL)


@asynccontextmanager
async def serve_process(
    mongo_uri: str, db_name: str, log: Path, env: dict[str, str]
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, float]]:
    """`genconf serve` as a subprocess on a free loopback port, logging to ``log``:
    yields it, its address and its seconds from spawn to SERVING; killed at the end
    if still running."""
    address = f"127.0.0.1:{free_port()}"
    argv = ["serve", "--mongo-uri", mongo_uri, "--database", db_name]
    argv += ["--listen", address, "--bookmark-interval", "0.2"]
    with log.open("ab") as out:
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "genconf.cli.main", *argv,
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
        )  # fmt: skip
    try:
        # SERVING, or the process exiting first (its log says why).
        serving = asyncio.create_task(wait_serving(address, limit=SERVE_WAIT))
        exited = asyncio.create_task(proc.wait())
        await asyncio.wait({serving, exited}, return_when=asyncio.FIRST_COMPLETED)
        for task in (serving, exited):
            task.cancel()
        await asyncio.gather(serving, exited, return_exceptions=True)
        if proc.returncode is not None:
            raise AssertionError(f"genconf serve exited {proc.returncode}: {tail(log)}")
        if isinstance(serving.exception(), TimeoutError):
            raise AssertionError(f"genconf serve not SERVING after {SERVE_WAIT}s: {tail(log)}")
        serving.result()
        yield proc, address, time.monotonic() - started
    finally:
        kill(proc)
        await proc.wait()


async def test_restart_after_kill_9_mid_write_is_fast(
    mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    """The issue's scenario with real processes: SERVING again within seconds while
    the dead transaction is still open, and a write to the very documents it held
    goes through as soon as MongoDB aborts it."""
    env = clean_env(tmp_path)
    log = tmp_path / "serve.log"
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
    try:
        limit = await lifetime_limit(mongo)
        async with serve_process(mongo_uri, db_name, log, env) as (first, address, _):
            async with Client(address, timeout=30) as client:
                await client.create_application("web", schema=SCHEMA, units=2)
            writer = await asyncio.create_subprocess_exec(
                sys.executable, "-c", DEAD_WRITER, mongo_uri, db_name,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            )  # fmt: skip
            try:
                line = await first_line(writer, 30)
                assert line.startswith(IN_TRANSACTION), f"the writer said {line!r}"
                session_id = UUID(line.split()[-1])
                opened = time.monotonic()  # just after the transaction began
                kill(writer)
                kill(first)
                assert await writer.wait() == -signal.SIGKILL
                assert await first.wait() == -signal.SIGKILL
            finally:
                kill(writer)
                await writer.wait()
        assert await transaction_open(mongo, session_id), "the dead transaction is open"

        async with serve_process(mongo_uri, db_name, log, env) as (_, address, serving):
            still_open = await transaction_open(mongo, session_id)
            print(
                f"\nrestart after kill -9 mid-write: SERVING after {serving:.2f}s "
                f"(dead transaction still open then: {still_open}; "
                f"transactionLifetimeLimitSeconds={limit})"
            )
            assert serving < START_LIMIT, tail(log)
            # MongoDB aborts an expired transaction at its reaper's next pass, which
            # runs every limit/2 seconds: at most 1.5 * limit after it began.
            deadline = 1.5 * limit + SLACK
            async with Client(address, timeout=deadline + 30) as client:
                asked = time.monotonic()
                written = await client.set_config("web", {"port": 9090}, reason="after crash")
                done = time.monotonic()
                print(
                    f"write to the same application: took {done - asked:.2f}s, "
                    f"{done - opened:.2f}s after the dead transaction began "
                    f"(allowed {deadline:.1f}s)"
                )
                assert done - opened < deadline
                config = await client.get_config("web/0", min_revision=written.revision)
                assert config.config["port"] == 9090
                units = await client.list_units("web")
        assert not await transaction_open(mongo, session_id)
        assert sorted(u.name for u in units) == ["web/0", "web/1"], "web/9 was never committed"
    finally:
        await mongo.close()


async def test_ensure_schema_does_not_wait_for_an_open_transaction(store: Store) -> None:
    """A schema that is already there is checked by reading only: ensure_schema
    finishes while another transaction holds documents of its collections, which
    then still commits (collMod would have waited until MongoDB aborted it)."""
    await store.db[APPLICATIONS].insert_one({"_id": "web", "revision": 1})
    async with store.client.start_session() as session:
        await session.start_transaction()
        await store.db[APPLICATIONS].update_one(
            {"_id": "web"}, {"$inc": {"revision": 1}}, session=session
        )
        await store.db[UNITS].insert_one(
            {"_id": "web/0", "application": "web", "number": 0}, session=session
        )
        started = time.monotonic()
        with anyio.fail_after(60):
            await store.ensure_schema()
        took = time.monotonic() - started
        print(f"\nensure_schema beside an open transaction: {took:.3f}s")
        await session.commit_transaction()  # NoSuchTransaction had it been aborted
    assert (await store.db[APPLICATIONS].find_one({"_id": "web"})) == {"_id": "web", "revision": 2}


async def test_ensure_schema_repairs_what_is_missing(store: Store) -> None:
    """Reading first must not mean trusting what is there: a collection without
    pre/post images gets them, a dropped index comes back, a dropped collection too."""
    await store.db.command("collMod", UNITS, changeStreamPreAndPostImages={"enabled": False})
    await store.db[VERSIONS].drop_index("unique_labels")
    await store.db[UNITS].drop_index("branch_1")
    await store.db.drop_collection(APPLICATIONS)
    await store.ensure_schema()
    cursor = await store.db.list_collections()
    options = {c["name"]: c["options"] async for c in cursor}
    assert set(COLLECTIONS) <= set(options)
    for name in set(COLLECTIONS) - set(BOOKKEEPING):
        assert options[name]["changeStreamPreAndPostImages"] == {"enabled": True}, name
    for name in BOOKKEEPING:  # never followed by the change stream: no images to keep
        assert "changeStreamPreAndPostImages" not in options[name], name
    labels = (await store.db[VERSIONS].index_information())["unique_labels"]
    assert labels["unique"] and labels["partialFilterExpression"] == {"tags": {"$type": "string"}}
    assert "branch_1" in await store.db[UNITS].index_information()


async def test_ensure_schema_refuses_a_same_named_index_that_differs(store: Store) -> None:
    """An index genconf relies on, redefined by hand under its name, is an error
    MongoDB names (IndexOptionsConflict), not something to run on silently."""
    await store.db[VERSIONS].drop_index("unique_labels")
    await store.db[VERSIONS].create_indexes([IndexModel([("tags", 1)], name="unique_labels")])
    with pytest.raises(OperationFailure) as info:
        await store.ensure_schema()
    assert info.value.code in (85, 86)  # IndexOptionsConflict, IndexKeySpecsConflict


async def test_a_long_transaction_lifetime_is_warned_about(
    mongo: EmbeddedMongo, db_name: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Against a replica set of one's own with MongoDB's default (60 s) the log says
    what a crash will cost and what to set; the embedded default is not warned about."""
    caplog.set_level(logging.WARNING, logger="genconf.store.mongo")
    lowered = Store.connect(mongo.uri, db_name)
    try:
        assert await lifetime_limit(lowered.client) == TRANSACTION_LIFETIME_LIMIT
        await lowered.ensure_schema()
    finally:
        await lowered.aclose()
    assert "transactionLifetimeLimitSeconds" not in caplog.text

    server = EmbeddedMongo(tmp_path / "db", transaction_lifetime_limit=60)
    try:
        await anyio.to_thread.run_sync(server.start)
        store = Store.connect(server.uri, "genconf")
        try:
            assert await lifetime_limit(store.client) == 60
            await store.ensure_schema()
        finally:
            await store.aclose()
    finally:
        await anyio.to_thread.run_sync(server.stop)
    warning = caplog.text
    assert "after 60 s (transactionLifetimeLimitSeconds)" in warning, warning
    assert "--setParameter transactionLifetimeLimitSeconds=5" in warning, warning
