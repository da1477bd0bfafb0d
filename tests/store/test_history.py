"""HistoryService and applied reports end to end: real mongod, real server, real client.

Each acceptance scenario of the versioning issue is one test here; every refused
request is checked to have written nothing (a digest of the whole database).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from pymongo import MongoClient
from support.servers import assert_code, digest, running_server

from genconf.client import Client
from genconf.errors import ClientError, InvalidArgument
from genconf.store.history import DEFAULT_LIMIT, MAX_LIMIT, between, page_size

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXISTS = grpc.StatusCode.ALREADY_EXISTS
ABORTED = grpc.StatusCode.ABORTED
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION

SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 80},
    "name": {"type": "string", "default": "web"},
    "limits": {"type": "object"},
    "motd": {"type": "string"},
}


def plain(message: Any) -> Any:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


async def refused(
    mongo_client: MongoClient[dict[str, Any]],
    db_name: str,
    call: Callable[[], Awaitable[Any]],
    code: grpc.StatusCode,
) -> ClientError:
    """Run ``call`` (a write), check it fails with ``code`` and leaves the database as
    it was. Reads write nothing anyway: check those with `assert_code` alone."""
    before = digest(mongo_client, db_name)
    with pytest.raises(ClientError) as caught:
        await call()
    assert digest(mongo_client, db_name) == before, "a refused request wrote something"
    return assert_code(caught.value, code)


# -- versions: history, rollback ----------------------------------------------------


async def test_update_update_rollback_and_history_paging(
    client: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await client.create_application("web", schema=SCHEMA, created_by="alice")
    await client.set_config("web", {"port": 8080}, reason="first", created_by="bob")
    await client.set_config("web", {"port": 9090, "name": "edge"}, reason="second")

    rolled = await client.rollback("web", 1, expected_version=3, created_by="carol")
    assert dict(rolled.versions) == {"web": 4}
    v1, v4 = await client.get_version("web", 1), await client.get_version("web", 4)
    assert plain(v4)["settings"] == plain(v1).get("settings", {}) == {}
    assert v4.previous_version == 3
    assert plain(v4.metadata) == {"rollback_from": 3, "rollback_to": 1}
    assert v4.created_by == "carol"
    assert v4.reason == "rollback to version 1"
    assert (await client.get_version("web")).version == 4  # 0: the current one
    generation = await client.get_generation(v4.generation)
    assert generation.kind == "rollback"
    assert dict(generation.versions) == {"web": 4}
    cfg = await client.get_application("web", min_revision=rolled.revision)
    assert plain(cfg.effective) == {"port": 80, "name": "web"}

    everything = await client.list_versions("web")
    assert [v.version for v in everything.versions] == [4, 3, 2, 1]  # newest first
    assert not everything.more and everything.current_version == 4
    assert [v.reason for v in everything.versions][2:] == ["first", "created"]
    first_two = await client.list_versions("web", limit=2)
    assert [v.version for v in first_two.versions] == [4, 3] and first_two.more
    newer = await client.list_versions("web", since_version=2)  # exclusive
    assert [v.version for v in newer.versions] == [4, 3] and not newer.more
    assert (await client.list_versions("web", since_version=4)).versions == []
    # Paging back: before_version is exclusive, and the pages add up to the history.
    older = await client.list_versions("web", limit=2, before_version=3)
    assert [v.version for v in older.versions] == [2, 1] and not older.more
    window = await client.list_versions("web", since_version=1, before_version=4)
    assert [v.version for v in window.versions] == [3, 2]
    pages: list[int] = []
    before = 0
    while True:
        page = await client.list_versions("web", limit=1, before_version=before)
        pages += [v.version for v in page.versions]
        if not page.more:
            break
        before = page.versions[-1].version
    assert pages == [4, 3, 2, 1]
    # Rolled back to version 2 instead, the new version would hold version 2's values.
    assert plain(await client.get_version("web", 2))["settings"] == {"port": 8080}

    # Refusals write nothing.
    err = await refused(mongo_client, db_name, lambda: client.rollback("web", 9), NOT_FOUND)
    assert err.message == "version 9 not found for application web (its versions run 1..4)"
    err = await refused(
        mongo_client,
        db_name,
        lambda: client.rollback("web", 2, expected_version=3),
        ABORTED,
    )
    assert (err.expected_version, err.actual_version) == (3, 4)
    await refused(mongo_client, db_name, lambda: client.rollback("nope", 1), NOT_FOUND)
    await refused(mongo_client, db_name, lambda: client.rollback("web", 0), INVALID)
    with pytest.raises(ClientError) as caught:
        await client.get_version("web", 7)
    assert_code(caught.value, NOT_FOUND)
    for bad in (
        lambda: client.list_versions("web", limit=5000),
        lambda: client.list_versions("web", limit=-1),
        lambda: client.list_versions("web", before_version=-1),
        lambda: client.list_generations(since=-1),
    ):
        with pytest.raises(ClientError) as caught:
            await bad()
        assert_code(caught.value, INVALID)


async def test_rollback_to_settings_the_schema_no_longer_fits(
    client: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await client.create_application("web", schema=SCHEMA)
    await client.set_config("web", {"motd": "hello"})
    await client.set_config("web", unset=["motd"])
    await client.update_application("web", schema={"port": {"type": "int", "default": 80}})
    err = await refused(mongo_client, db_name, lambda: client.rollback("web", 2), PRECONDITION)
    assert "motd" in err.message and "schema" in err.message


async def test_diff_is_nested_by_dotted_path_with_text_diffs(client: Client) -> None:
    await client.create_application("web", schema=SCHEMA)
    await client.set_config(
        "web", {"limits": {"cpu": 1, "mem": {"soft": 100, "hard": 200}}, "motd": "a\nb\n"}
    )
    await client.set_config(
        "web", {"limits": {"cpu": 1, "mem": {"soft": 150, "hard": 200}, "io": 5}, "motd": "a\nc\n"}
    )
    d = await client.diff_versions("web", 2, 3)
    assert (d.from_version, d.to_version) == (2, 3)
    entries = {(e.kind, e.path): e for e in d.entries}
    assert set(entries) == {
        ("added", "limits.io"),
        ("changed", "limits.mem.soft"),
        ("changed", "motd"),
    }
    soft = entries[("changed", "limits.mem.soft")]
    assert (soft.old.number_value, soft.new.number_value) == (100, 150)
    assert "-b\n+c\n" in entries[("changed", "motd")].text_diff
    # From the creation, against the current version (0): defaults count, only additions.
    d = await client.diff_versions("web", 1)
    assert d.to_version == 3
    assert {(e.kind, e.path) for e in d.entries} == {("added", "limits"), ("added", "motd")}
    back = await client.diff_versions("web", 3, 1)
    assert {(e.kind, e.path) for e in back.entries} == {("removed", "limits"), ("removed", "motd")}


# -- labels ----------------------------------------------------------------------------


async def test_bumps_tags_and_latest(
    client: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await client.create_application("web", schema=SCHEMA)
    none = await client.latest_version("web")
    assert (none.version, none.label, none.label_version) == (1, "", 0)

    labels = []
    for n, part in enumerate(["patch", "patch", "minor", "major"], start=2):
        await client.set_config("web", {"port": 8000 + n})
        bumped = await client.bump_version("web", part)
        assert bumped.version == n  # the current version by default
        labels.append(bumped.label)
    # The first bump starts from 1.0.0 whatever its part.
    assert labels == ["1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    latest = await client.latest_version("web")
    assert (latest.version, latest.label, latest.label_version) == (5, "2.0.0", 5)

    # Tag an older version, between its neighbours' labels; "latest" is the highest
    # label, which labels growing with versions keep on the newest labelled version.
    tagged = await client.tag_version("web", "v1.0.2", version=3)
    assert (tagged.version, tagged.label) == (3, "1.0.2")  # normalized
    assert list((await client.get_version("web", 3)).tags) == ["1.0.1", "1.0.2"]
    await client.set_config("web", {"port": 1})
    assert (await client.latest_version("web")).label_version == 5
    bumped = await client.bump_version("web", "minor", version=6)
    assert (bumped.label, bumped.version) == ("2.1.0", 6)
    again = await client.tag_version("web", "2.1.0", version=6)  # same place: a no-op
    assert again.version == 6
    assert list((await client.get_version("web", 6)).tags) == ["2.1.0"]

    err = await refused(
        mongo_client, db_name, lambda: client.tag_version("web", "1.0.0", version=6), EXISTS
    )
    assert "version 2" in err.message
    err = await refused(mongo_client, db_name, lambda: client.tag_version("web", "1.0"), INVALID)
    assert "MAJOR.MINOR.PATCH" in err.message
    await refused(mongo_client, db_name, lambda: client.bump_version("web", "huge"), INVALID)
    await refused(
        mongo_client, db_name, lambda: client.tag_version("web", "9.9.9", version=42), NOT_FOUND
    )


# -- per-key history -------------------------------------------------------------------


async def test_key_history_lists_exactly_the_changes(client: Client) -> None:
    await client.create_application("web", schema=SCHEMA)  # v1: port 80 (default)
    await client.set_config("web", {"port": 8080}, created_by="bob", reason="move")  # v2
    await client.set_config("web", {"name": "edge"})  # v3: port untouched
    await client.set_config("web", {"port": 9090})  # v4
    await client.set_config("web", unset=["port"], reason="back")  # v5: back to the default
    await client.set_config("web", {"port": 80})  # v6: the default, set explicitly: no change

    history = await client.key_history("web", "port")
    rows = [(e.version, e.value.number_value, e.is_default) for e in history.entries]
    assert rows == [(5, 80, True), (4, 9090, False), (2, 8080, False), (1, 80, True)]
    assert (history.entries[2].created_by, history.entries[2].reason) == ("bob", "move")
    assert history.entries[0].reason == "back"
    assert history.entries[0].timestamp.seconds > 0 and history.entries[0].generation > 0
    limited = await client.key_history("web", "port", limit=2)
    assert [e.version for e in limited.entries] == [5, 4] and limited.more
    rest = await client.key_history("web", "port", limit=2, before_version=4)
    assert [e.version for e in rest.entries] == [2, 1] and not rest.more

    no_default = await client.key_history("web", "motd")
    assert [(e.version, e.has_value) for e in no_default.entries] == [(1, False)]

    with pytest.raises(ClientError) as caught:
        await client.key_history("web", "nope")
    assert "nope" in assert_code(caught.value, INVALID).message


# -- generations -----------------------------------------------------------------------


async def test_generations_list_get_and_revert(
    client: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await client.create_application("web", schema=SCHEMA)
    await client.create_application("db", schema=SCHEMA)
    g1 = await client.set_config("web", {"port": 8080, "name": "a"}, created_by="bob")
    g2 = await client.set_config("db", {"port": 5432})
    g3 = await client.set_config("web", {"name": "b"})  # a later change to a key g1 touched

    listed = await client.list_generations()
    assert [g.id for g in listed.generations] == [g3.generation, g2.generation, g1.generation]
    one = await client.list_generations(limit=1)
    assert [g.id for g in one.generations] == [g3.generation] and one.more
    back = await client.list_generations(limit=1, before=g3.generation)
    assert [g.id for g in back.generations] == [g2.generation] and back.more
    last = await client.list_generations(limit=5, before=g2.generation)
    assert [g.id for g in last.generations] == [g1.generation] and not last.more
    assert [g.id for g in (await client.list_generations(since=g1.generation)).generations] == [
        g3.generation,
        g2.generation,
    ]
    assert [g.id for g in (await client.list_generations(application="db")).generations] == [
        g2.generation
    ]
    got = await client.get_generation(g1.generation)
    assert (got.kind, got.created_by, dict(got.versions)) == ("set", "bob", {"web": 2})
    changes = {c.key: plain(c) for app in got.changes for c in app.changes}
    assert changes["port"] == {"key": "port", "has_to": True, "to": 8080}

    # g1 touched "name", which g3 changed since: a conflict naming the key.
    err = await refused(
        mongo_client, db_name, lambda: client.revert_generation(g1.generation), PRECONDITION
    )
    assert [(c.application, c.key) for c in err.conflicts] == [("web", "name")]
    assert "force" in err.message

    # Reverting g2 (db only) keeps the later changes to web.
    reverted = await client.revert_generation(g2.generation, created_by="ops")
    assert dict(reverted.versions) == {"db": 3}
    revert = await client.get_generation(reverted.generation)
    assert (revert.kind, revert.reason) == ("revert", f"revert generation {g2.generation}")
    assert plain(await client.get_version("db", 3))["metadata"] == {"revert_of": g2.generation}
    db = await client.get_application("db", min_revision=reverted.revision)
    web = await client.get_application("web", min_revision=reverted.revision)
    assert plain(db.effective)["port"] == 80
    assert plain(web.effective) == {"port": 8080, "name": "b"}

    # Forced, g1's revert is last-write-wins on "name" and restores "port".
    forced = await client.revert_generation(g1.generation, force=True)
    web = await client.get_application("web", min_revision=forced.revision)
    assert plain(web.settings) == {}
    # Now there is nothing left to revert.
    err = await refused(
        mongo_client, db_name, lambda: client.revert_generation(g1.generation), PRECONDITION
    )
    assert "nothing to revert" in err.message
    await refused(mongo_client, db_name, lambda: client.revert_generation(999), NOT_FOUND)
    with pytest.raises(ClientError) as caught:
        await client.get_generation(999)
    assert_code(caught.value, NOT_FOUND)


async def test_revert_keeps_a_later_change_to_another_key_of_the_same_application(
    client: Client,
) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    await client.set_config("web", {"name": "old"})
    g = await client.set_config("web", {"port": 8080})
    later = await client.set_config("web", {"name": "new"})
    reverted = await client.revert_generation(g.generation)  # no conflict: other keys
    assert dict(reverted.versions) == {"web": 5}
    revert = await client.get_generation(reverted.generation)
    changes = [(c.key, plain(c)) for app in revert.changes for c in app.changes]
    assert changes == [("port", {"key": "port", "has_from": True, "from": 8080})]
    web = await client.get_config("web/0", min_revision=reverted.revision)
    assert (web.config["port"], web.config["name"]) == (80, "new")
    assert reverted.revision > later.revision


async def test_revert_of_a_commit_touching_two_applications(client: Client) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    await client.create_application("db", schema=SCHEMA, units=1)
    await client.set_config("db", {"name": "main"})
    await client.add_branch("b")
    await client.set_branch_config("b", "web", {"port": 1})
    await client.set_branch_config("b", "db", unset=["name"])
    committed = await client.commit_branch("b")
    assert (await client.get_generation(committed.generation)).branch == "b"
    reverted = await client.revert_generation(committed.generation)
    assert dict(reverted.versions) == {"db": 4, "web": 3}
    web = await client.get_config("web/0", min_revision=reverted.revision)
    db = await client.get_config("db/0", min_revision=reverted.revision)
    assert (web.config["port"], db.config["name"]) == (80, "main")


# -- applied reports and require_applied ----------------------------------------------


async def test_commit_requires_every_tracking_unit_to_report_the_branch_applied(
    client: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await client.create_application("web", schema=SCHEMA, units=3)
    await client.add_branch("canary")
    await client.set_branch_config("canary", "web", {"port": 8443})
    tracked = await client.track_branch("canary", units=["web/0", "web/1"])
    # web/0 already reports something, but the branch config is not it.
    old = await client.get_config("web/2", min_revision=tracked.revision)
    await client.report_applied("web/0", old.hash, ok=True)

    async def refused_commit() -> ClientError:
        """The refused commit's error (the database is left as it was)."""
        return await refused(
            mongo_client,
            db_name,
            lambda: client.commit_branch("canary", require_applied=True),
            PRECONDITION,
        )

    err = await refused_commit()
    assert list(err.detail.units) == ["web/0", "web/1"]
    assert "web/0, web/1" in err.message

    branch_config = await client.get_config("web/0")
    await client.report_applied("web/0", branch_config.hash, ok=True)
    failed = await client.report_applied("web/1", branch_config.hash, ok=False, message="boom")
    view = await client.get_branch("canary", min_revision=failed.revision)
    assert [(a.unit, a.applied, a.report.ok) for a in view.applied] == [
        ("web/0", True, True),
        ("web/1", False, False),
    ]
    assert view.applied[1].report.message == "boom"
    assert {a.hash for a in view.applied} == {branch_config.hash}
    err = await refused_commit()
    assert list(err.detail.units) == ["web/1"]

    # A change to the branch makes earlier reports stale again.
    restaged = await client.set_branch_config("canary", "web", {"name": "canary"})
    await client.report_applied("web/1", branch_config.hash, ok=True)
    err = await refused_commit()
    assert list(err.detail.units) == ["web/0", "web/1"]

    current = await client.get_config("web/0", min_revision=restaged.revision)
    for unit in ("web/0", "web/1"):
        await client.report_applied(unit, current.hash, ok=True)
    committed = await client.commit_branch("canary", require_applied=True)
    assert dict(committed.versions) == {"web": 2}
    assert (await client.get_config("web/2", min_revision=committed.revision)).hash == current.hash


async def test_retention_keeps_newest_and_labelled_versions(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    async with (
        running_server(mongo_uri, db_name, retain_versions=3) as server,
        Client(server.address, timeout=10) as client,
    ):
        await client.create_application("web", schema=SCHEMA)
        await client.set_config("web", {"port": 2})
        await client.tag_version("web", "1.0.0")  # v2 is labelled: kept forever
        for port in range(3, 8):
            await client.set_config("web", {"port": port})
        kept = [v.version for v in (await client.list_versions("web")).versions]
        assert kept == [7, 6, 5, 2]
        err = await refused(mongo_client, db_name, lambda: client.rollback("web", 3), NOT_FOUND)
        assert "pruned" in err.message
        rolled = await client.rollback("web", 2)
        assert dict(rolled.versions) == {"web": 8}
        assert [v.version for v in (await client.list_versions("web")).versions] == [
            8,
            7,
            6,
            2,
        ]
        assert plain(await client.get_version("web", 8))["settings"] == {"port": 2}
        # Pruning versions keeps every generation: one per config write, none lost.
        listed = await client.list_generations()
        assert [dict(g.versions) for g in listed.generations] == [
            {"web": v} for v in range(8, 1, -1)
        ]
        # Key history starts at the oldest version kept.
        history = await client.key_history("web", "port")
        assert [e.version for e in history.entries] == [8, 7, 6, 2]


def test_page_size_and_bounds_are_as_documented() -> None:
    assert (page_size(0), page_size(1), page_size(MAX_LIMIT)) == (DEFAULT_LIMIT, 1, MAX_LIMIT)
    for bad in (-1, MAX_LIMIT + 1):
        with pytest.raises(InvalidArgument, match="limit"):
            page_size(bad)
    assert between(3, 0) == {"$gt": 3}
    assert between(0, 5) == {"$gt": 0, "$lt": 5}
    with pytest.raises(InvalidArgument, match="negative"):
        between(0, -2)
