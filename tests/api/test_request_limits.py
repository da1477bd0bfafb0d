"""Limits on what one request may carry: keys per write and nesting depth, refused
naming the limit, writing nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from pymongo import MongoClient
from support.rpcs import CALL_TIMEOUT, INVALID, OK, invoke_raw
from support.servers import assert_code, digest, running_server
from support.wire_bytes import length_delimited, wire

from genconf.client import Client
from genconf.domain.schema import MAX_DEPTH, MAX_KEYS
from genconf.errors import ClientError
from genconf.v1 import controller_pb2


async def test_a_write_over_the_key_limit_is_refused_naming_it_and_writes_nothing(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    """One write names at most MAX_KEYS keys, those it sets and those it unsets together."""
    limit = MAX_KEYS
    keys = [f"k{i}" for i in range(limit)]
    async with (
        running_server(mongo_uri, db_name) as srv,
        Client(srv.address, timeout=CALL_TIMEOUT) as c,
    ):
        await c.create_application("web", schema={k: {"type": "int"} for k in keys}, units=1)
        await c.add_branch("b")
        half = limit // 2
        too_many: dict[str, dict[str, Any]] = {
            "set": {"set": {k: 1 for k in keys} | {"one-more": 1}},
            "set and unset": {"set": {k: 1 for k in keys[: half + 1]}, "unset": keys[half:]},
            "unset": {"unset": [*keys, keys[0]]},  # a repeated key counts again
        }
        for what, change in too_many.items():
            writes: dict[str, Callable[[], Awaitable[Any]]] = {
                "SetConfig": lambda change=change: c.set_config("web", **change),
                "SetBranchConfig": lambda change=change: c.set_branch_config("b", "web", **change),
            }
            for rpc, write in writes.items():
                before = digest(mongo_client, db_name)
                with pytest.raises(ClientError) as caught:
                    await write()
                message = assert_code(caught.value, INVALID).message
                assert f"{limit + 1} keys in one write" in message, f"{rpc} {what}: {message}"
                assert f"the limit is {limit} keys per write" in message
                assert digest(mongo_client, db_name) == before, f"{rpc} {what} wrote something"
        # Exactly the limit is fine, split between set and unset.
        done = await c.set_config("web", set={k: 7 for k in keys[:half]}, unset=keys[half:])
        config = await c.get_config("web/0", min_revision=done.revision)
        assert dict(config.config) == {k: 7 for k in keys[:half]}


def deep_set_config(key: str, levels: int, *, as_list: bool) -> bytes:
    """SetConfig of "web" setting ``key`` to ``levels`` objects (or lists) around a
    number, as wire bytes: protobuf's own builders refuse past its parser's depth.
    Built inside out, without recursion: 300 levels are asked for."""
    field = length_delimited
    value = struct_pb2.Value(number_value=1).SerializeToString()
    for _ in range(levels):
        if as_list:
            value = field(6, field(1, value))  # list_value { values: value }
        else:
            value = field(5, field(1, field(1, b"k") + field(2, value)))  # {"k": value}
    entry = field(1, key.encode()) + field(2, value)
    return wire(controller_pb2.SetConfigRequest(application="web"), ("set", field(1, entry)))


async def test_values_nested_past_the_depth_limit_are_refused_naming_it(
    mongo_uri: str, db_name: str, mongo_client: MongoClient[dict[str, Any]]
) -> None:
    """Objects past MAX_DEPTH also pass protobuf's own decoding limit: the guard
    names ours either way (lists reach the model's check, which names it too)."""
    depth = MAX_DEPTH
    async with (
        running_server(mongo_uri, db_name) as srv,
        Client(srv.address, timeout=CALL_TIMEOUT) as c,
        grpc.aio.insecure_channel(srv.address) as channel,
    ):
        schema = {"obj": {"type": "object"}, "items": {"type": "list"}}
        await c.create_application("web", schema=schema, units=1)
        set_config = channel.unary_unary("/genconf.v1.ControllerService/SetConfig")

        # The deepest accepted value: so the requests below are well formed.
        code, details = await invoke_raw(
            set_config, deep_set_config("obj", depth, as_list=False), None
        )
        assert code == OK, details
        for key, as_list in (("obj", False), ("items", True)):
            for levels in (depth + 1, depth + 10, 300):
                before = digest(mongo_client, db_name)
                payload = deep_set_config(key, levels, as_list=as_list)
                code, details = await invoke_raw(set_config, payload, None)
                assert code == INVALID, f"{key} {levels}: {code.name}: {details}"
                assert f"{depth} levels" in details, details
                assert digest(mongo_client, db_name) == before
