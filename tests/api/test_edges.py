"""Edges seen against a real server (issue 14, item 6): integers a protobuf double
cannot carry, a config larger than gRPC's default message size, and a second
server on an address already in use."""

from __future__ import annotations

import dataclasses
import re
import socket
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.cli_runner import Genconf, clean_env
from support.servers import server_config

from genconf import wire
from genconf.api import server as server_module
from genconf.api.server import RunningServer, serve
from genconf.client import Client
from genconf.domain.schema import (
    MAX_EXACT_INT,
    OptionSpec,
    ValueType,
    check_wire_numbers,
    coerce_value,
)
from genconf.domain.values import config_hash
from genconf.errors import ClientError, GenconfError, InvalidArgument
from genconf.v1 import agent_pb2, agent_pb2_grpc, controller_pb2, controller_pb2_grpc

MAX = MAX_EXACT_INT
RANGE = f"±{MAX} (±(2^53-1))"
GRPC_DEFAULT_RECEIVE = 4 * 1024 * 1024

# -- integers past 2^53 ------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.integers(-MAX, MAX))
def test_prop_integers_in_the_exact_range_cross_protobuf_unchanged(n: int) -> None:
    values = {"k": n, "o": {"l": [n, {"n": n}]}}
    back = wire.from_struct(wire.to_struct(values))
    assert back == values
    assert type(back["k"]) is int and type(back["o"]["l"][1]["n"]) is int


@settings(max_examples=300, deadline=None)
@given(st.integers(MAX + 1, 2**1000) | st.integers(-(2**1000), -MAX - 1))
def test_prop_integers_past_the_range_are_refused_on_both_sides_of_the_wire(n: int) -> None:
    """The client refuses n itself; the server, which sees only the double n became
    (2**53 + 1 arrives as 2**53), refuses that, nested or as an int option."""
    with pytest.raises(InvalidArgument, match=re.escape(RANGE)):
        check_wire_numbers("o", {"a": [n]})
    arrived = wire.from_struct(wire.to_struct({"o": {"a": [n]}, "i": n}))
    with pytest.raises(InvalidArgument, match=re.escape("at o.a[0]: ")):
        coerce_value("o", OptionSpec(ValueType.OBJECT), arrived["o"])
    with pytest.raises(InvalidArgument, match=r"value of 'i' is .*integers must lie"):
        coerce_value("i", OptionSpec(ValueType.INT), arrived["i"])


NUMS_SCHEMA: dict[str, Any] = {
    "limits": {"type": "object", "default": {}},
    "ids": {"type": "list", "default": []},
    "count": {"type": "int", "default": 0},
    "ratio": {"type": "float", "default": 0.5},
}


async def test_an_integer_past_2_53_is_refused_naming_key_and_path_and_nothing_is_written(
    client: Client,
) -> None:
    created = await client.create_application("nums", schema=NUMS_SCHEMA, units=1)
    before = await client.get_config("nums/0", min_revision=created.revision)
    version = (await client.get_application("nums")).version
    await client.add_branch("b")

    refused_by_client = {
        "nested": lambda: client.set_config("nums", {"limits": {"a": [1, {"big": 2**53 + 1}]}}),
        "list": lambda: client.set_config("nums", {"ids": [5, -(2**63)]}),
        "int option": lambda: client.set_config("nums", {"count": 2**53 + 1}),
        "branch": lambda: client.set_branch_config("b", "nums", {"limits": {"x": 2**60}}),
        "metadata": lambda: client.set_config("nums", {"count": 1}, metadata={"t": 2**64}),
        "default": lambda: client.create_application(
            "other", schema={"n": {"type": "int", "default": 2**53}}
        ),
    }
    where = {
        "nested": "'limits' has 9007199254740993 at limits.a[1].big: ",
        "list": "'ids' has -9223372036854775808 at ids[1]: ",
        "int option": "'count' is 9007199254740993: integers must lie within",
        "branch": "'limits' has 1152921504606846976 at limits.x: ",
        "metadata": "'metadata' has 18446744073709551616 at metadata.t: ",
        "default": "'n' is 9007199254740992: integers must lie within",
    }
    for case, call in refused_by_client.items():
        with pytest.raises(ClientError) as err:
            await call()
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT, case
        assert where[case] in err.value.message and RANGE in err.value.message, err.value.message

    # Past the client (any other gRPC client): the server sees the rounded double.
    stub = controller_pb2_grpc.ControllerServiceStub(client.channel)
    raw = {
        "limits.a[1].b": {"limits": {"a": [1, {"b": 2**53 + 1}]}},
        "ids[0]": {"ids": [2**53 + 1]},
        "count": {"count": 2**53 + 1},
    }
    for path, values in raw.items():
        request = controller_pb2.SetConfigRequest(application="nums", set=wire.to_struct(values))
        with pytest.raises(grpc.aio.AioRpcError) as rpc:
            await stub.SetConfig(request)
        message = rpc.value.details() or ""
        assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        expected = "'count' is 9007199254740992: " if path == "count" else f" at {path}: "
        assert expected in message and RANGE in message, message

    # Nothing was written: the next write is the very next version, on the same config.
    after = await client.set_config("nums", {"count": 2})
    assert (await client.get_application("nums", min_revision=after.revision)).version == (
        version + 1
    )
    now = await client.get_config("nums/0", min_revision=after.revision)
    assert dict(now.config) == {**before.config, "count": 2}
    assert list((await client.get_branch("b")).changes) == []


async def test_integers_up_to_2_53_minus_1_round_trip_exactly(
    client: Client, srv: RunningServer, tmp_path: Path
) -> None:
    await client.create_application("nums", schema=NUMS_SCHEMA, units=1)
    values = {
        "limits": {"max": MAX, "min": -MAX, "odd": [2**52 + 1, MAX - 2], "f": 0.25},
        "ids": [MAX, -MAX, 0],
        "count": MAX,
        "ratio": 1e300,  # a float option keeps large numbers: a double is exact there
    }
    written = await client.set_config("nums", values)
    got = await client.get_config("nums/0", min_revision=written.revision)
    assert got.config == values
    assert got.hash == config_hash(values)
    app = await client.get_application("nums")
    assert wire.from_struct(app.settings) == values  # the Struct carries them exactly too
    with anyio.fail_after(30):
        async with aclosing(client.watch_config("nums/0")) as watch:
            assert (await anext(watch)).config == values

    run = Genconf(srv.address, clean_env(tmp_path))
    shown, refused = await run.all(
        ("config", "get", "nums/0", "-o", "json"),
        ("config", "set", "nums", f'limits={{"a": {MAX + 2}}}'),
    )
    assert shown.json()["config"] == values
    assert refused.rc == 1
    assert refused.err.startswith(f"error: value of 'limits' has {MAX + 2} at limits.a: ")


# -- a config larger than gRPC's default 4 MiB -------------------------------------

KEYS, VALUE_BYTES = 60, 60_000  # 3.6 MB: within every write limit, sent twice per reply


async def test_a_3_6_mb_config_reaches_get_config_watch_config_and_the_cli(
    client: Client, srv: RunningServer, tmp_path: Path
) -> None:
    schema = {f"k{i:02}": {"type": "string"} for i in range(KEYS)}
    values = {key: chr(ord("a") + i % 26) * VALUE_BYTES for i, key in enumerate(schema)}
    await client.create_application("big", schema=schema, units=1)
    written = await client.set_config("big", values)

    got = await client.get_config("big/0", min_revision=written.revision)
    assert got.config == values
    # The reply is past gRPC's default receive limit (the config travels as a Struct
    # and as JSON): a channel without genconf's limit cannot take it.
    unit = agent_pb2.GetConfigRequest(unit="big/0")
    reply = await agent_pb2_grpc.AgentServiceStub(client.channel).GetConfig(unit)
    assert reply.ByteSize() > GRPC_DEFAULT_RECEIVE
    async with grpc.aio.insecure_channel(srv.address) as plain:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await agent_pb2_grpc.AgentServiceStub(plain).GetConfig(unit)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reply.ByteSize() < wire.MAX_MESSAGE_BYTES

    with anyio.fail_after(30):
        async with aclosing(client.watch_config("big/0")) as watch:
            first = await anext(watch)
    assert (first.config, first.hash) == (values, got.hash)

    run = Genconf(srv.address, clean_env(tmp_path))
    shown = (await run("config", "get", "big/0", "-o", "json")).json()
    assert (shown["config"], shown["hash"]) == (values, got.hash)


# -- a second server on an address in use ------------------------------------------


def in_use(address: str) -> str:
    return f"{address} is already in use (another genconf serve?)"


async def test_a_second_server_on_the_same_address_refuses_to_start(
    srv: RunningServer, client: Client, mongo_uri: str, db_name: str, tmp_path: Path
) -> None:
    with pytest.raises(GenconfError) as err:
        async with serve(dataclasses.replace(srv.config, listen=srv.address)):
            pytest.fail("a second server started on an address in use")
    assert err.value.message == in_use(srv.address)

    run = Genconf(None, clean_env(tmp_path))
    done = await run(
        "serve", "--listen", srv.address, "--mongo-uri", mongo_uri, "--database", db_name
    )
    assert (done.rc, done.out, done.err) == (1, "", f"error: {in_use(srv.address)}\n")

    # The first one still answers, alone.
    assert await client.health() == "SERVING"
    written = await client.create_application("still", units=1)
    assert (await client.get_config("still/0", min_revision=written.revision)).config == {}


async def test_a_server_never_shares_its_port_even_with_a_port_sharing_listener(
    monkeypatch: pytest.MonkeyPatch, mongo_uri: str, db_name: str
) -> None:
    """gRPC turns SO_REUSEPORT on by default: beside a listener that allows sharing
    (a genconf serve of before), a second server would start and split the clients.
    Without the early check, gRPC's own bind must fail too, and say where."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        listen = f"127.0.0.1:{other.getsockname()[1]}"
        config = server_config(mongo_uri, db_name, listen=listen)
        with pytest.raises(GenconfError, match=re.escape(in_use(listen))):
            async with serve(config):
                pytest.fail("started beside a listener on the same port")

        monkeypatch.setattr(server_module, "check_listen_free", lambda listen: None)
        with pytest.raises(BaseException) as err:
            async with serve(config):
                pytest.fail("gRPC shared the port")
        failure = err.value  # raised inside the read side's task group, as `genconf` sees it
        while isinstance(failure, BaseExceptionGroup) and len(failure.exceptions) == 1:
            failure = failure.exceptions[0]
        assert isinstance(failure, GenconfError), repr(failure)
        assert failure.message == (
            f"cannot listen on {listen}: in use (another genconf serve?) "
            "or not an address of this machine"
        )
