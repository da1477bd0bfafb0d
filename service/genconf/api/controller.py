"""ControllerService: thin adapters over the store (writes) and the cache (reads).

Writes record their author as `auth.authorship` decides: the caller's token when
authentication is on (the request's ``created_by`` only as "on behalf of").
"""

from __future__ import annotations

from typing import Any

import grpc

from genconf import wire
from genconf.api import convert
from genconf.api.errors import unary
from genconf.api.guard import author
from genconf.api.reads import await_revision
from genconf.domain import config, diff, names
from genconf.errors import InvalidArgument, NotFound
from genconf.readside.cache import ModelCache
from genconf.store.store import Store
from genconf.v1 import controller_pb2 as pb
from genconf.v1 import controller_pb2_grpc, types_pb2

Context = grpc.aio.ServicerContext[Any, Any]


def _expected(request: pb.SetConfigRequest) -> int | None:
    return request.expected_version if request.HasField("expected_version") else None


class ControllerServicer(controller_pb2_grpc.ControllerServiceServicer):
    def __init__(self, store: Store, cache: ModelCache) -> None:
        self.store = store
        self.cache = cache

    # -- applications -------------------------------------------------------

    @unary
    async def CreateApplication(
        self, request: pb.CreateApplicationRequest, context: Context
    ) -> types_pb2.WriteResponse:
        result = await self.store.create_application(
            request.name,
            charm=request.charm,
            schema=wire.schema_from_proto(request.schema),
            units=request.units,
            **author(request.created_by),
        )
        return wire.write_response(result)

    @unary
    async def UpdateApplication(
        self, request: pb.UpdateApplicationRequest, context: Context
    ) -> types_pb2.WriteResponse:
        if not request.HasField("charm") and not request.replace_schema:
            raise InvalidArgument(
                "nothing to update: give a charm, or a schema with replace_schema"
            )
        result = await self.store.update_application(
            request.name,
            charm=request.charm if request.HasField("charm") else None,
            schema=wire.schema_from_proto(request.schema) if request.replace_schema else None,
        )
        return wire.write_response(result)

    @unary
    async def RemoveApplication(
        self, request: pb.RemoveApplicationRequest, context: Context
    ) -> types_pb2.WriteResponse:
        return wire.write_response(await self.store.remove_application(request.name))

    @unary
    async def GetApplication(
        self, request: pb.GetApplicationRequest, context: Context
    ) -> types_pb2.Application:
        names.validate_app_name(request.name)
        await await_revision(self.cache, request.min_revision, context)
        app = self.cache.applications.get(request.name)
        if app is None:
            raise NotFound(f"application {request.name!r} not found")
        return convert.application_to_proto(app, [u.name for u in self.cache.units_of(app.name)])

    @unary
    async def ListApplications(
        self, request: pb.ListApplicationsRequest, context: Context
    ) -> pb.ListApplicationsResponse:
        await await_revision(self.cache, request.min_revision, context)
        cache = self.cache
        return pb.ListApplicationsResponse(
            applications=[
                convert.application_to_proto(a, [u.name for u in cache.units_of(a.name)])
                for _, a in sorted(cache.applications.items())
            ],
            revision=cache.revision,
        )

    # -- units ----------------------------------------------------------------

    @unary
    async def AddUnits(
        self, request: pb.AddUnitsRequest, context: Context
    ) -> types_pb2.WriteResponse:
        result = await self.store.add_units(
            request.application, count=request.count, names=list(request.names)
        )
        return wire.write_response(result)

    @unary
    async def RemoveUnit(
        self, request: pb.RemoveUnitRequest, context: Context
    ) -> types_pb2.WriteResponse:
        return wire.write_response(await self.store.remove_unit(request.name))

    @unary
    async def ListUnits(
        self, request: pb.ListUnitsRequest, context: Context
    ) -> pb.ListUnitsResponse:
        await await_revision(self.cache, request.min_revision, context)
        cache = self.cache
        if request.application:
            names.validate_app_name(request.application)
            if request.application not in cache.applications:
                raise NotFound(f"application {request.application!r} not found")
            units = cache.units_of(request.application)
        else:
            units = sorted(cache.units.values(), key=lambda u: (u.application, u.number))
        return pb.ListUnitsResponse(
            units=[convert.unit_to_proto(u) for u in units], revision=cache.revision
        )

    # -- master config --------------------------------------------------------

    @unary
    async def SetConfig(
        self, request: pb.SetConfigRequest, context: Context
    ) -> types_pb2.WriteResponse:
        result = await self.store.set_config(
            request.application,
            set=wire.from_struct(request.set),
            unset=list(request.unset),
            expected_version=_expected(request),
            reason=request.reason,
            metadata=wire.from_struct(request.metadata),
            **author(request.created_by),
        )
        return wire.write_response(result)

    # -- branches -------------------------------------------------------------

    @unary
    async def AddBranch(
        self, request: pb.AddBranchRequest, context: Context
    ) -> types_pb2.WriteResponse:
        result = await self.store.add_branch(request.name, **author(request.created_by))
        return wire.write_response(result)

    @unary
    async def TrackBranch(
        self, request: pb.TrackBranchRequest, context: Context
    ) -> types_pb2.WriteResponse:
        result = await self.store.track_branch(
            request.branch,
            units=list(request.units),
            applications=list(request.applications),
            count=request.count,
            application=request.application or None,
        )
        return wire.write_response(result)

    @unary
    async def UntrackBranch(
        self, request: pb.UntrackBranchRequest, context: Context
    ) -> types_pb2.WriteResponse:
        result = await self.store.untrack_branch(
            request.branch, units=list(request.units), applications=list(request.applications)
        )
        return wire.write_response(result)

    @unary
    async def SetBranchConfig(
        self, request: pb.SetBranchConfigRequest, context: Context
    ) -> types_pb2.WriteResponse:
        result = await self.store.set_branch_config(
            request.branch,
            request.application,
            set=wire.from_struct(request.set),
            unset=list(request.unset),
        )
        return wire.write_response(result)

    @unary
    async def DiffBranch(
        self, request: pb.DiffBranchRequest, context: Context
    ) -> pb.DiffBranchResponse:
        names.validate_branch_name(request.branch)
        await await_revision(self.cache, request.min_revision, context)
        branch = self.cache.branches.get(request.branch)
        if branch is None:
            raise NotFound(f"branch {request.branch!r} not found")
        out = pb.DiffBranchResponse(branch=branch.name, revision=self.cache.revision)
        for app_name in sorted(branch.changes):
            app = self.cache.applications.get(app_name)
            if app is None:
                continue
            changes = branch.changes[app_name]
            before = config.effective_config(app.schema, app.settings)
            after = config.effective_config(app.schema, app.settings, changes)
            entries = convert.diff_to_proto(diff.diff(before, after))
            conflicts = [
                convert.conflict_to_proto(k)
                for k in config.find_conflicts(app_name, app.settings, changes)
            ]
            out.applications.append(
                pb.ApplicationDiff(application=app_name, entries=entries, conflicts=conflicts)
            )
        return out

    @unary
    async def CommitBranch(
        self, request: pb.CommitBranchRequest, context: Context
    ) -> types_pb2.WriteResponse:
        result = await self.store.commit_branch(
            request.branch,
            force=request.force,
            require_applied=request.require_applied,
            reason=request.reason,
            metadata=wire.from_struct(request.metadata),
            **author(request.created_by),
        )
        return wire.write_response(result)

    @unary
    async def AbortBranch(
        self, request: pb.AbortBranchRequest, context: Context
    ) -> types_pb2.WriteResponse:
        return wire.write_response(
            await self.store.abort_branch(request.branch, force=request.force)
        )

    @unary
    async def ListBranches(
        self, request: pb.ListBranchesRequest, context: Context
    ) -> pb.ListBranchesResponse:
        await await_revision(self.cache, request.min_revision, context)
        cache = self.cache
        return pb.ListBranchesResponse(
            branches=[
                convert.branch_to_proto(b, [u.name for u in cache.tracking(b.name)])
                for _, b in sorted(cache.branches.items())
            ],
            revision=cache.revision,
        )

    @unary
    async def GetBranch(self, request: pb.GetBranchRequest, context: Context) -> types_pb2.Branch:
        names.validate_branch_name(request.name)
        await await_revision(self.cache, request.min_revision, context)
        branch = self.cache.branches.get(request.name)
        if branch is None:
            raise NotFound(f"branch {request.name!r} not found (committed or aborted?)")
        tracking = self.cache.tracking(branch.name)
        out = convert.branch_to_proto(branch, [u.name for u in tracking])
        for unit in tracking:
            out.applied.append(convert.unit_applied_to_proto(unit, self.cache.config(unit.name)))
        return out
