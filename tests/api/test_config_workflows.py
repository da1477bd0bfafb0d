"""The versioning workflows of the tools genconf replaces, through the real server:
creation with content, open applications, replacing the whole config, per-key
check-before-update, patching a text value. Every refusal leaves every collection
as it was (`digest`)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from pymongo import MongoClient
from support.servers import admin_session, assert_code, digest

from genconf.api.server import RunningServer
from genconf.client import ABSENT, Client, ClientError
from genconf.domain.patch import unified_diff
from genconf.wire import from_struct

LLM = {"model": "gpt-4o", "temperature": 0.2, "stop": ["\n\n"], "tools": {"search": True}}
TYPED = {
    "port": {"type": "int", "default": 8080},
    "log-level": {"type": "string", "default": "info"},
    "motd": {"type": "string"},
    "password": {"type": "string", "secret": True},
}


class Unchanged:
    """A refused request must leave every collection as it was."""

    def __init__(self, mongo_client: MongoClient[dict[str, Any]], db_name: str) -> None:
        self.mongo_client, self.db_name = mongo_client, db_name

    async def refused(self, call: Any, code: grpc.StatusCode) -> ClientError:
        before = digest(self.mongo_client, self.db_name)
        with pytest.raises(ClientError) as err:
            await call
        assert digest(self.mongo_client, self.db_name) == before, "a refused write wrote"
        return assert_code(err.value, code)


@pytest.fixture
def unchanged(mongo_client: MongoClient[dict[str, Any]], db_name: str) -> Unchanged:
    return Unchanged(mongo_client, db_name)


async def _effective(client: Client, app: str) -> dict[str, Any]:
    return from_struct((await client.get_application(app)).effective)


# -- creation with content -------------------------------------------------------


async def test_create_with_content_makes_version_one(client: Client) -> None:
    w = await client.create_application(
        "web",
        schema=TYPED,
        settings={"port": 9000, "log-level": "debug"},
        reason="first release",
        metadata={"ticket": "OPS-1"},
        units=2,
        created_by="ann",
    )
    assert w.versions == {"web": 1} and w.units == ["web/0", "web/1"]
    v1 = await client.get_version("web", 1)
    assert v1.previous_version == 0 and v1.reason == "first release"
    assert dict(v1.metadata) == {"ticket": "OPS-1"}
    assert dict(v1.settings) == {"port": 9000, "log-level": "debug"}
    config = await client.get_config("web/0", min_revision=w.revision)
    assert config.config == {"port": 9000, "log-level": "debug"}


async def test_create_with_content_is_checked_first(client: Client, unchanged: Unchanged) -> None:
    await client.create_application("other")
    err = await unchanged.refused(
        client.create_application("web", schema=TYPED, settings={"port": "high"}),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "'port' is of type int" in err.message
    err = await unchanged.refused(
        client.create_application("web", schema=TYPED, settings={"nope": 1}),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "unknown config key 'nope'" in err.message
    await unchanged.refused(
        client.create_application("web", schema={"*": {"type": "any", "default": 1}}),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


# -- open applications: the versioned-config-manager walk ------------------------


async def test_open_application_walk(client: Client, unchanged: Unchanged) -> None:
    """create with config + reason + metadata -> v1; update -> v2; nested change by
    path; a stale expected_version; rollback with metadata; history; clear errors."""
    w1 = await client.create_application(
        "agent",
        open=True,
        settings={"llm": LLM, "name": "helper"},
        reason="initial",
        metadata={"owner": "ml"},
    )
    v1 = await client.get_version("agent", 1)
    assert (v1.version, v1.previous_version, v1.reason) == (1, 0, "initial")
    assert dict(v1.metadata) == {"owner": "ml"}
    assert w1.versions == {"agent": 1}

    changed = {**LLM, "model": "gpt-5", "tools": {"search": True, "code": True}}
    w2 = await client.set_config("agent", {"llm": changed}, reason="upgrade", created_by="bo")
    assert w2.versions == {"agent": 2}
    assert (await client.get_version("agent", 2)).previous_version == 1

    d = await client.diff_versions("agent", 1, 2)
    paths = {(e.path, e.kind) for e in d.entries}
    assert paths == {("llm.model", "changed"), ("llm.tools.code", "added")}

    err = await unchanged.refused(
        client.set_config("agent", {"name": "x"}, expected_version=1),
        grpc.StatusCode.ABORTED,
    )
    assert "version 2, not the expected version 1" in err.message
    assert (err.detail.expected_version, err.detail.actual_version) == (1, 2)

    w3 = await client.rollback("agent", 1, metadata={"incident": "INC-7"}, reason="bad model")
    v3 = await client.get_version("agent", 3)
    assert w3.versions == {"agent": 3}
    assert dict(v3.settings) == dict(v1.settings)
    assert dict(v3.metadata) == {"incident": "INC-7", "rollback_from": 2, "rollback_to": 1}

    page = await client.list_versions("agent", limit=2)
    assert [v.version for v in page.versions] == [3, 2] and page.more
    since = await client.list_versions("agent", since_version=1)
    assert [v.version for v in since.versions] == [3, 2]

    await unchanged.refused(client.get_version("agent", 999), grpc.StatusCode.NOT_FOUND)
    await unchanged.refused(client.rollback("agent", 999), grpc.StatusCode.NOT_FOUND)


async def test_open_application_takes_any_key_and_unset_removes_it(client: Client) -> None:
    await client.create_application("free", open=True, units=1)
    w = await client.set_config("free", {"a": {"b": [1, 2]}, "flag": True, "n": 3})
    assert (await client.get_config("free/0", min_revision=w.revision)).config == {
        "a": {"b": [1, 2]},
        "flag": True,
        "n": 3,
    }
    w = await client.set_config("free", unset=["a"])
    assert (await client.get_config("free/0", min_revision=w.revision)).config == {
        "flag": True,
        "n": 3,
    }


async def test_open_application_keeps_branch_rules(client: Client, unchanged: Unchanged) -> None:
    """Branches stage, conflict and commit on undeclared keys as on declared ones."""
    await client.create_application("free", open=True, settings={"mode": "a"}, units=2)
    await client.add_branch("try")
    await client.track_branch("try", units=["free/1"])
    await client.set_branch_config("try", "free", {"mode": "b", "extra": [1]})
    w = await client.set_branch_config("try", "free", unset=["mode"])
    assert (await client.get_config("free/1", min_revision=w.revision)).config == {"extra": [1]}
    await client.set_config("free", {"mode": "c"})
    err = await unchanged.refused(client.commit_branch("try"), grpc.StatusCode.FAILED_PRECONDITION)
    assert [(c.key, c.current) for c in err.detail.conflicts] == [("mode", '"c"')]
    w = await client.commit_branch("try", force=True)
    assert (await client.get_config("free/0", min_revision=w.revision)).config == {"extra": [1]}


async def test_open_application_redacts_declared_secrets(mongo_uri: str, db_name: str) -> None:
    async with admin_session(mongo_uri, db_name) as (srv, admin):
        await admin.create_application(
            "free",
            schema={"password": {"type": "string", "secret": True}},
            open=True,
            settings={"password": "hunter2", "user": "ann"},
        )
        await admin.set_config("free", {"password": "swordfish"})
        token = (await admin.create_token("observer")).token
        async with Client(srv.address, token=token) as observer:
            app = await observer.get_application("free")
            seen = str(app) + str(await observer.list_versions("free"))
            seen += str(await observer.diff_versions("free", 1, 2))
            assert "hunter2" not in seen and "swordfish" not in seen
            assert app.settings["user"] == "ann"


async def test_open_application_can_take_a_schema_that_fits(
    client: Client, unchanged: Unchanged
) -> None:
    await client.create_application("free", open=True, settings={"port": 80, "name": "x"})
    err = await unchanged.refused(
        client.update_application("free", schema={"port": {"type": "int"}}),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "'name'" in err.message
    await client.update_application(
        "free", schema={"port": {"type": "int"}, "name": {"type": "string"}}
    )
    await unchanged.refused(
        client.set_config("free", {"other": 1}), grpc.StatusCode.INVALID_ARGUMENT
    )


# -- replace -----------------------------------------------------------------------


async def test_replace_sets_the_whole_config_in_one_version(
    client: Client, unchanged: Unchanged
) -> None:
    await client.create_application("web", schema=TYPED, settings={"port": 1, "motd": "hi"})
    w = await client.set_config("web", {"log-level": "warn"}, replace=True, expected_version=1)
    assert w.versions == {"web": 2}
    assert await _effective(client, "web") == {"port": 8080, "log-level": "warn"}
    await unchanged.refused(
        client.set_config("web", {"port": 2}, replace=True, expected_version=1),
        grpc.StatusCode.ABORTED,
    )
    await unchanged.refused(
        client.set_config("web", {"port": 2}, unset=["motd"], replace=True),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    await client.create_application("free", open=True, settings={"a": 1, "b": 2})
    await client.set_config("free", {"c": 3}, replace=True)
    assert await _effective(client, "free") == {"c": 3}
    w = await client.set_config("free", {}, replace=True)
    assert await _effective(client, "free") == {} and w.versions == {"free": 3}


# -- per-key expectations -------------------------------------------------------


async def test_expect_per_key_on_master(client: Client, unchanged: Unchanged) -> None:
    """etcd's txn compare, per key: another key's change does not refuse a write."""
    await client.create_application("web", schema=TYPED, units=1)
    await client.set_config("web", {"port": 9090})
    err = await unchanged.refused(
        client.set_config("web", {"port": 9091}, expect={"port": 8080, "motd": ABSENT}),
        grpc.StatusCode.ABORTED,
    )
    assert "web.port (expected 8080, is 9090)" in err.message
    assert [(m.key, m.expected, m.actual) for m in err.detail.mismatches] == [
        ("port", "8080", "9090")
    ]
    w = await client.set_config("web", {"motd": "hello"}, expect={"motd": ABSENT})
    assert w.versions == {"web": 3}
    w = await client.set_config("web", {"log-level": "debug"}, expect={"log-level": "info"})
    assert w.versions == {"web": 4}
    err = await unchanged.refused(
        client.set_config("web", {"port": 1}, expect={"port": 9090, "motd": "bye"}),
        grpc.StatusCode.ABORTED,
    )
    assert [m.key for m in err.detail.mismatches] == ["motd"]
    await unchanged.refused(
        client.set_config("web", {"port": 1}, expect={"nope": 1}), grpc.StatusCode.INVALID_ARGUMENT
    )


async def test_expect_per_key_on_a_branch(client: Client, unchanged: Unchanged) -> None:
    await client.create_application("web", schema=TYPED, units=1)
    await client.add_branch("canary")
    await client.set_branch_config("canary", "web", {"port": 7000})
    err = await unchanged.refused(
        client.set_branch_config("canary", "web", {"port": 7001}, expect={"port": 8080}),
        grpc.StatusCode.ABORTED,
    )
    assert err.detail.mismatches[0].branch == "canary"
    assert "on branch canary" in err.message
    await client.set_branch_config("canary", "web", {"port": 7001}, expect={"port": 7000})
    await client.set_config("web", {"log-level": "warn"})
    # The branch's view includes master's later change to a key it does not stage.
    await client.set_branch_config("canary", "web", {"motd": "x"}, expect={"log-level": "warn"})


async def test_expectations_race_one_winner(client: Client, srv: RunningServer) -> None:
    """Writers that each expect the port they read: exactly one master write of each
    round wins; a branch write expecting the same port (its view depends on master)
    wins only if it committed before that master write (write skew is impossible)."""
    await client.create_application("web", schema=TYPED)
    await client.add_branch("b")
    clients = [Client(srv.address, timeout=30) for _ in range(6)]

    async def attempt(write: Any) -> int | None:
        try:
            return (await write).revision
        except ClientError as exc:
            assert exc.code == grpc.StatusCode.ABORTED, exc
            return None

    try:
        for round_ in range(5):
            port = (await _effective(client, "web"))["port"]
            expect = {"port": port}
            revisions = await asyncio.gather(
                *(
                    attempt(c.set_config("web", {"port": 10_000 + round_ * 10 + i}, expect=expect))
                    for i, c in enumerate(clients[:3])
                ),
                *(
                    attempt(
                        c.set_branch_config("b", "web", {"motd": f"{round_}.{i}"}, expect=expect)
                    )
                    for i, c in enumerate(clients[3:])
                ),
            )
            masters = [r for r in revisions[:3] if r is not None]
            assert len(masters) == 1, revisions
            for branch_revision in revisions[3:]:
                if branch_revision is not None:
                    assert branch_revision < masters[0], (round_, revisions)
    finally:
        for c in clients:
            await c.aclose()


# -- patch -------------------------------------------------------------------------

TEXT = [
    "".join(f"line {i}\n" for i in range(1, 30)),
    "".join(f"line {i}\n" for i in range(1, 30)).replace("line 3\n", "line three\n"),
    "".join(f"line {i}\n" for i in range(1, 30))
    .replace("line 3\n", "line three\n")
    .replace("line 20\n", "line twenty\nline 20b\n"),
    "".join(f"line {i}\n" for i in range(2, 30)).replace("line 20\n", "line twenty\nline 20b\n"),
]


async def test_key_value_walk_with_patch(client: Client, unchanged: Unchanged) -> None:
    """A long text changed three times; its history; a diff of versions 1 and 3 applied
    as a patch to version 1's text gives version 3's; a stale patch writes nothing; a
    write expecting port=8080 is refused after 9090 while another key's succeeds."""
    await client.create_application("web", schema=TYPED, settings={"motd": TEXT[0]})
    for text in TEXT[1:]:
        await client.set_config("web", {"motd": text})
    history = await client.key_history("web", "motd")
    assert [e.version for e in history.entries] == [4, 3, 2, 1]
    assert (await client.get_version("web", 1)).settings["motd"] == TEXT[0]

    patch = unified_diff(TEXT[0], TEXT[2], "motd")
    await client.rollback("web", 1)
    w = await client.patch_config("web", "motd", patch, reason="apply 1->3")
    assert (await client.get_version("web", w.versions["web"])).settings["motd"] == TEXT[2]

    err = await unchanged.refused(
        client.patch_config("web", "motd", patch), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert "hunk 1" in err.message and "does not apply" in err.message
    await unchanged.refused(
        client.patch_config("web", "port", patch), grpc.StatusCode.FAILED_PRECONDITION
    )
    await unchanged.refused(
        client.patch_config("web", "motd", "not a diff"), grpc.StatusCode.INVALID_ARGUMENT
    )

    await client.set_config("web", {"port": 9090})
    await unchanged.refused(
        client.set_config("web", {"port": 8081}, expect={"port": 8080}), grpc.StatusCode.ABORTED
    )
    await client.set_config("web", {"log-level": "warn"}, expect={"log-level": "info"})


async def test_patch_on_a_branch(client: Client, unchanged: Unchanged) -> None:
    await client.create_application("web", schema=TYPED, settings={"motd": TEXT[0]}, units=1)
    await client.add_branch("b")
    await client.track_branch("b", units=["web/0"])
    w = await client.patch_config("web", "motd", unified_diff(TEXT[0], TEXT[1], "motd"), branch="b")
    assert (await client.get_config("web/0", min_revision=w.revision)).config["motd"] == TEXT[1]
    assert (await client.get_version("web")).version == 1  # master untouched
    await unchanged.refused(
        client.patch_config("web", "motd", "", branch="b", reason="no"),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
