"""Nothing an observer reads derives from a secret; history is redacted by the
schema it was written under.

An observer given a 4-digit secret must not find it by trying all 10,000
candidates against anything it can read: every string of every reply it can get
(configs, bookmarks, applied reports, branches, the admin feed, history) is
collected and checked against the sha256 config hash of each candidate, and for
the candidate itself. Agents keep the exact hash they compare. Real mongod, real
servers on loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Any

import anyio
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from pymongo import MongoClient
from support.rpcs import CALL_TIMEOUT, genconf_services
from support.servers import BOOTSTRAP, admin_session, running_server

from genconf.api.convert import diff_to_proto
from genconf.api.guard import Guard
from genconf.client import Client
from genconf.domain.diff import diff as nested_diff
from genconf.domain.values import canonical_json, config_hash
from genconf.security import auth
from genconf.security.redact import HASHED, REDACTED, keyed_hash, redacted
from genconf.security.tokenbook import TokenBook
from genconf.store.documents import KEYS, OBSERVER_KEY
from genconf.store.store import Store
from genconf.v1 import agent_pb2, agent_pb2_grpc, history_pb2, types_pb2
from genconf.wire import to_value

PIN = "4821"
SCHEMA: dict[str, Any] = {
    "pin": {"type": "string", "secret": True},
    "port": {"type": "int", "default": 80},
}
PUBLIC_SCHEMA: dict[str, Any] = {**SCHEMA, "pin": {"type": "string"}}
CANDIDATES = [f"{n:04d}" for n in range(10_000)]
OBSERVER = auth.Principal("o", auth.Role.OBSERVER)


# -- what a caller can read ------------------------------------------------------------


def strings_of(messages: Iterable[Message]) -> list[str]:
    """Every string in the messages: string fields, map keys, JSON string values."""
    out: list[str] = []

    def walk(message: Message) -> None:
        for field, value in message.ListFields():
            if field.message_type is None:
                if field.type == FieldDescriptor.TYPE_STRING:
                    out.extend(value if field.is_repeated else [value])
            elif field.message_type.GetOptions().map_entry:
                for key, item in value.items():
                    out.append(str(key))
                    if isinstance(item, Message):
                        walk(item)
                    elif isinstance(item, str):
                        out.append(item)
            else:
                for item in value if field.is_repeated else [value]:
                    walk(item)

    for message in messages:
        walk(message)
    return out


def candidate_hashes(configs: Iterable[dict[str, Any]]) -> set[str]:
    """The sha256 config hash of every config with each candidate as its pin."""
    return {config_hash({**c, "pin": pin}) for c in configs for pin in CANDIDATES}


def assert_nothing_derives_from(strings: Sequence[str], hashes: set[str], what: str) -> None:
    found = hashes.intersection(strings)
    assert not found, f"{what}: a hash an offline guess can reproduce: {sorted(found)[:3]}"
    values = set(CANDIDATES).intersection(strings)
    assert not values, f"{what}: a candidate shown as a value: {values}"
    quoted = [s for s in strings if f'"{PIN}"' in s or PIN == s]
    assert not quoted, f"{what}: the secret inside a string: {quoted[:3]}"


async def watch_config(
    c: Client, unit: str, known_hash: str = "", *, until_bookmark: bool = True
) -> list[agent_pb2.WatchConfigResponse]:
    """The first replies of a WatchConfig: up to the first bookmark (the test servers
    send one every 0.2 s), or just the first one."""
    stub = agent_pb2_grpc.AgentServiceStub(c.channel)
    call = stub.WatchConfig(
        agent_pb2.WatchConfigRequest(unit=unit, known_hash=known_hash), timeout=CALL_TIMEOUT
    )
    replies: list[agent_pb2.WatchConfigResponse] = []
    try:
        async for reply in call:
            replies.append(reply)
            if reply.HasField("bookmark") or not until_bookmark:
                return replies
    finally:
        call.cancel()
    raise AssertionError("the watch ended")


async def feed(c: Client, since: int, until: int) -> list[Message]:
    """The admin feed replayed from ``since`` up to the batch at ``until``."""
    out: list[Message] = []
    stream = c.watch_deltas(since_revision=since)
    try:
        with anyio.fail_after(CALL_TIMEOUT):
            async for batch in stream:
                out.append(batch)
                if batch.revision >= until:
                    return out
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    raise AssertionError("the feed ended")


async def readable(c: Client, apps: Sequence[str], since: int, until: int) -> list[Message]:
    """Every reply a reader role can get about ``apps`` (and every generation)."""
    stub = agent_pb2_grpc.AgentServiceStub(c.channel)
    out: list[Message] = [
        await c.snapshot(),
        *await c.list_applications(min_revision=until),
        *await c.list_branches(),
        *await feed(c, since, until),
        await c.list_generations(),
    ]
    for gen in (await c.list_generations()).generations:
        out.append(await c.get_generation(gen.id))
    for branch in await c.list_branches():
        out += [await c.get_branch(branch.name), await c.diff_branch(branch.name)]
    for app in apps:
        application = await c.get_application(app)
        out += [application, *await c.list_units(app)]
        for unit in application.units:
            out.append(await stub.GetConfig(agent_pb2.GetConfigRequest(unit=unit)))
            out += await watch_config(c, unit)
        versions = await c.list_versions(app)
        out.append(versions)
        for v in versions.versions:
            out.append(await c.get_version(app, v.version))
            out.append(await c.diff_versions(app, 1, v.version))
            if v.version > 1:
                out.append(await c.diff_versions(app, v.version - 1, v.version))
        out.append(await c.latest_version(app))
        for key in application.schema:
            out.append(await c.key_history(app, key))
    return out


# -- the PIN ----------------------------------------------------------------------------


async def test_an_observer_cannot_test_guesses_of_a_4_digit_secret_against_what_it_reads(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        start = (await admin.snapshot()).revision
        await admin.create_application("pin", schema=SCHEMA, units=3)
        await admin.set_config("pin", {"pin": PIN, "port": 81})
        await admin.add_branch("canary")
        await admin.track_branch("canary", units=["pin/1"])
        await admin.set_branch_config("canary", "pin", {"port": 9000})
        observer = (await admin.create_token("observer")).token
        agents = {u: (await admin.create_token("agent", unit=u)).token for u in ("pin/0", "pin/1")}

        # Agents get the exact hash, report it, and are answered by it.
        exact: dict[str, str] = {}
        for unit, token in agents.items():
            async with Client(srv.address, token=token, timeout=CALL_TIMEOUT) as agent:
                config = await agent.get_config(unit)
                assert config.config["pin"] == PIN
                assert config.hash == config_hash(config.config)
                exact[unit] = config.hash
                last = await agent.report_applied(unit, config.hash)
                first = await watch_config(agent, unit, config.hash, until_bookmark=False)
                assert first[0].bookmark.hash == config.hash, "an agent's known hash is answered"
        until = last.revision
        configs = [(await admin.get_config(u)).config for u in ("pin/0", "pin/1", "pin/2")]
        assert len({canonical_json(c) for c in configs}) == 2  # master and canary
        guesses = candidate_hashes(configs)

        # The check finds what it looks for: an admin's replies hold both.
        in_full = strings_of(await readable(admin, ["pin"], start, until))
        assert set(exact.values()) <= guesses.intersection(in_full)
        assert PIN in in_full

        async with Client(srv.address, token=observer, timeout=CALL_TIMEOUT) as obs:
            shown = strings_of(await readable(obs, ["pin"], start, until))
            assert REDACTED in shown
            assert_nothing_derives_from(shown, guesses, "observer")

            # A made-up known_hash is never confirmed: the config comes first, whatever.
            for known in (exact["pin/0"], (await obs.get_config("pin/0")).hash):
                first = await watch_config(obs, "pin/0", known, until_bookmark=False)
                assert first[0].HasField("config")

            # What observers see is keyed with the server key kept in MongoDB ...
            key = bytes(mongo_client[db_name][KEYS].find_one({"_id": OBSERVER_KEY})["key"])
            seen = await obs.get_config("pin/0")
            assert seen.hash == keyed_hash(key, exact["pin/0"]) != exact["pin/0"]
            # ... so an observer still tells which units hold the same config, whether
            # a unit applied its config, and that a config changed.
            assert (await obs.get_config("pin/2")).hash == seen.hash
            assert (await obs.get_config("pin/1")).hash != seen.hash
            units = {u.name: u for u in await obs.list_units("pin")}
            assert units["pin/0"].applied.hash == seen.hash
            branch = await obs.get_branch("canary")
            assert [(a.unit, a.applied) for a in branch.applied] == [("pin/1", True)]
            assert branch.applied[0].hash == branch.applied[0].report.hash
            rotated = await admin.set_config("pin", {"pin": "4822"})
            after = await obs.get_config("pin/0", min_revision=rotated.revision)
            assert after.hash != seen.hash
            assert after.hash == keyed_hash(key, (await admin.get_config("pin/0")).hash)

        # Every replica keys with the same key: a second server, same database.
        async with (
            running_server(mongo_uri, db_name, admin_token=BOOTSTRAP) as other,
            Client(other.address, token=observer, timeout=CALL_TIMEOUT) as obs2,
        ):
            again = await obs2.get_config("pin/0", min_revision=rotated.revision)
            assert again.hash == after.hash


# -- history by the schema it was written under --------------------------------------


async def test_history_stays_redacted_by_the_schema_it_was_written_under(
    mongo_uri: str, db_name: str
) -> None:
    """``reborn`` is removed and re-created with ``pin`` public: the old incarnation's
    generations (and its states replayed by the feed) still hide the old pin. In
    ``vault``, UpdateApplication makes ``pin`` public: the versions written while it
    was secret still hide it; a later one shows its own value. (Making an option
    public shows its current value from then on, "6666" here: that is the
    operator's choice; what it held before stays hidden.)"""
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        start = (await admin.snapshot()).revision
        await admin.create_application("reborn", schema=SCHEMA, units=1)
        old = await admin.set_config("reborn", {"pin": PIN})
        await admin.remove_application("reborn", force=True)
        await admin.create_application("reborn", schema=PUBLIC_SCHEMA, units=1)
        new = await admin.set_config("reborn", {"pin": "1111"})

        await admin.create_application("vault", schema=SCHEMA, units=1)
        await admin.set_config("vault", {"pin": PIN, "port": 81})  # version 2
        await admin.set_config("vault", {"pin": "6666"})  # version 3
        await admin.update_application("vault", schema=PUBLIC_SCHEMA)
        last = await admin.set_config("vault", {"pin": "5555"})  # version 4
        observer = (await admin.create_token("observer")).token

        in_full = strings_of(await readable(admin, ["reborn", "vault"], start, last.revision))
        assert PIN in in_full
        async with Client(srv.address, token=observer, timeout=CALL_TIMEOUT) as obs:
            shown = strings_of(await readable(obs, ["reborn", "vault"], start, last.revision))
            assert PIN not in shown and not [s for s in shown if f'"{PIN}"' in s]

            def pins(gen: types_pb2.Generation) -> list[Any]:
                return [
                    json_format.MessageToDict(k.to)
                    for c in gen.changes
                    for k in c.changes
                    if k.key == "pin"
                ]

            assert pins(await obs.get_generation(old.generation)) == [REDACTED]
            assert pins(await obs.get_generation(new.generation)) == ["1111"]
            v2, v4 = await obs.get_version("vault", 2), await obs.get_version("vault", 4)
            assert list(v2.secret_keys) == ["pin"] and not v4.secret_keys
            assert v2.settings["pin"] == REDACTED
            assert v4.settings["pin"] == "5555"
            history = await obs.key_history("vault", "pin")
            shown_at = {
                e.version: json_format.MessageToDict(e.value)
                for e in history.entries
                if e.has_value
            }
            assert shown_at == {4: "5555", 3: REDACTED, 2: REDACTED}  # 1: no value
            diff = await obs.diff_versions("vault", 3, 4)
            assert [(e.path, e.new.string_value) for e in diff.entries] == [("pin", REDACTED)]
            # An admin sees it all, and which keys were secret when written.
            assert (await admin.get_version("vault", 2)).settings["pin"] == PIN
            assert list((await admin.diff_versions("vault", 3, 4)).secret_keys) == ["pin"]


# -- the key ------------------------------------------------------------------------------


async def test_the_observer_key_is_made_once_by_whichever_replica_asks_first(
    mongo_uri: str, db_name: str
) -> None:
    stores = [Store.connect(mongo_uri, db_name) for _ in range(4)]
    try:
        keys = await asyncio.gather(*(s.observer_key() for s in stores))
        assert len(set(keys)) == 1 and len(keys[0]) == 32
        assert await stores[0].observer_key() == keys[0]
    finally:
        for store in stores:
            await store.aclose()


async def test_a_server_without_auth_makes_no_key(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    """Without authentication nobody is an observer: every caller sees exact hashes."""
    async with running_server(mongo_uri, db_name) as srv, Client(srv.address) as c:
        await c.create_application("pin", schema=SCHEMA, units=1)
        w = await c.set_config("pin", {"pin": PIN})
        config = await c.get_config("pin/0", min_revision=w.revision)
        assert config.hash == config_hash(config.config)
    assert mongo_client[db_name][KEYS].find_one({"_id": OBSERVER_KEY}) is None


# -- the redaction walk -------------------------------------------------------------------


def test_every_hash_an_rpc_returns_is_keyed_for_observers() -> None:
    """A new field carrying a hash in any reply fails here until `redact.HASHED` has it."""
    holders: set[str] = set()
    seen: set[str] = set()

    def walk(d: Descriptor) -> None:
        if d.full_name in seen:
            return
        seen.add(d.full_name)
        for field in d.fields:
            if "hash" in field.name:
                assert field.name == "hash", f"{d.full_name}.{field.name}: name it hash"
                holders.add(d.full_name)
            if field.message_type is not None:
                walk(field.message_type)

    for service in genconf_services():
        for method in service.methods:
            walk(method.output_type)
    assert holders == HASHED


def guard(public: dict[str, frozenset[str]], key: bytes | None = b"k" * 32) -> Guard:
    g = Guard(TokenBook(), None, public_keys=public.get)
    g.observer_key = key
    return g


def test_hashes_are_keyed_and_without_a_key_blanked() -> None:
    real = config_hash({"pin": PIN})
    reply = agent_pb2.WatchConfigResponse(bookmark=agent_pb2.Bookmark(revision=1, hash=real))
    unit = types_pb2.Unit(name="pin/0", applied=types_pb2.AppliedReport(hash=real, ok=True))
    key = b"k" * 32
    expected = hmac.new(key, real.encode(), hashlib.sha256).hexdigest()
    shown = guard({}).shown_to(OBSERVER, reply)
    assert shown.bookmark.hash == expected
    assert guard({}).shown_to(OBSERVER, unit).applied.hash == expected
    assert guard({}, None).shown_to(OBSERVER, reply).bookmark.hash == ""
    admin = auth.Principal("a", auth.Role.ADMIN)
    assert guard({}).shown_to(admin, reply).bookmark.hash == real
    assert reply.bookmark.hash == real  # the shared original is untouched


def test_versions_written_before_secret_keys_were_kept_follow_the_current_schema() -> None:
    version = types_pb2.Version(application="app", version=2)
    version.settings.update({"pin": PIN, "port": 81})
    public_now = guard({"app": frozenset({"pin", "port"})}).shown_to(OBSERVER, version)
    assert public_now.settings["pin"] == PIN  # no record: today's rule
    secret_now = guard({"app": frozenset({"port"})}).shown_to(OBSERVER, version)
    assert secret_now.settings["pin"] == REDACTED
    version.secret_keys.append("pin")
    written_secret = guard({"app": frozenset({"pin", "port"})}).shown_to(OBSERVER, version)
    assert written_secret.settings["pin"] == REDACTED
    assert written_secret.settings["port"] == 81


def test_diffs_of_a_secret_object_name_no_path_inside_it() -> None:
    """The keys inside a secret object are part of the secret: its entries merge
    into one, changed from one redacted value to another."""
    before = {"creds": {"user": "u", "pass": "p"}, "port": 80}
    after = {"creds": {"user": "u", "pass": "q", "token": "t"}, "port": 81, "extra": "x"}
    diff = history_pb2.DiffVersionsResponse(
        application="app", entries=diff_to_proto(nested_diff(before, after))
    )
    shown = guard({"app": frozenset({"port", "extra"})}).shown_to(OBSERVER, diff)
    entries = [(e.path, e.kind, e.old.string_value, e.new.string_value) for e in shown.entries]
    assert entries == [
        ("extra", "added", "", "x"),
        ("creds", "changed", REDACTED, REDACTED),
        ("port", "changed", "", ""),
    ]
    assert shown.entries[2].new.number_value == 81
    assert not [s for s in strings_of([shown]) if "pass" in s or "token" in s]


def test_key_history_hides_the_values_of_versions_that_held_it_secret() -> None:
    history = history_pb2.KeyHistoryResponse(application="app", key="pin")
    history.entries.add(version=3, has_value=True, value=to_value("5555"))
    history.entries.add(version=2, has_value=True, value=to_value(PIN), secret=True)
    shown = guard({"app": frozenset({"pin"})}).shown_to(OBSERVER, history)
    assert [e.value.string_value for e in shown.entries] == ["5555", REDACTED]
    hidden_now = guard({"app": frozenset()}).shown_to(OBSERVER, history)
    assert [e.value.string_value for e in hidden_now.entries] == [REDACTED, REDACTED]


def test_a_replayed_application_is_redacted_by_its_own_schema_too() -> None:
    """The feed replays past states: one whose schema held ``pin`` secret hides it even
    if the current schema (or a re-created application) made it public."""
    app = types_pb2.Application(name="app")
    app.schema["pin"].CopyFrom(types_pb2.OptionSchema(type="string", secret=True))
    app.settings.update({"pin": PIN})
    app.effective.update({"pin": PIN})
    shown = guard({"app": frozenset({"pin"})}).shown_to(OBSERVER, app)
    assert shown.settings["pin"] == REDACTED and shown.effective["pin"] == REDACTED
    assert isinstance(redacted(app, {"app": frozenset({"pin"})}.get), types_pb2.Application)
