"""ControllerService: thin adapters over the store (writes) and the cache (reads).

Writes record their author as `auth.authorship` decides: the caller's token when
authentication is on (the request's ``created_by`` only as "on behalf of").
"""

from __future__ import annotations

from typing import Any

import grpc

from genconf import wire
from genconf.api import convert, status
from genconf.api.errors import unary, write
from genconf.api.guard import author
from genconf.api.reads import CacheServicer, listing, read
from genconf.domain import config, diff, names
from genconf.domain.results import WriteResult
from genconf.errors import InvalidArgument, NotFound
from genconf.store.branches import expiry_after
from genconf.v1 import controller_pb2 as pb
from genconf.v1 import controller_pb2_grpc, types_pb2

Context = grpc.aio.ServicerContext[Any, Any]


class ControllerServicer(CacheServicer, controller_pb2_grpc.ControllerServiceServicer):
    # -- applications -------------------------------------------------------

    @write
    async def CreateApplication(
        self, request: pb.CreateApplicationRequest, context: Context
    ) -> WriteResult:
        return await self.store.create_application(
            request.name,
            charm=request.charm,
            schema=wire.schema_from_proto(request.schema),
            open=request.open,
            settings=wire.from_struct(request.settings),
            units=request.units,
            reason=request.reason,
            metadata=wire.from_struct(request.metadata),
            **author(request.created_by),
        )

    @write
    async def UpdateApplication(
        self, request: pb.UpdateApplicationRequest, context: Context
    ) -> WriteResult:
        if not request.HasField("charm") and not request.replace_schema:
            raise InvalidArgument(
                "nothing to update: give a charm, or a schema with replace_schema"
            )
        return await self.store.update_application(
            request.name,
            charm=request.charm if request.HasField("charm") else None,
            schema=wire.schema_from_proto(request.schema) if request.replace_schema else None,
        )

    @write
    async def RemoveApplication(
        self, request: pb.RemoveApplicationRequest, context: Context
    ) -> WriteResult:
        return await self.store.remove_application(request.name, force=request.force)

    @unary
    @read(lambda request: names.validate_app_name(request.name))
    def GetApplication(
        self, request: pb.GetApplicationRequest, context: Context
    ) -> types_pb2.Application:
        app = self.cache.applications.get(request.name)
        if app is None:
            raise NotFound(f"application {request.name!r} not found")
        return convert.application_to_proto(app, [u.name for u in self.cache.units_of(app.name)])

    ListApplications = listing(
        pb.ListApplicationsResponse, applications=convert.applications_to_proto
    )

    # -- units ----------------------------------------------------------------

    @write
    async def AddUnits(self, request: pb.AddUnitsRequest, context: Context) -> WriteResult:
        return await self.store.add_units(
            request.application,
            count=request.count,
            names=list(request.names),
            labels=dict(request.labels),
        )

    @write
    async def LabelUnit(self, request: pb.LabelUnitRequest, context: Context) -> WriteResult:
        return await self.store.label_unit(
            request.unit, set=dict(request.set), remove=list(request.remove)
        )

    @write
    async def RemoveUnit(self, request: pb.RemoveUnitRequest, context: Context) -> WriteResult:
        return await self.store.remove_unit(request.name)

    @unary
    @read()
    def ListUnits(self, request: pb.ListUnitsRequest, context: Context) -> pb.ListUnitsResponse:
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

    @write
    async def SetConfig(self, request: pb.SetConfigRequest, context: Context) -> WriteResult:
        return await self.store.set_config(
            request.application,
            set=wire.from_struct(request.set),
            unset=list(request.unset),
            replace=request.replace,
            expect=wire.expectations_from_proto(request.expect),
            expected_version=convert.expected_version(request),
            reason=request.reason,
            metadata=wire.from_struct(request.metadata),
            **author(request.created_by),
        )

    @write
    async def PatchConfig(self, request: pb.PatchConfigRequest, context: Context) -> WriteResult:
        if not request.branch:
            return await self.store.patch_config(
                request.application,
                request.key,
                request.diff,
                expected_version=convert.expected_version(request),
                reason=request.reason,
                metadata=wire.from_struct(request.metadata),
                **author(request.created_by),
            )
        if request.HasField("expected_version") or request.reason or request.metadata:
            raise InvalidArgument(
                "expected_version, reason and metadata belong to master writes; a patch "
                "on a branch is recorded when the branch is committed"
            )
        return await self.store.patch_branch_config(
            request.branch, request.application, request.key, request.diff
        )

    # -- branches -------------------------------------------------------------

    @write
    async def AddBranch(self, request: pb.AddBranchRequest, context: Context) -> WriteResult:
        expires_at = expiry_after(self.store.clock(), request.expires_in_seconds)
        return await self.store.add_branch(
            request.name, expires_at=expires_at, **author(request.created_by)
        )

    @write
    async def TrackBranch(self, request: pb.TrackBranchRequest, context: Context) -> WriteResult:
        return await self.store.track_branch(
            request.branch,
            units=list(request.units),
            applications=list(request.applications),
            count=request.count,
            application=request.application or None,
            percent=request.percent,
            selector=request.selector,
        )

    @write
    async def UntrackBranch(
        self, request: pb.UntrackBranchRequest, context: Context
    ) -> WriteResult:
        return await self.store.untrack_branch(
            request.branch, units=list(request.units), applications=list(request.applications)
        )

    @write
    async def SetBranchConfig(
        self, request: pb.SetBranchConfigRequest, context: Context
    ) -> WriteResult:
        return await self.store.set_branch_config(
            request.branch,
            request.application,
            set=wire.from_struct(request.set),
            unset=list(request.unset),
            expect=wire.expectations_from_proto(request.expect),
        )

    @unary
    @read(lambda request: names.validate_branch_name(request.branch))
    def DiffBranch(self, request: pb.DiffBranchRequest, context: Context) -> pb.DiffBranchResponse:
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

    @write
    async def CommitBranch(self, request: pb.CommitBranchRequest, context: Context) -> WriteResult:
        return await self.store.commit_branch(
            request.branch,
            force=request.force,
            require_applied=request.require_applied,
            reason=request.reason,
            metadata=wire.from_struct(request.metadata),
            **author(request.created_by),
        )

    @write
    async def AbortBranch(self, request: pb.AbortBranchRequest, context: Context) -> WriteResult:
        return await self.store.abort_branch(request.branch, force=request.force)

    @write
    async def RebaseBranch(self, request: pb.RebaseBranchRequest, context: Context) -> WriteResult:
        return await self.store.rebase_branch(
            request.name, keys=list(request.keys), applications=list(request.applications)
        )

    @write
    async def DropBranchKey(
        self, request: pb.DropBranchKeyRequest, context: Context
    ) -> WriteResult:
        return await self.store.drop_branch_key(request.name, request.application, request.key)

    ListBranches = listing(pb.ListBranchesResponse, branches=convert.branches_to_proto)

    @unary
    @read(lambda request: names.validate_branch_name(request.name))
    def GetBranch(self, request: pb.GetBranchRequest, context: Context) -> types_pb2.Branch:
        branch = self.cache.branches.get(request.name)
        if branch is None:
            raise NotFound(f"branch {request.name!r} not found (committed or aborted?)")
        tracking = self.cache.tracking(branch.name)
        out = convert.branch_to_proto(branch, [u.name for u in tracking])
        for unit in tracking:
            out.applied.append(convert.unit_applied_to_proto(unit, self.cache.config(unit.name)))
        return out

    # -- fleet status -----------------------------------------------------------

    @unary
    async def GetStatus(self, request: pb.GetStatusRequest, context: Context) -> pb.StatusResponse:
        return await status.get_status(self.cache, self.store.db, request, context)
