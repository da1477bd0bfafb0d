"""A key-history page costs its page: versions read, counted by MongoDB's profiler.

The former implementation read every version of the application for any page
(limit=1 included); the reference below is that implementation, kept to show the
pages are unchanged.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import MongoClient

from genconf.domain import config
from genconf.store.documents import VERSIONS, schema_of
from genconf.store.history import History, KeyHistoryEntry, page_size
from genconf.store.store import Store

SCHEMA = {"port": {"type": "int", "default": 80}, "name": {"type": "string", "default": "x"}}
VERSIONS_WRITTEN = 300


async def examined(
    mongo_client: MongoClient[dict[str, Any]], db_name: str, read: Callable[[], Awaitable[Any]]
) -> tuple[Any, int]:
    """What ``read`` returns, and how many version documents MongoDB examined for it."""
    db = mongo_client[db_name]
    db.command("profile", 0)
    db.drop_collection("system.profile")
    db.command("profile", 2)
    try:
        result = await read()
    finally:
        db.command("profile", 0)
    ops = db["system.profile"].find({"ns": f"{db_name}.{VERSIONS}"})
    return result, sum(int(op.get("docsExamined", 0)) for op in ops)


async def reference(
    store: Store, application: str, key: str, limit: int, before: int
) -> tuple[list[tuple[int, Any, bool]], bool]:
    """The former key_history: every version, oldest first, then the page."""
    app = await store.db["applications"].find_one({"_id": application})
    assert app is not None
    spec = schema_of(app)[key]
    docs = [
        d
        async for d in store.db[VERSIONS].find({"application": application}, sort=[("version", 1)])
    ]
    values = config.key_history(
        spec, ((int(d["version"]), d.get("settings", {})) for d in docs), key
    )
    entries = [v for v in reversed(values) if not before or v.version < before]
    size = page_size(limit)
    return [(v.version, v.value, v.is_default) for v in entries[:size]], len(entries) > size


def rows(page: tuple[list[KeyHistoryEntry], bool]) -> tuple[list[tuple[int, Any, bool]], bool]:
    entries, more = page
    for e in entries:
        assert e.version_doc["version"] == e.value.version  # the entry's own version
    return [(e.value.version, e.value.value, e.value.is_default) for e in entries], more


async def test_a_page_reads_its_versions_not_the_whole_history(
    store: Store, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await store.create_application("web", schema=SCHEMA)
    for n in range(2, VERSIONS_WRITTEN + 1):  # the port changes in every version
        await store.set_config("web", set={"port": 1000 + n})
    history = History(store.db)

    page, cost = await examined(
        mongo_client, db_name, lambda: history.key_history("web", "port", limit=1)
    )
    assert rows(page) == ([(VERSIONS_WRITTEN, 1000 + VERSIONS_WRITTEN, False)], True)
    print(f"\nkey history, limit=1, {VERSIONS_WRITTEN} versions: {cost} versions examined")
    assert cost <= 2, f"limit=1 examined {cost} versions (the former implementation: all)"

    page, cost = await examined(
        mongo_client,
        db_name,
        lambda: history.key_history("web", "port", limit=10, before_version=150),
    )
    assert [v for v, _, _ in rows(page)[0]] == list(range(149, 139, -1)) and page[1]
    print(f"key history, limit=10 before 150: {cost} versions examined")
    assert cost <= 11

    # The last page: down to the oldest version, which opens the history.
    page, cost = await examined(
        mongo_client, db_name, lambda: history.key_history("web", "port", limit=5, before_version=4)
    )
    assert rows(page) == ([(3, 1003, False), (2, 1002, False), (1, 80, True)], False)
    assert cost <= 3


async def test_an_unchanged_stretch_is_read_once_and_only_as_far_as_the_page_needs(
    store: Store, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await store.create_application("web", schema=SCHEMA)  # v1: port 80 (the default)
    await store.set_config("web", set={"port": 8080})  # v2
    for n in range(3, 203):  # v3..v202: only the name changes
        await store.set_config("web", set={"name": f"n{n}"})
    await store.set_config("web", set={"port": 9090})  # v203
    history = History(store.db)

    # The newest change is known from the two newest versions.
    page, cost = await examined(
        mongo_client, db_name, lambda: history.key_history("web", "port", limit=1)
    )
    assert rows(page) == ([(203, 9090, False)], True)
    assert cost <= 2
    # The next one lies at the far end of the stretch: every version of it, once.
    page, cost = await examined(
        mongo_client,
        db_name,
        lambda: history.key_history("web", "port", limit=1, before_version=203),
    )
    assert rows(page) == ([(2, 8080, False)], True)
    print(f"\nkey history, limit=1 across a 200-version stretch: {cost} versions examined")
    assert 201 <= cost <= 202


async def test_pages_are_those_of_the_former_implementation(store: Store) -> None:
    """Random sets, unsets, explicit defaults and unrelated writes; every page size
    and bound gives exactly what reading every version gave."""
    rng = random.Random(14)
    await store.create_application("web", schema=SCHEMA)
    for n in range(2, 90):
        choice = rng.random()
        if choice < 0.3:
            await store.set_config("web", set={"name": f"n{n}"})  # the key untouched
        elif choice < 0.45:
            current = await store.db["applications"].find_one({"_id": "web"})
            if current and "port" in current["settings"]:
                await store.set_config("web", unset=["port"])  # back to the default
            else:
                await store.set_config("web", set={"name": f"m{n}"})
        else:
            await store.set_config("web", set={"port": rng.choice([80, 8080, 9090])})
    history = History(store.db)
    latest = (await store.db["applications"].find_one({"_id": "web"}) or {})["version"]
    for limit in (1, 2, 3, 7, 0):
        for before in (0, 2, 3, 10, 45, latest, latest + 5):
            got = rows(await history.key_history("web", "port", limit=limit, before_version=before))
            assert got == await reference(store, "web", "port", limit, before), (limit, before)
    for before in (0, 30):
        got = rows(await history.key_history("web", "name", limit=4, before_version=before))
        assert got == await reference(store, "web", "name", 4, before)
