"""Export and import end to end: real mongod, real servers, the real client.

A model with three applications (one open), branches in flight, 50+ versions,
labels, a rollback, a revert and a commit across two applications is exported
from one server and imported into an empty database served by another: every
read answers the same there, and exporting the import gives the same bytes.
Every refused import is checked to have written nothing (a digest of every
collection), and to name what it refused for.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

import grpc
import pytest
from google.protobuf import json_format
from pymongo import MongoClient
from support.rpcs import DENIED, invoke_bidi
from support.servers import BOOTSTRAP, admin_session, assert_code, digest, running_server

from genconf.api.server import RunningServer
from genconf.client import Client, ClientError
from genconf.domain import transfer as fmt
from genconf.errors import FailedPrecondition, NotFound, Unavailable
from genconf.store import transfer_import
from genconf.store.store import Store
from genconf.store.transfer_import import ImportStep, ranges
from genconf.v1 import transfer_pb2, transfer_pb2_grpc

INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXISTS = grpc.StatusCode.ALREADY_EXISTS

WEB_SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 8080},
    "log-level": {"type": "string", "default": "info"},
    "ratio": {"type": "float", "default": 0.5},
    "password": {"type": "string", "secret": True},
    "features": {"type": "object"},
}
DB_SCHEMA: dict[str, Any] = {
    "pool": {"type": "int", "default": 10},
    "mode": {"type": "string", "default": "rw"},
}
OPEN_SCHEMA: dict[str, Any] = {"*": {"type": "any"}}


def plain(message: Any) -> Any:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


@asynccontextmanager
async def second_server(
    mongo_client: MongoClient[dict[str, Any]], mongo_uri: str
) -> AsyncIterator[tuple[RunningServer, Client, str]]:
    """A server over a database of its own (dropped afterwards), and a client of it."""
    name = "t_" + uuid4().hex[:12]
    try:
        async with (
            running_server(mongo_uri, name) as srv,
            Client(srv.address, timeout=30) as client,
        ):
            yield srv, client, name
    finally:
        mongo_client.drop_database(name)


async def build_model(c: Client) -> None:
    """Three applications (``notes`` open), 50+ versions, labels, a rollback, a
    revert, a commit across two applications and three branches in flight."""
    await c.create_application("web", schema=WEB_SCHEMA, units=3)
    await c.create_application("db", charm="postgres", schema=DB_SCHEMA, units=2)
    await c.create_application("notes", schema=OPEN_SCHEMA, units=2)
    await c.set_config("web", {"password": "s3cret", "features": {"a": {"b": [1, 2.5]}}})
    for i in range(30):
        await c.set_config("web", {"port": 9000 + i, "ratio": i / 8}, reason=f"step {i}")
        if i % 10 == 0:
            await c.bump_version("web", "minor")
    for i in range(12):
        await c.set_config("db", {"pool": 10 + i}, created_by=f"dba-{i}")
    for i in range(8):
        await c.set_config("notes", {"text": f"line {i}\n" * (i + 1), "nested": {"n": i}})
    await c.set_config("notes", unset=["nested"])
    await c.tag_version("db", "2.0.0", version=5)
    await c.rollback("web", 10, reason="bad deploy")
    reverted = await c.set_config("db", {"mode": "ro"})
    await c.revert_generation(reverted.generation, reason="undo ro")
    # A commit across two applications: one generation, two versions.
    await c.add_branch("release")
    await c.set_branch_config("release", "web", {"log-level": "warning"})
    await c.set_branch_config("release", "db", {"pool": 99})
    await c.commit_branch("release", reason="release 7")
    # Branches in flight: tracked units, a whole application, an open one's keys.
    await c.add_branch("canary")
    await c.track_branch("canary", units=["web/0"])
    await c.set_branch_config("canary", "web", {"port": 7000}, unset=["password"])
    await c.add_branch("db-test")
    await c.track_branch("db-test", applications=["db"])
    await c.set_branch_config("db-test", "db", {"mode": "test"})
    await c.set_branch_config("db-test", "notes", {"fresh": [True, None]})
    await c.add_branch("empty")
    await c.add_units("web", count=1)  # web/3, after the others: numbering continues
    # Labels, and a stable cohort: notes units labelled zone=a join canary.
    await c.label_unit("web/1", {"zone": "a", "example.com/tier": "front"})
    await c.label_unit("notes/0", {"zone": "a"})
    await c.track_branch("canary", application="notes", percent=100, selector="zone=a")


async def export_texts(c: Client, applications: tuple[str, ...] = ()) -> list[str]:
    return [text async for text in c.export_model(applications)]


def body(texts: list[str]) -> list[str]:
    """An export without its header (whose exported_at differs between exports)."""
    assert json.loads(texts[0])["record"] == fmt.HEADER
    return texts[1:]


async def reads(c: Client) -> dict[str, Any]:
    """Every read a user makes of the model, as plain data, revisions aside."""
    out: dict[str, Any] = {}
    apps = await c.list_applications()
    for app in apps:
        name = app.name
        shown = plain(app)
        out[f"app {name}"] = shown
        pages = []
        before = current = 0
        while True:
            page = await c.list_versions(name, limit=7, before_version=before)
            current = current or page.current_version
            pages.append(plain(page))
            if not page.more:
                break
            before = page.versions[-1].version
        out[f"versions {name}"] = pages
        for a, b in ((1, current), (2, 5), (current - 3, current - 1), (4, 0)):
            diff = await c.diff_versions(name, a, b)
            out[f"diff {name} {a} {b}"] = plain(diff)
        out[f"latest {name}"] = plain(await c.latest_version(name))
        for key in ("port", "pool", "text", "log-level", "mode"):
            try:
                out[f"key {name} {key}"] = plain(await c.key_history(name, key))
            except ClientError as exc:
                out[f"key {name} {key}"] = (exc.code.name, exc.message)
    for unit in await c.list_units():
        config = await c.get_config(unit.name)
        out[f"unit {unit.name}"] = (plain(unit), config.config, config.hash, config.branch,
                                    config.app_version)  # fmt: skip
    for branch in await c.list_branches():
        out[f"branch {branch.name}"] = plain(await c.get_branch(branch.name))
    generations = []
    before = 0
    while True:
        page = await c.list_generations(limit=9, before=before)
        generations.append(plain(page))
        if not page.more:
            break
        before = page.generations[-1].id
    out["generations"] = generations
    for g in generations[0]["generations"][:5]:
        out[f"generation {g['id']}"] = plain(await c.get_generation(int(g["id"])))
    return out


def strip_revisions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_revisions(v) for k, v in value.items() if k != "revision"}
    if isinstance(value, (list, tuple)):
        return [strip_revisions(v) for v in value]
    return value


async def test_round_trip_into_an_empty_model_is_exact(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    async with admin_session(mongo_uri, db_name) as (_, source):  # authors: verified tokens
        await build_model(source)
        texts = await export_texts(source)
        first = await reads(source)
    versions = [t for t in texts if json.loads(t)["record"] == "version"]
    assert len(versions) >= 50
    records = [json.loads(t) for t in texts]
    labelled = {r["name"]: r["labels"] for r in records if r["record"] == "unit" and "labels" in r}
    assert labelled == {
        "web/1": {"zone": "a", "example.com/tier": "front"},
        "notes/0": {"zone": "a"},
    }
    (canary,) = [r for r in records if r["record"] == "branch" and r["name"] == "canary"]
    assert canary["cohorts"] == {"notes": {"percent": 100.0, "selector": "zone=a"}}
    assert json.loads(versions[-1])["authenticated"] is True
    async with second_server(mongo_client, mongo_uri) as (_, other, _):
        steps: list[transfer_pb2.ImportProgress] = []
        result = await other.import_model(texts, on_progress=steps.append)
        assert result.total.done and result.total.records == len(texts)
        assert sorted(result.total.applications) == ["db", "notes", "web"]
        assert sorted(result.total.branches) == ["canary", "db-test", "empty"]
        assert (result.total.units, result.total.versions) == (8, len(versions))
        # All three are linked (a commit, a branch): one transaction, then the
        # empty branch, which touches no application, in one of its own.
        assert [list(s.applications) for s in steps] == [["db", "notes", "web"], []]
        assert [list(s.branches) for s in steps] == [["canary", "db-test"], ["empty"]]
        # The running server's cache serves the import: reads wait for its revision.
        await other.list_branches(min_revision=result.total.revision)
        again = await export_texts(other)
        assert body(again) == body(texts)
        assert json.loads(again[0]) | {"exported_at": ""} == json.loads(texts[0]) | {
            "exported_at": ""
        }
        assert strip_revisions(await reads(other)) == strip_revisions(first)
        async for config in other.watch_config("web/0"):  # pushed to agents as any config
            assert config.branch == "canary" and config.config["port"] == 7000
            break
        # The next write takes a generation id above every imported one, and the
        # imported branch is live: a new db unit tracks db-test (db wholly tracked).
        last = max(json.loads(t)["id"] for t in texts if json.loads(t)["record"] == "generation")
        assert (await other.set_config("web", {"port": 1})).generation == last + 1
        added = await other.add_units("db", count=1)
        assert (await other.get_config("db/2", min_revision=added.revision)).branch == "db-test"


async def test_a_subset_goes_into_a_model_that_lacks_it(
    client: Client, mongo_client: MongoClient[dict[str, Any]], mongo_uri: str
) -> None:
    await build_model(client)
    texts = await export_texts(client, ("web", "db"))
    header = json.loads(texts[0])
    assert header["applications"] == ["db", "web"]
    records = [json.loads(t) for t in texts[1:]]
    assert {r["name"] for r in records if r["record"] == "application"} == {"db", "web"}
    branches = {r["name"]: r for r in records if r["record"] == "branch"}
    assert sorted(branches) == ["canary", "db-test"]  # "empty" has no part for them
    assert branches["db-test"]["changes"].keys() == {"db"}  # its notes part stays behind
    generations = [r for r in records if r["record"] == "generation"]
    assert all(set(g["changes"]) | set(g["versions"]) <= {"db", "web"} for g in generations)
    assert all("notes" not in t for t in texts[1:] if '"record":"generation"' in t)
    async with second_server(mongo_client, mongo_uri) as (_, other, name):
        await other.create_application("other", schema=OPEN_SCHEMA, units=1)
        for i in range(3):
            await other.set_config("other", {"k": i})
        before = digest(mongo_client, name)
        with pytest.raises(ClientError) as caught:
            await other.import_model(texts)
        error = assert_code(caught.value, EXISTS)
        assert "generation ids 1-3 (import with renumber_generations" in error.message
        assert "--renumber-generations" in error.message
        assert digest(mongo_client, name) == before
        result = await other.import_model(texts, renumber_generations=True)
        assert (result.total.renumbered_first, result.total.renumbered_last) == (
            4,
            3 + len(generations),
        )
        new_id = {g["id"]: 4 + i for i, g in enumerate(generations)}
        await other.list_branches(min_revision=result.total.revision)
        for unit in ("web/0", "web/1", "web/3", "db/0", "db/1"):
            theirs, ours = await client.get_config(unit), await other.get_config(unit)
            assert (theirs.config, theirs.hash, theirs.branch) == (
                ours.config,
                ours.hash,
                ours.branch,
            )
        for app in ("web", "db"):
            source = (await client.list_versions(app, limit=1000)).versions
            target = (await other.list_versions(app, limit=1000)).versions
            assert len(source) == len(target)
            for theirs, ours in zip(source, target, strict=True):
                expected = plain(theirs)
                if theirs.generation:
                    expected["generation"] = str(new_id[theirs.generation])
                if "revert_of" in expected.get("metadata", {}):
                    expected["metadata"]["revert_of"] = new_id[int(theirs.metadata["revert_of"])]
                assert plain(ours) == expected
        db_test = await other.get_branch("db-test")
        assert [c.application for c in db_test.changes] == ["db"]
        assert list(db_test.track_applications) == ["db"]
        assert (await other.list_units("other"))[0].name == "other/0"  # untouched
        written = await other.set_config("other", {"k": "next"})
        assert written.generation == 4 + len(generations)


async def test_a_conflicting_import_writes_nothing_and_names_every_collision(
    client: Client, mongo_client: MongoClient[dict[str, Any]], mongo_uri: str
) -> None:
    await build_model(client)
    texts = await export_texts(client)
    async with second_server(mongo_client, mongo_uri) as (_, other, name):
        await other.create_application("web", units=2)
        await other.create_application("spare", schema=OPEN_SCHEMA)
        await other.set_config("spare", {"a": 1})
        await other.set_config("spare", {"a": 2})
        await other.add_branch("canary")
        # A version left by another tool under a name the import brings.
        mongo_client[name]["versions"].insert_one({"_id": "db@3", "application": "db"})
        before = digest(mongo_client, name)
        with pytest.raises(ClientError) as caught:
            await other.import_model(texts)
        message = assert_code(caught.value, EXISTS).message
        assert message == (
            "the import collides with what this model holds already: applications web; "
            "units web/0, web/1; versions db@3; branches canary; generation ids 1-2 (import "
            "with renumber_generations, genconf import --renumber-generations, to give the "
            "imported generations new ids above this model's); nothing was written"
        )
        assert digest(mongo_client, name) == before


async def test_malformed_input_is_refused_naming_record_and_field(
    client: Client, mongo_client: MongoClient[dict[str, Any]], mongo_uri: str
) -> None:
    await build_model(client)
    texts = await export_texts(client)
    records = [json.loads(t) for t in texts]
    where = {f"{r['record']} {r.get('name', r.get('id', r.get('version')))}": i
             for i, r in enumerate(records)}  # fmt: skip
    web, canary, end = where["application web"], where["branch canary"], len(texts) - 1
    version = next(i for i, r in enumerate(records) if r["record"] == "version")

    def changed(index: int, **fields: Any) -> list[str]:
        out = list(texts)
        out[index] = json.dumps({**records[index], **fields})
        return out

    cases: list[tuple[list[str], str]] = [
        (texts[1:], "record 1 is application 'db', not the header"),
        (changed(0, format=2), "record 1 (header): unknown format version 2"),
        (changed(web, colour="red"), f"record {web + 1} (application 'web'): unknown field"),
        (
            changed(web, settings={"port": "eighty"}),
            f"record {web + 1} (application 'web'): field 'settings': 'port' is of type int",
        ),
        (texts[:-3], f"ended after record {len(texts) - 3} without the end record"),
        ([*texts[:-1], texts[-1][:10]], f"record {len(texts)} is not valid JSON"),
        (texts[:version] + texts[version + 1 :], "versions, but "),
        ([*texts, texts[-1]], f"record {len(texts) + 1} follows the end record"),
        (
            changed(canary, changes={"web": {"port": {"op": "set", "value": "x"}}}),
            f"record {canary + 1} (branch 'canary'): changes of 'web': 'port' is of type int",
        ),
        (changed(version, generation=9999), "its generation 9999 is not in the import"),
        (
            [
                *texts[: version + 1],
                texts[version],
                *texts[version + 1 : -1],
                json.dumps({**records[end], "versions": records[end]["versions"] + 1}),
            ],
            f"records {version + 1}, {version + 2}",
        ),
    ]
    async with second_server(mongo_client, mongo_uri) as (_, other, name):
        before = digest(mongo_client, name)
        for stream, expected in cases:
            with pytest.raises(ClientError) as caught:
                await other.import_model(stream)
            message = assert_code(caught.value, INVALID).message
            assert expected in message, message
            assert message.endswith("nothing was written"), message
            assert digest(mongo_client, name) == before, expected


async def test_a_stop_half_way_says_exactly_what_was_written(
    client: Client,
    mongo_client: MongoClient[dict[str, Any]],
    mongo_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unlinked applications go in a transaction each: when the second fails, the
    error names the first as committed, and the model holds exactly it."""
    await client.create_application("alpha", schema=OPEN_SCHEMA, units=1)
    await client.set_config("alpha", {"a": 1})
    await client.create_application("beta", schema=OPEN_SCHEMA, units=2)
    await client.set_config("beta", {"b": 1})
    texts = await export_texts(client)
    original = transfer_import.Importer._write_part
    calls = 0

    async def failing(self: Any, *args: Any, **kwargs: Any) -> ImportStep:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Unavailable("MongoDB is unreachable: injected")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(transfer_import.Importer, "_write_part", failing)
    async with second_server(mongo_client, mongo_uri) as (_, other, _):
        steps: list[transfer_pb2.ImportProgress] = []
        with pytest.raises(ClientError) as caught:
            await other.import_model(texts, on_progress=steps.append)
        message = assert_code(caught.value, grpc.StatusCode.UNAVAILABLE).message
        assert message == (
            "MongoDB is unreachable: injected. The import stopped at transaction 2 of 2 "
            "(applications beta), which wrote nothing; committed before it: transaction 1 "
            "(applications alpha; 1 unit(s), 2 version(s); generations 1)"
        )
        assert [list(s.applications) for s in steps] == [["alpha"]]
        await other.list_branches(min_revision=steps[0].revision)
        assert [a.name for a in await other.list_applications()] == ["alpha"]
        assert body(await export_texts(other)) != body(texts)
        alone = await export_texts(client, ("alpha",))
        assert body(await export_texts(other, ("alpha",))) == body(alone)


async def test_a_large_history_goes_ahead_of_its_transaction_and_back_on_failure(
    client: Client,
    mongo_client: MongoClient[dict[str, Any]],
    mongo_uri: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Versions and generations past the size one transaction takes are written
    first, in batches; the import reads the same, and a failing transaction takes
    its group's history away again."""
    monkeypatch.setattr(transfer_import, "MAX_HISTORY_DOCS", 2)
    monkeypatch.setattr(transfer_import, "BATCH_DOCS", 3)
    await client.create_application("alpha", schema=OPEN_SCHEMA, units=1)
    await client.create_application("beta", schema=OPEN_SCHEMA, units=2)
    for i in range(5):
        await client.set_config("alpha", {"a": i})
        await client.set_config("beta", {"b": i})
    texts = await export_texts(client)
    async with second_server(mongo_client, mongo_uri) as (_, other, name):
        await other.import_model(texts)
        assert body(await export_texts(other)) == body(texts)
    original = transfer_import.Importer._transaction

    async def failing(self: Any, part: Any, **kw: Any) -> ImportStep:
        if part.apps == ["beta"]:
            raise Unavailable("MongoDB is unreachable: injected")
        return await original(self, part, **kw)

    monkeypatch.setattr(transfer_import.Importer, "_transaction", failing)
    async with second_server(mongo_client, mongo_uri) as (_, other, name):
        with pytest.raises(ClientError) as caught:
            await other.import_model(texts)
        assert "stopped at transaction 2 of 2 (applications beta), which wrote nothing" in (
            caught.value.message
        )
        db = mongo_client[name]
        assert {d["application"] for d in db["versions"].find()} == {"alpha"}
        assert all(set(g["changes"]) == {"alpha"} for g in db["generations"].find())
        assert db["generations"].count_documents({}) == 5


async def test_a_record_larger_than_a_message_travels_in_parts(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    """A 3 MB application record into a server taking 1 MiB messages."""
    big = {f"k{i}": "x" * 60_000 for i in range(50)}
    async with (
        running_server(mongo_uri, db_name) as srv,
        Client(srv.address, timeout=30) as c,
    ):
        await c.create_application("big", schema=OPEN_SCHEMA)
        for i in range(0, 50, 10):
            await c.set_config("big", {k: big[k] for k in list(big)[i : i + 10]})
        texts = await export_texts(c)
    assert max(len(t) for t in texts) > 3_000_000
    name = "t_" + uuid4().hex[:12]
    try:
        async with (
            running_server(mongo_uri, name, max_request_bytes=1024 * 1024) as srv,
            Client(srv.address, timeout=30) as other,
        ):
            await other.import_model(texts)
            assert body(await export_texts(other)) == body(texts)
    finally:
        mongo_client.drop_database(name)


async def test_only_admins_export_and_import(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        await admin.create_application("web", schema=WEB_SCHEMA, units=1)
        await admin.set_config("web", {"password": "s3cret"})
        texts = await export_texts(admin)
        assert any("s3cret" in t for t in texts)  # why it is the admin's alone
        tokens = {
            role: (await admin.create_token(role, name=role)).token
            for role in ("controller", "observer")
        }
        requests = [
            transfer_pb2.ImportRequest(record=transfer_pb2.ExportRecord(json=t)) for t in texts
        ]
        before = digest(mongo_client, db_name)
        async with grpc.aio.insecure_channel(srv.address) as channel:
            stub = transfer_pb2_grpc.TransferServiceStub(channel)
            for role, token in (*tokens.items(), ("nobody", None)):
                async with Client(srv.address, token=token, timeout=30) as caller:
                    with pytest.raises(ClientError) as caught:
                        await export_texts(caller)
                exported = caught.value
                # Import streams its requests: called as its clients call it (the
                # bearer token on the call, records once the server is ready).
                imported = await invoke_bidi(stub.Import, requests, token)
                if token is None:
                    assert_code(exported, grpc.StatusCode.UNAUTHENTICATED)
                    assert imported[0] == grpc.StatusCode.UNAUTHENTICATED
                    continue
                message = assert_code(exported, DENIED).message
                assert (
                    message == f"role {role} may not call TransferService/Export (allowed: admin)"
                )
                assert imported == (
                    DENIED,
                    f"role {role} may not call TransferService/Import (allowed: admin)",
                )
            assert digest(mongo_client, db_name) == before
            # Through the Client the bearer token rides the stream too: a controller is
            # refused, the admin reaches the import (which finds every name taken).
            async with Client(srv.address, token=tokens["controller"], timeout=30) as caller:
                with pytest.raises(ClientError) as denied:
                    await caller.import_model(texts)
            assert_code(denied.value, DENIED)
            with pytest.raises(ClientError) as taken:
                await admin.import_model(texts)
            assert_code(taken.value, grpc.StatusCode.ALREADY_EXISTS)
            assert digest(mongo_client, db_name) == before
            # The admin imports (here: nothing, so the model stays as it is).
            nothing = dict.fromkeys(("applications", "units", "versions", "branches"), 0)
            end = json.dumps({"record": "end", **nothing, "generations": 0})
            empty = [
                requests[0],
                transfer_pb2.ImportRequest(record=transfer_pb2.ExportRecord(json=end)),
            ]
            assert await invoke_bidi(stub.Import, empty, BOOTSTRAP) == (grpc.StatusCode.OK, "")
            assert digest(mongo_client, db_name) == before


def test_ranges_and_steps_read_as_people_write_them() -> None:
    assert ranges([9, 1, 2, 3, 7, 10]) == "1-3, 7, 9-10"
    assert ranges([]) == ""
    step = ImportStep(("a", "b"), ("x",), 3, 40, ((5, 7), (9, 9)))
    assert step.describe() == (
        "applications a, b; branches x; 3 unit(s), 40 version(s); generations 5-7, 9"
    )
    assert step.generation_count == 4
    assert ImportStep().describe() == "0 unit(s), 0 version(s)"


async def test_export_refuses_a_document_it_cannot_carry_exactly(store: Store) -> None:
    """A field format 1 does not know is refused, naming it, rather than dropped."""
    await store.create_application("web", units=1)
    await store.db["applications"].update_one({"_id": "web"}, {"$set": {"colour": "red"}})
    with pytest.raises(FailedPrecondition) as caught:
        _ = [record async for record in store.export_model()]
    assert caught.value.message == (
        "cannot export application 'web': its field(s) ['colour'] have no place in export "
        "format 1; this genconf writes documents its export format does not know"
    )
    with pytest.raises(NotFound, match="application\\(s\\) nope not found; nothing was exported"):
        _ = [record async for record in store.export_model(["web", "nope"])]
