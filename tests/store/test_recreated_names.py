"""A name removed and re-created is another application: the generations of the
earlier one say so (by uid) and are not reverted onto the new one."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from pymongo import MongoClient
from support.servers import assert_code, digest

from genconf import shapes
from genconf.client import Client
from genconf.errors import ClientError

SCHEMA: dict[str, Any] = {"port": {"type": "int", "default": 80}}


async def test_old_generations_name_the_application_they_changed_by_uid(
    client: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    await client.create_application("web", schema=SCHEMA, units=1)
    first_uid = (await client.get_application("web")).uid
    old = await client.set_config("web", {"port": 8080})
    await client.remove_application("web", force=True)
    await client.create_application("web", schema=SCHEMA)
    new_uid = (await client.get_application("web")).uid
    assert new_uid and new_uid != first_uid
    new = await client.set_config("web", {"port": 9090})
    # Both generations say web went to version 2; their uids tell them apart.
    old_gen = shapes.generation_view(await client.get_generation(old.generation))
    new_gen = shapes.generation_view(await client.get_generation(new.generation))
    assert old_gen["versions"] == new_gen["versions"] == {"web": 2}
    assert old_gen["application_uids"] == {"web": first_uid}
    assert new_gen["application_uids"] == {"web": new_uid}

    before = digest(mongo_client, db_name)
    with pytest.raises(ClientError) as caught:
        await client.revert_generation(old.generation)
    message = assert_code(caught.value, grpc.StatusCode.FAILED_PRECONDITION).message
    assert f"generation {old.generation} changed an earlier application named 'web'" in message
    assert first_uid[:12] in message and new_uid[:12] in message
    assert digest(mongo_client, db_name) == before

    reverted = await client.revert_generation(new.generation)  # its own history: fine
    assert dict(reverted.versions) == {"web": 3}


async def test_generations_from_before_uids_revert_as_they_did(
    client: Client, mongo_client: MongoClient[dict[str, Any]], db_name: str
) -> None:
    """A generation written before uids were kept names no uid: nothing to compare,
    so it reverts by name as before."""
    await client.create_application("web", schema=SCHEMA)
    written = await client.set_config("web", {"port": 8080})
    mongo_client[db_name]["generations"].update_one(
        {"_id": written.generation}, {"$unset": {"application_uids": ""}}
    )
    reverted = await client.revert_generation(written.generation)
    assert dict(reverted.versions) == {"web": 3}
