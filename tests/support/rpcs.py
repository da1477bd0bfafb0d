"""Every genconf RPC, from the service descriptors of ``genconf.v1``, and a way to
call any of them with nothing but a bearer token: the access matrix, the fuzzer and
the rule-table tests share them, so a new RPC reaches all three at once.

A plain module: tests import it as ``from support.rpcs import ...``.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

import genconf.v1

OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
INVALID = grpc.StatusCode.INVALID_ARGUMENT

CALL_TIMEOUT = 10.0


def bearer(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


@dataclass(frozen=True)
class Rpc:
    path: str  # /genconf.v1.Service/Method
    service: str
    name: str
    request_type: type[Message]
    response_type: type[Message]
    streaming: bool
    # Requests stream too (TransferService/Import, bidirectional): `invoke` sends a
    # list of messages.
    client_streaming: bool = False

    @property
    def short(self) -> str:
        return f"{self.service}/{self.name}"


def genconf_services() -> list[ServiceDescriptor]:
    """Every service declared in any module of ``genconf.v1``."""
    services: dict[str, ServiceDescriptor] = {}
    for info in pkgutil.iter_modules(genconf.v1.__path__):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"genconf.v1.{info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            services[service.full_name] = service
    return [services[name] for name in sorted(services)]


def all_rpcs() -> list[Rpc]:
    rpcs = []
    for service in genconf_services():
        for method in service.methods:
            # A client stream must also stream its replies: the guard authenticates
            # bidirectional calls (api/interceptor.py), not client-streaming ones.
            assert method.server_streaming or not method.client_streaming, method.full_name
            rpcs.append(
                Rpc(
                    f"/{service.full_name}/{method.name}",
                    service.name,
                    method.name,
                    message_factory.GetMessageClass(method.input_type),
                    message_factory.GetMessageClass(method.output_type),
                    method.server_streaming,
                    method.client_streaming,
                )
            )
    return rpcs


RPCS = all_rpcs()


async def invoke(
    channel: grpc.aio.Channel, rpc: Rpc, request: Message | list[Message], token: str | None
) -> tuple[grpc.StatusCode, str]:
    """Call ``rpc`` once (a stream: its first message) and return its status; a
    client stream sends ``request``, a list of messages."""
    if rpc.streaming:
        options = {
            "request_serializer": rpc.request_type.SerializeToString,
            "response_deserializer": rpc.response_type.FromString,
        }
        if rpc.client_streaming:
            assert isinstance(request, list)
            bidi = channel.stream_stream(rpc.path, **options)
            return await invoke_bidi(bidi, request, token)
        stream = channel.unary_stream(rpc.path, **options)(
            request, metadata=bearer(token), timeout=CALL_TIMEOUT
        )
        try:
            first = await stream.read()
            if first is grpc.aio.EOF:
                return await stream.code(), await stream.details() or ""
            return OK, ""
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or ""
        finally:
            stream.cancel()
    unary = channel.unary_unary(
        rpc.path,
        request_serializer=rpc.request_type.SerializeToString,
        response_deserializer=rpc.response_type.FromString,
    )
    try:
        await unary(request, metadata=bearer(token), timeout=CALL_TIMEOUT)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return OK, ""


async def invoke_bidi(
    callable_: Any, requests: list[Any], token: str | None
) -> tuple[grpc.StatusCode, str]:
    """A bidirectional call the way its clients make one (TransferService/Import):
    wait for the server's first message (it has admitted the call), send
    ``requests`` (messages, or bytes to a callable without serializers), half-close,
    read to the end. A client that writes before then races the guard's refusal,
    which gRPC may then report as INTERNAL."""
    call = callable_(metadata=bearer(token), timeout=CALL_TIMEOUT)
    try:
        if await call.read() is not grpc.aio.EOF:
            for request in requests:
                await call.write(request)
            await call.done_writing()
            while await call.read() is not grpc.aio.EOF:
                pass
        return await call.code(), await call.details() or ""
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    finally:
        call.cancel()


async def invoke_raw(
    callable_: Any, payload: bytes, token: str | None
) -> tuple[grpc.StatusCode, str]:
    """Send ``payload`` as the request bytes, with no client-side encoding."""
    try:
        call = callable_(payload, metadata=bearer(token), timeout=CALL_TIMEOUT)
        if isinstance(call, grpc.aio.UnaryStreamCall):
            try:
                await call.read()
            finally:
                call.cancel()
        else:
            await call
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return OK, ""
