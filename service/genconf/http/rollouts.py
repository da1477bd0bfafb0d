"""Routes of rollouts (RolloutService): start one, follow it, pause, resume, abort.

Requests and views are declared here, beside their routes: steps and the failure
budget travel as people write them (``"1"``, ``"10%"``), as ``genconf rollout`` takes
them and `shapes.rollout_view` shows them.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import Field

from genconf import shapes
from genconf.domain.rollouts import Budget, Step
from genconf.errors import InvalidArgument
from genconf.http.api import PREFIX, Json, api_of, method, performs
from genconf.http.models import Body
from genconf.http.views import View, WriteView
from genconf.v1 import rollout_pb2 as pb

START: Final = method("RolloutService", "StartRollout")
GET: Final = method("RolloutService", "GetRollout")
LIST: Final = method("RolloutService", "ListRollouts")
PAUSE: Final = method("RolloutService", "PauseRollout")
RESUME: Final = method("RolloutService", "ResumeRollout")
ABORT: Final = method("RolloutService", "AbortRollout")

router = APIRouter(prefix=PREFIX)

Size = Annotated[str | int, Field(description='a number of units (1, "1") or a share ("10%")')]


def _size(value: str | int, kind: type[Step] | type[Budget]) -> pb.RolloutSize:
    parsed = kind.parse(str(value))
    if parsed.percent:
        return pb.RolloutSize(percent=parsed.percent)
    return pb.RolloutSize(units=parsed.units)


class StartRollout(Body):
    branch: str
    application: str
    steps: list[Size] = Field(description='e.g. ["1", "10%", "50%", "100%"]')
    bake_seconds: float | int = 0
    max_failed: Size | None = None
    on_failure: str = "pause"
    commit: bool = False
    selector: str = ""
    reason: str = ""

    def proto(self, created_by: str) -> pb.StartRolloutRequest:
        if not self.steps:
            raise InvalidArgument('steps: give at least one, e.g. ["1", "10%", "100%"]')
        request = pb.StartRolloutRequest(
            branch=self.branch,
            application=self.application,
            steps=[_size(s, Step) for s in self.steps],
            bake_seconds=float(self.bake_seconds),
            on_failure=self.on_failure,
            commit=self.commit,
            selector=self.selector,
            reason=self.reason,
            created_by=created_by,
        )
        if self.max_failed is not None:
            request.max_failed.CopyFrom(_size(self.max_failed, Budget))
        return request


class RolloutAction(Body):
    reason: str = ""


class TransitionView(View):
    at: str | None
    by: str = Field(description="the operator, or 'replica ID' for the driver")
    from_: str | None = Field(alias="from")
    to: str
    step: int = Field(description="the step it happened at, from 1")
    why: str
    epoch: int | None = Field(description="the driver's lease epoch (null: an operator)")
    tracked: int = Field(description="units this transition put on the branch")


class RolloutView(View):
    branch: str
    application: str
    steps: list[str]
    bake_seconds: float
    max_failed: str
    on_failure: str
    commit: bool
    selector: str | None
    state: str = Field(description="running, paused, completed, committed, rolled_back, aborted")
    step: int = Field(description="the current step, from 1")
    phase: str = Field(description="tracking, waiting or baking")
    bake_until: str | None
    reason: str | None = Field(description="why it stopped (a pause, a rollback, the end)")
    failed: list[str]
    skipped: dict[str, str]
    created_by: str
    on_behalf_of: str
    authenticated: bool
    created_at: str | None
    updated_at: str | None
    note: str | None
    tracking: list[str] = Field(description="units of the application on the branch now")
    behind: list[str] = Field(description="tracking units not current yet")
    candidates: int = Field(description="units the selector matches")
    step_size: int = Field(description="units the current step holds")
    transitions: list[TransitionView]


async def _write(request: Request, rpc: str, message: Any) -> Response:
    return await api_of(request).write(request, rpc, message)


@router.get(
    "/rollouts",
    response_model=list[RolloutView],
    **performs(LIST, summary="every rollout (finished ones too), by branch"),
)
async def list_rollouts(
    request: Request,
    application: Annotated[str, Query(description="only rollouts to this application")] = "",
) -> Response:
    message = pb.ListRolloutsRequest(application=application)
    reply = await api_of(request).call(request, LIST, message)
    return Json([shapes.rollout_view(r) for r in reply.rollouts])


@router.post(
    "/rollouts",
    response_model=WriteView,
    **performs(START, summary="start rolling a branch out to an application's units"),
)
async def start_rollout(request: Request, body: StartRollout) -> Response:
    api = api_of(request)
    return await _write(request, START, body.proto(api.claimed(request)))


@router.get(
    "/rollouts/{b}",
    response_model=RolloutView,
    **performs(GET, summary="a rollout: its plan, state, units and transitions"),
)
async def get_rollout(request: Request, b: str) -> Response:
    reply = await api_of(request).call(request, GET, pb.GetRolloutRequest(branch=b))
    return Json(shapes.rollout_view(reply))


@router.post(
    "/rollouts/{b}/pause",
    response_model=WriteView,
    **performs(PAUSE, summary="stop a running rollout where it is"),
)
async def pause_rollout(request: Request, b: str, body: RolloutAction | None = None) -> Response:
    api = api_of(request)
    reason = body.reason if body is not None else ""
    message = pb.PauseRolloutRequest(branch=b, reason=reason, created_by=api.claimed(request))
    return await _write(request, PAUSE, message)


@router.post(
    "/rollouts/{b}/resume",
    response_model=WriteView,
    **performs(RESUME, summary="go on with a paused rollout from its step"),
)
async def resume_rollout(request: Request, b: str, body: RolloutAction | None = None) -> Response:
    api = api_of(request)
    reason = body.reason if body is not None else ""
    message = pb.ResumeRolloutRequest(branch=b, reason=reason, created_by=api.claimed(request))
    return await _write(request, RESUME, message)


@router.post(
    "/rollouts/{b}/abort",
    response_model=WriteView,
    **performs(ABORT, summary="end a rollout: its units back on master, the branch kept"),
)
async def abort_rollout(request: Request, b: str, body: RolloutAction | None = None) -> Response:
    api = api_of(request)
    reason = body.reason if body is not None else ""
    message = pb.AbortRolloutRequest(branch=b, reason=reason, created_by=api.claimed(request))
    return await _write(request, ABORT, message)
