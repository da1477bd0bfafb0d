"""A change event too large to read must not wedge the server (issue 14, item 2b).

Another tool (not genconf: genconf bounds what it writes) grows an application
document to 9 MB. Its update event carries the document after the write and the
fields the write set, ~18 MB: more than the 16 MB MongoDB can return, so the
stream fails with BSONObjectTooLarge and resuming meets the same event forever.

- By default the multiwatcher drops ``updateDescription`` on the server (it never
  reads it), so the event is the document plus a few hundred bytes and is read
  like any other: nothing to recover from.
- With it kept (``Tuning.drop_update_description=False``), the real failure
  happens: the multiwatcher reloads from a snapshot, reopens the stream after it
  (skipping the event), and the reload's differences reach watchers as ordinary
  deltas; whole-server health is NOT_SERVING while it reloads, then SERVING.

Either way GetConfig and a unit watch end with MongoDB's document. The time to
recover is printed (``pytest tests/readside/test_oversized_event.py -s``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import bson
import pytest
from grpc_health.v1 import health_pb2
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure
from support.servers import running_server

from genconf.api.server import RunningServer
from genconf.client import Client, Config
from genconf.readside.multiwatcher import Tuning
from genconf.readside.resume import is_event_unreadable, is_history_lost, unreadable_revision
from genconf.store.documents import APPLICATIONS, revision_of

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SCHEMA: dict[str, Any] = {"k": {"type": "int", "default": 0}}
NOTES_BYTES = 9 * 1024 * 1024  # post-image + updateDescription: ~18 MB > 16 MB
TUNING = Tuning(max_await_ms=100, backoff_initial=0.05, backoff_max=0.5)
LIMIT = 60.0


class HealthLog:
    """Every whole-server status the server sets, with when; in-process, so even a
    NOT_SERVING that Health.Watch would coalesce away is seen."""

    def __init__(self, srv: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.changes: list[tuple[float, int]] = []
        self.back = anyio.Event()  # SERVING again after having left it
        original = srv.health.set

        async def recording(service: str, status: int) -> None:
            if service == "":
                self.changes.append((time.monotonic(), status))
                if status == SERVING and NOT_SERVING in (s for _, s in self.changes):
                    self.back.set()
            await original(service, status)

        monkeypatch.setattr(srv.health, "set", recording)


class UnitWatch:
    """A unit agent's watch (client.watch_config), every config it gets."""

    def __init__(self) -> None:
        self.configs: list[Config] = []
        self._changed = anyio.Condition()

    async def run(self, client: Client, unit: str, min_revision: int = 0) -> None:
        async for config in client.watch_config(unit, min_revision=min_revision):
            async with self._changed:
                self.configs.append(config)
                self._changed.notify_all()

    async def until(self, k: int) -> float:
        """When the watch got a config with ``k``."""
        async with self._changed:
            while not any(c.config.get("k") == k for c in self.configs):
                await self._changed.wait()
        return time.monotonic()


@pytest.fixture
async def raw(mongo_uri: str) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """Another tool's client, writing straight into genconf's collections."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        yield client
    finally:
        await client.close()


async def grow_application(
    raw: AsyncMongoClient[dict[str, Any]], db_name: str, k: int
) -> tuple[int, int]:
    """Set ``k`` and a 9 MB field genconf does not model: (revision, document bytes)."""
    coll = raw[db_name][APPLICATIONS]
    async with raw.start_session() as session:
        await coll.update_one(
            {"_id": "web"},
            {"$set": {"notes": "n" * NOTES_BYTES, "settings.k": k}, "$inc": {"revision": 1}},
            session=session,
        )
        assert session.operation_time is not None
        revision = revision_of(session.operation_time)
    doc = await coll.find_one({"_id": "web"})
    assert doc is not None and doc["settings"]["k"] == k
    return revision, len(bson.encode(doc))


async def run_case(
    mongo_uri: str,
    db_name: str,
    raw: AsyncMongoClient[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    tuning: Tuning,
) -> dict[str, Any]:
    """Grow the application under a watching agent; what the server did, and when."""
    async with (
        running_server(mongo_uri, db_name, tuning=tuning) as srv,
        Client(srv.address, timeout=30) as client,
    ):
        created = await client.create_application("web", schema=SCHEMA, units=2)
        health = HealthLog(srv, monkeypatch)
        watch = UnitWatch()
        stats = srv.read.watcher.stats
        with anyio.fail_after(LIMIT):
            async with anyio.create_task_group() as tg:
                # From the write's revision: the unit exists once the server has it.
                tg.start_soon(watch.run, client, "web/0", created.revision)
                await watch.until(0)
                started = time.monotonic()
                written, doc_bytes = await grow_application(raw, db_name, 42)
                watched = await watch.until(42) - started
                got = await client.get_config("web/1", min_revision=written)
                if stats.unreadable_events:
                    await health.back.wait()
                # The stream goes on after it: the tool's next write arrives as usual
                # (genconf itself now refuses to write an application this large).
                await raw[db_name][APPLICATIONS].update_one(
                    {"_id": "web"},
                    {"$unset": {"notes": ""}, "$set": {"settings.k": 43}, "$inc": {"revision": 1}},
                )
                await watch.until(43)
                tg.cancel_scope.cancel()
        return {
            "written": written,
            "doc_bytes": doc_bytes,
            "watched": watched,
            "got": got,
            "health": [(t - started, s) for t, s in health.changes],
            "unreadable": stats.unreadable_events,
            "resyncs": stats.resyncs,
            "last_error": stats.last_error,
        }


async def test_an_event_over_16_mb_is_read_once_update_description_is_dropped(
    mongo_uri: str,
    db_name: str,
    raw: AsyncMongoClient[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = await run_case(mongo_uri, db_name, raw, monkeypatch, TUNING)
    print(
        f"\n{out['doc_bytes'] / 2**20:.1f} MiB application, its update event ~"
        f"{2 * out['doc_bytes'] / 2**20:.0f} MiB with updateDescription: read as one event "
        f"without it; the agent had the new config after {out['watched']:.2f}s"
    )
    assert out["doc_bytes"] > NOTES_BYTES
    assert out["got"].config == {"k": 42} and out["got"].revision >= out["written"]
    assert (out["unreadable"], out["resyncs"]) == (0, 0)
    assert out["health"] == [], "health never left SERVING"


async def test_an_event_too_large_to_read_is_skipped_by_a_reload(
    mongo_uri: str,
    db_name: str,
    raw: AsyncMongoClient[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tuning = Tuning(**{**TUNING.__dict__, "drop_update_description": False})
    out = await run_case(mongo_uri, db_name, raw, monkeypatch, tuning)
    health = out["health"]
    left = next(t for t, s in health if s == NOT_SERVING)
    back = next(t for t, s in health if s == SERVING and t >= left)
    print(
        f"\n{out['doc_bytes'] / 2**20:.1f} MiB application, update event ~"
        f"{2 * out['doc_bytes'] / 2**20:.0f} MiB: BSONObjectTooLarge; reloaded and skipped it. "
        f"NOT_SERVING {left:.2f}s after the write, SERVING again after {back:.2f}s "
        f"(reload {back - left:.2f}s); the agent had the new config after {out['watched']:.2f}s"
    )
    assert out["got"].config == {"k": 42} and out["got"].revision >= out["written"]
    assert (out["unreadable"], out["resyncs"]) == (1, 1)
    assert "BSONObjectTooLarge" in out["last_error"]
    # The error names the event it could not return: the write's own revision.
    assert unreadable_revision(out["last_error"]) == out["written"]
    assert [s for _, s in health] == [NOT_SERVING, SERVING]
    assert back < 10, "recovered within seconds, not after a restart"


def test_the_unreadable_event_predicate() -> None:
    """Pure: what the server says, not what we were doing."""
    too_large = OperationFailure("BSONObj size: 18874817 is invalid", code=10334)
    by_name = OperationFailure("x", code=99999, details={"codeName": "BSONObjectTooLarge"})
    for exc in (too_large, by_name, OperationFailure("grew", code=17419)):
        assert is_event_unreadable(exc) and not is_history_lost(exc)
    for exc in (
        OperationFailure("history lost", code=286),
        OperationFailure("not primary", code=10107),
        ValueError("BSONObjectTooLarge"),
    ):
        assert not is_event_unreadable(exc)
    message = 'BSONObj size ... First element: _id: { _data: "8265A1B2C3000000042B0229296E04" }'
    assert unreadable_revision(message) == (0x65A1B2C3 << 32) | 4
    assert unreadable_revision("no token here") is None
