"""A document another tool wrote that genconf cannot read does not stop the change
stream: it is left out (logged and counted), everything else keeps flowing, a new
replica starts beside it, and it is read again once it is written as one."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import MongoClient
from support.servers import running_server

from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.store.documents import APPLICATIONS

SCHEMA = {"port": {"type": "int", "default": 80}}


async def test_an_unreadable_document_is_left_out(
    srv: RunningServer,
    client: Client,
    mongo_client: MongoClient[dict[str, Any]],
    mongo_uri: str,
    db_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    await client.create_application("db", schema=SCHEMA, units=1)
    good = await client.set_config("web", {"port": 8080})
    before = await client.get_config("web/0", min_revision=good.revision)

    # Another tool writes a version that is not a number.
    mongo_client[db_name][APPLICATIONS].update_one({"_id": "web"}, {"$set": {"version": "x"}})
    after = await client.set_config("db", {"port": 5432})  # the stream still flows
    assert (await client.get_config("db/0", min_revision=after.revision)).config["port"] == 5432
    # web keeps the last version the server could read.
    assert (await client.get_config("web/0")).hash == before.hash
    assert srv.read.watcher.stats.unreadable_documents == 1
    assert "'web' is not a document genconf can read" in caplog.text

    # A replica starting now loads everything else, and serves.
    async with running_server(mongo_uri, db_name) as other:
        async with Client(other.address, timeout=10) as c:
            assert (await c.get_config("db/0")).config["port"] == 5432
            assert "web" not in {a.name for a in await c.list_applications()}

    # Written again as a genconf document: read again.
    mongo_client[db_name][APPLICATIONS].update_one({"_id": "web"}, {"$set": {"version": 2}})
    barrier = await client.set_config("db", {"port": 5433})
    await client.get_config("db/0", min_revision=barrier.revision)
    app = await client.get_application("web")
    assert app.version == 2
