"""Versions named by label: one resolver for every call, labels that grow with
versions, diff summaries, rollback metadata and revert by version.

Store-level tests run the `Store` and `History` on a real mongod; API-level tests
run a real server and client. Every refused request is checked to have written
nothing (a digest of every collection).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from pymongo import MongoClient
from support.servers import assert_code, digest, running_server

from genconf.api.server import RunningServer
from genconf.client import Client
from genconf.domain.semver import SemVer, backwards_neighbour, check_order
from genconf.errors import (
    AlreadyExists,
    ClientError,
    FailedPrecondition,
    GenconfError,
    InvalidArgument,
    NotFound,
)
from genconf.store.history import History, version_ref
from genconf.store.store import Store

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXISTS = grpc.StatusCode.ALREADY_EXISTS
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION

SCHEMA: dict[str, Any] = {
    "port": {"type": "int", "default": 80},
    "name": {"type": "string", "default": "web"},
    "motd": {"type": "string"},
}
MALFORMED = "invalid version label '1.0': use MAJOR.MINOR.PATCH"


def plain(message: Any) -> Any:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


async def unchanged(
    mongo_client: MongoClient[dict[str, Any]],
    db_name: str,
    call: Callable[[], Awaitable[Any]],
    error: type[GenconfError],
) -> GenconfError:
    """Run ``call`` (a store read or write), check it raises ``error`` and that every
    collection is as it was."""
    before = digest(mongo_client, db_name)
    with pytest.raises(error) as caught:
        await call()
    assert digest(mongo_client, db_name) == before, "a refused request wrote something"
    assert caught.value.message, "an error must carry a message a person can act on"
    return caught.value


async def labelled_app(store: Store, name: str = "web") -> None:
    """``name`` at version 6: 1.0.0 on v2, 1.1.0 on v4, none on v1, v3, v5, v6."""
    await store.create_application(name, schema=SCHEMA)
    for port in range(2, 7):
        await store.set_config(name, set={"port": port})
    await store.tag_version(name, "1.0.0", version=2)
    await store.tag_version(name, "1.1.0", version=4)


# -- how a request names a version (pure) -------------------------------------------


@pytest.mark.parametrize(
    ("number", "label", "expected"),
    [(0, "", 0), (3, "", 3), (0, "1.2.3", SemVer(1, 2, 3)), (0, "v1.2.3", SemVer(1, 2, 3))],
)
def test_version_ref_names_a_version(number: int, label: str, expected: Any) -> None:
    assert version_ref(number, label) == expected


@pytest.mark.parametrize(
    ("number", "label", "fields", "message"),
    [
        (3, "1.0.0", ("version", "label"), "version 3 and label '1.0.0' both name a version"),
        (1, "x", ("to_version", "to_label"), "to_version 1 and to_label 'x' both name"),
        (0, "1.0", ("version", "label"), MALFORMED),
        (0, "latest", ("version", "label"), "invalid version label 'latest'"),
        (-1, "", ("before_version", "before_label"), "before_version must be a version number"),
    ],
)
def test_version_ref_refuses(
    number: int, label: str, fields: tuple[str, str], message: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        version_ref(number, label, fields=fields)
    assert message in caught.value.message


# -- labels grow with versions (pure) --------------------------------------------------

LABELLED = [(2, "1.0.0"), (4, "1.1.0"), (4, "1.1.1"), (7, "2.0.0")]


@pytest.mark.parametrize(
    ("label", "version", "offender"),
    [
        ("1.0.5", 3, None),  # between 1.0.0 (v2) and 1.1.0 (v4)
        ("0.9.0", 1, None),  # below everything, on the oldest version
        ("3.0.0", 9, None),  # above everything, on the newest version
        ("1.1.5", 4, None),  # a version's labels are free among themselves
        ("2.0.0-rc.1", 5, None),  # a prerelease sorts below its release
        ("1.0.0-rc.1", 3, (2, "1.0.0")),  # ... so it cannot follow that release
        ("0.9.0", 3, (2, "1.0.0")),  # below an earlier version's label
        ("1.0.0", 3, (2, "1.0.0")),  # equal counts as backwards
        ("1.2.0", 3, (4, "1.1.0")),  # above a later version's label: the nearest
        ("1.5.0", 1, (2, "1.0.0")),  # the nearest later version first
        ("2.5.0", 5, (7, "2.0.0")),
    ],
)
def test_backwards_neighbour(label: str, version: int, offender: tuple[int, str] | None) -> None:
    found = backwards_neighbour(SemVer.parse(label), version, LABELLED)
    assert found == (None if offender is None else (offender[0], SemVer.parse(offender[1])))


def test_backwards_label_message_names_the_neighbour_and_the_room_left() -> None:
    with pytest.raises(FailedPrecondition) as caught:
        check_order(SemVer.parse("1.2.0"), 3, LABELLED)
    assert caught.value.message == (
        "label 1.2.0 on version 3 would go backwards: version 4 already has 1.1.0; labels "
        "grow with versions (version 3 may take a label above 1.0.0 and below 1.1.0)"
    )
    with pytest.raises(FailedPrecondition) as caught:
        check_order(SemVer.parse("0.1.0"), 9, LABELLED)
    assert caught.value.message.endswith("(version 9 may take a label above 2.0.0)")
    with pytest.raises(FailedPrecondition) as caught:
        check_order(SemVer.parse("9.0.0"), 1, LABELLED)
    assert caught.value.message.endswith("(version 1 may take a label below 1.0.0)")


# -- the store's resolver --------------------------------------------------------------


async def test_every_read_resolves_numbers_and_labels_alike(
    store: Store, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await labelled_app(store)
    history = History(store.db)
    assert (await history.get_version("web", 4))["version"] == 4
    assert (await history.get_version("web"))["version"] == 6  # 0: the current one
    assert (await history.get_version("web", label="1.1.0"))["version"] == 4
    assert (await history.get_version("web", label="v1.0.0"))["version"] == 2

    d = await history.diff_versions("web", from_label="1.0.0", to_label="v1.1.0")
    assert (d.from_version, d.to_version, d.from_label, d.to_label) == (2, 4, "1.0.0", "1.1.0")
    assert d.summary == "web 1.0.0 -> 1.1.0: 1 changed, 0 added, 0 removed"
    mixed = await history.diff_versions("web", 1, to_label="1.1.0")
    assert mixed.summary == "web version 1 -> 1.1.0: 1 changed, 0 added, 0 removed"
    current = await history.diff_versions("web", from_label="1.1.0")
    assert (current.to_version, current.to_label) == (6, "")
    assert current.summary == "web 1.1.0 -> version 6: 1 changed, 0 added, 0 removed"

    entries, _ = await history.key_history("web", "port", before_label="1.1.0")
    assert [e.value.version for e in entries] == [3, 2, 1]
    by_number, _ = await history.key_history("web", "port", before_version=4)
    assert [e.value.version for e in by_number] == [3, 2, 1]

    # Each way of getting it wrong, each with the same words wherever it is said.
    cases: list[tuple[Callable[[], Awaitable[Any]], type[GenconfError], str]] = [
        (
            lambda: history.get_version("web", label="1.0.2"),
            NotFound,
            "version 1.0.2 not found for application web "
            "(its highest label is 1.1.0, on version 4)",
        ),
        (
            lambda: history.get_version("web", 999),
            NotFound,
            "version 999 not found for application web (its versions run 1..6)",
        ),
        (lambda: history.get_version("web", label="1.0"), InvalidArgument, MALFORMED),
        (
            lambda: history.get_version("web", 2, label="1.0.0"),
            InvalidArgument,
            "version 2 and label '1.0.0' both name a version; give one of them",
        ),
        (
            lambda: history.diff_versions("web", from_label="1.0.0", to_label="1.0.2"),
            NotFound,
            "version 1.0.2 not found for application web",
        ),
        (
            lambda: history.diff_versions("web", 1, 2, to_label="1.0.0"),
            InvalidArgument,
            "to_version 2 and to_label '1.0.0' both name a version",
        ),
        (lambda: history.diff_versions("web", from_label="1.0"), InvalidArgument, MALFORMED),
        (
            lambda: history.diff_versions("web"),
            InvalidArgument,
            "from_version must be 1 or more, not 0 (or name it by from_label)",
        ),
        (
            lambda: history.key_history("web", "port", before_label="9.0.0"),
            NotFound,
            "version 9.0.0 not found for application web",
        ),
        (
            lambda: history.key_history("web", "port", before_version=3, before_label="1.0.0"),
            InvalidArgument,
            "before_version 3 and before_label '1.0.0' both name a version",
        ),
    ]
    for call, error, message in cases:
        exc = await unchanged(mongo_client, db_name, call, error)
        assert message in exc.message, (message, exc.message)

    await store.create_application("bare", schema=SCHEMA)
    exc = await unchanged(
        mongo_client, db_name, lambda: history.get_version("bare", label="1.0.0"), NotFound
    )
    assert exc.message == "version 1.0.0 not found for application bare (it has no labels yet)"


async def test_every_write_resolves_numbers_and_labels_alike(
    store: Store, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await labelled_app(store)
    history = History(store.db)

    rolled = await store.rollback("web", to_label="v1.0.0", metadata={"ticket": "OPS-1"})
    assert rolled.versions == {"web": 7}
    v7 = await history.get_version("web", 7)
    assert v7["settings"] == {"port": 2}
    assert v7["metadata"] == {"ticket": "OPS-1", "rollback_from": 6, "rollback_to": 2}
    assert v7["reason"] == "rollback to version 2 (1.0.0)"

    tagged = await store.tag_version("web", "1.0.1", version_label="1.0.0")
    assert (tagged.version, tagged.label) == (2, "1.0.1")
    bumped = await store.bump_version("web", "patch", version_label="1.1.0")
    assert (bumped.version, bumped.label) == (4, "1.1.1")

    # The generation that wrote a version, named by the version's label.
    named = await store.set_config("web", set={"name": "edge"})  # v8
    await store.tag_version("web", "1.2.0", version=8)
    reverted = await store.revert_generation(application="web", label="1.2.0")
    assert reverted.versions == {"web": 9}
    v9 = await history.get_version("web", 9)
    assert (v9["settings"], v9["metadata"]) == ({"port": 2}, {"revert_of": named.generation})
    assert v9["reason"] == f"revert generation {named.generation}"
    # ... or by its number, 0 naming the current version (the revert just written).
    again = await store.revert_generation(application="web")
    assert (await history.get_version("web", 10))["metadata"] == {"revert_of": reverted.generation}
    assert again.versions == {"web": 10}

    cases: list[tuple[Callable[[], Awaitable[Any]], type[GenconfError], str]] = [
        (
            lambda: store.rollback("web", to_label="1.0.2"),
            NotFound,
            "version 1.0.2 not found for application web",
        ),
        (
            lambda: store.rollback("web", 999),
            NotFound,
            "version 999 not found for application web (its versions run 1..10)",
        ),
        (lambda: store.rollback("web", to_label="1.0"), InvalidArgument, MALFORMED),
        (
            lambda: store.rollback("web", 2, to_label="1.0.0"),
            InvalidArgument,
            "to_version 2 and to_label '1.0.0' both name a version",
        ),
        (
            lambda: store.rollback("web", 2, metadata={"rollback_to": 5, "x": 1}),
            InvalidArgument,
            "metadata key(s) rollback_to are recorded by the rollback itself",
        ),
        (
            lambda: store.tag_version("web", "5.0.0", version_label="4.0.0"),
            NotFound,
            "version 4.0.0 not found for application web",
        ),
        (
            lambda: store.tag_version("web", "5.0.0", version=2, version_label="1.0.0"),
            InvalidArgument,
            "version 2 and version_label '1.0.0' both name a version",
        ),
        (
            lambda: store.bump_version("web", "minor", version_label="1.0"),
            InvalidArgument,
            MALFORMED,
        ),
        (
            lambda: store.bump_version("web", "minor", version=999),
            NotFound,
            "version 999 not found for application web",
        ),
        (
            lambda: store.revert_generation(application="web", label="7.0.0"),
            NotFound,
            "version 7.0.0 not found for application web",
        ),
        (
            lambda: store.revert_generation(application="web", version=1),
            FailedPrecondition,
            "version 1 of application web was written when the application was created, "
            "not by a generation; there is nothing to revert",
        ),
        (
            lambda: store.revert_generation(3, application="web"),
            InvalidArgument,
            "give generation 3 or a version of application 'web', not both",
        ),
        (lambda: store.revert_generation(), InvalidArgument, "name the generation to revert"),
        (
            lambda: store.revert_generation(version=3),
            InvalidArgument,
            "a version or label names a generation only with its application",
        ),
        (
            lambda: store.revert_generation(application="web", label="x"),
            InvalidArgument,
            "invalid version label 'x': use MAJOR.MINOR.PATCH",
        ),
    ]
    for call, error, message in cases:
        exc = await unchanged(mongo_client, db_name, call, error)
        assert message in exc.message, (message, exc.message)


async def test_a_pruned_version_says_so(mongo_uri: str, db_name: str) -> None:
    store = Store.connect(mongo_uri, db_name, retain_versions=2)
    try:
        await store.ensure_schema()
        await store.create_application("web", schema=SCHEMA)
        for port in (2, 3, 4):
            await store.set_config("web", set={"port": port})
        with pytest.raises(NotFound) as caught:
            await History(store.db).get_version("web", 1)
        assert caught.value.message == (
            "version 1 not found for application web (its versions run 1..4; version 1 "
            "was pruned: the server keeps the newest and the labelled)"
        )
    finally:
        await store.aclose()


# -- labels grow with versions (in the store) -------------------------------------------


async def test_a_label_that_would_go_backwards_is_refused(
    store: Store, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await labelled_app(store)  # 1.0.0 on v2, 1.1.0 on v4
    cases: list[tuple[Callable[[], Awaitable[Any]], type[GenconfError], str]] = [
        (
            lambda: store.tag_version("web", "1.0.1", version=5),
            FailedPrecondition,
            "label 1.0.1 on version 5 would go backwards: version 4 already has 1.1.0; "
            "labels grow with versions (version 5 may take a label above 1.1.0)",
        ),
        (
            lambda: store.tag_version("web", "2.0.0", version=3),
            FailedPrecondition,
            "label 2.0.0 on version 3 would go backwards: version 4 already has 1.1.0",
        ),
        (
            lambda: store.tag_version("web", "0.1.0", version=3),
            FailedPrecondition,
            "label 0.1.0 on version 3 would go backwards: version 2 already has 1.0.0",
        ),
        # Bumping an old version: 1.0.0 (its highest at or below) bumped minor is 1.1.0,
        # which version 4 has; bumped major, 2.0.0 would pass version 4's 1.1.0.
        (
            lambda: store.bump_version("web", "minor", version=3),
            AlreadyExists,
            "label 1.1.0 is already on version 4",
        ),
        (
            lambda: store.bump_version("web", "major", version=3),
            FailedPrecondition,
            "label 2.0.0 on version 3 would go backwards: version 4 already has 1.1.0",
        ),
        (
            lambda: store.bump_version("web", "patch", version=1),
            AlreadyExists,
            "label 1.0.0 is already on version 2",
        ),
    ]
    for call, error, message in cases:
        exc = await unchanged(mongo_client, db_name, call, error)
        assert message in exc.message, (message, exc.message)

    # What fits goes on: between neighbours, or bumped from the highest at or below.
    assert (await store.tag_version("web", "1.0.7", version=3)).label == "1.0.7"
    bumped = await store.bump_version("web", "patch", version=3)
    assert (bumped.version, bumped.label) == (3, "1.0.8")
    assert (await store.bump_version("web", "major")).label == "2.0.0"  # v6, the current
    assert (await store.tag_version("web", "0.1.0", version=1)).label == "0.1.0"
    order = await labels_in_order(store, "web")
    assert order == [
        (1, "0.1.0"),
        (2, "1.0.0"),
        (3, "1.0.7"),
        (3, "1.0.8"),
        (4, "1.1.0"),
        (6, "2.0.0"),
    ]


async def labels_in_order(store: Store, application: str) -> list[tuple[int, str]]:
    """Every (version, label) pair, by version and then label: checked to grow."""
    pairs = [
        (int(doc["version"]), tag)
        async for doc in store.db["versions"].find({"application": application})
        for tag in doc["tags"]
    ]
    pairs.sort(key=lambda p: (p[0], SemVer.parse(p[1]).sort_key()))
    keys = [SemVer.parse(label).sort_key() for _, label in pairs]
    assert keys == sorted(keys) and len(set(keys)) == len(keys), f"labels out of order: {pairs}"
    return pairs


async def test_concurrent_tags_and_bumps_keep_labels_in_order(
    srv: RunningServer, client: Client, store: Store
) -> None:
    """Many clients label versions at once, each deciding on the others' labels: the
    application's fence makes them conflict, so no two decide on the same stale view."""
    await client.create_application("web", schema=SCHEMA)
    for port in range(2, 13):
        await client.set_config("web", {"port": port})  # versions 1..12
    rng = random.Random(17)
    clients = [Client(srv.address, timeout=30) for _ in range(8)]
    try:

        async def label(c: Client, n: int) -> str:
            version = rng.randint(1, 12)
            try:
                if n % 3 == 0:
                    await c.bump_version(
                        "web", rng.choice(["major", "minor", "patch"]), version=version
                    )
                else:
                    tag = f"{rng.randint(0, 3)}.{rng.randint(0, 3)}.{rng.randint(0, 3)}"
                    await c.tag_version("web", tag, version=version)
            except ClientError as exc:
                # Refused because another label came first: never anything else.
                assert exc.code in (PRECONDITION, EXISTS), exc
                return exc.code.name
            return "OK"

        outcomes = await asyncio.gather(*(label(clients[n % len(clients)], n) for n in range(120)))
    finally:
        for c in clients:
            await c.aclose()
    assert outcomes.count("OK") >= 5, outcomes  # the race had winners
    assert {"OK", "FAILED_PRECONDITION"} <= set(outcomes), outcomes  # ... and losers
    await labels_in_order(store, "web")


# -- the API: labels in every RPC that names a version -----------------------------------


async def test_every_rpc_takes_a_label_where_it_takes_a_version(
    client: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    await client.set_config("web", {"port": 8080})  # v2
    await client.tag_version("web", "1.0.0")
    await client.set_config("web", {"port": 9090, "motd": "hi"})  # v3
    bumped = await client.bump_version("web", "minor")
    assert (bumped.version, bumped.label) == (3, "1.1.0")
    await client.set_config("web", {"name": "edge"})  # v4

    got = await client.get_version("web", label="v1.0.0")
    assert (got.version, list(got.tags)) == (2, ["1.0.0"])

    d = await client.diff_versions("web", from_label="1.0.0", to_label="1.1.0")
    assert (d.from_version, d.to_version, d.from_label, d.to_label) == (2, 3, "1.0.0", "1.1.0")
    assert (d.changed, d.added, d.removed) == (1, 1, 0)
    assert d.summary == "web 1.0.0 -> 1.1.0: 1 changed, 1 added, 0 removed"
    assert {(e.kind, e.path) for e in d.entries} == {("changed", "port"), ("added", "motd")}
    back = await client.diff_versions("web", 4, from_label="")  # to: the current one
    assert (back.summary, back.to_label) == (
        "web version 4 -> version 4: 0 changed, 0 added, 0 removed",
        "",
    )

    tagged = await client.tag_version("web", "1.0.1", version_label="1.0.0")
    assert (tagged.version, tagged.label) == (2, "1.0.1")
    bumped = await client.bump_version("web", "patch", version_label="1.1.0")
    assert (bumped.version, bumped.label) == (3, "1.1.1")

    history = await client.key_history("web", "port", before_label="1.1.0")
    assert [e.version for e in history.entries] == [2, 1]

    # Revert the generation that wrote version 4 (name=edge), named by the version.
    v4 = await client.get_version("web", 4)
    reverted = await client.revert_generation(application="web", version=4)
    assert dict(reverted.versions) == {"web": 5}
    assert plain((await client.get_version("web", 5)).metadata) == {"revert_of": v4.generation}
    revert = await client.get_generation(reverted.generation)
    assert revert.reason == f"revert generation {v4.generation}"
    # ... and the one that wrote 1.1.0 (port=9090, motd=hi), named by the label.
    v3 = await client.get_version("web", 3)
    undone = await client.revert_generation(application="web", label="1.1.0")
    assert (await client.get_generation(undone.generation)).reason == (
        f"revert generation {v3.generation}"
    )
    assert plain(await client.get_version("web", 6))["settings"] == {"port": 8080}

    rolled = await client.rollback(
        "web", to_label="1.1.0", metadata={"ticket": "OPS-7", "by": {"team": "sre"}}, reason="bad"
    )
    assert dict(rolled.versions) == {"web": 7}
    v7 = await client.get_version("web", 7)
    assert plain(v7.metadata) == {
        "ticket": "OPS-7",
        "by": {"team": "sre"},
        "rollback_from": 6,
        "rollback_to": 3,
    }
    assert plain(v7)["settings"] == {"port": 9090, "motd": "hi"} and v7.reason == "bad"

    refusals: list[tuple[Callable[[], Awaitable[Any]], grpc.StatusCode, str]] = [
        (
            lambda: client.get_version("web", label="1.0.2"),
            NOT_FOUND,
            "version 1.0.2 not found for application web",
        ),
        (lambda: client.get_version("web", label="1.0"), INVALID, "MAJOR.MINOR.PATCH"),
        (lambda: client.get_version("web", 2, label="1.0.0"), INVALID, "both name a version"),
        (
            lambda: client.diff_versions("web", to_label="1.0.0"),
            INVALID,
            "from_version must be 1 or more",
        ),
        (
            lambda: client.diff_versions("web", from_label="1.0.0", to_label="3.0.0"),
            NOT_FOUND,
            "version 3.0.0 not found for application web",
        ),
        (
            lambda: client.rollback("web", to_label="3.0.0"),
            NOT_FOUND,
            "version 3.0.0 not found for application web",
        ),
        (
            lambda: client.rollback("web", 1, metadata={"rollback_from": 1}),
            INVALID,
            "rollback_from are recorded by the rollback itself",
        ),
        (
            lambda: client.tag_version("web", "0.9.0", version_label="1.1.0"),
            PRECONDITION,
            "label 0.9.0 on version 3 would go backwards: version 2 already has 1.0.1",
        ),
        (
            lambda: client.bump_version("web", "major", version_label="1.0.0"),
            PRECONDITION,
            "label 2.0.0 on version 2 would go backwards: version 3 already has 1.1.0",
        ),
        (
            lambda: client.key_history("web", "port", before_label="1.0"),
            INVALID,
            "MAJOR.MINOR.PATCH",
        ),
        (
            lambda: client.revert_generation(application="web", version=1),
            PRECONDITION,
            "written when the application was created",
        ),
        (
            lambda: client.revert_generation(application="web", version=99),
            NOT_FOUND,
            "version 99 not found for application web",
        ),
        (lambda: client.revert_generation(), INVALID, "name the generation to revert"),
    ]
    for call, code, message in refusals:
        before = digest(mongo_client, db_name)
        with pytest.raises(ClientError) as caught:
            await call()
        assert digest(mongo_client, db_name) == before, message
        assert message in assert_code(caught.value, code).message, caught.value.message


async def test_latest_is_the_newest_version_and_the_highest_label(
    mongo_uri: str, db_name: str
) -> None:
    async with running_server(mongo_uri, db_name) as server, Client(server.address) as client:
        await client.create_application("web", schema=SCHEMA)
        await client.set_config("web", {"port": 1})
        await client.bump_version("web", "minor")
        await client.set_config("web", {"port": 2})
        latest = await client.latest_version("web")
        assert (latest.version, latest.label, latest.label_version) == (3, "1.0.0", 2)
