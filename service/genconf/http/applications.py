"""Routes of applications, their config and their units (ControllerService and
AgentService), each answering the shape ``genconf -o json`` prints."""

from __future__ import annotations

import json
import json.encoder
from typing import Annotated, Any, Final

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from genconf import shapes
from genconf.http import models, sse
from genconf.http.api import PREFIX, Json, api_of, method, performs
from genconf.http.errors import encode
from genconf.http.views import ApplicationView, ConfigView, StatusView, UnitView, WriteView
from genconf.v1 import agent_pb2
from genconf.v1 import controller_pb2 as cpb

CREATE_APPLICATION: Final = method("ControllerService", "CreateApplication")
UPDATE_APPLICATION: Final = method("ControllerService", "UpdateApplication")
REMOVE_APPLICATION: Final = method("ControllerService", "RemoveApplication")
GET_APPLICATION: Final = method("ControllerService", "GetApplication")
LIST_APPLICATIONS: Final = method("ControllerService", "ListApplications")
SET_CONFIG: Final = method("ControllerService", "SetConfig")
PATCH_CONFIG: Final = method("ControllerService", "PatchConfig")
ADD_UNITS: Final = method("ControllerService", "AddUnits")
REMOVE_UNIT: Final = method("ControllerService", "RemoveUnit")
LABEL_UNIT: Final = method("ControllerService", "LabelUnit")
LIST_UNITS: Final = method("ControllerService", "ListUnits")
GET_STATUS: Final = method("ControllerService", "GetStatus")
GET_CONFIG: Final = method("AgentService", "GetConfig")
WATCH_CONFIG: Final = method("AgentService", "WatchConfig")
REPORT_APPLIED: Final = method("AgentService", "ReportApplied")

router = APIRouter(prefix=PREFIX)
_text = json.encoder.encode_basestring  # a str as JSON (C), as json.dumps(ensure_ascii=False)


# -- applications ---------------------------------------------------------------------


@router.get(
    "/applications",
    response_model=list[ApplicationView],
    **performs(LIST_APPLICATIONS, summary="every application"),
)
async def list_applications(request: Request) -> Response:
    reply = await api_of(request).call(request, LIST_APPLICATIONS, cpb.ListApplicationsRequest())
    return Json([shapes.application_view(a) for a in reply.applications])


@router.post(
    "/applications",
    response_model=WriteView,
    **performs(CREATE_APPLICATION, summary="create an application (and its first config)"),
)
async def create_application(request: Request, body: models.CreateApplication) -> Response:
    api = api_of(request)
    return await api.write(request, CREATE_APPLICATION, body.proto(api.claimed(request)))


@router.get(
    "/applications/{app}",
    response_model=ApplicationView,
    **performs(GET_APPLICATION, summary="an application: schema, settings, effective, units"),
)
async def get_application(request: Request, app: str) -> Response:
    reply = await api_of(request).call(
        request, GET_APPLICATION, cpb.GetApplicationRequest(name=app)
    )
    return Json(shapes.application_view(reply))


@router.patch(
    "/applications/{app}",
    response_model=WriteView,
    **performs(UPDATE_APPLICATION, summary="change an application's charm or schema"),
)
async def update_application(
    request: Request, app: str, body: models.UpdateApplication
) -> Response:
    return await api_of(request).write(request, UPDATE_APPLICATION, body.proto(app))


@router.delete(
    "/applications/{app}",
    response_model=WriteView,
    **performs(REMOVE_APPLICATION, summary="remove an application, its units and history"),
)
async def remove_application(
    request: Request,
    app: str,
    force: Annotated[bool, Query(description="required when it has units")] = False,
) -> Response:
    return await api_of(request).write(
        request, REMOVE_APPLICATION, cpb.RemoveApplicationRequest(name=app, force=force)
    )


# -- master config ----------------------------------------------------------------------


@router.put(
    "/applications/{app}/config",
    response_model=WriteView,
    **performs(
        SET_CONFIG,
        summary="set and unset master values (replace: the whole config), one version",
    ),
)
async def set_config(request: Request, app: str, body: models.SetConfig) -> Response:
    api = api_of(request)
    return await api.write(request, SET_CONFIG, body.proto(app, api.claimed(request)))


@router.post(
    "/applications/{app}/config/patch",
    response_model=WriteView,
    **performs(PATCH_CONFIG, summary="apply a unified diff to a text value"),
)
async def patch_config(request: Request, app: str, body: models.PatchConfig) -> Response:
    api = api_of(request)
    return await api.write(request, PATCH_CONFIG, body.proto(app, api.claimed(request)))


# -- units ----------------------------------------------------------------------------


@router.get(
    "/applications/{app}/units",
    response_model=list[UnitView],
    **performs(LIST_UNITS, summary="an application's units"),
)
async def list_application_units(request: Request, app: str) -> Response:
    return await _units(request, app)


@router.post(
    "/applications/{app}/units",
    response_model=WriteView,
    **performs(ADD_UNITS, summary="add units: a count, or names"),
)
async def add_units(request: Request, app: str, body: models.AddUnits) -> Response:
    return await api_of(request).write(request, ADD_UNITS, body.proto(app))


@router.get(
    "/units",
    response_model=list[UnitView],
    **performs(LIST_UNITS, summary="every unit (or one application's)"),
)
async def list_units(
    request: Request, application: Annotated[str, Query(description="only its units")] = ""
) -> Response:
    return await _units(request, application)


async def _units(request: Request, application: str) -> Response:
    reply = await api_of(request).call(
        request, LIST_UNITS, cpb.ListUnitsRequest(application=application)
    )
    return Json([shapes.unit_view(u) for u in reply.units])


@router.delete(
    "/units/{app}/{n}",
    response_model=WriteView,
    **performs(REMOVE_UNIT, summary="remove a unit"),
)
async def remove_unit(request: Request, app: str, n: str) -> Response:
    return await api_of(request).write(
        request, REMOVE_UNIT, cpb.RemoveUnitRequest(name=f"{app}/{n}")
    )


@router.patch(
    "/units/{app}/{n}/labels",
    response_model=WriteView,
    **performs(LABEL_UNIT, summary="put labels on a unit (set) and take others off (remove)"),
)
async def label_unit(request: Request, app: str, n: str, body: models.LabelUnit) -> Response:
    return await api_of(request).write(request, LABEL_UNIT, body.proto(f"{app}/{n}"))


UNIT_PARAMETERS: Final = [
    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": d}
    for name, d in (("app", "the application"), ("n", "the unit's number: APP/N"))
]


def config_json(config: Any) -> bytes:
    """A unit's `Config` as `shapes.config_view` makes it (keys sorted), around the
    server's canonical JSON of the config (the same keys and values; redacted for
    observers), so the config is never decoded and encoded again."""
    branch = _text(config.branch) if config.branch else "null"
    return (
        f'{{"app_version":{config.app_version},"application":{_text(config.application)},'
        f'"branch":{branch},"config":{config.config_json or "{}"},"hash":{_text(config.hash)},'
        f'"revision":{config.revision},"unit":{_text(config.unit)}}}'
    ).encode()


@router.get(
    "/units/{app}/{n}/config",
    response_model=ConfigView,
    **performs(
        GET_CONFIG,
        summary="a unit's effective config and its hash",
        openapi_extra={"parameters": UNIT_PARAMETERS},
    ),
)
async def get_unit_config(request: Request) -> Response:
    # The agents' polling path: its two path parameters are read here rather than
    # declared, which spares FastAPI's per-parameter work on every request (they
    # are documented by UNIT_PARAMETERS).
    params = request.path_params
    unit = f"{params['app']}/{params['n']}"
    reply = await api_of(request).call(request, GET_CONFIG, agent_pb2.GetConfigRequest(unit=unit))
    return Json(config_json(reply))


def _watch_event(message: agent_pb2.WatchConfigResponse | bytes) -> bytes:
    if isinstance(message, bytes):  # an agent or admin's message comes pre-encoded
        message = agent_pb2.WatchConfigResponse.FromString(message)
    if message.WhichOneof("event") == "bookmark":
        mark = message.bookmark
        data = encode({"revision": mark.revision, "hash": mark.hash})
        return sse.event(data, kind="bookmark", id=mark.revision)
    return sse.event(config_json(message.config), kind="config", id=message.config.revision)


@router.get(
    "/units/{app}/{n}/watch",
    **performs(
        WATCH_CONFIG,
        summary="server-sent events: the unit's config now, then each distinct config",
        response_class=Response,
        responses={
            200: {
                "content": {sse.MEDIA_TYPE: {}},
                "description": "events `config` (a config, as GET .../config answers) and "
                "`bookmark` ({revision, hash}: nothing changed), each with `id: REVISION`; "
                "`: keep-alive` comments; `closed` (an error body) when the stream ends",
            },
        },
    ),
)
async def watch_unit(
    request: Request,
    app: str,
    n: str,
    known_hash: Annotated[
        str, Query(description="the hash the client holds: a bookmark instead of it")
    ] = "",
    since: Annotated[
        int | None, Query(ge=0, description="a revision this server must reach first")
    ] = None,
    last_event_id: Annotated[int | None, Header(ge=0, description="as since")] = None,
) -> Response:
    api = api_of(request)
    context = api.context(request)
    revision = last_event_id if last_event_id is not None else since
    call = api.gate.stream(
        WATCH_CONFIG,
        agent_pb2.WatchConfigRequest(
            unit=f"{app}/{n}", known_hash=known_hash, min_revision=revision or 0
        ),
        context,
    )
    return await sse.events(call, _watch_event, context)


@router.post(
    "/units/{app}/{n}/applied",
    response_model=WriteView,
    **performs(REPORT_APPLIED, summary="an agent's report: it applied config HASH (ok or not)"),
)
async def report_applied(
    request: Request, app: str, n: str, body: models.ReportApplied
) -> Response:
    return await api_of(request).write(request, REPORT_APPLIED, body.proto(f"{app}/{n}"))


# -- fleet status -----------------------------------------------------------------------


@router.get(
    "/status",
    response_model=StatusView,
    **performs(
        GET_STATUS,
        summary="every application's version, label, branches in flight and units per state",
    ),
)
async def get_status(request: Request) -> Response:
    return await _status(request, "")


@router.get(
    "/status/{app}",
    response_model=StatusView,
    **performs(GET_STATUS, summary="one application's status, with each unit's state"),
)
async def get_application_status(request: Request, app: str) -> Response:
    return await _status(request, app)


async def _status(request: Request, application: str) -> Response:
    reply = await api_of(request).call(
        request, GET_STATUS, cpb.GetStatusRequest(application=application)
    )
    return Json(shapes.status_view(reply))
