"""Routes of history (HistoryService): versions, by number or label, in the shape
of a dataset-versioning API (list, latest, get, compare, rollback, increment,
tags), key history, and generations.

Versions carry no schema: like the CLI, a route that answers config values reads
the application's current schema (or every application's, for generations) to
type them, in the same request, through the same gate.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from genconf import shapes
from genconf.http import models
from genconf.http.api import PREFIX, Json, api_of, method, performs
from genconf.http.applications import GET_APPLICATION, LIST_APPLICATIONS
from genconf.http.views import (
    GenerationsPage,
    GenerationView,
    KeyHistoryPage,
    LabelView,
    LatestView,
    VersionDiffView,
    VersionsPage,
    VersionView,
    WriteView,
)
from genconf.v1 import controller_pb2 as cpb
from genconf.v1 import history_pb2 as hpb

LIST_VERSIONS: Final = method("HistoryService", "ListVersions")
GET_VERSION: Final = method("HistoryService", "GetVersion")
LATEST_VERSION: Final = method("HistoryService", "LatestVersion")
DIFF_VERSIONS: Final = method("HistoryService", "DiffVersions")
ROLLBACK: Final = method("HistoryService", "Rollback")
TAG_VERSION: Final = method("HistoryService", "TagVersion")
BUMP_VERSION: Final = method("HistoryService", "BumpVersion")
KEY_HISTORY: Final = method("HistoryService", "KeyHistory")
LIST_GENERATIONS: Final = method("HistoryService", "ListGenerations")
GET_GENERATION: Final = method("HistoryService", "GetGeneration")
REVERT_GENERATION: Final = method("HistoryService", "RevertGeneration")

router = APIRouter(prefix=PREFIX)

Limit = Annotated[int, Query(ge=0, le=models.INT32_MAX, description="at most (0: 100)")]
VersionNumber = Annotated[int, Query(ge=0, le=models.INT64_MAX)]
GenerationId = Annotated[int, Path(ge=0, le=models.INT64_MAX, description="a generation's id")]


async def _schema(request: Request, application: str) -> shapes.Schema:
    reply = await api_of(request).call(
        request, GET_APPLICATION, cpb.GetApplicationRequest(name=application)
    )
    return reply.schema  # type: ignore[no-any-return]


async def _schemas(request: Request) -> dict[str, shapes.Schema]:
    reply = await api_of(request).call(request, LIST_APPLICATIONS, cpb.ListApplicationsRequest())
    return {app.name: app.schema for app in reply.applications}


# -- versions ----------------------------------------------------------------------


@router.get(
    "/applications/{app}/versions",
    response_model=VersionsPage,
    **performs(LIST_VERSIONS, summary="versions, newest first (since/before: exclusive)"),
)
async def list_versions(
    request: Request,
    app: str,
    limit: Limit = 0,
    since: Annotated[VersionNumber, Query(description="only versions after this one")] = 0,
    before: Annotated[VersionNumber, Query(description="only versions before this one")] = 0,
) -> Response:
    reply = await api_of(request).call(
        request,
        LIST_VERSIONS,
        hpb.ListVersionsRequest(
            application=app, limit=limit, since_version=since, before_version=before
        ),
    )
    schema = await _schema(request, app)
    return Json(
        {
            "versions": [shapes.version_view(v, schema) for v in reply.versions],
            "more": reply.more,
            "current_version": reply.current_version,
        }
    )


@router.get(
    "/applications/{app}/versions/latest",
    response_model=LatestView,
    **performs(LATEST_VERSION, summary="the current version and the highest label"),
)
async def latest_version(request: Request, app: str) -> Response:
    reply = await api_of(request).call(
        request, LATEST_VERSION, hpb.LatestVersionRequest(application=app)
    )
    return Json(shapes.latest_view(reply))


@router.get(
    "/applications/{app}/versions/{ref}",
    response_model=VersionView,
    **performs(GET_VERSION, summary="one version, by number (0: current) or label"),
)
async def get_version(request: Request, app: str, ref: str) -> Response:
    number, label = models.version_ref(ref, "version")
    reply = await api_of(request).call(
        request, GET_VERSION, hpb.GetVersionRequest(application=app, version=number, label=label)
    )
    return Json(shapes.version_view(reply, await _schema(request, app)))


@router.post(
    "/applications/{app}/versions/compare",
    response_model=VersionDiffView,
    **performs(DIFF_VERSIONS, summary="the difference of two versions, with counts"),
)
async def compare_versions(request: Request, app: str, body: models.Compare) -> Response:
    reply = await api_of(request).call(request, DIFF_VERSIONS, body.proto(app))
    return Json(shapes.version_diff_view(reply, await _schema(request, app)))


@router.post(
    "/applications/{app}/versions/rollback",
    response_model=WriteView,
    **performs(ROLLBACK, summary="a new version holding an older version's settings"),
)
async def rollback(request: Request, app: str, body: models.Rollback) -> Response:
    api = api_of(request)
    return await api.write(request, ROLLBACK, body.proto(app, api.claimed(request)))


@router.post(
    "/applications/{app}/versions/increment",
    response_model=LabelView,
    **performs(BUMP_VERSION, summary="label a version with the next major, minor or patch"),
)
async def increment_version(request: Request, app: str, body: models.Increment) -> Response:
    api = api_of(request)
    context = api.context(request)
    reply = await api.gate.unary(BUMP_VERSION, body.proto(app), context)
    await api.settle(reply.revision, context)
    return Json(shapes.label_view(reply))


@router.post(
    "/applications/{app}/versions/{ref}/tags",
    response_model=LabelView,
    **performs(TAG_VERSION, summary="label a version (semantic, unique per application)"),
)
async def tag_version(request: Request, app: str, ref: str, body: models.Tag) -> Response:
    number, label = models.version_ref(ref, "version")
    api = api_of(request)
    context = api.context(request)
    message = hpb.TagVersionRequest(
        application=app, version=number, version_label=label, label=body.label
    )
    reply = await api.gate.unary(TAG_VERSION, message, context)
    await api.settle(reply.revision, context)
    return Json(shapes.label_view(reply))


@router.get(
    "/applications/{app}/keys/{key}/history",
    response_model=KeyHistoryPage,
    **performs(KEY_HISTORY, summary="the versions where one key's value changed"),
)
async def key_history(
    request: Request,
    app: str,
    key: str,
    limit: Limit = 0,
    before: Annotated[
        str, Query(description="only versions before this one (number or label)")
    ] = "",
) -> Response:
    number, label = models.version_ref(before or None, "before")
    reply = await api_of(request).call(
        request,
        KEY_HISTORY,
        hpb.KeyHistoryRequest(
            application=app, key=key, limit=limit, before_version=number, before_label=label
        ),
    )
    entries = shapes.key_history_view(reply, await _schema(request, app))
    return Json(
        {"application": reply.application, "key": reply.key, "entries": entries, "more": reply.more}
    )


# -- generations -------------------------------------------------------------------


@router.get(
    "/generations",
    response_model=GenerationsPage,
    **performs(LIST_GENERATIONS, summary="model-wide change records, newest first"),
)
async def list_generations(
    request: Request,
    limit: Limit = 0,
    since: Annotated[VersionNumber, Query(description="only generations after this id")] = 0,
    before: Annotated[VersionNumber, Query(description="only generations before this id")] = 0,
    application: Annotated[str, Query(description="only those that touched it")] = "",
) -> Response:
    reply = await api_of(request).call(
        request,
        LIST_GENERATIONS,
        hpb.ListGenerationsRequest(
            limit=limit, since=since, before=before, application=application
        ),
    )
    schemas = await _schemas(request)
    return Json(
        {
            "generations": [shapes.generation_view(g, schemas) for g in reply.generations],
            "more": reply.more,
        }
    )


@router.get(
    "/generations/{id}",
    response_model=GenerationView,
    **performs(GET_GENERATION, summary="one generation"),
)
async def get_generation(request: Request, id: GenerationId) -> Response:
    reply = await api_of(request).call(request, GET_GENERATION, hpb.GetGenerationRequest(id=id))
    return Json(shapes.generation_view(reply, await _schemas(request)))


@router.post(
    "/generations/{id}/revert",
    response_model=WriteView,
    **performs(REVERT_GENERATION, summary="apply a generation's inverse (checked like a commit)"),
)
async def revert_generation(
    request: Request,
    id: GenerationId,
    body: models.Revert | None = None,
) -> Response:
    api = api_of(request)
    body = body or models.Revert()
    message = hpb.RevertGenerationRequest(
        id=id, force=body.force, reason=body.reason, created_by=api.claimed(request)
    )
    return await api.write(request, REVERT_GENERATION, message)
