"""The pieces of the HTTP side that need no server: the context a call gets, the
table that keeps the gRPC handlers, and what request bodies become."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from pydantic import ValidationError

from genconf.api.errors import abort_with
from genconf.domain.values import ABSENT
from genconf.errors import InvalidArgument, VersionMismatch
from genconf.http import models
from genconf.http.calls import Aborted, CallContext, MethodTable
from genconf.wire import expectations_from_proto, from_struct


async def test_abort_raises_with_the_typed_detail() -> None:
    context = CallContext((("authorization", "Bearer x"),), "ipv4:127.0.0.1:5000")
    assert context.invocation_metadata() == (("authorization", "Bearer x"),)
    assert context.peer() == "ipv4:127.0.0.1:5000" and context.time_remaining() is None
    with pytest.raises(Aborted) as caught:
        await abort_with(context, VersionMismatch("application 'web'", 2, 3))  # type: ignore[arg-type]
    assert caught.value.code is grpc.StatusCode.ABORTED
    assert caught.value.detail is not None
    assert (caught.value.detail.expected_version, caught.value.detail.actual_version) == (2, 3)
    assert context.code() is grpc.StatusCode.ABORTED


def test_a_finished_call_runs_its_callbacks_once() -> None:
    context = CallContext((), "ipv4:127.0.0.1:5000")
    seen: list[Any] = []
    context.add_done_callback(seen.append)
    context.finish(cancelled=True)
    context.finish()
    assert seen == [context] and context.done() and context.cancelled()


class RecordingServer:
    def __init__(self) -> None:
        self.generic: list[Any] = []
        self.registered: list[str] = []

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
        self.registered.append(service)


def test_the_table_keeps_what_it_passes_on() -> None:
    server = RecordingServer()
    table = MethodTable(server)  # type: ignore[arg-type]
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    generic = grpc.method_handlers_generic_handler("pkg.Svc", {"Do": handler})
    table.add_generic_rpc_handlers((generic,))
    table.add_registered_method_handlers("pkg.Svc", {"Do": handler})
    assert server.generic == [generic] and server.registered == ["pkg.Svc"]
    assert table.handler("/pkg.Svc/Do") is handler
    assert table.handler("/pkg.Svc/Nope") is None


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (None, (0, "")),
        (3, (3, "")),
        ("3", (3, "")),
        ("1.0.0", (0, "1.0.0")),
        ("v2.1.0", (0, "v2.1.0")),
    ],
)
def test_a_version_is_a_number_or_a_label(ref: Any, expected: tuple[int, str]) -> None:
    assert models.version_ref(ref, "to") == expected


def test_a_version_that_is_neither_is_refused_naming_it() -> None:
    with pytest.raises(InvalidArgument, match="to: invalid version label 'one'"):
        models.version_ref("one", "to")
    with pytest.raises(InvalidArgument, match="out of range"):
        models.version_ref(2**64, "to")


def test_bodies_are_strict_and_become_requests() -> None:
    body = models.SetConfig.model_validate(
        {"set": {"a": 1}, "unset": ["b"], "expect": {"a": 0, "c": {"absent": True}}}
    )
    request = body.proto("web", "ann")
    assert from_struct(request.set) == {"a": 1} and list(request.unset) == ["b"]
    assert expectations_from_proto(request.expect) == {"a": 0, "c": ABSENT}
    assert request.created_by == "ann" and not request.HasField("expected_version")
    with pytest.raises(ValidationError):
        models.SetConfig.model_validate({"expected_version": "3"})
    with pytest.raises(ValidationError):
        models.SetConfig.model_validate({"sett": {}})
    with pytest.raises(ValidationError):
        models.AddUnits.model_validate({"count": 2**31})
    with pytest.raises(InvalidArgument, match="'big'"):
        models.SetConfig.model_validate({"set": {"big": 2**60}}).proto("web", "ann")
    schema = models.CreateApplication.model_validate(
        {"name": "web", "schema": {"p": {"type": "int", "default": 1}}}
    ).proto("ann")
    assert schema.schema["p"].type == "int" and schema.schema["p"].HasField("default")
