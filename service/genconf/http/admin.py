"""Routes of the whole model: health, who the caller is, the snapshot and the live
feed (AdminService), tokens (TokenService), export and import (TransferService)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

import grpc
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from grpc_health.v1 import health_pb2

from genconf import shapes
from genconf.errors import InvalidArgument, ResourceExhausted, Unavailable
from genconf.http import models, sse
from genconf.http.api import PREFIX, Json, api_of, method, performs
from genconf.http.calls import Aborted
from genconf.http.errors import TOO_LARGE, Refusal, encode
from genconf.http.views import (
    CreatedTokenView,
    Health,
    ImportSummary,
    SnapshotView,
    TokenView,
    WhoAmI,
    WriteView,
)
from genconf.v1 import admin_pb2, tokens_pb2, transfer_pb2

SNAPSHOT: Final = method("AdminService", "Snapshot")
WATCH_DELTAS: Final = method("AdminService", "WatchDeltas")
CREATE_TOKEN: Final = method("TokenService", "CreateToken")
LIST_TOKENS: Final = method("TokenService", "ListTokens")
REVOKE_TOKEN: Final = method("TokenService", "RevokeToken")
EXPORT: Final = method("TransferService", "Export")
IMPORT: Final = method("TransferService", "Import")
JSON_LINES: Final = "application/x-ndjson"

router = APIRouter(prefix=PREFIX)


# -- the caller and the server ------------------------------------------------------


@router.get(
    "/health",
    response_model=Health,
    summary="whether this server serves (public: no token)",
    responses={503: {"model": Health, "description": "NOT_SERVING"}},
    openapi_extra={"security": []},
)
async def health(request: Request) -> Response:
    api = api_of(request)
    reply = await api.health.Check(health_pb2.HealthCheckRequest(service=""), api.context(request))
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return Json({"status": status}, status_code=200 if status == "SERVING" else 503)


@router.get(
    "/whoami",
    response_model=WhoAmI,
    summary="the caller's role and token (any valid token)",
)
async def whoami(request: Request) -> Response:
    api = api_of(request)
    if not api.auth:
        return Json(
            {
                "role": "admin",
                "name": api.claimed(request),
                "token_id": None,
                "unit": None,
                "auth": False,
            }
        )
    principal = api.guard.authenticate(api.context(request).invocation_metadata())
    return Json(
        {
            "role": principal.role.value,
            "name": principal.name or None,
            "token_id": principal.token_id,
            "unit": principal.unit,
            "auth": True,
        }
    )


# -- the model, whole and live ----------------------------------------------------


@router.get(
    "/snapshot",
    response_model=SnapshotView,
    **performs(SNAPSHOT, summary="the whole model at one revision"),
)
async def snapshot(request: Request) -> Response:
    reply = await api_of(request).call(request, SNAPSHOT, admin_pb2.SnapshotRequest())
    return Json(
        {
            "applications": [shapes.application_view(a) for a in reply.applications],
            "units": [shapes.unit_view(u) for u in reply.units],
            "branches": [shapes.branch_view(b) for b in reply.branches],
            "last_generation": reply.last_generation,
            "revision": reply.revision,
        }
    )


def batch_events(batch: admin_pb2.DeltaBatch) -> bytes:
    """One event per delta, as ``genconf watch -o json`` prints it. The revision's id
    comes with its last delta: a client cut off inside a revision resumes from the
    one before, so it never misses part of one."""
    last = len(batch.deltas) - 1
    return b"".join(
        sse.event(
            encode(shapes.delta_view(batch.revision, delta)),
            kind=delta.kind,
            id=batch.revision if i == last else None,
        )
        for i, delta in enumerate(batch.deltas)
    )


@router.get(
    "/watch",
    **performs(
        WATCH_DELTAS,
        summary="server-sent events: every change, as it happens (resumable)",
        response_class=Response,
        responses={
            200: {
                "content": {sse.MEDIA_TYPE: {}},
                "description": "one event per change (`event:` its kind, `data:` "
                "{revision, kind, key, removed, value}), `id: REVISION` on the last of each "
                "revision; `: keep-alive` comments; `too-old` or `closed` (an error body) "
                "when it ends",
            },
            410: {
                "content": {sse.MEDIA_TYPE: {}},
                "description": "the revision is older than the server keeps: one `too-old` "
                "event; take a new snapshot",
            },
        },
    ),
)
async def watch(
    request: Request,
    kind: Annotated[
        list[str], Query(description="application, unit, branch, generation, rollout")
    ] = [],  # noqa: B006
    application: Annotated[list[str], Query(description="only these applications")] = [],  # noqa: B006
    since: Annotated[
        int | None, Query(ge=0, description="replay what followed this revision first")
    ] = None,
    last_event_id: Annotated[
        int | None, Header(ge=0, description="as since (what a reconnecting client sends)")
    ] = None,
) -> Response:
    api = api_of(request)
    context = api.context(request)
    message = admin_pb2.WatchDeltasRequest(kinds=kind, applications=application)
    revision = last_event_id if last_event_id is not None else since
    if revision is not None:
        message.since_revision = revision
    return await sse.events(api.gate.stream(WATCH_DELTAS, message, context), batch_events, context)


# -- tokens ------------------------------------------------------------------------


@router.get(
    "/tokens",
    response_model=list[TokenView],
    **performs(LIST_TOKENS, summary="every token (never a secret)"),
)
async def list_tokens(request: Request) -> Response:
    reply = await api_of(request).call(request, LIST_TOKENS, tokens_pb2.ListTokensRequest())
    return Json([shapes.token_view(t) for t in reply.tokens])


@router.post(
    "/tokens",
    response_model=CreatedTokenView,
    **performs(CREATE_TOKEN, summary="mint a token: its secret is in this answer only"),
)
async def create_token(request: Request, body: models.CreateToken) -> Response:
    api = api_of(request)
    context = api.context(request)
    reply = await api.gate.unary(CREATE_TOKEN, body.proto(), context)
    await api.settle(reply.revision, context)
    return Json(shapes.created_token_view(reply))


@router.delete(
    "/tokens/{id}",
    response_model=WriteView,
    **performs(REVOKE_TOKEN, summary="revoke a token (its open streams end)"),
)
async def revoke_token(request: Request, id: str) -> Response:
    return await api_of(request).write(request, REVOKE_TOKEN, tokens_pb2.RevokeTokenRequest(id=id))


# -- export and import ---------------------------------------------------------------


def _record_line(record: transfer_pb2.ExportRecord) -> bytes:
    return record.json.encode() + (b"" if record.continued else b"\n")


@router.get(
    "/export",
    **performs(
        EXPORT,
        summary="the model, history included, as JSON Lines (docs/export-format.md)",
        response_class=Response,
        responses={200: {"content": {JSON_LINES: {}}, "description": "one record per line"}},
    ),
)
async def export_model(
    request: Request,
    application: Annotated[list[str], Query(description="only these applications")] = [],  # noqa: B006
) -> Response:
    api = api_of(request)
    context = api.context(request)
    stream = api.gate.stream(EXPORT, transfer_pb2.ExportRequest(applications=application), context)
    response = await sse.lines(stream, _record_line, context, JSON_LINES)
    if response.status_code == 200:
        response.headers["Content-Disposition"] = 'attachment; filename="genconf-export.jsonl"'
    return response


class ImportBody:
    """The records of an export sent as JSON Lines, read as they arrive: each line
    is one record, at most ``limit`` bytes (the request limit applies per record, as
    gRPC's applies per message); blank lines are skipped."""

    def __init__(self, request: Request, limit: int) -> None:
        self.request = request
        self.limit = limit
        self.too_large = False
        self.stopped = False

    def stop(self) -> None:
        """The server refused the import: read no further."""
        self.stopped = True

    def _line(self, line: bytes, number: int) -> transfer_pb2.ImportRequest:
        if len(line) > self.limit:
            self.too_large = True
            raise ResourceExhausted(
                f"line {number} of the import is {len(line):,} bytes, more than "
                f"--max-request-bytes={self.limit:,}"
            )
        try:
            text = line.decode()
        except UnicodeDecodeError:
            raise InvalidArgument(f"line {number} of the import is not UTF-8") from None
        if number == 1 and not text.lstrip().startswith("{"):
            raise InvalidArgument(
                "send the export as JSON Lines, one record per line (genconf export "
                "--format jsonl, or GET /api/v1/export); genconf import reads YAML"
            )
        return transfer_pb2.ImportRequest(record=transfer_pb2.ExportRecord(json=text))

    async def messages(self, renumber: bool) -> AsyncIterator[transfer_pb2.ImportRequest]:
        options = transfer_pb2.ImportOptions(renumber_generations=renumber)
        yield transfer_pb2.ImportRequest(options=options)
        pending = b""
        number = 0
        async for chunk in self.request.stream():
            if self.stopped:
                return
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                if line.strip():
                    number += 1
                    yield self._line(line.rstrip(b"\r"), number)
                    if self.stopped:
                        return
            if len(pending) > self.limit:
                self._line(pending, number + 1)  # refused: too large
        if pending.strip() and not self.stopped:
            yield self._line(pending.rstrip(b"\r"), number + 1)


def import_summary(
    steps: list[transfer_pb2.ImportProgress], total: transfer_pb2.ImportProgress
) -> dict[str, Any]:
    """The import's totals, as ``genconf import -o json`` prints them."""
    return {
        "records": total.records,
        "applications": list(total.applications),
        "branches": list(total.branches),
        "units": total.units,
        "versions": total.versions,
        "generations": total.generations,
        "transactions": len(steps),
        "renumbered": {"first": total.renumbered_first, "last": total.renumbered_last}
        if total.renumbered_last
        else None,
        "revision": total.revision,
    }


@router.post(
    "/import",
    response_model=ImportSummary,
    **performs(
        IMPORT,
        summary="restore an export (JSON Lines) into this model; its applications must be new",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {JSON_LINES: {"schema": {"type": "string"}}},
                "description": "an export, one record per line",
            }
        },
    ),
)
async def import_model(
    request: Request,
    renumber_generations: Annotated[
        bool, Query(description="give the imported generations new ids above this model's")
    ] = False,
) -> Response:
    api = api_of(request)
    context = api.context(request)
    body = ImportBody(request, api.max_request_bytes)
    steps: list[transfer_pb2.ImportProgress] = []
    total = None
    try:
        calls = api.gate.bidi(IMPORT, body.messages(renumber_generations), context)
        async with contextlib.aclosing(calls) as progress:  # type: ignore[type-var]
            async for message in progress:
                if message.refused:
                    body.stop()  # the call ends next, with the refusal's status
                elif message.done:
                    total = message
                elif not message.ready:
                    steps.append(message)
    except Aborted as exc:
        if body.too_large:  # whatever status the store gave it, as the request limit says
            raise Refusal(
                grpc.StatusCode.RESOURCE_EXHAUSTED, exc.message, status=TOO_LARGE
            ) from None
        raise
    finally:
        context.finish()
    if total is None:
        raise Unavailable(
            "the server ended the import without its totals; check what it wrote with an "
            "export before importing again"
        )
    await api.settle(total.revision, context)
    return Json(import_summary(steps, total))
