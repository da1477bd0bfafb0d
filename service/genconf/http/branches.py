"""Routes of branches (ControllerService): stage, track, diff, commit, abort."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from genconf import shapes
from genconf.http import models
from genconf.http.api import PREFIX, Json, api_of, method, performs
from genconf.http.views import BranchDetailView, BranchDiffView, BranchView, TrackView, WriteView
from genconf.v1 import controller_pb2 as cpb
from genconf.v1 import types_pb2

ADD_BRANCH: Final = method("ControllerService", "AddBranch")
LIST_BRANCHES: Final = method("ControllerService", "ListBranches")
GET_BRANCH: Final = method("ControllerService", "GetBranch")
DIFF_BRANCH: Final = method("ControllerService", "DiffBranch")
TRACK_BRANCH: Final = method("ControllerService", "TrackBranch")
UNTRACK_BRANCH: Final = method("ControllerService", "UntrackBranch")
SET_BRANCH_CONFIG: Final = method("ControllerService", "SetBranchConfig")
COMMIT_BRANCH: Final = method("ControllerService", "CommitBranch")
ABORT_BRANCH: Final = method("ControllerService", "AbortBranch")
REBASE_BRANCH: Final = method("ControllerService", "RebaseBranch")
DROP_BRANCH_KEY: Final = method("ControllerService", "DropBranchKey")

router = APIRouter(prefix=PREFIX)


def unit_applied_view(u: types_pb2.UnitApplied) -> dict[str, Any]:
    """One tracking unit: the hash it should run, and whether its agent reported it."""
    report = u.report if u.HasField("report") else None
    return {
        "unit": u.unit,
        "hash": u.hash,
        "applied": u.applied,
        "report": None
        if report is None
        else {
            "hash": report.hash,
            "ok": report.ok,
            "message": report.message,
            "at": shapes.timestamp(report.at, report.HasField("at")),
        },
    }


@router.get(
    "/branches",
    response_model=list[BranchView],
    **performs(LIST_BRANCHES, summary="every active branch"),
)
async def list_branches(request: Request) -> Response:
    reply = await api_of(request).call(request, LIST_BRANCHES, cpb.ListBranchesRequest())
    return Json([shapes.branch_view(b) for b in reply.branches])


@router.post(
    "/branches",
    response_model=WriteView,
    **performs(ADD_BRANCH, summary="start a branch"),
)
async def add_branch(request: Request, body: models.AddBranch) -> Response:
    api = api_of(request)
    return await api.write(request, ADD_BRANCH, body.proto(api.claimed(request)))


@router.get(
    "/branches/{b}",
    response_model=BranchDetailView,
    **performs(GET_BRANCH, summary="a branch, with each tracking unit's applied report"),
)
async def get_branch(request: Request, b: str) -> Response:
    reply = await api_of(request).call(request, GET_BRANCH, cpb.GetBranchRequest(name=b))
    view = shapes.branch_view(reply)
    view["applied"] = [unit_applied_view(u) for u in reply.applied]
    return Json(view)


@router.get(
    "/branches/{b}/diff",
    response_model=BranchDiffView,
    **performs(DIFF_BRANCH, summary="what the branch changes, and what a commit would refuse"),
)
async def diff_branch(request: Request, b: str) -> Response:
    reply = await api_of(request).call(request, DIFF_BRANCH, cpb.DiffBranchRequest(branch=b))
    return Json(shapes.diff_view(reply))


@router.post(
    "/branches/{b}/track",
    response_model=TrackView,
    **performs(
        TRACK_BRANCH,
        summary="units, whole applications or a stable cohort (percent, selector) of an "
        "application start tracking the branch",
    ),
)
async def track_branch(request: Request, b: str, body: models.Track) -> Response:
    return await api_of(request).write(request, TRACK_BRANCH, body.proto(b), shapes.track_view)


@router.post(
    "/branches/{b}/untrack",
    response_model=WriteView,
    **performs(UNTRACK_BRANCH, summary="units (or applications) go back to master"),
)
async def untrack_branch(request: Request, b: str, body: models.Untrack) -> Response:
    return await api_of(request).write(request, UNTRACK_BRANCH, body.proto(b))


@router.put(
    "/branches/{b}/config/{app}",
    response_model=WriteView,
    **performs(SET_BRANCH_CONFIG, summary="stage set and unset on the branch"),
)
async def set_branch_config(
    request: Request, b: str, app: str, body: models.SetBranchConfig
) -> Response:
    return await api_of(request).write(request, SET_BRANCH_CONFIG, body.proto(b, app))


@router.post(
    "/branches/{b}/commit",
    response_model=WriteView,
    **performs(COMMIT_BRANCH, summary="apply the branch to master for everyone"),
)
async def commit_branch(request: Request, b: str, body: models.Commit | None = None) -> Response:
    api = api_of(request)
    message = (body or models.Commit()).proto(b, api.claimed(request))
    return await api.write(request, COMMIT_BRANCH, message)


@router.post(
    "/branches/{b}/abort",
    response_model=WriteView,
    **performs(ABORT_BRANCH, summary="drop the branch (force: even while units track it)"),
)
async def abort_branch(request: Request, b: str, body: models.Abort | None = None) -> Response:
    force = body.force if body is not None else False
    return await api_of(request).write(
        request, ABORT_BRANCH, cpb.AbortBranchRequest(branch=b, force=force)
    )


@router.post(
    "/branches/{b}/rebase",
    response_model=WriteView,
    **performs(
        REBASE_BRANCH,
        summary="take master's current values as the staged keys' starting point (they "
        "keep their targets), so a conflicted commit goes through",
    ),
)
async def rebase_branch(request: Request, b: str, body: models.Rebase | None = None) -> Response:
    message = (body or models.Rebase()).proto(b)
    return await api_of(request).write(request, REBASE_BRANCH, message)


@router.delete(
    "/branches/{b}/changes/{app}/{key}",
    response_model=WriteView,
    **performs(
        DROP_BRANCH_KEY,
        summary="drop one staged key (the tracking units see master's value for it again)",
    ),
)
async def drop_branch_key(request: Request, b: str, app: str, key: str) -> Response:
    message = cpb.DropBranchKeyRequest(name=b, application=app, key=key)
    return await api_of(request).write(request, DROP_BRANCH_KEY, message)
