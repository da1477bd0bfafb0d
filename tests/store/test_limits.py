"""Sizes are bounded where they are written: refused with the limit and the size
named, nothing written, and the server keeps serving (real server, real mongod)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from pymongo import MongoClient
from support.servers import assert_code, digest

from genconf.client import Client
from genconf.errors import ClientError
from genconf.store import limits

KEYS = 200
VALUE = "x" * 60_000  # under the per-value limit of 64 KiB
SCHEMA = {f"k{i}": {"type": "string"} for i in range(KEYS)}


def chunk(n: int) -> dict[str, str]:
    """The n-th 3.6 MB write: 60 keys, each under the request limit of 4 MiB."""
    return {f"k{i}": VALUE for i in range(60 * n, 60 * (n + 1))}


async def test_an_application_cannot_grow_past_its_limit(
    client: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    """Three legal writes once grew an application to 11 MB and wedged every replica
    (its change event passed 16 MB); the second is refused now."""
    await client.create_application("big", schema=SCHEMA, units=1)
    first = await client.set_config("big", chunk(0))
    before = digest(mongo_client, db_name)
    with pytest.raises(ClientError) as caught:
        await client.set_config("big", chunk(1))
    err = assert_code(caught.value, grpc.StatusCode.INVALID_ARGUMENT)
    print(f"\nrefused: {err.message}")
    assert f"{limits.MAX_APPLICATION_BYTES:,} bytes" in err.message
    assert "application 'big'" in err.message and "would be 7," in err.message
    assert digest(mongo_client, db_name) == before
    # Still serving, and the unit has the first write.
    config = await client.get_config("big/0", min_revision=first.revision)
    assert config.config["k0"] == VALUE


async def test_a_branch_cannot_grow_past_its_limit(
    client: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await client.create_application("big", schema=SCHEMA)
    await client.add_branch("wide")
    await client.set_branch_config("wide", "big", chunk(0))
    before = digest(mongo_client, db_name)
    with pytest.raises(ClientError) as caught:
        await client.set_branch_config("wide", "big", chunk(1))
    err = assert_code(caught.value, grpc.StatusCode.INVALID_ARGUMENT)
    assert "branch 'wide'" in err.message
    assert f"{limits.MAX_BRANCH_BYTES:,} bytes" in err.message
    assert digest(mongo_client, db_name) == before


@pytest.mark.parametrize(
    ("field", "limit"),
    [("reason", limits.MAX_REASON_CHARS), ("created_by", limits.MAX_NAME_CHARS)],
)
async def test_free_text_is_bounded(
    client: Client,
    mongo_client: MongoClient[dict[str, Any]],
    db_name: str,
    field: str,
    limit: int,
) -> None:
    await client.create_application("app", schema={"k": {"type": "int"}})
    await client.set_config("app", {"k": 1}, **{field: "r" * limit})  # at the limit: fine
    before = digest(mongo_client, db_name)
    with pytest.raises(ClientError) as caught:
        await client.set_config("app", {"k": 2}, **{field: "r" * (limit + 1)})
    err = assert_code(caught.value, grpc.StatusCode.INVALID_ARGUMENT)
    assert err.message.startswith(f"{field} is {limit + 1:,} characters; the limit is {limit:,}")
    assert digest(mongo_client, db_name) == before


async def test_schema_descriptions_and_charm_are_bounded(client: Client) -> None:
    long = {"k": {"type": "int", "description": "d" * (limits.MAX_DESCRIPTION_CHARS + 1)}}
    with pytest.raises(ClientError) as caught:
        await client.create_application("app", schema=long)
    assert (
        "description of option 'k'"
        in assert_code(caught.value, grpc.StatusCode.INVALID_ARGUMENT).message
    )
    with pytest.raises(ClientError) as caught:
        await client.create_application("app", charm="c" * (limits.MAX_NAME_CHARS + 1))
    assert (
        "invalid charm name" in assert_code(caught.value, grpc.StatusCode.INVALID_ARGUMENT).message
    )


def test_check_document_names_what_the_limit_and_the_size() -> None:
    with pytest.raises(Exception) as caught:
        limits.check_document("thing", {"v": "x" * 2000}, 1000, "Do less.")
    assert str(caught.value).startswith("thing would be 2,01")
    assert "the limit is 1,000 bytes" in str(caught.value) and "Do less." in str(caught.value)
