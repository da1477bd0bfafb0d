"""What every route shares: `HttpApi` (the gate and the cache of one server), the
JSON response, and how a route names the RPC it performs.

A route is one call (or a call and the reads that type its values) of the gRPC
method it names in ``x-genconf-rpc`` (shown in the OpenAPI document, and what the
access tests check against the rule table). Writes return once this server's cache
holds them, so the next request reads them (read-your-writes, as the CLI does).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from fastapi import Request
from fastapi.responses import Response
from google.protobuf.message import Message
from grpc_health.v1._async import HealthServicer

from genconf import shapes
from genconf.api.guard import Guard
from genconf.api.reads import await_revision
from genconf.domain.results import WriteResult
from genconf.errors import ResourceExhausted, Unavailable
from genconf.http import errors
from genconf.http.calls import CallContext, Gate
from genconf.http.views import ErrorBody
from genconf.readside.cache import ModelCache
from genconf.wire import write_result

log = logging.getLogger("genconf.http")

PREFIX: Final = "/api/v1"
RPC_KEY: Final = "x-genconf-rpc"
USER_HEADER: Final = "x-genconf-user"
DEFAULT_USER: Final = "http"  # who an HTTP write says it is, when it does not say
# How long a write waits for this server's cache to show it before answering anyway.
SETTLE_SECONDS: Final = 10.0

# The error statuses each route may answer, as the OpenAPI document lists them.
ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "INVALID_ARGUMENT (or OUT_OF_RANGE): the request names what is wrong"),
        (401, "UNAUTHENTICATED: no valid bearer token"),
        (403, "PERMISSION_DENIED: the token's role may not call this RPC"),
        (404, "NOT_FOUND"),
        (409, "ALREADY_EXISTS, or ABORTED (expected_version or a per-key expectation)"),
        (412, "FAILED_PRECONDITION (conflicts, units not applied, ...)"),
        (413, "RESOURCE_EXHAUSTED: the body is larger than --max-request-bytes"),
        (429, "RESOURCE_EXHAUSTED: a limit the message names"),
        (503, "UNAVAILABLE: retry"),
    )
}


def method(service: str, name: str) -> str:
    """The gRPC method path of ``service``'s ``name``."""
    return f"/genconf.v1.{service}/{name}"


def performs(rpc: str, *, summary: str, **more: Any) -> dict[str, Any]:
    """A route's decorator arguments: the RPC it performs, its summary, its errors."""
    short = rpc.rsplit(".", 1)[-1]
    return {
        "summary": summary,
        "description": f"Performs `{short}` (gRPC): the same rule, the same errors.",
        **more,
        "openapi_extra": {RPC_KEY: short, **more.get("openapi_extra", {})},
        "responses": {**ERROR_RESPONSES, **more.get("responses", {})},
    }


class Json(Response):
    """JSON as every route answers it (`errors.encode`); never re-validated."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else errors.encode(content)


def peer_of(request: Request) -> str:
    """The HTTP client as gRPC names a peer (``ipv4:HOST:PORT``, ``ipv6:[HOST]:PORT``)."""
    client = request.scope.get("client")
    if client is None:
        return "unknown"
    host, port = client
    return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"


class HttpApi:
    """One server's gate, cache and health, for the routes (``app.state.genconf``)."""

    def __init__(
        self,
        gate: Gate,
        cache: ModelCache,
        guard: Guard,
        *,
        health: HealthServicer,
        max_request_bytes: int,
    ) -> None:
        self.gate = gate
        self.cache = cache
        self.guard = guard  # who a token is (whoami); the calls are gated by `gate`
        self.health = health  # gRPC health: what GET /api/v1/health answers
        self.max_request_bytes = max_request_bytes

    @property
    def auth(self) -> bool:
        return self.guard.enabled

    def context(self, request: Request) -> CallContext:
        """The calls' context: the bearer token travels as gRPC metadata does."""
        for name, value in request.scope["headers"]:
            if name == b"authorization":
                metadata = (("authorization", value.decode("latin-1")),)
                return CallContext(metadata, peer_of(request))
        return CallContext((), peer_of(request))

    def claimed(self, request: Request) -> str:
        """Who the client says it is (``X-Genconf-User``): the author of its writes
        without authentication, only "on behalf of" with it (`auth.authorship`). A
        client that says nothing is "http" without authentication, and with it
        nobody on whose behalf the token acts."""
        return request.headers.get(USER_HEADER) or ("" if self.auth else DEFAULT_USER)

    async def call(self, request: Request, rpc: str, message: Message) -> Any:
        return await self.gate.unary(rpc, message, self.context(request))

    async def write(
        self,
        request: Request,
        rpc: str,
        message: Message,
        view: Callable[[WriteResult], dict[str, Any]] = shapes.write_view,
    ) -> Json:
        """A write's WriteResponse as ``-o json`` prints it (``view``), once the cache
        has it."""
        context = self.context(request)
        reply = await self.gate.unary(rpc, message, context)
        await self.settle(reply.revision, context)
        return Json(view(write_result(reply)))

    async def settle(self, revision: int, context: CallContext) -> None:
        """Wait (bounded) until this server's cache holds ``revision``. The write is
        done either way: a wait that runs out is logged, not reported as a failure."""
        try:
            await await_revision(self.cache, revision, context, SETTLE_SECONDS)  # type: ignore[arg-type]
        except (Unavailable, ResourceExhausted) as exc:
            log.warning("an HTTP write's revision %d is not in the cache yet: %s", revision, exc)


def api_of(request: Request) -> HttpApi:
    api: HttpApi = request.app.state.genconf
    return api
