"""Secrets stay secret: tokens are never stored or logged in plain text, and
observers see secret config values redacted, in every read, even after the
schema that made them secret has changed.

(Keyed hashes and guessing attacks: tests/api/test_redaction.py.)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import bson
import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message
from pymongo import MongoClient
from support.rpcs import CALL_TIMEOUT, INVALID, UNAUTHENTICATED
from support.servers import BOOTSTRAP, admin_session, assert_code

from genconf.api.guard import Guard
from genconf.client import Client
from genconf.errors import ClientError
from genconf.security import auth
from genconf.security.redact import REDACTED
from genconf.security.tokenbook import TokenBook
from genconf.v1 import admin_pb2, agent_pb2, agent_pb2_grpc, history_pb2, types_pb2
from genconf.wire import to_value

VAULT_SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 80},
    "password": {"type": "string", "secret": True, "default": "hunter2-default"},
    "api_key": {"type": "string", "secret": True},
}
SECRET_MARK = b"hunter2"


def everything_stored(mongo_client: MongoClient[dict[str, Any]], db_name: str) -> bytes:
    db = mongo_client[db_name]
    return b"".join(
        bson.encode(doc) for name in db.list_collection_names() for doc in db[name].find({})
    )


async def test_tokens_are_never_stored_or_logged_in_plain_text(
    mongo_uri: str,
    db_name: str,
    mongo_client: MongoClient[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="genconf")
    caplog.set_level(logging.DEBUG, logger="grpc")
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        await admin.create_application("vault", schema=VAULT_SCHEMA, units=1)
        seeded = await admin.set_config("vault", {"api_key": "hunter2-master"}, reason="rotate")
        plaintexts = [BOOTSTRAP]
        for role, unit in [
            ("admin", ""),
            ("controller", ""),
            ("observer", ""),
            ("agent", "vault/0"),
        ]:
            created = await admin.create_token(role, unit=unit, description=f"a {role}")
            plaintexts.append(created.token)
            async with Client(srv.address, token=created.token, timeout=CALL_TIMEOUT) as c:
                assert (await c.get_config("vault/0", min_revision=seeded.revision)).hash
                with pytest.raises(ClientError) as caught:  # wrong secret, same id
                    async with Client(
                        srv.address, token=created.token[:-1] + "x", timeout=CALL_TIMEOUT
                    ) as forged:
                        await forged.get_config("vault/0")
                assert_code(caught.value, UNAUTHENTICATED)
                assert created.token[-43:] not in caught.value.message
        with pytest.raises(ClientError) as caught:  # an error that echoes the value
            await admin.set_config("vault", {"port": "hunter2-wrong-type"})
        assert "hunter2-wrong-type" in assert_code(caught.value, INVALID).message
        await admin.revoke_token((await admin.list_tokens(min_revision=created.revision))[0].id)
        stored = everything_stored(mongo_client, db_name)
        docs = list(mongo_client[db_name]["tokens"].find({}))
        assert len(docs) == len(plaintexts) - 1  # every minted token; never the bootstrap
        assert all(len(d["hash"]) == 32 and len(d["salt"]) == 16 for d in docs)
        assert len({d["salt"] for d in docs}) == len(docs), "two tokens share a salt"
        assert sum(d["revoked_at"] is not None for d in docs) == 1
    logged = (
        "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
        + caplog.text
    )
    assert caplog.records, "nothing was logged: the log check would prove nothing"
    for plaintext in plaintexts:
        for part in {plaintext, plaintext.split("_", 2)[-1]}:
            assert part.encode() not in stored, "a token is stored in plain text"
            assert part not in logged, "a token was logged"
    assert "hunter2" not in logged, "a secret config value was logged"


async def test_observers_see_secrets_redacted_and_admins_see_them(
    mongo_uri: str, db_name: str
) -> None:
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        start = (await admin.snapshot()).revision
        await admin.create_application("vault", schema=VAULT_SCHEMA, units=2)
        await admin.set_config("vault", {"password": "hunter2-v1", "port": 81})
        await admin.add_branch("rotate")
        await admin.track_branch("rotate", units=["vault/1"])
        await admin.set_branch_config(
            "rotate", "vault", {"password": "hunter2-branch", "api_key": "hunter2-key"}
        )
        # Master moves on: the branch now conflicts, and the conflict names values.
        last = await admin.set_config("vault", {"password": "hunter2-v2"})
        multiline = "hunter2\nline two\nline three\n" * 3
        last = await admin.set_config("vault", {"api_key": multiline})
        observer = (await admin.create_token("observer")).token

        reads: dict[str, Callable[[Client], Awaitable[Message]]] = {
            "GetApplication": lambda c: c.get_application("vault", min_revision=last.revision),
            "ListApplications": lambda c: _list_apps(c),
            "GetConfig master": lambda c: _config(c, "vault/0"),
            "GetConfig branch": lambda c: _config(c, "vault/1"),
            "DiffBranch": lambda c: c.diff_branch("rotate"),
            "GetBranch": lambda c: c.get_branch("rotate"),
            "DiffVersions": lambda c: c.diff_versions("vault", 1, 4),
            "GetVersion": lambda c: c.get_version("vault", 3),
            "ListVersions": lambda c: c.list_versions("vault"),
            "KeyHistory password": lambda c: c.key_history("vault", "password"),
            "KeyHistory api_key": lambda c: c.key_history("vault", "api_key"),
            "GetGeneration": lambda c: c.get_generation(2),
            "ListGenerations": lambda c: c.list_generations(),
            "Snapshot": lambda c: c.snapshot(),
            "WatchDeltas": lambda c: _first_deltas(c, start),
            "WatchConfig": lambda c: _first_watch_config(c, "vault/1"),
        }
        async with Client(srv.address, token=observer, timeout=CALL_TIMEOUT) as obs:
            for name, read in reads.items():
                shown = (await read(obs)).SerializeToString()
                assert SECRET_MARK not in shown, f"{name} shows a secret to an observer"
                assert REDACTED.encode() in shown, f"{name}: nothing redacted, nothing checked"
                in_full = (await read(admin)).SerializeToString()
                assert SECRET_MARK in in_full, f"{name} hides the secret from an admin"
            # Hashes are keyed (tests/api/test_redaction.py): never the sha256 a guess at
            # the secret could reproduce, the same for the same config.
            seen = await obs.get_config("vault/0")
            real = await admin.get_config("vault/0")
            assert seen.hash != real.hash and len(seen.hash) == len(real.hash)
            assert (await obs.get_config("vault/0")).hash == seen.hash
            assert seen.config["password"] == REDACTED
            assert seen.config["port"] == 81  # other values are as they are
            app = await obs.get_application("vault")
            assert app.schema["password"].default.string_value == REDACTED


async def test_observers_do_not_see_values_of_options_dropped_from_the_schema(
    mongo_uri: str, db_name: str
) -> None:
    """History outlives the schema: once ``password`` is dropped, its old values in
    versions and generations stay hidden from observers (redaction fails closed).
    Version diffs and key history read through the current schema, so they no
    longer show the dropped key at all."""
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        await admin.create_application("vault", schema=VAULT_SCHEMA, units=1)
        await admin.set_config("vault", {"password": "hunter2-old", "port": 81})
        await admin.set_config("vault", unset=["password"])
        dropped = {k: v for k, v in VAULT_SCHEMA.items() if k != "password"}
        last = await admin.update_application("vault", schema=dropped)
        observer = (await admin.create_token("observer")).token
        reads: dict[str, Callable[[Client], Awaitable[Message]]] = {
            "GetVersion": lambda c: c.get_version("vault", 2),
            "ListGenerations": lambda c: c.list_generations(),
        }
        async with Client(srv.address, token=observer, timeout=CALL_TIMEOUT) as obs:
            await obs.get_application("vault", min_revision=last.revision)
            for name, read in reads.items():
                assert SECRET_MARK in (await read(admin)).SerializeToString(), name
                shown = (await read(obs)).SerializeToString()
                assert SECRET_MARK not in shown, f"{name} shows a dropped secret"
                assert REDACTED.encode() in shown, name
            # What the schema still describes as public is shown as it is.
            version = await obs.get_version("vault", 2)
            assert json_format.MessageToDict(version)["settings"]["port"] == 81


async def _list_apps(c: Client) -> Message:
    return admin_pb2.SnapshotResponse(applications=await c.list_applications())


async def _config(c: Client, unit: str) -> Message:
    """GetConfig as the message (`Client.get_config` decodes it)."""
    stub = agent_pb2_grpc.AgentServiceStub(c.channel)
    return await stub.GetConfig(agent_pb2.GetConfigRequest(unit=unit), timeout=CALL_TIMEOUT)


async def _first_deltas(c: Client, since: int) -> Message:
    stream = c.watch_deltas(since_revision=since)
    batches = admin_pb2.SnapshotResponse()
    try:
        with anyio.fail_after(CALL_TIMEOUT):
            async for batch in stream:
                for delta in batch.deltas:
                    if delta.HasField("application"):
                        batches.applications.append(delta.application)
                # Replayed: every application upsert, including the last one.
                if len(batches.applications) >= 4:
                    return batches
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    raise AssertionError("the feed ended")


async def _first_watch_config(c: Client, unit: str) -> Message:
    stub = agent_pb2_grpc.AgentServiceStub(c.channel)
    call = stub.WatchConfig(agent_pb2.WatchConfigRequest(unit=unit), timeout=CALL_TIMEOUT)
    try:
        reply = await call.read()
        assert reply is not grpc.aio.EOF and reply.HasField("config")
        return reply
    finally:
        call.cancel()


def test_redaction_can_fail_closed_for_history_the_schema_no_longer_describes() -> None:
    """With ``public_keys``, values of keys dropped from the schema, and of removed
    applications, are hidden from observers too (history outlives the schema)."""
    public = {"vault": frozenset({"port"})}  # "password" was dropped; "gone" was removed
    guard = Guard(
        TokenBook(),
        None,
        public_keys=public.get,
    )
    generation = types_pb2.Generation(id=1)
    for app in ("vault", "gone"):
        changes = generation.changes.add(application=app)
        for key, value in (("port", 81), ("password", "hunter2")):
            change = changes.changes.add(key=key, has_from=True, has_to=True)
            getattr(change, "from").CopyFrom(struct_pb2.Value(string_value="old"))
            change.to.CopyFrom(to_value(value))
    history = history_pb2.KeyHistoryResponse(application="gone", key="port")
    history.entries.add(version=1, has_value=True, value=to_value(80))
    observer = auth.Principal("o", auth.Role.OBSERVER)
    shown = guard.shown_to(observer, generation)
    visible = {
        (c.application, k.key): json_format.MessageToDict(k.to)
        for c in shown.changes
        for k in c.changes
    }
    assert visible == {
        ("vault", "port"): 81,
        ("vault", "password"): REDACTED,
        ("gone", "port"): REDACTED,
        ("gone", "password"): REDACTED,
    }
    assert guard.shown_to(observer, history).entries[0].value.string_value == REDACTED
    # Other roles see everything; the original message is never changed.
    controller = auth.Principal("c", auth.Role.CONTROLLER)
    assert guard.shown_to(controller, generation) is generation
    assert generation.changes[1].changes[1].to.string_value == "hunter2"
